"""The execution role, the function, its versions and the ``live`` alias: read them, and delete them.

The planner (:mod:`.aws_provider`) reads the live state through the
``observe_*`` functions; the apply functions (:mod:`.aws_apply`) make and
change resources; :func:`delete_resource` removes one recorded resource
(undeploy, rollback, stale endpoints).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from .aws_client import AwsClient, error_code, error_message, is_not_found
from .aws_settings import ALIAS, basic_policy_arn


@dataclass
class Observed:
    """What exists remotely for one deployment (read by ``plan``, used by ``deploy``)."""

    role: dict | None = None
    role_tags: dict[str, str] = field(default_factory=dict)
    role_policies: list[str] = field(default_factory=list)
    function: dict | None = None
    function_tags: dict[str, str] = field(default_factory=dict)
    live: dict | None = None
    url: dict | None = None
    policy: list[dict] = field(default_factory=list)
    api: dict | None = None
    api_ok: bool = False
    log_retention: int | None = None
    log_group: bool = False


def maybe(fn: Callable[[], Any]) -> Any:
    """Return ``fn()``, or ``None`` when it raises a not-found error."""
    try:
        return fn()
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def observe_role(client: AwsClient, name: str, obs: Observed, policy_recorded: bool = False) -> None:
    """Fill in the role and its attached policies (trusting the inventory for the policy if it recorded one)."""
    found = maybe(lambda: client.call("iam", "get_role", RoleName=name))
    obs.role = found["Role"] if found else None
    obs.role_tags = {t["Key"]: t["Value"] for t in (obs.role or {}).get("Tags") or []}
    if obs.role and policy_recorded:
        obs.role_policies = [basic_policy_arn(client.region)]
    elif obs.role:
        page = client.call("iam", "list_attached_role_policies", RoleName=name)
        obs.role_policies = [p["PolicyArn"] for p in page.get("AttachedPolicies", [])]


def observe_function(client: AwsClient, fname: str, obs: Observed, need_policy: bool = True) -> None:
    """Fill in ``$LATEST`` (with tags), the ``live`` alias target, its URL and (if asked) its resource policy."""
    found = maybe(lambda: client.call("lambda", "get_function", FunctionName=fname))
    obs.function = found["Configuration"] if found else None
    obs.function_tags = dict((found or {}).get("Tags") or {})
    if obs.function:
        live = maybe(lambda: client.call("lambda", "get_function", FunctionName=fname, Qualifier=ALIAS))
        obs.live = live["Configuration"] if live else None
    if obs.live:
        obs.url = maybe(lambda: client.call("lambda", "get_function_url_config", FunctionName=fname, Qualifier=ALIAS))
        policy = need_policy and maybe(lambda: client.call("lambda", "get_policy", FunctionName=fname, Qualifier=ALIAS))
        if policy:
            obs.policy = json.loads(policy["Policy"]).get("Statement", [])


def role_not_ready(exc: BaseException) -> bool:
    """True for Lambda's "the role cannot be assumed" error seen while a new role propagates."""
    text = error_message(exc).lower()
    return error_code(exc) == "InvalidParameterValueException" and (
        "cannot be assumed" in text or "role" in text and "assume" in text
    )


def delete_role(client: AwsClient, role: str) -> bool:
    """Detach every managed policy, delete inline policies, then delete the role. False if it was gone."""
    attached = maybe(lambda: client.call("iam", "list_attached_role_policies", RoleName=role))
    if attached is None:
        return False
    for pol in attached.get("AttachedPolicies", []):
        maybe(lambda arn=pol["PolicyArn"]: client.call("iam", "detach_role_policy", RoleName=role, PolicyArn=arn))
    inline = maybe(lambda: client.call("iam", "list_role_policies", RoleName=role)) or {}
    for pname in inline.get("PolicyNames", []):
        maybe(lambda p=pname: client.call("iam", "delete_role_policy", RoleName=role, PolicyName=p))
    return maybe(lambda: client.call("iam", "delete_role", RoleName=role)) is not None


def delete_resource(client: AwsClient, kind: str, rid: str, attrs: dict[str, Any], fname: str) -> None:
    """Delete one recorded resource; a resource already gone is not an error."""
    if kind == "permission":
        maybe(lambda: client.call("lambda", "remove_permission", FunctionName=fname, StatementId=rid, Qualifier=attrs.get("qualifier", ALIAS)))
    elif kind == "function-url":
        maybe(lambda: client.call("lambda", "delete_function_url_config", FunctionName=fname, Qualifier=attrs.get("qualifier", ALIAS)))
    elif kind == "api":
        maybe(lambda: client.call("apigatewayv2", "delete_api", ApiId=rid))
    elif kind == "alias":
        maybe(lambda: client.call("lambda", "delete_alias", FunctionName=fname, Name=rid))
    elif kind == "version":
        maybe(lambda: client.call("lambda", "delete_function", FunctionName=fname, Qualifier=rid))
    elif kind == "function":
        maybe(lambda: client.call("lambda", "delete_function", FunctionName=rid))
    elif kind == "role-policy":
        maybe(lambda: client.call("iam", "detach_role_policy", RoleName=attrs.get("role"), PolicyArn=rid))
    elif kind == "role":
        delete_role(client, rid)
    elif kind == "log-group":
        maybe(lambda: client.call("logs", "delete_log_group", logGroupName=rid))
