"""The ``aws`` provider: a weave on AWS Lambda behind a Function URL or an API Gateway HTTP API.

Deploy = execution role ``weave-nb-<name>`` (Lambda trust policy + the
inline policy ``weave-nb-logs``, which lets it write only to the function's
own log group) → function ``weave-<name>`` → a published
version → alias ``live`` → endpoint. :meth:`AwsProvider.plan` reads the live
state once and decides everything: each step names its apply function
(:mod:`.aws_apply`), the exact parameters it sends and its undo. An
unchanged redeploy plans only no-change steps, so it makes no mutating call.
Every resource carries the ownership marks (``weave-nb:managed``,
``weave-nb:name``, ``weave-nb:owner``); one with the deployment's name but
without our marks stops the plan unless ``--adopt``. Status, undeploy
planning, listing and invoking live in :mod:`.aws_operations`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from ...core.artifact import LAMBDA_HANDLER, Artifact
from ...core.config import DeploymentConfig, DeploymentInfo, DeploymentStatus
from ...core import ownership
from ...core.executor import Run
from ...core.plan import Plan, PlannedStep
from ...core.errors import DeploymentFailed
from . import auth as aws_auth
from .alarms import AwsAlarms
from .apply import AwsApply
from .client import AwsClient, RetryPolicy, error_code, error_message
from .endpoint import api_note, find_api, stale_endpoints, url_note
from .endpoint_plan import adopt_step, api_steps, url_steps
from .operations import AwsOperations
from .resources import Observed, observe_function, observe_role
from .secret_store import AwsSecretApply, plan_secrets
from .settings import (
    ALIAS,
    API_TIMEOUT_LIMIT,
    AwsOptions,
    LOG_POLICY_NAME,
    account_of,
    basic_policy_arn,
    check_limits,
    check_size,
    code_sha256,
    desired_settings,
    function_name,
    log_policy_document,
    role_name,
    tags_for,
)
from ..base import DeployContext


class AwsProvider(AwsAlarms, AwsApply, AwsOperations, AwsSecretApply):
    """Deploy weaves to AWS Lambda.

    Args:
        auth: the AuthenticationManager.
        policy: the retry policy for throttling, 5xx and dropped connections.
    """

    name = "aws"
    extra = "aws"
    options_model = AwsOptions
    description = "AWS Lambda behind a Function URL or an API Gateway HTTP API"
    timeout_default = 60.0  # settings.DEFAULT_TIMEOUT: the function timeout weave-nb sets when none is given

    def __init__(self, auth: Any, policy: RetryPolicy | None = None) -> None:
        super().__init__(auth, policy)
        self._regions: set[str] | None = None

    # -- validation (no remote calls) ------------------------------------------
    def options(self, config: DeploymentConfig) -> AwsOptions:  # type: ignore[override]
        opts = super().options(config)
        assert isinstance(opts, AwsOptions)
        return opts

    def validate_config(self, config: DeploymentConfig) -> None:
        """Check names, memory, timeout, region and options against Lambda's limits.

        Raises:
            ConfigError: a setting is out of range; nothing was created.
        """
        opts = self.options(config)
        if self._regions is None:
            self._regions = aws_auth.known_regions()
        region = aws_auth.require_region(aws_auth.region_of(self.auth, config))
        check_limits(config.model_copy(update={"region": region}), opts, self._regions)

    def validate_artifact(self, artifact: Artifact, config: DeploymentConfig) -> None:
        """Check the package against 50 MB zipped / 250 MB unzipped.

        Raises:
            ConfigError: too large; nothing was uploaded.
        """
        check_size(artifact.size, artifact.unzipped_size)

    def check_credentials(self, config: DeploymentConfig) -> None:
        """Make sure AWS credentials can be found, without any remote call.

        Raises:
            CredentialsError: none found; the message lists the ways to provide them.
        """
        aws_auth.check(self.auth, config, self.options(config).instance_role)

    # -- observe ------------------------------------------------------------------
    def _config_client(self, config: DeploymentConfig, ctx: DeployContext) -> AwsClient:
        opts = self.options(config)
        region = aws_auth.require_region(aws_auth.region_of(self.auth, config))
        endpoint = aws_auth.endpoint_of(self.auth, config, opts.endpoint_url)
        return self._make_client(config, region, endpoint, ctx)

    def _run_client(self, run: Run) -> AwsClient:
        """The run's client (made once per run; the undeploy one from the record)."""
        if "client" not in run.scratch:
            run.scratch["client"] = (self._config_client(run.config, run.ctx) if run.config is not None
                                     else self._client_for(run.ctx)[0])
        return run.scratch["client"]

    def _observe(self, config: DeploymentConfig, ctx: DeployContext, client: AwsClient) -> Observed:
        opts = self.options(config)
        fname = function_name(config, opts)
        obs = Observed()
        recorded = {(r.kind, r.id) for r in ctx.resources()}
        # the resource policy matters when statements are wanted, or recorded ones may have to go
        need_policy = config.public or opts.endpoint == "api" or any(k == "permission" for k, _ in recorded)
        with ThreadPoolExecutor(max_workers=2) as pool:  # two independent reads: IAM and Lambda
            role_read = None
            if opts.role_arn is None:
                role_read = pool.submit(observe_role, client, role_name(config), obs)
            observe_function(client, fname, obs, need_policy)
            if role_read is not None:
                role_read.result()
        if opts.endpoint == "api":
            obs.api = find_api(client, ctx, fname, config.name)
        if opts.log_retention_days:
            group = f"/aws/lambda/{fname}"
            match = client.api.logs.find_group(group)
            obs.log_group = match is not None
            obs.log_retention = match.get("retentionInDays") if match else None
        return obs

    # -- plan ------------------------------------------------------------------------
    def plan(self, config: DeploymentConfig, artifact: Artifact, ctx: DeployContext) -> Plan:
        """Read the live state once and return every step a deploy runs, with its call, parameters and undo.

        Raises:
            ForeignResource: the function, role or HTTP API of this name was not made by this
                inventory, and ``--adopt`` was not given; nothing was changed.
        """
        opts = self.options(config)
        client = self._config_client(config, ctx)
        obs = self._observe(config, ctx, client)
        fname, rname = function_name(config, opts), role_name(config)
        tags = tags_for(config.name, ctx.owner)
        adopt = {  # checked before any step is planned: a foreign resource stops the whole plan
            "function": obs.function is not None and self._check(f"Lambda function {fname}", obs.function_tags, ctx, config.adopt),
            "api": obs.api is not None and self._check(f"HTTP API {obs.api['ApiId']} ({fname})", obs.api.get("Tags") or {}, ctx, config.adopt),
            "role": obs.role is not None and opts.role_arn is None and self._check(f"IAM role {rname}", obs.role_tags, ctx, config.adopt),
        }
        sha = code_sha256(artifact.data)
        zip_path = ctx.inventory.home / "aws" / ctx.name / f"{artifact.content_hash[:16]}.zip"
        steps = [PlannedStep(key="package", resource=f"local copy of the package {zip_path.name}",
                             action="no-change" if zip_path.exists() else "create", call="keep_zip", params={"path": str(zip_path)})]
        steps += self._role_steps(config, opts, obs, client.region, fname, tags, adopt["role"])
        # managed secrets (--secret): their steps, and the function's env without their values (.secret_store)
        secret_steps, fn_env, secret_notes = plan_secrets(client, config, ctx, None if opts.role_arn else rname, tags)
        steps += secret_steps
        role_arn = opts.role_arn or (obs.role or {}).get("Arn")
        settings = desired_settings(config, opts, LAMBDA_HANDLER, fn_env)
        settings = replace(settings, role_arn=role_arn) if role_arn else settings
        fn = {"function_name": fname, "role_arn": role_arn, "runtime": settings.runtime, "handler": settings.handler,
              "memory": settings.memory, "timeout": settings.timeout, "architecture": settings.architecture,
              "env_names": sorted(fn_env), "code_sha256": sha}
        fn_changed = False
        if obs.function is None:
            steps.append(PlannedStep(key="function", resource=f"Lambda function {fname}", action="create",
                                     detail=f"{opts.runtime}, {opts.architecture}", call="create_function", undo="delete_function",
                                     params={**fn, "tags": tags, "description": f"weave-nb deployment {config.name}",
                                             "propagation_seconds": opts.role_propagation_seconds}))
            fn_changed = True
        else:
            if adopt["function"]:
                steps.append(adopt_step("function", fname, obs.function["FunctionArn"], tags))
            diffs = settings.differences(obs.function)
            code = obs.function.get("CodeSha256") != sha or "architecture" in diffs
            config_diffs = [d for d in diffs if d != "architecture"]
            busy = obs.function.get("State") == "Pending" or obs.function.get("LastUpdateStatus") == "InProgress"
            fn_changed = bool(code or config_diffs)
            steps.append(PlannedStep(key="function", resource=f"Lambda function {fname}", action="update" if fn_changed else "no-change",
                                     detail=", ".join((["code"] if obs.function.get("CodeSha256") != sha else []) + diffs),
                                     call="update_function" if fn_changed else None,
                                     params={**fn, "code": code, "configuration": config_diffs, "busy": busy} if fn_changed else {}))
        live_same = bool(obs.live) and obs.live.get("CodeSha256") == sha and not settings.differences(obs.live)
        publish = fn_changed or not live_same
        live_version = (obs.live or {}).get("Version")
        steps.append(PlannedStep(key="version", resource="published version", action="create" if publish else "no-change",
                                 detail="" if publish else f"version {live_version}", call="publish" if publish else None,
                                 params={"function_name": fname, "code_sha256": sha} if publish else {},
                                 undo="delete_version" if publish else None))
        alias = {"function_name": fname, "alias": ALIAS, "version": None}
        if obs.live is None:
            steps.append(PlannedStep(key="alias", resource=f"alias {ALIAS}", action="create", detail="on the new version",
                                     call="create_alias", params=alias, undo="delete_alias"))
        else:
            steps.append(PlannedStep(key="alias", resource=f"alias {ALIAS}", action="update" if publish else "no-change",
                                     detail=f"from version {live_version}" if publish else f"version {live_version}",
                                     call="point_alias" if publish else None, undo="restore_alias" if publish else None,
                                     params={**alias, "previous_version": live_version} if publish else {}))
        alias_arn = _alias_arn(obs.function["FunctionArn"]) if obs.function else None
        if opts.endpoint == "url":
            steps += url_steps(fname, config.public, obs)
        elif opts.endpoint == "api":
            steps += api_steps(config.public, config.name, fname, obs, client, alias_arn, tags, adopt["api"])
        for kind, rid in stale_endpoints(opts.endpoint, ctx, obs):
            steps.append(PlannedStep(key=f"remove-{kind}-{rid}", resource=f"{kind} {rid}", action="delete",
                                     detail=f"endpoint is now {opts.endpoint}", call="delete",
                                     params={"kind": kind, "id": rid, "function_name": fname, "qualifier": ALIAS}))
        if opts.log_retention_days:
            group = f"/aws/lambda/{fname}"
            same = obs.log_retention == opts.log_retention_days
            action = "no-change" if same else "update" if obs.log_group else "create"
            steps.append(PlannedStep(key="logs", resource=f"log group {group}", action=action,
                                     detail=f"retention {opts.log_retention_days} days",
                                     call=None if same else "set_retention" if obs.log_group else "create_log_group",
                                     undo="delete_log_group" if action == "create" else None,
                                     params={} if same else {"group": group, "retention_days": opts.log_retention_days}))
        notes = list(secret_notes)
        if opts.endpoint == "api" and settings.timeout > API_TIMEOUT_LIMIT:
            notes.append(f"an HTTP API waits at most {API_TIMEOUT_LIMIT}s for Lambda; calls running longer answer 503 "
                         f"(the function's own timeout is {settings.timeout}s)")
        return Plan(provider=self.name, name=config.name, steps=steps, notes=notes,
                    observed=_summary(obs, client.region, fname, opts.role_arn is None))

    @staticmethod
    def _check(what: str, found: Mapping[str, str], ctx: DeployContext, adopt: bool) -> bool:
        return ownership.check("tag", what, found, ctx.owner, adopt, ctx.name)

    def _role_steps(self, config: DeploymentConfig, opts: AwsOptions, obs: Observed, region: str, fname: str,
                    tags: dict[str, str], adopt: bool) -> list[PlannedStep]:
        """The role, its inline log policy (scoped to the function's log group) and, on a role of ours
        that an earlier deploy gave AWSLambdaBasicExecutionRole, the detach of that policy once the
        inline one is in place."""
        if opts.role_arn:
            return [PlannedStep(key="role", resource=f"execution role {opts.role_arn}", action="no-change", detail="given")]
        rname = role_name(config)
        steps = []
        if obs.role is None:
            steps.append(PlannedStep(key="role", resource=f"IAM role {rname}", action="create", detail="trusted by lambda.amazonaws.com",
                                     call="create_role", undo="delete_role",
                                     params={"role_name": rname, "tags": tags,
                                             "description": f"Execution role of the weave-nb deployment {config.name}"}))
        elif adopt:
            steps.append(adopt_step("role", rname, obs.role["Arn"], tags))
        else:
            steps.append(PlannedStep(key="role", resource=f"IAM role {rname}", action="no-change"))
        # the account id is in the role's ARN; a role this run creates hands its ARN over at apply time (null here)
        account = account_of(obs.role["Arn"]) if obs.role else None
        wanted = log_policy_document(region, account, fname) if account else None
        same = obs.role_log_policy is not None and obs.role_log_policy == wanted
        action = "no-change" if same else "update" if obs.role_log_policy is not None else "create"
        steps.append(PlannedStep(
            key="role-log-policy", resource=f"inline policy {LOG_POLICY_NAME} on {rname}", action=action,
            detail=f"logs of /aws/lambda/{fname} only", call=None if same else "put_role_policy",
            undo=None if same else "restore_role_policy" if action == "update" else "delete_role_policy",
            params={} if same else {"role_name": rname, "policy_name": LOG_POLICY_NAME, "region": region, "function_name": fname,
                                    "account_id": account,
                                    **({"previous_document": obs.role_log_policy} if action == "update" else {})}))
        basic = basic_policy_arn(region)
        if obs.role is not None and not adopt and basic in obs.role_policies:
            steps.append(PlannedStep(key="role-policy", resource=f"policy {basic.rsplit('/', 1)[-1]} on {rname}", action="delete",
                                     detail=f"logs:* on every log group; replaced by {LOG_POLICY_NAME}", call="detach_policy",
                                     undo="attach_policy", params={"role_name": rname, "policy_arn": basic}))
        return steps

    # -- apply (the functions are in aws_apply) and finish --------------------------------
    def apply_step(self, run: Run, step: PlannedStep) -> Mapping[str, Any] | None:
        """Run one step; the first one records where the deployment lives; AWS errors become DeploymentFailed."""
        if "saved" not in run.scratch and run.config is not None:
            run.ctx.save(region=self._run_client(run).region, details=self._details(run))
            run.scratch["saved"] = True
        try:
            return super().apply_step(run, step)
        except Exception as exc:
            kept = run.config is not None and self.keep_on_failure(run.config)
            after = "what it created was kept (--keep-on-failure)" if kept else "what this run created was removed"
            after += "; fix the cause and deploy again, or undeploy to remove what exists"
            if error_code(exc) and not hasattr(exc, "message"):
                raise DeploymentFailed(f"AWS answered {error_code(exc)}: {error_message(exc)[:300]}",
                                       after if run.config is not None else None) from None
            if isinstance(exc, DeploymentFailed) and not exc.suggestion and run.config is not None:
                raise DeploymentFailed(exc.message, after) from None
            raise

    def _details(self, run: Run) -> dict[str, Any]:
        config = run.config
        assert config is not None
        opts, client = self.options(config), self._run_client(run)
        return {
            "function": function_name(config, opts), "handler": LAMBDA_HANDLER, "endpoint_type": opts.endpoint,
            "public": config.public, "endpoint_url": client.session.endpoint_url, "auth_method": client.session.method,
            "role_arn": (config.auth.get("role_arn") if config.auth and config.auth.method == "iam_role" else None),
            "profile": aws_auth.profile_name(self.auth, config), "purge_logs": opts.purge_logs or None,
        }

    def finish(self, run: Run) -> DeploymentInfo:
        """The deployment after its plan ran: endpoint and version from the steps, or as observed."""
        config = run.config
        assert config is not None
        opts, obs, out = self.options(config), run.plan.observed, run.outputs
        region = obs["region"]
        _record_found(run, obs)
        version = out.get("version") or obs.get("live_version")
        if opts.endpoint == "url":
            endpoint = out.get("url") or obs.get("url")
            note = None if config.public else url_note(endpoint, region)
        elif opts.endpoint == "api":
            endpoint = out.get("api_endpoint") or obs.get("api_endpoint")
            note = None if config.public else api_note(endpoint, region)
        else:
            endpoint = None
            note = f"no HTTP endpoint: call it with `weave invoke {config.name} --provider aws` (Lambda Invoke on alias {ALIAS})"
        zip_path = Path(run.plan.steps[0].params["path"])
        for old in zip_path.parent.glob("*.zip"):  # the earlier releases' packages, once this one is live
            if old != zip_path:
                old.unlink(missing_ok=True)
        details = {**self._details(run), "zip": str(zip_path), "live_version": version, "note": note}
        return DeploymentInfo(name=config.name, provider=self.name, status=DeploymentStatus.ACTIVE, endpoint=endpoint,
                              region=region, version=version, health="active", details=details,
                              message=f"version {version} is live")


