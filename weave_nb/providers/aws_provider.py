"""The ``aws`` provider: a weave on AWS Lambda behind a Function URL or an API Gateway HTTP API.

Deploy = execution role ``weave-nb-<name>`` (Lambda trust policy +
AWSLambdaBasicExecutionRole) → function ``weave-<name>`` → a published
version → alias ``live`` → endpoint. ``plan`` reads the live state once;
``deploy`` changes only what differs, so an unchanged redeploy makes no
mutating call at all. Every resource is recorded the moment it exists, and
a failed run removes what it created (unless ``keep_on_failure``).
Status, undeploy, listing and invoking live in :mod:`.aws_operations`.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

from ..artifact import LAMBDA_HANDLER, Artifact
from ..config import (
    DeploymentConfig,
    DeploymentInfo,
    DeploymentStatus,
    Plan,
    PlannedStep,
)
from ..errors import DeploymentFailed
from ..private_files import private_dir
from . import aws_auth
from .aws_client import AwsClient, RetryPolicy, error_code, error_message
from .aws_endpoint import (
    SID_API,
    api_note,
    ensure_api,
    ensure_url,
    find_api,
    observe_api,
    stale_endpoints,
    url_in_sync,
    url_note,
)
from .aws_operations import AwsOperations
from .aws_resources import (
    Created,
    Observed,
    adopt_records,
    create_function,
    delete_resource,
    ensure_role,
    maybe,
    observe_function,
    observe_role,
    point_alias,
    publish,
    update_function,
)
from .aws_settings import (
    ALIAS,
    API_TIMEOUT_LIMIT,
    AwsOptions,
    basic_policy_arn,
    check_limits,
    check_size,
    code_sha256,
    desired_settings,
    function_name,
    role_name,
    tags_for,
)
from .base import DeployContext


class AwsProvider(AwsOperations):
    """Deploy weaves to AWS Lambda.

    Args:
        auth: the AuthenticationManager.
        policy: the retry policy for throttling, 5xx and dropped connections.
    """

    name = "aws"
    extra = "aws"
    options_model = AwsOptions
    description = "AWS Lambda behind a Function URL or an API Gateway HTTP API"

    def __init__(self, auth: Any, policy: RetryPolicy | None = None) -> None:
        super().__init__(auth, policy)
        self._observed: dict[str, tuple[str, Observed]] = {}
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

    # -- plan --------------------------------------------------------------------
    def _config_client(self, config: DeploymentConfig, ctx: DeployContext) -> AwsClient:
        opts = self.options(config)
        region = aws_auth.require_region(aws_auth.region_of(self.auth, config))
        endpoint = aws_auth.endpoint_of(self.auth, config, opts.endpoint_url)
        return self._make_client(config, region, endpoint, ctx)

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
                policy_recorded = ("role-policy", basic_policy_arn(client.region)) in recorded
                role_read = pool.submit(observe_role, client, role_name(config), obs, policy_recorded)
            observe_function(client, fname, obs, need_policy)
            if role_read is not None:
                role_read.result()
        if opts.endpoint == "api":
            obs.api = find_api(client, ctx, fname, config.name)
            if obs.api and obs.live:
                obs.api_ok = observe_api(client, obs.api, alias_arn_of(obs.live["FunctionArn"]), config.public)
        if opts.log_retention_days:
            group = f"/aws/lambda/{fname}"
            found = client.call("logs", "describe_log_groups", logGroupNamePrefix=group).get("logGroups", [])
            match = next((g for g in found if g.get("logGroupName") == group), None)
            obs.log_group = match is not None
            obs.log_retention = match.get("retentionInDays") if match else None
        return obs

    def plan(self, config: DeploymentConfig, artifact: Artifact, ctx: DeployContext) -> Plan:
        """Read the live state and list what a deploy would change (no mutating call)."""
        opts = self.options(config)
        client = self._config_client(config, ctx)
        obs = self._observe(config, ctx, client)
        self._observed[ctx.name] = (artifact.content_hash, obs)
        fname = function_name(config, opts)
        steps: list[PlannedStep] = []
        notes: list[str] = []
        role_arn = opts.role_arn or (obs.role or {}).get("Arn")
        if opts.role_arn:
            steps.append(PlannedStep(key="role", resource=f"execution role {opts.role_arn}", action="no-change", detail="given"))
        else:
            action = "create" if obs.role is None else "update" if basic_policy_arn(client.region) not in obs.role_policies else "no-change"
            steps.append(PlannedStep(key="role", resource=f"IAM role {role_name(config)}", action=action))
        settings = desired_settings(config, opts, LAMBDA_HANDLER, ctx.env)
        if role_arn:
            settings = replace(settings, role_arn=role_arn)
        sha = code_sha256(artifact.data)
        if obs.function is None:
            steps.append(PlannedStep(key="function", resource=f"Lambda function {fname}", action="create", detail=f"{opts.runtime}, {opts.architecture}"))
        else:
            diffs = settings.differences(obs.function)
            if obs.function.get("CodeSha256") != sha:
                diffs.insert(0, "code")
            if any(obs.function_tags.get(k) != v for k, v in tags_for(config.name).items()):
                diffs.append("tags")
            steps.append(PlannedStep(key="function", resource=f"Lambda function {fname}", action="update" if diffs else "no-change", detail=", ".join(diffs)))
        live_same = bool(obs.live) and obs.live.get("CodeSha256") == sha and not settings.differences(obs.live)
        fn_changed = steps[-1].action != "no-change" and steps[-1].detail != "tags"
        publish_needed = not live_same or fn_changed
        steps.append(PlannedStep(key="version", resource="published version", action="create" if publish_needed else "no-change",
                                 detail="" if publish_needed else f"version {obs.live['Version']}"))
        steps.append(PlannedStep(key="alias", resource=f"alias {ALIAS}", action="create" if obs.live is None else "update" if publish_needed else "no-change"))
        steps.extend(self._endpoint_steps(config, opts, ctx, obs))
        if opts.log_retention_days:
            same = obs.log_retention == opts.log_retention_days
            steps.append(PlannedStep(key="logs", resource=f"log group /aws/lambda/{fname}", action="no-change" if same else "update" if obs.log_group else "create",
                                     detail=f"retention {opts.log_retention_days} days"))
        if opts.endpoint == "api" and settings.timeout > API_TIMEOUT_LIMIT:
            notes.append(f"an HTTP API waits at most {API_TIMEOUT_LIMIT}s for Lambda; calls running longer answer 503 (the function's own timeout is {settings.timeout}s)")
        return Plan(provider=self.name, name=config.name, steps=steps, notes=notes)

    def _endpoint_steps(self, config: DeploymentConfig, opts: AwsOptions, ctx: DeployContext, obs: Observed) -> list[PlannedStep]:
        steps = []
        access = "public" if config.public else "private (AWS_IAM)"
        if opts.endpoint == "url":
            action = "create" if obs.url is None else "no-change" if url_in_sync(obs, config.public) else "update"
            steps.append(PlannedStep(key="endpoint", resource=f"Function URL on {ALIAS}", action=action, detail=access))
        elif opts.endpoint == "api":
            sids = {s.get("Sid") for s in obs.policy}
            action = "create" if obs.api is None else "no-change" if obs.api_ok and SID_API in sids else "update"
            steps.append(PlannedStep(key="endpoint", resource=f"HTTP API {function_name(config, opts)}", action=action, detail=access))
        for kind, rid in stale_endpoints(opts.endpoint, ctx, obs):
            steps.append(PlannedStep(key=f"remove-{kind}", resource=f"{kind} {rid}", action="delete", detail=f"endpoint is now {opts.endpoint}"))
        return steps

    # -- deploy --------------------------------------------------------------------
    def deploy(self, config: DeploymentConfig, artifact: Artifact, ctx: DeployContext, plan: Plan) -> DeploymentInfo:
        """Carry out ``plan``; on failure remove what this run created (unless keep_on_failure).

        Raises:
            WeaveError: a step failed (the message names the AWS error, never a secret).
        """
        opts = self.options(config)
        client = self._config_client(config, ctx)
        cached = self._observed.pop(ctx.name, None)
        obs = cached[1] if cached and cached[0] == artifact.content_hash else self._observe(config, ctx, client)
        fname = function_name(config, opts)
        base_details = {
            "function": fname, "handler": LAMBDA_HANDLER, "endpoint_type": opts.endpoint, "public": config.public,
            "endpoint_url": client.session.endpoint_url, "auth_method": client.session.method,
            "role_arn": (config.auth.get("role_arn") if config.auth and config.auth.method == "iam_role" else None),
            "profile": aws_auth.profile_name(self.auth, config), "purge_logs": opts.purge_logs or None,
        }
        if not plan.has_changes:
            ctx.skip_all(plan, "no changes: the live alias already serves this weave with these settings")
            adopt_records(ctx, obs, fname, client.region)
            base_details["zip"] = str(self._keep_zip(ctx, artifact))
            return self._info(config, client, obs, base_details, "no changes")
        created: Created = []
        previous_version = obs.live["Version"] if obs.live else None
        steps = {s.key: s for s in plan.steps}
        try:
            zip_path = self._keep_zip(ctx, artifact)  # recorded (and older ones pruned) only on success
            ctx.save(region=client.region, details=base_details)
            with _step(ctx, steps["role"]):
                role_arn = opts.role_arn or ensure_role(client, ctx, role_name(config), config.name, obs, created)
            settings = replace(desired_settings(config, opts, LAMBDA_HANDLER, ctx.env), role_arn=role_arn)
            sha = code_sha256(artifact.data)
            with _step(ctx, steps["function"]):
                if obs.function is None:
                    obs.function = create_function(client, ctx, fname, config.name, settings, artifact.data, created, opts.role_propagation_seconds)
                else:
                    if not any(r.kind == "function" for r in ctx.resources()):
                        ctx.add_resource("function", fname, arn=obs.function["FunctionArn"], region=client.region)
                    code_changed = obs.function.get("CodeSha256") != sha
                    busy = obs.function.get("State") == "Pending" or obs.function.get("LastUpdateStatus") == "InProgress"
                    conf = update_function(client, ctx, fname, settings, artifact.data, code_changed,
                                           settings.differences(obs.function), busy=busy)
                    obs.function = conf or obs.function
                    missing = {k: v for k, v in tags_for(config.name).items() if obs.function_tags.get(k) != v}
                    if missing:
                        client.call("lambda", "tag_resource", Resource=obs.function["FunctionArn"], Tags=missing)
            version = previous_version
            with _step(ctx, steps["version"], "publish a version"):
                if steps["version"].action != "no-change":
                    version = publish(client, ctx, fname, sha, created)
            alias_arn = alias_arn_of(obs.function["FunctionArn"])
            with _step(ctx, steps["alias"], f"point {ALIAS} at version {version}"):
                if steps["alias"].action != "no-change":
                    point_alias(client, ctx, fname, str(version), obs.live is not None, created)
            endpoint, note = None, None
            if opts.endpoint == "url":
                with _step(ctx, steps["endpoint"]):
                    endpoint = ensure_url(client, ctx, fname, config.public, obs, created)
                    note = None if config.public else url_note(endpoint, client.region)
            elif opts.endpoint == "api":
                with _step(ctx, steps["endpoint"]):
                    endpoint = ensure_api(client, ctx, fname, config.name, alias_arn, config.public, obs, created)
                    note = None if config.public else api_note(endpoint, client.region)
            else:
                note = f"no HTTP endpoint: call it with `weave invoke {config.name} --provider aws` (Lambda Invoke on alias {ALIAS})"
            for kind, rid in stale_endpoints(opts.endpoint, ctx, obs):
                with _step(ctx, PlannedStep(key=f"remove-{kind}", resource=f"remove the old {kind} {rid}", action="delete")):
                    delete_resource(client, kind, rid, {"qualifier": ALIAS}, fname)
                    ctx.remove_resource(kind, rid)
            if opts.log_retention_days:
                with _step(ctx, steps["logs"]):
                    if steps["logs"].action != "no-change":
                        self._log_group(client, ctx, fname, opts.log_retention_days, obs, created)
        except BaseException as exc:
            if opts.keep_on_failure:
                ctx.warn("keeping what this run created (--keep-on-failure); the inventory lists it")
            else:
                self._rollback(client, ctx, fname, created, previous_version)
            if not hasattr(exc, "message") and error_code(exc):
                raise DeploymentFailed(_failed(exc).message, _after(opts.keep_on_failure)) from None
            if isinstance(exc, DeploymentFailed) and not exc.suggestion:
                raise DeploymentFailed(exc.message, _after(opts.keep_on_failure)) from None
            raise
        self._prune_zips(zip_path)
        details = {**base_details, "zip": str(zip_path), "live_version": str(version), "note": note}
        info = DeploymentInfo(name=config.name, provider=self.name, status=DeploymentStatus.ACTIVE, endpoint=endpoint,
                              region=client.region, version=str(version), health="active", details=details,
                              message=f"version {version} is live")
        return info

    def _info(self, config: DeploymentConfig, client: AwsClient, obs: Observed, details: dict, message: str) -> DeploymentInfo:
        rec_endpoint = (obs.url or {}).get("FunctionUrl") or (obs.api or {}).get("ApiEndpoint")
        version = (obs.live or {}).get("Version")
        return DeploymentInfo(name=config.name, provider=self.name, status=DeploymentStatus.ACTIVE, endpoint=rec_endpoint,
                              region=client.region, version=version, health="active", message=message,
                              details={**details, "live_version": version})

    @staticmethod
    def _keep_zip(ctx: DeployContext, artifact: Artifact) -> Path:
        """Write the package under ``$WEAVE_HOME/aws/<name>/`` (for ``weave invoke --local``)."""
        folder = private_dir(ctx.inventory.home / "aws" / ctx.name)
        path = folder / f"{artifact.content_hash[:16]}.zip"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            artifact.write(tmp)
            tmp.replace(path)
        return path

    @staticmethod
    def _prune_zips(keep: Path) -> None:
        """Remove the packages of earlier releases once ``keep`` is live."""
        for old in keep.parent.glob("*.zip"):
            if old != keep:
                old.unlink(missing_ok=True)

    def _log_group(self, client: AwsClient, ctx: DeployContext, fname: str, days: int, obs: Observed, created: Created) -> None:
        group = f"/aws/lambda/{fname}"
        if not obs.log_group:
            try:
                client.call("logs", "create_log_group", logGroupName=group)
                created.append(("log-group", group, {}))
            except Exception as exc:  # noqa: BLE001 - exists already
                if error_code(exc) != "ResourceAlreadyExistsException":
                    raise
            ctx.add_resource("log-group", group)
        client.call("logs", "put_retention_policy", logGroupName=group, retentionInDays=days)

    def _rollback(self, client: AwsClient, ctx: DeployContext, fname: str, created: Created, previous_version: str | None) -> None:
        if not created and previous_version is None:
            return
        ctx.log(f"rolling back: removing {len(created)} resource(s) this run created")
        kinds = {k for k, _, _ in created}
        if previous_version and "alias" not in kinds:
            maybe(lambda: client.call("lambda", "update_alias", FunctionName=fname, Name=ALIAS, FunctionVersion=previous_version))
        for kind, rid, attrs in reversed(created):
            try:
                delete_resource(client, kind, rid, attrs, fname)
            except Exception as exc:  # noqa: BLE001 - keep going, keep it recorded
                ctx.warn(f"could not remove {kind} {rid} ({error_code(exc) or type(exc).__name__}); it stays in the inventory for undeploy")
                continue
            ctx.remove_resource(kind, rid)


@contextlib.contextmanager
def _step(ctx: DeployContext, step: PlannedStep, description: str | None = None) -> Iterator[None]:
    """Report one plan step: ``skipped`` when the plan says no change, else started/finished.

    AWS errors are turned into a DeploymentFailed inside the step, so the
    step's failure line shows AWS's code and message (not botocore's text).
    """
    if step.action == "no-change":
        yield
        ctx.skip(step.key, step.resource)
        return
    with ctx.step(step.key, description or step.resource):
        try:
            yield
        except Exception as exc:
            if error_code(exc) and not hasattr(exc, "message"):
                raise _failed(exc) from None
            raise


def _failed(exc: BaseException) -> DeploymentFailed:
    return DeploymentFailed(f"AWS answered {error_code(exc)}: {error_message(exc)[:300]}")


def _after(kept: bool) -> str:
    after = "what it created was kept (--keep-on-failure)" if kept else "what this run created was removed"
    return f"{after}; fix the cause and deploy again, or undeploy to remove what exists"


def alias_arn_of(function_arn: str) -> str:
    """The ``live`` alias ARN for a function ARN, qualified or not."""
    return ":".join(function_arn.split(":")[:7]) + f":{ALIAS}"
