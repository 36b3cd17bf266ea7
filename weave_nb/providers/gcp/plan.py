"""The gcp provider's planner: observe the function, decide every step of a deploy or an undeploy.

``plan`` reads the function (its state, labels, settings, the invoker binding
on its Cloud Run service, and any operation still running on it) and returns
the steps, each with the apply function it calls and the exact values it
sends: wait for a running operation (adopted), adopt a foreign function
(only with ``--adopt``), upload the source, create or update the function
(the update mask lists exactly the fields that differ), wait for that
operation, then add or remove the ``allUsers`` invoker binding. Env values
are never in a plan: only their names. Nothing here changes anything.
"""

from __future__ import annotations

from typing import Any

from ...core.artifact import Artifact
from ...core.config import DeploymentConfig, DeploymentStatus
from ...core import ownership
from ...core.plan import Plan, PlannedStep
from ...core.errors import DeploymentFailed, NotFound
from ..base import DeployContext
from .secret_steps import SECRET_ENV, destroy_steps, plan_secrets

ENTRY_POINT = "weave"
MEMORY = {128: "128Mi", 256: "256Mi", 512: "512Mi", 1024: "1Gi", 2048: "2Gi", 4096: "4Gi", 8192: "8Gi", 16384: "16Gi", 32768: "32Gi"}
HASH, SETTINGS = "weave-nb-hash", "weave-nb-settings"
# the update-mask path of each setting a plan may change, in the order the mask lists them
FIELDS = (
    ("buildConfig.runtime", "runtime"),
    ("buildConfig.entryPoint", "entry_point"),
    ("serviceConfig.availableMemory", "memory"),
    ("serviceConfig.timeoutSeconds", "timeout"),
    ("serviceConfig.maxInstanceCount", "max_instances"),
)
SOURCE, ENV, LABELS = "buildConfig.source", "serviceConfig.environmentVariables", "labels"


def function_summary(fn: Any) -> dict[str, Any]:
    """What the record needs from a ``Function`` (no env values)."""
    return {
        "name": fn.name,
        "state": fn.state.name,
        "url": fn.url or fn.service_config.uri or None,
        "revision": fn.service_config.revision or None,
        "service": fn.service_config.service or None,
        "messages": [m.message for m in fn.state_messages if m.message],
    }


def function_settings(fn: Any) -> dict[str, Any]:
    """The settings a plan compares, read from a ``Function`` (env names only)."""
    storage = fn.build_config.source.storage_source
    return {
        "runtime": fn.build_config.runtime,
        "entry_point": fn.build_config.entry_point,
        "memory": fn.service_config.available_memory,
        "timeout": fn.service_config.timeout_seconds,
        "max_instances": fn.service_config.max_instance_count,
        "env_names": sorted(k for k in fn.service_config.environment_variables if k != "WEAVE_DEPLOYMENT"),  # ours, always set
        "secret_env": sorted(v.key for v in fn.service_config.secret_environment_variables),
        "source": {"bucket": storage.bucket, "object": storage.object_, "generation": int(storage.generation or 0)},
    }


