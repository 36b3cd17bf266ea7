"""Status, the undeploy plan, listing, invoking and logs of AWS deployments (the deploy plan is in aws_provider).

Listing uses two bulk calls per region: ``ListFunctions`` (following
``NextMarker``) and the Resource Groups Tagging API's ``GetResources``
filtered on ``weave-nb:managed=true`` (following ``PaginationToken``). Where
the tagging API is not allowed or not available, it falls back to
``ListTags`` for the functions named like weave-nb's (``weave-*``) only.
"""

from __future__ import annotations

import json
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ...core.artifact import LAMBDA_HANDLER, SPEC_FILE
from ...core.config import DeploymentConfig, DeploymentInfo, DeploymentStatus
from ...core import ownership
from ...core.plan import Plan, PlannedStep
from ...core.errors import NotFound, WeaveError
from . import auth as aws_auth
from .client import AwsClient, RetryPolicy, Session, error_code
from .endpoint import api_gateway_event, find_api, signed_headers
from .endpoint_plan import adopt_step, api_arn
from .local import decode_answer, invoke_zip
from .settings import ALIAS, FUNCTION_PREFIX, ROLE_PREFIX, TAG_MANAGED, TAG_NAME, TAG_OWNER, tags_for
from ...core.log_lines import LogEntry, select
from .secret_store import destroy_todo
from ..base import DeployContext, DeploymentProvider

DELETE_ORDER = ("alarm", "sns-subscription", "sns-topic", "permission", "function-url", "api", "alias", "version", "function",
                "role-policy", "role-log-policy", "role-secrets-policy", "role", "secret", "log-group")


def lambda_status(conf: dict) -> tuple[DeploymentStatus, str]:
    """Map Lambda's ``State`` / ``LastUpdateStatus`` to a DeploymentStatus and a health word."""
    state, update = conf.get("State"), conf.get("LastUpdateStatus")
    if state == "Failed" or update == "Failed":
        return DeploymentStatus.FAILED, (conf.get("StateReason") or conf.get("LastUpdateStatusReason") or "failed")[:200]
    if state == "Pending" or update == "InProgress":
        return DeploymentStatus.DEPLOYING, "updating"
    if state == "Inactive":
        return DeploymentStatus.ACTIVE, "inactive (wakes on the next call)"
    return DeploymentStatus.ACTIVE, "active"


