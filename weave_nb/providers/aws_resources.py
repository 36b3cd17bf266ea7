"""The execution role, the function, its versions and the ``live`` alias: read, create, update, delete.

Each ``ensure_*`` records a resource with ``ctx.add_resource`` the moment it
exists and appends it to ``created`` (the run's rollback list). Creates are
safe to repeat: a create whose answer was lost (dropped connection, then a
retry that finds the resource) adopts the resource if it carries this
deployment's tags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ..errors import DeploymentFailed
from .aws_client import AwsClient, error_code, error_message, is_not_found
from .aws_settings import (
    ALIAS,
    TAG_NAME,
    TRUST_POLICY,
    FunctionSettings,
    basic_policy_arn,
    tags_for,
)
from .base import DeployContext

Created = list[tuple[str, str, dict[str, Any]]]


@dataclass
class Observed:
    """What exists remotely for one deployment (read by ``plan``, used by ``deploy``)."""

    role: dict | None = None
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
            import json

            obs.policy = json.loads(policy["Policy"]).get("Statement", [])


def adopt_records(ctx: DeployContext, obs: Observed, fname: str, region: str) -> None:
    """Record what exists but the inventory does not list (it was lost, or made by an older run)."""
    have = {(r.kind, r.id) for r in ctx.resources()}

    def add(kind: str, rid: str, **attrs: Any) -> None:
        if (kind, rid) not in have:
            ctx.add_resource(kind, rid, **attrs)

    if obs.role:
        add("role", obs.role["RoleName"], arn=obs.role["Arn"])
        policy = basic_policy_arn(region)
        if policy in obs.role_policies:
            add("role-policy", policy, role=obs.role["RoleName"])
    if obs.function:
        add("function", fname, arn=obs.function["FunctionArn"], region=region)
    if obs.live:
        add("version", obs.live["Version"], function=fname)
        add("alias", ALIAS, function=fname, version=obs.live["Version"])
    if obs.url:
        add("function-url", obs.url["FunctionUrl"], qualifier=ALIAS, auth=obs.url.get("AuthType"))
    for statement in obs.policy:
        if str(statement.get("Sid", "")).startswith("weave-nb-"):
            add("permission", statement["Sid"], qualifier=ALIAS)
    if obs.api:
        add("api", obs.api["ApiId"], endpoint=obs.api.get("ApiEndpoint"))


def ensure_role(client: AwsClient, ctx: DeployContext, role: str, dep: str, obs: Observed, created: Created) -> str:
    """Create the execution role (trust policy for Lambda, basic execution policy) unless it exists.

    Returns:
        The role ARN.

    Raises:
        DeploymentFailed: a role of that name exists but belongs to something else.
    """
    current = obs.role
    if current is None:
        try:
            current = client.call(
                "iam",
                "create_role",
                RoleName=role,
                AssumeRolePolicyDocument=TRUST_POLICY,
                Description=f"Execution role of the weave-nb deployment {dep}",
                Tags=[{"Key": k, "Value": v} for k, v in tags_for(dep).items()],
            )["Role"]
        except ClientError as exc:
            if error_code(exc) != "EntityAlreadyExists":
                raise
            current = client.call("iam", "get_role", RoleName=role)["Role"]
            _check_owner({t["Key"]: t["Value"] for t in current.get("Tags", [])}, dep, f"IAM role {role}")
        else:
            created.append(("role", role, {}))
        ctx.add_resource("role", role, arn=current["Arn"])
        obs.role = current
    elif not any(r.kind == "role" for r in ctx.resources()):
        _check_owner({t["Key"]: t["Value"] for t in current.get("Tags", [])}, dep, f"IAM role {role}")
        ctx.add_resource("role", role, arn=current["Arn"])
    policy = basic_policy_arn(client.region)
    if policy not in obs.role_policies:
        client.call("iam", "attach_role_policy", RoleName=role, PolicyArn=policy)
        ctx.add_resource("role-policy", policy, role=role)
        created.append(("role-policy", policy, {"role": role}))
        obs.role_policies.append(policy)
    return current["Arn"]


def _check_owner(tags: dict[str, str], dep: str, what: str) -> None:
    if tags.get(TAG_NAME) != dep:
        raise DeploymentFailed(
            f"{what} already exists and is not managed by this weave-nb deployment",
            "remove it, pick another deployment name, or pass --option role_arn=... to use an existing role",
        )


def is_role_not_ready(exc: BaseException) -> bool:
    """True for Lambda's "the role cannot be assumed" error seen while a new role propagates."""
    text = error_message(exc).lower()
    return error_code(exc) == "InvalidParameterValueException" and (
        "cannot be assumed" in text or "role" in text and "assume" in text
    )