class GcpPlanner:
    """``plan`` and ``plan_destroy`` of :class:`~weave_nb.providers.gcp.provider.GcpProvider`."""

    def wanted_labels(self, config: DeploymentConfig, artifact: Artifact, ctx: DeployContext, current: dict[str, str]) -> dict[str, str]:
        """The labels a deploy sets: the ownership marks, the code and settings hashes, and any label not ours kept."""
        kept = {k: v for k, v in current.items() if not k.startswith("weave-nb-")}
        return {
            **kept,
            **ownership.marks("label", config.name, ctx.owner),
            HASH: artifact.content_hash[:40],
            SETTINGS: (ctx.settings_hash or "")[:40],
        }

    def plan(self, config: DeploymentConfig, artifact: Artifact, ctx: DeployContext) -> Plan:
        """Observe the function and list the steps that make it serve ``artifact`` with ``config``.

        Raises:
            ForeignResource: a function with this id exists that this inventory did not make (and no ``--adopt``).
            DeploymentFailed: the function could not be read.
        """
        opts = self.options(config)
        client = self._client(config, ctx)
        region = config.region or self.default_region
        fid = self.function_id(config)
        name = client.function_name(region, fid)
        current = self._read(client, name)
        labels = dict(current.labels) if current is not None else {}
        adopt = False
        if current is not None:
            adopt = ownership.check("label", f"Cloud Function {name}", labels, ctx.owner, bool(config.adopt), config.name)
        state = current.state.name if current is not None else None
        running = self._running(client, region, name, state)
        wanted = self.wanted_labels(config, artifact, ctx, labels)
        # managed secrets (--secret): their steps, and references instead of values in the function (.secret_steps)
        secret_steps, secret_refs = plan_secrets(client.session, config, ctx)
        want = {"runtime": opts.runtime, "entry_point": ENTRY_POINT, "memory": MEMORY[config.memory_mb or 256],
                "timeout": config.timeout_seconds or 60, "max_instances": opts.max_instances,
                "env_names": sorted(k for k in ctx.env if k not in config.secrets),
                "secret_env": sorted(r["key"] for r in secret_refs)}
        service = (current.service_config.service if current is not None else "") or f"{client.location(region)}/services/{fid}"
        public = bool(client.is_public(service)) if current is not None else False
        rec = ctx.record
        observed: dict[str, Any] = {
            "function": name, "project": client.session.project, "region": region, "service": service,
            "state": state, "public": public, "owner": labels.get(ownership.keys("label")[2]),
            "record": rec.status.value if rec is not None else None,
            "live": function_summary(current) if current is not None else None,
            "settings": function_settings(current) if current is not None else None,
            "operation": running.name if running is not None else None,
        }
        wait = {"function": name, "interval": opts.poll_interval, "timeout": opts.operation_timeout}
        steps: list[PlannedStep] = []
        if running is not None:
            verb = client.metadata(running).verb or "change"
            steps.append(PlannedStep(
                key="operation", resource=f"running {verb} operation on {fid}", action="adopt",
                detail="left by an earlier deploy: wait for it before anything else",
                call="wait_operation", params={"operation": running.name, **wait},
            ))
            if verb == "delete":
                current, labels, state = None, {}, None
            elif self._same_release(client, running, wanted):
                state = "ACTIVE"  # it deploys this very release: nothing more to change once it ends
            else:
                state = "FAILED"  # its outcome is not ours to predict: deploy everything again after it
        if adopt:
            steps.append(PlannedStep(
                key="adopt", resource=f"Cloud Function {name}", action="adopt",
                detail="not made by this inventory; taken over on purpose (--adopt): its code, env and labels are replaced",
                call="adopt_function", params={"name": name, "region": region},
            ))
        steps += secret_steps
        same_code = current is not None and state != "FAILED" and not adopt and (
            labels.get(HASH) == wanted[HASH] or (running is not None and state == "ACTIVE"))
        steps.append(PlannedStep(
            key="upload", resource=f"source zip {artifact.content_hash[:12]} ({artifact.size} bytes)",
            action="no-change" if same_code else "create",
            call="upload_source", params={"location": client.location(region), "size": artifact.size},
        ))
        base = {"name": name, **{k: want[k] for k in ("runtime", "entry_point", "memory", "timeout", "max_instances", "env_names")},
                "labels": wanted, "description": f"weave-nb deployment {config.name}",
                **({"secret_env": secret_refs} if secret_refs else {})}
        function_step, waits = self._function_step(config, fid, region, client, current, state, labels, wanted,
                                                   want, same_code, adopt, base, running is not None,
                                                   rec is not None and rec.status == DeploymentStatus.ACTIVE and bool(rec.endpoint))
        steps.append(function_step)
        if waits:
            steps.append(PlannedStep(key="wait", resource=f"the {function_step.action} operation of {fid}",
                                     action=function_step.action, detail="build, then roll out the new revision",
                                     call="wait_operation", params={"operation": None, **wait}))
        steps.append(self._public_step(config, service, public))
        notes = [f"project {client.session.project}, region {region}, runtime {opts.runtime}"]
        if ctx.env:
            notes.append("env values are sent with the create/update call; the plan holds their names only")
        return Plan(provider=self.name, name=config.name, steps=steps, observed=observed, notes=notes)

    def _function_step(self, config: DeploymentConfig, fid: str, region: str, client: Any, current: Any, state: str | None,
                       labels: dict[str, str], wanted: dict[str, str], want: dict[str, Any], same_code: bool,
                       adopt: bool, base: dict[str, Any], adopted_op: bool, record_ok: bool) -> tuple[PlannedStep, bool]:
        resource = f"Cloud Function {fid} in {region}"
        if current is None:
            return PlannedStep(key="function", resource=resource, action="create", detail="new function",
                               call="create_function", undo="delete_created",
                               params={**base, "parent": client.location(region), "function_id": fid}), True
        have = function_settings(current) if not adopted_op else None
        full = state == "FAILED" or adopt or have is None
        mask = [] if same_code else [SOURCE]
        mask += [path for path, key in FIELDS if full or have[key] != want[key]]
        if full or have["env_names"] != want["env_names"] or labels.get(SETTINGS) != wanted[SETTINGS]:
            mask.append(ENV)
        if (want["secret_env"] or (have or {}).get("secret_env")) and (
                ENV in mask or have is None or have.get("secret_env") != want["secret_env"]):
            mask.append(SECRET_ENV)  # a new revision reads each secret's latest version
        if full or labels != wanted:
            mask.append(LABELS)
        if adopted_op and state == "ACTIVE":
            mask = []  # the adopted operation deploys exactly this release
        if mask:
            why = "the function is in state FAILED" if state == "FAILED" and not adopted_op else (
                "adopted" if adopt else "code changed" if SOURCE in mask else "settings changed")
            return PlannedStep(key="function", resource=resource, action="update", detail=why, call="update_function",
                               undo="restore_function", params={**base, "update_mask": mask}), True
        if adopted_op or record_ok:
            return PlannedStep(key="function", resource=resource, action="no-change",
                               detail="the running operation deploys this release" if adopted_op else "same code and settings"), False
        # never "no changes" over a failed or unfinished record: read the live function back to finish it
        return PlannedStep(key="function", resource=resource, action="update", call="read_function",
                           detail="the function already runs this release; the record is not active: record it",
                           params={"name": current.name}), False

    def _public_step(self, config: DeploymentConfig, service: str, public: bool) -> PlannedStep:
        what = "roles/run.invoker for allUsers"
        if config.public and not public:
            return PlannedStep(key="public", resource=what, action="create", detail="--public: anyone may call the URL",
                               call="set_invoker", undo="set_invoker_back", params={"service": service, "public": True})
        if public and not config.public:
            return PlannedStep(key="public", resource=what, action="delete",
                               detail="deployed without --public: only callers with an identity token",
                               call="set_invoker", undo="set_invoker_back", params={"service": service, "public": False})
        return PlannedStep(key="public", resource=what, action="no-change",
                           detail="already public" if public else "private: callers need an identity token")

    @staticmethod
    def _same_release(client: Any, op: Any, wanted: dict[str, str]) -> bool:
        from google.cloud import functions_v2

        meta = client.metadata(op)
        if not meta.request_resource.value:
            return False
        labels = dict(functions_v2.Function.deserialize(meta.request_resource.value).labels)
        return labels.get(HASH) == wanted[HASH] and labels.get(SETTINGS) == wanted[SETTINGS]

    @staticmethod
    def _read(client: Any, name: str) -> Any:
        try:
            return client.get(name)
        except Exception as exc:  # noqa: BLE001 - turned into a WeaveError
            from .client import api_error

            raise api_error(exc, "reading the function") from None

    @staticmethod
    def _running(client: Any, region: str, name: str, state: str | None) -> Any:
        """The operation running on the function (only looked for when its state says one runs)."""
        if state not in ("DEPLOYING", "DELETING"):
            return None
        op = client.running_operation(region, name)
        if op is None:
            raise DeploymentFailed(f"the function {name} is {state} but no running operation was found for it",
                                   "wait a minute and run the command again")
        return op

    # -- undeploy ---------------------------------------------------------------
    def plan_destroy(self, ctx: DeployContext, **options: Any) -> Plan:
        """One delete step per function recorded (or found by the deployment name), after any running operation.

        Raises:
            NotFound: no such function exists.
            ForeignResource: a function to delete was not made by this inventory (and no ``adopt``).
        """
        config = self._config_from(ctx)
        client = self._client(config, ctx)
        opts = self.options(config)
        rec = ctx.record
        names = [r.id for r in ctx.resources("function")]
        if not names:
            names = [(rec.details.get("function") if rec else None) or client.function_name(config.region or self.default_region, ctx.name)]
        found = []
        for name in dict.fromkeys(names):
            fn = self._read(client, name)
            if fn is None:
                continue
            adopt = ownership.check("label", f"Cloud Function {name}", dict(fn.labels), ctx.owner,
                                    bool(options.get("adopt")), ctx.name)
            found.append((name, fn, adopt))
        alarms = self.alarm_delete_steps(ctx) if hasattr(self, "alarm_delete_steps") else []  # alert policies first
        # this deployment's secrets, ours only (.secret_steps); looked for by marks only when the record is lost
        secret_steps = destroy_steps(client.session, ctx) if ctx.resources("secret") or rec is None else []
        if not found and not alarms and not secret_steps:
            raise NotFound(f"no gcp function for {ctx.name!r} exists", "list them with `weave deployments`")
        steps: list[PlannedStep] = list(alarms)
        for name, fn, adopt in found:
            short, region = name.rsplit("/", 1)[-1], name.split("/")[3]
            if adopt:
                steps.append(PlannedStep(key=f"adopt-{short}", resource=f"Cloud Function {name}", action="adopt",
                                         detail="not made by this inventory; removed on purpose (--adopt)",
                                         call="adopt_function", params={"name": name, "region": region}))
            wait = {"function": name, "interval": opts.poll_interval, "timeout": opts.operation_timeout}
            running = self._running(client, region, name, fn.state.name)
            verb = client.metadata(running).verb if running is not None else None
            if running is not None:
                steps.append(PlannedStep(key=f"operation-{short}", resource=f"running {verb} operation on {short}",
                                         action="adopt", detail="wait for it before deleting",
                                         call="wait_operation", params={"operation": running.name, **wait}))
            if verb != "delete":
                steps.append(PlannedStep(key=f"delete-{short}", resource=f"Cloud Function {name}", action="delete",
                                         call="delete_function", params={"name": name, **wait}))
        steps += secret_steps
        observed = {"functions": [n for n, _, _ in found], "states": {n: f.state.name for n, f, _ in found},
                    "record": rec.status.value if rec else None}
        if rec is not None and rec.status not in (DeploymentStatus.ACTIVE,):
            observed["note"] = "the record was not active"
        return Plan(provider=self.name, name=ctx.name, operation="undeploy", steps=steps, observed=observed)