class AwsOperations(DeploymentProvider):
    """The read and remove side of the AWS provider (see :class:`~.aws_provider.AwsProvider`)."""

    def __init__(self, auth: Any, policy: RetryPolicy | None = None) -> None:
        super().__init__(auth)
        self.policy = policy
        self._sessions: dict[str, Session] = {}  # one boto3 session (and its clients) per identity, region and endpoint

    # -- clients ---------------------------------------------------------------
    def _make_client(self, config: DeploymentConfig, region: str, endpoint: str | None, ctx: DeployContext | None) -> AwsClient:
        sleep = ctx.sleep if ctx else __import__("time").sleep
        log = (lambda text: ctx.log(text)) if ctx else None

        def factory(session: Session) -> AwsClient:
            return AwsClient(session, sleep=sleep, policy=self.policy, log=log)

        key = aws_auth.session_key(self.auth, config, region, endpoint)
        session = self._sessions.get(key) if key else None
        if session is None:
            session = aws_auth.open_session(self.auth, config, region, endpoint, client_factory=factory)
            if key:
                self._sessions[key] = session
        return factory(session)

    def _record_config(self, name: str, record: DeploymentInfo | None) -> DeploymentConfig:
        details = record.details if record else {}
        auth: dict[str, Any] | None = None
        if details.get("auth_method") == "iam_role" and details.get("role_arn"):
            auth = {"method": "iam_role", "role_arn": details["role_arn"]}
        elif details.get("profile"):
            auth = {"method": "config_file", "profile": details["profile"]}
        opts = {"endpoint_url": details["endpoint_url"]} if details.get("endpoint_url") else {}
        if details.get("function"):
            opts["function_name"] = details["function"]
        return DeploymentConfig(name=name, provider="aws", region=record.region if record else None, options=opts, auth=auth)

    def _client_for(self, ctx: DeployContext) -> tuple[AwsClient, DeploymentConfig]:
        config = self._record_config(ctx.name, ctx.record)
        aws_auth.check(self.auth, config, allow_instance_role=False)
        region = aws_auth.require_region(aws_auth.region_of(self.auth, config))
        endpoint = aws_auth.endpoint_of(self.auth, config, config.options.get("endpoint_url"))
        return self._make_client(config, region, endpoint, ctx), config

    @staticmethod
    def _fname(ctx: DeployContext) -> str:
        rec = ctx.record
        return (rec.details.get("function") if rec else None) or f"{FUNCTION_PREFIX}{ctx.name}"

    # -- status ----------------------------------------------------------------
    def status(self, ctx: DeployContext) -> DeploymentInfo:
        """The function's live state, endpoint and live version.

        Raises:
            NotFound: neither recorded nor found in AWS.
        """
        client, _ = self._client_for(ctx)
        fname = self._fname(ctx)
        found = client.api.lam.find_function(fname)
        rec = ctx.record
        if found is None:
            if rec is None:
                raise NotFound(f"no AWS deployment named {ctx.name!r}", "list them with `weave deployments --provider aws`")
            return rec.model_copy(update={"status": DeploymentStatus.FAILED, "health": "function missing", "drift": "missing"})
        status, health = lambda_status(found["Configuration"])
        live = client.api.lam.find_alias(fname, ALIAS)
        base = rec or DeploymentInfo(name=ctx.name, provider="aws", region=client.region, drift="unrecorded")
        update: dict[str, Any] = {"status": status, "health": health, "region": client.region}
        if live:
            update["version"] = live["FunctionVersion"]
        if not base.endpoint:
            url = client.api.lam.find_url(fname, ALIAS)
            update["endpoint"] = url["FunctionUrl"] if url else None
        return base.model_copy(update=update)

    # -- undeploy plan -----------------------------------------------------------
    def plan_destroy(self, ctx: DeployContext, purge_logs: bool = False, adopt: bool = False, **options: Any) -> Plan:
        """One delete step per resource the deployment made: recorded, or found by name (after an interrupted deploy).

        Args:
            ctx: the deployment's context.
            purge_logs: also delete the log group ``/aws/lambda/<function>``.
            adopt: take over (tag, then delete) a function, role or API of this name that this inventory did not make.

        Raises:
            NotFound: nothing recorded and nothing found.
            ForeignResource: the function, role or API of this name is not this inventory's (and not ``adopt``).
        """
        client, _ = self._client_for(ctx)
        fname = self._fname(ctx)
        tags = tags_for(ctx.name, ctx.owner)
        todo: dict[tuple[str, str], dict] = {(r.kind, r.id): dict(r.attrs) for r in ctx.resources()}
        steps: list[PlannedStep] = []

        def judge(kind: str, rid: str, what: str, found: dict[str, str], arn: str, endpoint: str | None = None) -> None:
            if ownership.check("tag", what, found, ctx.owner, adopt, ctx.name):
                steps.append(adopt_step(kind, rid, arn, tags, endpoint))
            todo.setdefault((kind, rid), {})

        fn = client.api.lam.find_function(fname)
        if fn:
            judge("function", fname, f"Lambda function {fname}", fn.get("Tags") or {}, fn["Configuration"]["FunctionArn"])
        role = f"{ROLE_PREFIX}{ctx.name}"
        found_role = client.api.iam.find_role(role)
        if found_role:
            role_tags = {t["Key"]: t["Value"] for t in found_role.get("Tags") or []}
            judge("role", role, f"IAM role {role}", role_tags, found_role["Arn"])
        if ctx.record is None or ctx.record.details.get("endpoint_type") == "api" or any(k == "api" for k, _ in todo):
            api = find_api(client, ctx, fname, ctx.name)
            if api:
                judge("api", api["ApiId"], f"HTTP API {api['ApiId']} ({fname})", api.get("Tags") or {},
                      api_arn(client.region, api["ApiId"]), api.get("ApiEndpoint"))
        destroy_todo(client, ctx, todo)  # the secrets of this deployment that carry our marks (.secret_store)
        if purge_logs or (ctx.record and ctx.record.details.get("purge_logs")):
            todo.setdefault(("log-group", f"/aws/lambda/{fname}"), {})
        if not todo and ctx.record is None:
            raise NotFound(f"no AWS deployment named {ctx.name!r}", "list them with `weave deployments --provider aws`")
        for kind, rid in sorted(todo, key=lambda kr: DELETE_ORDER.index(kr[0]) if kr[0] in DELETE_ORDER else 99):
            attrs = todo[(kind, rid)]
            params = {"kind": kind, "id": rid, "function_name": fname, "qualifier": attrs.get("qualifier", ALIAS)}
            if kind in ("role-policy", "role-log-policy", "role-secrets-policy"):
                params["role"] = attrs.get("role") or role
            steps.append(PlannedStep(key=f"delete-{kind}-{rid}", resource=f"{kind} {rid}", action="delete", call="delete",
                                     params=params))
        folder = ctx.inventory.home / "aws" / ctx.name
        if folder.exists():
            steps.append(PlannedStep(key="files", resource=f"local packages under {folder}", action="delete", call="remove_files",
                                     params={"folder": str(folder)}))
        return Plan(provider="aws", name=ctx.name, operation="undeploy", steps=steps, observed={"function": fname, "region": client.region})

    # -- listing ---------------------------------------------------------------
    def list_deployments(self, records: Any = None) -> list[DeploymentInfo]:
        """Every weave-nb function in the regions in use (the default one and the recorded ones).

        Raises:
            CredentialsError: AWS is not configured (the caller skips it with a note).
        """
        records = [r for r in (records or []) if isinstance(r, DeploymentInfo)]
        base = DeploymentConfig(name="listing", provider="aws")
        aws_auth.check(self.auth, base)
        groups: dict[tuple[str, str | None], DeploymentConfig] = {}
        default_region = aws_auth.region_of(self.auth, base)
        if default_region:
            groups[(default_region, aws_auth.endpoint_of(self.auth, base, None))] = base
        for rec in records:
            config = self._record_config(rec.name, rec)
            region = aws_auth.region_of(self.auth, config)
            if region:
                groups.setdefault((region, aws_auth.endpoint_of(self.auth, config, config.options.get("endpoint_url"))), config)
        if not groups:
            aws_auth.require_region(None)
        out: list[DeploymentInfo] = []
        for (region, endpoint), config in groups.items():
            out.extend(self._list_region(self._make_client(config, region, endpoint, None), records))
        return out

    def _list_region(self, client: AwsClient, records: list[DeploymentInfo]) -> list[DeploymentInfo]:
        with ThreadPoolExecutor(max_workers=1) as pool:  # the two bulk listings run side by side
            tag_read = pool.submit(self._tag_mappings, client)
            functions = client.api.lam.list_functions()
            mappings = tag_read.result()
        tagged = mappings if mappings is not None else self._fallback_tags(client, functions, {r.details.get("function") for r in records})
        out = []
        for conf in functions:
            tags = tagged.get(conf["FunctionArn"]) or tagged.get(conf["FunctionName"])
            if not tags or tags.get(TAG_MANAGED) != "true" or not tags.get(TAG_NAME):
                continue
            status, health = lambda_status(conf)
            out.append(DeploymentInfo(name=tags[TAG_NAME], provider="aws", status=status, health=health, region=client.region,
                                      details={"function": conf["FunctionName"], "owner": tags.get(TAG_OWNER)}))
        return out

    @staticmethod
    def _tag_mappings(client: AwsClient) -> dict[str, dict[str, str]] | None:
        """Tags of every weave-nb function from the tagging API, or ``None`` where it is not available."""
        try:
            mappings = client.api.tagging.resources(TAG_MANAGED, "true", "lambda:function")
        except Exception as exc:  # noqa: BLE001 - denied or not offered: the caller falls back
            if not error_code(exc):
                raise
            return None
        return {m["ResourceARN"]: {t["Key"]: t["Value"] for t in m.get("Tags", [])} for m in mappings}

    @staticmethod
    def _fallback_tags(client: AwsClient, functions: list[dict], recorded: set[Any]) -> dict[str, dict[str, str]]:
        """ListTags, but only for functions named like weave-nb's (``weave-*``) or recorded ones."""
        out = {}
        for conf in functions:
            if conf["FunctionName"].startswith(FUNCTION_PREFIX) or conf["FunctionName"] in recorded:
                tags = client.api.lam.find_tags(conf["FunctionArn"])
                if tags is not None:
                    out[conf["FunctionArn"]] = tags
        return out

    # -- invoke & logs ---------------------------------------------------------
    def invoke(self, ctx: DeployContext, payload: dict[str, Any], local: bool = False, timeout: float = 60) -> Any:
        """Call the weave: locally from its exact zip, over its (signed) endpoint, or with Lambda Invoke.

        Raises:
            WeaveError: no zip / endpoint, or the call failed.
        """
        rec = ctx.record
        details = rec.details if rec else {}
        if local:
            zip_path = self._zip_path(ctx)
            return invoke_zip(zip_path, details.get("handler") or LAMBDA_HANDLER, payload, env=_spec_env(zip_path), timeout=timeout)
        from ...core.http_call import post_json

        assert rec is not None
        kind = details.get("endpoint_type", "url")
        client, _ = self._client_for(ctx)
        if kind in ("url", "api") and rec.endpoint:
            if details.get("public"):
                return post_json(rec.endpoint, payload, timeout=timeout)
            body = json.dumps(payload).encode()
            service = "lambda" if kind == "url" else "execute-api"
            headers = signed_headers(client.session.boto, rec.endpoint, body, service, client.region)
            return post_json(rec.endpoint, payload, headers=headers, timeout=timeout)
        event = api_gateway_event(payload)
        answer = client.api.lam.invoke(self._fname(ctx), ALIAS, json.dumps(event).encode())
        raw = answer["Payload"].read()
        if answer.get("FunctionError"):
            raise WeaveError(f"the function failed: {raw[:500].decode(errors='replace')}", "see `weave logs NAME --provider aws`")
        return decode_answer(json.loads(raw or b"{}"))

    @staticmethod
    def _zip_path(ctx: DeployContext) -> Path:
        rec = ctx.record
        if rec and rec.details.get("zip") and Path(rec.details["zip"]).is_file():
            return Path(rec.details["zip"])
        folder = ctx.inventory.home / "aws" / ctx.name
        found = sorted(folder.glob("*.zip"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
        if not found:
            raise NotFound(f"no built package for {ctx.name!r} on aws", f"deploy it first: weave deploy --provider aws --name {ctx.name}")
        return found[-1]

    def read_logs(self, ctx: DeployContext, since: Any = None, filter: str | None = None, tail: int | None = None,
                  max_pages: int = 20) -> list[LogEntry]:
        """The function's CloudWatch log group (``/aws/lambda/FUNCTION``), oldest first.

        Pages through ``FilterLogEvents`` from ``since`` (default: the last 24
        hours), at most ``max_pages`` pages; a group Lambda has not made yet
        (no call so far) is an empty log.
        """
        import time
        from datetime import datetime, timezone

        client, _ = self._client_for(ctx)
        group = f"/aws/lambda/{self._fname(ctx)}"
        start = since.timestamp() if since is not None else time.time() - 24 * 3600
        params: dict[str, Any] = {"startTime": int(start * 1000)}
        entries: list[LogEntry] = []
        for _ in range(max_pages):
            try:
                page = client.api.logs.events(group, **params)
            except Exception as exc:  # noqa: BLE001
                if error_code(exc) == "ResourceNotFoundException":
                    return []
                raise
            for event in page.get("events", []):
                when = datetime.fromtimestamp(int(event.get("timestamp") or 0) / 1000, timezone.utc)
                entries.append(LogEntry(when, str(event.get("message", "")).rstrip("\n"),
                                        str(event.get("logStreamName", "")), str(event.get("eventId", ""))))
            if not page.get("nextToken"):
                break
            params["nextToken"] = page["nextToken"]
        entries.sort(key=lambda e: e.time)  # type: ignore[arg-type, return-value]
        return select(entries, since, filter, tail)


def _spec_env(zip_path: Path) -> dict[str, str]:
    """The weave's declared variables, taken from this process's environment (never stored)."""
    import os

    with zipfile.ZipFile(zip_path) as zf:
        spec = json.loads(zf.read(SPEC_FILE))
    keys = spec.get("env_keys") or []
    return {k: os.environ[k] for k in keys if k in os.environ}
