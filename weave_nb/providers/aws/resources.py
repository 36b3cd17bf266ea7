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

from .client import AwsClient, error_code, error_message, is_not_found
from .settings import ALIAS, LOG_POLICY_NAME


@dataclass
class Observed:
    """What exists remotely for one deployment (read by ``plan``, used by ``deploy``)."""

    role: dict | None = None
    role_tags: dict[str, str] = field(default_factory=dict)
    role_policies: list[str] = field(default_factory=list)
    role_log_policy: dict | None = None
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


def observe_role(client: AwsClient, name: str, obs: Observed) -> None:
    """Fill in the role, its tags, its inline log policy's document and its attached (managed) policies."""
    iam = client.api.iam
    obs.role = iam.find_role(name)
    obs.role_tags = {t["Key"]: t["Value"] for t in (obs.role or {}).get("Tags") or []}
    if obs.role:
        obs.role_log_policy = iam.find_role_policy(name, LOG_POLICY_NAME)
        obs.role_policies = iam.find_attached_policies(name) or []


def observe_function(client: AwsClient, fname: str, obs: Observed, need_policy: bool = True) -> None:
    """Fill in ``$LATEST`` (with tags), the ``live`` alias target, its URL and (if asked) its resource policy."""
    lam = client.api.lam
    found = lam.find_function(fname)
    obs.function = found["Configuration"] if found else None
    obs.function_tags = dict((found or {}).get("Tags") or {})
    if obs.function:
        live = lam.find_function(fname, ALIAS)
        obs.live = live["Configuration"] if live else None
    if obs.live:
        obs.url = lam.find_url(fname, ALIAS)
        policy = lam.find_policy(fname, ALIAS) if need_policy else None
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
    iam = client.api.iam
    attached = iam.find_attached_policies(role)
    if attached is None:
        return False
    for arn in attached:
        iam.detach_role_policy(role, arn)
    for pname in iam.inline_policies(role):
        iam.delete_role_policy(role, pname)
    return iam.delete_role(role)


def delete_resource(client: AwsClient, kind: str, rid: str, attrs: dict[str, Any], fname: str) -> None:
    """Delete one recorded resource; a resource already gone is not an error."""
    api = client.api
    qualifier = attrs.get("qualifier") or ALIAS
    if kind == "permission":
        api.lam.remove_permission(fname, qualifier, rid)
    elif kind == "function-url":
        api.lam.delete_url(fname, qualifier)
    elif kind == "api":
        api.apigw.delete_api(rid)
    elif kind == "alias":
        api.lam.delete_alias(fname, rid)
    elif kind == "version":
        api.lam.delete_function(fname, rid)
    elif kind == "function":
        api.lam.delete_function(rid)
    elif kind == "role-policy":
        api.iam.detach_role_policy(attrs.get("role"), rid)
    elif kind in ("role-log-policy", "role-secrets-policy"):
        api.iam.delete_role_policy(attrs.get("role"), rid)
    elif kind == "secret":  # only ever one this inventory made (see .secret_store)
        from .secret_store import store

        store(client).delete(rid)
    elif kind == "role":
        delete_role(client, rid)
    elif kind == "log-group":
        api.logs.delete_group(rid)
    elif kind == "alarm":
        api.cloudwatch.delete_alarm(rid)
    elif kind == "sns-subscription":
        api.sns.unsubscribe(rid)
    elif kind == "sns-topic":
        api.sns.delete_topic(rid)