def _alias_arn(function_arn: str) -> str:
    """The ``live`` alias ARN for a function ARN, qualified or not."""
    return ":".join(function_arn.split(":")[:7]) + f":{ALIAS}"


alias_arn_of = _alias_arn


def _summary(obs: Observed, region: str, fname: str, own_role: bool) -> dict[str, Any]:
    """What the plan was made from (JSON-able, no secrets): enough for ``finish`` to record what exists."""
    return {
        "region": region, "function": fname,
        "role": {"name": obs.role["RoleName"], "arn": obs.role["Arn"]} if obs.role and own_role else None,
        "role_policies": obs.role_policies if own_role else [],
        "role_log_policy": obs.role_log_policy is not None and own_role,
        "function_arn": (obs.function or {}).get("FunctionArn"),
        "live_version": (obs.live or {}).get("Version"),
        "url": (obs.url or {}).get("FunctionUrl"), "url_auth": (obs.url or {}).get("AuthType"),
        "sids": sorted(s.get("Sid", "") for s in obs.policy),
        "api_id": (obs.api or {}).get("ApiId"), "api_endpoint": (obs.api or {}).get("ApiEndpoint"),
        "log_group": obs.log_group,
    }


def _record_found(run: Run, obs: Mapping[str, Any]) -> None:
    """Record what the plan found live and ours but the inventory does not list (lost, or made by an older run).

    Only inventory rows change here; what this run's steps removed is not recorded again.
    """
    ctx = run.ctx
    have = {(r.kind, r.id) for r in ctx.resources()}
    gone = {(s.params["kind"], s.params["id"]) for s in run.plan.steps if s.call == "delete"}
    gone |= {("permission", s.params["sid"]) for s in run.plan.steps if s.call == "remove_permission"}
    gone |= {("role-policy", s.params["policy_arn"]) for s in run.plan.steps if s.call == "detach_policy"}

    def add(kind: str, rid: str | None, **attrs: Any) -> None:
        if rid and (kind, rid) not in have and (kind, rid) not in gone:
            ctx.add_resource(kind, rid, **attrs)

    fname, region = obs["function"], obs["region"]
    if obs.get("role"):
        add("role", obs["role"]["name"], arn=obs["role"]["arn"])
        if basic_policy_arn(region) in obs["role_policies"]:
            add("role-policy", basic_policy_arn(region), role=obs["role"]["name"])
        if obs.get("role_log_policy"):
            add("role-log-policy", LOG_POLICY_NAME, role=obs["role"]["name"])
    add("function", fname if obs.get("function_arn") else None, arn=obs.get("function_arn"), region=region)
    if obs.get("live_version"):
        add("version", obs["live_version"], function=fname)
        add("alias", ALIAS, function=fname, version=obs["live_version"])
    add("function-url", obs.get("url"), qualifier=ALIAS, auth=obs.get("url_auth"))
    for sid in obs.get("sids", []):
        if sid.startswith("weave-nb-"):
            add("permission", sid, qualifier=ALIAS)
    add("api", obs.get("api_id"), endpoint=obs.get("api_endpoint"))
