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

from .aws_client import AwsClient
from .aws_resources import Created, Observed, maybe
from .aws_settings import ALIAS, TAG_NAME, tags_for
from .base import DeployContext

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


def ensure_url(client: AwsClient, ctx: DeployContext, fname: str, public: bool, obs: Observed, created: Created) -> str:
    """Create or update the Function URL on the alias and its permissions. Returns the URL."""
    auth_type = "NONE" if public else "AWS_IAM"
    if obs.url is None:
        url = client.call("lambda", "create_function_url_config", FunctionName=fname, Qualifier=ALIAS, AuthType=auth_type)["FunctionUrl"]
        created.append(("function-url", url, {"qualifier": ALIAS}))
    elif obs.url.get("AuthType") != auth_type:
        url = client.call("lambda", "update_function_url_config", FunctionName=fname, Qualifier=ALIAS, AuthType=auth_type)["FunctionUrl"]
    else:
        url = obs.url["FunctionUrl"]
    ctx.add_resource("function-url", url, qualifier=ALIAS, auth=auth_type)
    sids = _statement_ids(obs)
    if public:
        wanted = [
            (SID_URL_PUBLIC, {"Action": "lambda:InvokeFunctionUrl", "FunctionUrlAuthType": "NONE"}),
            (SID_URL_INVOKE, {"Action": "lambda:InvokeFunction", "InvokedViaFunctionUrl": True}),
        ]
        for sid, extra in wanted:
            if sid not in sids:
                client.call("lambda", "add_permission", FunctionName=fname, Qualifier=ALIAS, StatementId=sid, Principal="*", **extra)
                ctx.add_resource("permission", sid, qualifier=ALIAS)
                created.append(("permission", sid, {"qualifier": ALIAS}))
    else:
        for sid in (SID_URL_PUBLIC, SID_URL_INVOKE):
            if sid in sids:
                maybe(lambda s=sid: client.call("lambda", "remove_permission", FunctionName=fname, Qualifier=ALIAS, StatementId=s))
                ctx.remove_resource("permission", sid)
    return url


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
    """The deployment's HTTP API: the recorded one, else one named ``fname`` tagged for ``dep``."""
    for res in ctx.resources("api"):
        found = maybe(lambda rid=res.id: client.call("apigatewayv2", "get_api", ApiId=rid))
        if found:
            return found
    for api in client.paginate("apigatewayv2", "get_apis", "Items", "NextToken", "NextToken"):
        if api.get("Name") == fname and (api.get("Tags") or {}).get(TAG_NAME) == dep:
            return api
    return None


def observe_api(client: AwsClient, api: dict, alias_arn: str | None, public: bool) -> bool:
    """True when the API's integration, route and stage already match."""
    api_id = api["ApiId"]
    integrations = client.call("apigatewayv2", "get_integrations", ApiId=api_id).get("Items", [])
    ok = [i for i in integrations if i.get("IntegrationUri") == alias_arn and i.get("IntegrationType") == "AWS_PROXY"]
    if not ok:
        return False
    routes = client.call("apigatewayv2", "get_routes", ApiId=api_id).get("Items", [])
    route = next((r for r in routes if r.get("RouteKey") == "$default"), None)
    if not route or route.get("Target") != f"integrations/{ok[0]['IntegrationId']}":
        return False
    if route.get("AuthorizationType", "NONE") != ("NONE" if public else "AWS_IAM"):
        return False
    stage = maybe(lambda: client.call("apigatewayv2", "get_stage", ApiId=api_id, StageName="$default"))
    return bool(stage)


def ensure_api(
    client: AwsClient, ctx: DeployContext, fname: str, dep: str, alias_arn: str, public: bool, obs: Observed, created: Created
) -> str:
    """Create or repair the HTTP API (integration, route, stage) and Lambda's permission. Returns its URL."""
    api = obs.api
    if api is None:
        api = client.call("apigatewayv2", "create_api", Name=fname, ProtocolType="HTTP", Tags=tags_for(dep),
                          Description=f"weave-nb deployment {dep}")
        created.append(("api", api["ApiId"], {}))
    api_id = api["ApiId"]
    ctx.add_resource("api", api_id, endpoint=api.get("ApiEndpoint"))
    integrations = client.call("apigatewayv2", "get_integrations", ApiId=api_id).get("Items", [])
    match = next((i for i in integrations if i.get("IntegrationUri") == alias_arn and i.get("IntegrationType") == "AWS_PROXY"), None)
    if match is None:
        match = client.call("apigatewayv2", "create_integration", ApiId=api_id, IntegrationType="AWS_PROXY",
                            IntegrationUri=alias_arn, PayloadFormatVersion="2.0", IntegrationMethod="POST")
    target = f"integrations/{match['IntegrationId']}"
    auth = "NONE" if public else "AWS_IAM"
    routes = client.call("apigatewayv2", "get_routes", ApiId=api_id).get("Items", [])
    route = next((r for r in routes if r.get("RouteKey") == "$default"), None)
    if route is None:
        client.call("apigatewayv2", "create_route", ApiId=api_id, RouteKey="$default", Target=target, AuthorizationType=auth)
    elif route.get("Target") != target or route.get("AuthorizationType", "NONE") != auth:
        client.call("apigatewayv2", "update_route", ApiId=api_id, RouteId=route["RouteId"], Target=target, AuthorizationType=auth)
    if maybe(lambda: client.call("apigatewayv2", "get_stage", ApiId=api_id, StageName="$default")) is None:
        client.call("apigatewayv2", "create_stage", ApiId=api_id, StageName="$default", AutoDeploy=True)
    if SID_API not in _statement_ids(obs):
        parts = alias_arn.split(":")
        source = f"arn:{parts[1]}:execute-api:{parts[3]}:{parts[4]}:{api_id}/*/*"
        client.call("lambda", "add_permission", FunctionName=fname, Qualifier=ALIAS, StatementId=SID_API,
                    Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com", SourceArn=source)
        ctx.add_resource("permission", SID_API, qualifier=ALIAS)
        created.append(("permission", SID_API, {"qualifier": ALIAS}))
    return api.get("ApiEndpoint") or f"https://{api_id}.execute-api.{client.region}.amazonaws.com"


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

    from ..errors import CredentialsError
    from .aws_auth import HOW

    creds = boto_session.get_credentials()
    if creds is None:
        raise CredentialsError("no AWS credentials to sign the request with", HOW)
    request = AWSRequest(method="POST", url=url, data=body, headers={"content-type": "application/json"})
    SigV4Auth(creds.get_frozen_credentials(), service, region).add_auth(request)
    return {k: v for k, v in request.headers.items()}
