"""The planner's endpoint steps: the Function URL and its permissions, or the HTTP API and its pieces.

Pure functions of what was observed (:class:`~.resources.Observed`): they
return :class:`PlannedStep` s with their calls (see :mod:`.aws_apply`),
parameters and undos, and change nothing.
"""

from __future__ import annotations

from typing import Any

from ...core.plan import PlannedStep
from .client import AwsClient
from .endpoint import SID_API, SID_URL_INVOKE, SID_URL_PUBLIC, observe_api
from .resources import Observed
from .settings import ALIAS, partition_of


def api_arn(region: str, api_id: str) -> str:
    """The ARN API Gateway's TagResource takes for an HTTP API."""
    return f"arn:{partition_of(region)}:apigateway:{region}::/apis/{api_id}"


def adopt_step(kind: str, rid: str, arn: str, tags: dict[str, str], endpoint: str | None = None) -> PlannedStep:
    """The step that puts our ownership marks on an existing resource (only when the user asked to adopt)."""
    what = {"role": "IAM role", "function": "Lambda function", "api": "HTTP API"}[kind]
    params = {"kind": kind, "id": rid, "arn": arn, "tags": tags, **({"endpoint": endpoint} if endpoint else {})}
    return PlannedStep(key=f"adopt-{kind}", resource=f"{what} {rid}", action="adopt", detail="--adopt: tag it as this inventory's",
                       call="adopt", params=params)


def url_steps(fname: str, public: bool, obs: Observed) -> list[PlannedStep]:
    """The Function URL on ``live`` and its permissions: create, update, or delete statements no longer wanted."""
    auth = "NONE" if public else "AWS_IAM"
    access = "public" if public else "private (AWS_IAM)"
    base = {"function_name": fname, "qualifier": ALIAS}
    if obs.url is None:
        steps = [PlannedStep(key="url", resource=f"Function URL on {ALIAS}", action="create", detail=access,
                             call="create_url", undo="delete_url", params={**base, "auth_type": auth})]
    elif obs.url.get("AuthType") != auth:
        steps = [PlannedStep(key="url", resource=f"Function URL on {ALIAS}", action="update", detail=access, call="update_url",
                             undo="restore_url", params={**base, "auth_type": auth, "previous_auth_type": obs.url.get("AuthType")})]
    else:
        steps = [PlannedStep(key="url", resource=f"Function URL on {ALIAS}", action="no-change", detail=access)]
    sids = {s.get("Sid") for s in obs.policy}
    wanted = {SID_URL_PUBLIC: {"action": "lambda:InvokeFunctionUrl", "function_url_auth_type": "NONE"},
              SID_URL_INVOKE: {"action": "lambda:InvokeFunction", "invoked_via_function_url": True}}
    for sid, extra in wanted.items():
        if public and sid not in sids:
            steps.append(PlannedStep(key=f"permission-{sid}", resource=f"permission {sid}", action="create", detail="anonymous calls",
                                     call="add_permission", undo="remove_permission",
                                     params={**base, "sid": sid, "principal": "*", **extra}))
        elif not public and sid in sids:
            steps.append(PlannedStep(key=f"permission-{sid}", resource=f"permission {sid}", action="delete", detail="now private",
                                     call="remove_permission", params={**base, "sid": sid}))
    return steps

def api_steps(public: bool, dep: str, fname: str, obs: Observed, client: AwsClient, alias_arn: str | None,
          tags: dict[str, str], adopt: bool) -> list[PlannedStep]:
    """The HTTP API and its integration, ``$default`` route and stage, and Lambda's permission for API Gateway.

    A value the plan cannot know yet (the new API's id, the new integration's id) is ``None``:
    the apply function takes it from the earlier step of the same run.
    """
    auth = "NONE" if public else "AWS_IAM"
    api, steps = obs.api, []
    pieces: dict[str, Any] = {"integration": None, "route": None, "route_ok": False, "stage": False}
    if api is None:
        steps.append(PlannedStep(key="api", resource=f"HTTP API {fname}", action="create",
                                 detail="public" if public else "private (AWS_IAM)", call="create_api", undo="delete_api",
                                 params={"name": fname, "tags": tags, "description": f"weave-nb deployment {dep}"}))
    else:
        pieces = observe_api(client, api, alias_arn, public)
        if adopt:
            steps.append(adopt_step("api", api["ApiId"], api_arn(client.region, api["ApiId"]), tags, api.get("ApiEndpoint")))
        else:
            steps.append(PlannedStep(key="api", resource=f"HTTP API {api['ApiId']} ({fname})", action="no-change"))
    api_id = api["ApiId"] if api else None
    if pieces["integration"] is None:
        steps.append(PlannedStep(key="api-integration", resource=f"integration to {ALIAS}", action="create", call="create_integration",
                                 params={"api_id": api_id, "integration_uri": alias_arn}))
    if pieces["route"] is None:
        steps.append(PlannedStep(key="api-route", resource="route $default", action="create", detail=auth, call="create_route",
                                 params={"api_id": api_id, "integration_id": pieces["integration"], "auth_type": auth}))
    elif not pieces["route_ok"]:
        steps.append(PlannedStep(key="api-route", resource="route $default", action="update", detail=auth, call="update_route",
                                 params={"api_id": api_id, "route_id": pieces["route"], "integration_id": pieces["integration"],
                                         "auth_type": auth}))
    if not pieces["stage"]:
        steps.append(PlannedStep(key="api-stage", resource="stage $default (auto-deploy)", action="create", call="create_stage",
                                 params={"api_id": api_id}))
    if SID_API not in {s.get("Sid") for s in obs.policy} or api is None:
        steps.append(PlannedStep(key=f"permission-{SID_API}", resource=f"permission {SID_API}", action="create",
                                 detail="apigateway.amazonaws.com may invoke", call="add_permission", undo="remove_permission",
                                 params={"function_name": fname, "qualifier": ALIAS, "sid": SID_API, "principal": "apigateway.amazonaws.com",
                                         "action": "lambda:InvokeFunction", "api_id": api_id, "alias_arn": alias_arn}))
    return steps