def create_function(
    client: AwsClient, ctx: DeployContext, fname: str, dep: str, settings: FunctionSettings,
    zip_data: bytes, created: Created, propagation_seconds: float,
) -> dict:
    """Create the function, retrying while IAM has not yet propagated the new role; wait until Active.

    Returns:
        The function's configuration.

    Raises:
        DeploymentFailed: the role still cannot be assumed after ``propagation_seconds``.
    """
    waited, delay = 0.0, 1.0
    params = dict(settings.api_config())
    params.update(
        FunctionName=fname, Code={"ZipFile": zip_data}, Architectures=[settings.architecture],
        Tags=tags_for(dep), Publish=False, PackageType="Zip",
        Description=f"weave-nb deployment {dep}",
    )
    while True:
        try:
            conf = client.call("lambda", "create_function", **params)
            break
        except ClientError as exc:
            if error_code(exc) == "ResourceConflictException":
                found = client.call("lambda", "get_function", FunctionName=fname)
                _check_owner(found.get("Tags") or {}, dep, f"Lambda function {fname}")
                conf = found["Configuration"]
                break
            if not is_role_not_ready(exc) or waited >= propagation_seconds:
                if is_role_not_ready(exc):
                    raise DeploymentFailed(
                        f"Lambda could not assume the execution role after {int(waited)}s",
                        "check the role's trust policy names lambda.amazonaws.com, then deploy again",
                    ) from None
                raise
            ctx.log(f"the new role is not usable by Lambda yet; retrying in {delay:.0f}s", "function")
            ctx.sleep(delay)
            waited += delay
            delay = min(delay * 2, 8.0)
    ctx.add_resource("function", fname, arn=conf["FunctionArn"], region=client.region)
    created.append(("function", fname, {}))
    return client.wait("lambda", "function_active_v2", FunctionName=fname)["Configuration"]


def update_function(
    client: AwsClient, ctx: DeployContext, fname: str, settings: FunctionSettings, zip_data: bytes,
    code_changed: bool, config_diffs: list[str], busy: bool = False,
) -> dict:
    """Update code and/or configuration in place, waiting for each update to finish.

    An update still in progress (from another deploy or the console) is
    waited for first, since Lambda refuses a second one meanwhile.
    """
    conf: dict = {}
    if busy:
        client.wait("lambda", "function_active_v2", FunctionName=fname)
        client.wait("lambda", "function_updated_v2", FunctionName=fname)
    if code_changed or "architecture" in config_diffs:
        client.call(
            "lambda", "update_function_code", FunctionName=fname, ZipFile=zip_data,
            Architectures=[settings.architecture], Publish=False,
        )
        conf = client.wait("lambda", "function_updated_v2", FunctionName=fname)["Configuration"]
    if set(config_diffs) - {"architecture"}:
        client.call("lambda", "update_function_configuration", FunctionName=fname, **settings.api_config())
        conf = client.wait("lambda", "function_updated_v2", FunctionName=fname)["Configuration"]
    return conf


def publish(client: AwsClient, ctx: DeployContext, fname: str, code_sha: str, created: Created) -> str:
    """Publish ``$LATEST`` as a new version (guarded by its CodeSha256) and record it."""
    version = client.call("lambda", "publish_version", FunctionName=fname, CodeSha256=code_sha)["Version"]
    ctx.add_resource("version", version, function=fname)
    created.append(("version", version, {}))
    return version


def point_alias(client: AwsClient, ctx: DeployContext, fname: str, version: str, exists: bool, created: Created) -> str:
    """Create the ``live`` alias on ``version``, or move it there. Returns the alias ARN."""
    if exists:
        out = client.call("lambda", "update_alias", FunctionName=fname, Name=ALIAS, FunctionVersion=version)
    else:
        try:
            out = client.call("lambda", "create_alias", FunctionName=fname, Name=ALIAS, FunctionVersion=version)
        except ClientError as exc:
            if error_code(exc) != "ResourceConflictException":
                raise
            out = client.call("lambda", "update_alias", FunctionName=fname, Name=ALIAS, FunctionVersion=version)
        created.append(("alias", ALIAS, {}))
    ctx.add_resource("alias", ALIAS, function=fname, version=version)
    return out["AliasArn"]


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
