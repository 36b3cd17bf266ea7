"""The HTTP endpoint in front of the ``live`` alias: a Function URL or an API Gateway v2 HTTP API.

Private by default: the Function URL uses ``AWS_IAM`` auth and the API's
``$default`` route ``AWS_IAM`` authorization, so callers must sign with
SigV4 (``weave invoke`` does). ``public=True`` makes the URL anonymous (auth
type ``NONE`` plus the two resource-policy statements AWS requires) and the
route open. The HTTP API is built piece by piece (integration, ``$default``
route, ``$default`` stage with auto-deploy), which works the same on AWS and
on emulators that ignore quick-create targets.
"""

from __future__ import annotations

import json
from typing import Any

from .client import AwsClient
from .resources import Observed
from .settings import TAG_NAME, TAG_OWNER
from ..base import DeployContext

SID_URL_PUBLIC = "weave-nb-url-public"
SID_URL_INVOKE = "weave-nb-url-invoke"
SID_API = "weave-nb-apigw"


def url_note(url: str, region: str) -> str:
    """How to call a private Function URL."""
    return (
        f"the Function URL {url} is private (AWS_IAM): sign requests with SigV4 for service 'lambda' in {region}, "
        "e.g. `weave invoke NAME --provider aws`, or redeploy with --public for anonymous access"
    )


def api_note(url: str, region: str) -> str:
    """How to call a private HTTP API."""
    return (
        f"the HTTP API {url} is private (AWS_IAM route): sign requests with SigV4 for service 'execute-api' in {region}, "
        "e.g. `weave invoke NAME --provider aws`, or redeploy with --public"
    )


def _statement_ids(obs: Observed) -> set[str]:
    return {s.get("Sid", "") for s in obs.policy}


def url_in_sync(obs: Observed, public: bool) -> bool:
    """True when the Function URL and its permissions already match ``public``."""
    if not obs.url or obs.url.get("AuthType") != ("NONE" if public else "AWS_IAM"):
        return False
    sids = _statement_ids(obs)
    wanted = {SID_URL_PUBLIC, SID_URL_INVOKE}
    return wanted <= sids if public else not (wanted & sids)


def stale_endpoints(endpoint: str, ctx: DeployContext, obs: Observed) -> list[tuple[str, str]]:
    """Endpoint resources of another endpoint type that must go, with their permissions.

    Returns:
        ``(kind, id)`` pairs in deletion order: permissions first, then the URL or API.
    """
    out: list[tuple[str, str]] = []
    sids = _statement_ids(obs) | {r.id for r in ctx.resources("permission")}
    if endpoint != "url":
        out += [("permission", sid) for sid in (SID_URL_PUBLIC, SID_URL_INVOKE) if sid in sids]
        urls = {r.id for r in ctx.resources("function-url")} | ({obs.url["FunctionUrl"]} if obs.url else set())
        out += [("function-url", url) for url in sorted(urls)]
    if endpoint != "api":
        out += [("permission", SID_API)] if SID_API in sids else []
        out += [("api", r.id) for r in ctx.resources("api")]
    return out


def find_api(client: AwsClient, ctx: DeployContext, fname: str, dep: str) -> dict | None:
    """The deployment's HTTP API: the recorded one, else one named ``fname`` (ours first, by its tags).

    An API of that name that is not ours is returned too: the planner's
    ownership check then refuses it (or adopts it on request).
    """
    for res in ctx.resources("api"):
        found = client.api.apigw.find_api(res.id)
        if found:
            return found
    named = [a for a in client.api.apigw.list_apis() if a.get("Name") == fname]
    ours = [a for a in named if (a.get("Tags") or {}).get(TAG_NAME) == dep and (a.get("Tags") or {}).get(TAG_OWNER) == ctx.owner]
    return (ours or named or [None])[0]


def observe_api(client: AwsClient, api: dict, alias_arn: str | None, public: bool) -> dict[str, Any]:
    """The API's pieces as they stand: matching integration id, ``$default`` route (id, whether it is right), stage."""
    api_id = api["ApiId"]
    apigw = client.api.apigw
    integrations = apigw.integrations(api_id)
    match = next((i for i in integrations if alias_arn and i.get("IntegrationUri") == alias_arn
                  and i.get("IntegrationType") == "AWS_PROXY"), None)
    routes = apigw.routes(api_id)
    route = next((r for r in routes if r.get("RouteKey") == "$default"), None)
    route_ok = bool(match and route and route.get("Target") == f"integrations/{match['IntegrationId']}"
                    and route.get("AuthorizationType", "NONE") == ("NONE" if public else "AWS_IAM"))
    stage = apigw.find_stage(api_id)
    return {"integration": match["IntegrationId"] if match else None, "route": route["RouteId"] if route else None,
            "route_ok": route_ok, "stage": bool(stage)}


def api_source_arn(alias_arn: str, api_id: str) -> str:
    """The ``execute-api`` source ARN that Lambda's permission for the HTTP API names."""
    parts = alias_arn.split(":")
    return f"arn:{parts[1]}:execute-api:{parts[3]}:{parts[4]}:{api_id}/*/*"


def api_gateway_event(payload: dict[str, Any], path: str = "/", method: str = "POST") -> dict[str, Any]:
    """An API Gateway v2 (payload format 2.0) event carrying ``payload`` as its JSON body."""
    body = json.dumps(payload)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "content-length": str(len(body))},
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "weave-nb"},
            "routeKey": "$default",
            "stage": "$default",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def signed_headers(boto_session: Any, url: str, body: bytes, service: str, region: str) -> dict[str, str]:
    """SigV4 headers for a JSON POST of ``body`` to ``url``.

    Raises:
        CredentialsError: the session has no credentials to sign with.
    """
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    from ...core.errors import CredentialsError
    from .auth import HOW

    creds = boto_session.get_credentials()
    if creds is None:
        raise CredentialsError("no AWS credentials to sign the request with", HOW)
    request = AWSRequest(method="POST", url=url, data=body, headers={"content-type": "application/json"})
    SigV4Auth(creds.get_frozen_credentials(), service, region).add_auth(request)
    return {k: v for k, v in request.headers.items()}
