"""The gcp provider's apply and undo functions: each does exactly what its plan step says.

One function per ``step.call`` (``apply_<call>``) and ``step.undo``
(``undo_<undo>``). They never look at the remote state to decide what to do;
the only read is ``apply_update_function`` keeping the function as it was
(env values included) in ``run.scratch`` for ``undo_restore_function``, never
in the journal. Env values come from ``run.ctx.env`` by the names in the step.

Rollback: a failed create deletes the function it created; a failed update
puts back the previous source, settings, env and labels with a second update
(possible while the earlier source object still exists; if that update fails
too the function stays recorded, ``weave status`` shows it, and a re-run
deploys again); a changed invoker binding is set back.
"""

from __future__ import annotations

import re
from typing import Any

from ...core.config import DeploymentInfo, DeploymentStatus
from ...core.executor import Run
from ...core.plan import PlannedStep
from ...core.errors import DeploymentFailed
from .plan import SOURCE, function_summary

STATES = {
    "ACTIVE": DeploymentStatus.ACTIVE,
    "DEPLOYING": DeploymentStatus.DEPLOYING,
    "FAILED": DeploymentStatus.FAILED,
    "DELETING": DeploymentStatus.DESTROYING,
}
PRIVATE_NOTE = (
    "private function: `weave invoke` sends an identity token for you; with curl: "
    "curl -H \"Authorization: Bearer $(gcloud auth print-identity-token)\" URL"
)
PUBLIC_NOTE = "public function: anyone may call the URL (roles/run.invoker for allUsers)"


def _snake(paths: list[str]) -> list[str]:
    return [re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), p) for p in paths]


class GcpSteps:
    """``apply_*``, ``undo_*`` and ``finish`` of :class:`~weave_nb.providers.gcp.provider.GcpProvider`."""

    def _gcp(self, run: Run) -> Any:
        """This run's client (made once, kept in ``run.scratch``)."""
        if "client" not in run.scratch:
            run.scratch["client"] = self._client(run.config or self._config_from(run.ctx), run.ctx)
        return run.scratch["client"]

    def _wait(self, run: Run, client: Any, operation: str, step: PlannedStep) -> Any:
        p = step.params
        try:
            return client.wait(operation, lambda text: run.ctx.log(text, step.key), p.get("interval", 2.0), p.get("timeout", 900.0))
        except DeploymentFailed as exc:
            raise DeploymentFailed(self._failure(client, p.get("function") or "", exc.message), exc.suggestion) from None

    @staticmethod
    def _failure(client: Any, name: str, message: str) -> str:
        current = client.get(name) if name else None
        notes = [m.message for m in (current.state_messages if current else []) if m.message and m.message not in message]
        return message + "".join(f"\n  {n}" for n in notes)

    def _function(self, run: Run, p: dict[str, Any], storage: dict[str, str] | None) -> Any:
        from google.cloud import functions_v2

        fn = functions_v2.Function(
            name=p["name"],
            description=p["description"],
            build_config=functions_v2.BuildConfig(runtime=p["runtime"], entry_point=p["entry_point"]),
            service_config=functions_v2.ServiceConfig(
                available_memory=p["memory"],
                timeout_seconds=p["timeout"],
                # WEAVE_DEPLOYMENT names the deployment in every request record
                environment_variables={**{k: run.ctx.env[k] for k in p["env_names"]}, "WEAVE_DEPLOYMENT": run.ctx.name},
                max_instance_count=p["max_instances"],
            ),
            labels=p["labels"],
        )
        if p.get("secret_env"):  # managed secrets: references only, Cloud Functions resolves them (.secret_steps)
            fn.service_config.secret_environment_variables = [functions_v2.SecretEnvVar(**ref) for ref in p["secret_env"]]
        if storage is not None:
            fn.build_config.source = functions_v2.Source(
                storage_source=functions_v2.StorageSource(bucket=storage["bucket"], object_=storage["object"]))
        return fn

    def _recorded(self, run: Run, client: Any, name: str, operation: str | None = None) -> None:
        run.ctx.add_resource("function", name, region=name.split("/")[3])
        details: dict[str, Any] = {"function": name, "project": client.session.project}
        if operation:
            details["operation"] = operation
        run.ctx.save(details=details)

    # -- deploy ---------------------------------------------------------------------
    def apply_upload_source(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        """generateUploadUrl, then PUT the zip to the signed URL (no Authorization header)."""
        import requests

        client = self._gcp(run)
        assert run.artifact is not None
        resp = client.call(client.functions.generate_upload_url, request={"parent": step.params["location"]})
        put = requests.put(resp.upload_url, data=run.artifact.data, headers={"content-type": "application/zip"}, timeout=120)
        if put.status_code >= 300:
            raise DeploymentFailed(f"uploading the source failed ({put.status_code}): {put.text[:300]}",
                                   "try again; the upload URL may have expired")
        storage = resp.storage_source
        return {"storage_source": {"bucket": storage.bucket, "object": storage.object_}}

    def apply_create_function(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        p = step.params
        client = self._gcp(run)
        fn = self._function(run, p, run.outputs["storage_source"])
        op = client.call(client.functions.create_function, parent=p["parent"], function=fn, function_id=p["function_id"])
        self._recorded(run, client, p["name"], op.operation.name)
        return {"operation": op.operation.name}

    def undo_delete_created(self, run: Run, step: PlannedStep, result: Any) -> None:
        """Delete the function this run created (after its create operation, should it still run)."""
        client = self._gcp(run)
        name = step.params["name"]
        running = client.running_operation(name.split("/")[3], name)
        if running is not None:
            try:
                client.wait(running.name, lambda text: None, 2.0, 900.0)
            except DeploymentFailed:
                pass  # a failed create still leaves a function to delete
        op = client.call(client.functions.delete_function, name=name)
        client.wait(op.operation.name, lambda text: run.ctx.log(text, step.key), 2.0, 900.0)
        run.ctx.remove_resource("function", name)
        run.ctx.log(f"deleted the function {name} this deploy created")

    def apply_update_function(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        from google.protobuf import field_mask_pb2

        p = step.params
        client = self._gcp(run)
        run.scratch["previous"] = client.get(p["name"])  # for undo_restore_function only; holds env values, never journaled
        storage = run.outputs.get("storage_source") if SOURCE in p["update_mask"] else None
        fn = self._function(run, p, storage)
        op = client.call(client.functions.update_function, function=fn,
                         update_mask=field_mask_pb2.FieldMask(paths=_snake(p["update_mask"])))
        self._recorded(run, client, p["name"], op.operation.name)
        return {"operation": op.operation.name}

    def undo_restore_function(self, run: Run, step: PlannedStep, result: Any) -> None:
        """Update the function back to the source, settings, env and labels it had before this run."""
        from google.cloud import functions_v2
        from google.protobuf import field_mask_pb2

        previous = run.scratch.get("previous")
        if previous is None:
            raise DeploymentFailed("the function's previous settings were not kept", "deploy the previous release again")
        client = self._gcp(run)
        fn = functions_v2.Function(name=previous.name, description=previous.description, labels=dict(previous.labels),
                                   build_config=previous.build_config, service_config=previous.service_config)
        op = client.call(client.functions.update_function, function=fn,
                         update_mask=field_mask_pb2.FieldMask(paths=_snake(step.params["update_mask"])))
        client.wait(op.operation.name, lambda text: run.ctx.log(text, step.key), 2.0, 900.0)
        run.ctx.log(f"restored the previous source and settings of {previous.name}")

    def apply_wait_operation(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        """Wait for the operation named in the step (adopted) or started by the step before."""
        client = self._gcp(run)
        operation = step.params.get("operation") or run.outputs["operation"]
        fn = self._wait(run, client, operation, step)
        if fn is None:  # a delete ended
            name = step.params.get("function")
            if name:
                run.ctx.remove_resource("function", name)
            return {"waited": operation}
        self._recorded(run, client, fn.name)
        return {"waited": operation, "function": function_summary(fn)}

    def apply_read_function(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        client = self._gcp(run)
        fn = client.get(step.params["name"])
        if fn is None:
            raise DeploymentFailed(f"the function {step.params['name']} vanished", "deploy again")
        self._recorded(run, client, fn.name)
        return {"function": function_summary(fn)}

    def apply_adopt_function(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        """Record the foreign function as this deployment's (the user passed --adopt)."""
        run.ctx.add_resource("function", step.params["name"], region=step.params["region"], adopted=True)
        return {"adopted": step.params["name"]}

    def apply_set_invoker(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        self._gcp(run).set_public(step.params["service"], bool(step.params["public"]))
        return {"public": bool(step.params["public"])}

    def undo_set_invoker_back(self, run: Run, step: PlannedStep, result: Any) -> None:
        self._gcp(run).set_public(step.params["service"], not step.params["public"])

    # -- undeploy -------------------------------------------------------------------
    def apply_delete_function(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        from google.api_core import exceptions as gexc

        client = self._gcp(run)
        name = step.params["name"]
        try:
            op = client.call(client.functions.delete_function, name=name)
        except gexc.NotFound:
            run.ctx.log(f"{name} was already gone")
        else:
            self._wait(run, client, op.operation.name, step.model_copy(update={"params": {**step.params, "function": ""}}))
        run.ctx.remove_resource("function", name)
        return {"deleted": name}

    # -- result ---------------------------------------------------------------------
    def finish(self, run: Run) -> DeploymentInfo:
        """The deployment from the function the run left (or, when nothing ran on it, the one the plan observed)."""
        observed = run.plan.observed
        fn = run.outputs.get("function") or observed.get("live")
        if fn is None:
            raise DeploymentFailed(f"no function is left for {run.ctx.name}", "deploy again")
        public = bool(run.outputs.get("public", observed.get("public")))
        client = self._gcp(run)
        info = self.info(run.ctx.name, fn, public, client)
        info.details["operation"] = None  # the operation a create/update recorded has ended
        return info

    def info(self, name: str, fn: dict[str, Any], public: bool | None, client: Any = None, owner: str | None = None) -> DeploymentInfo:
        """A DeploymentInfo from a function summary (see ``function_summary``)."""
        details: dict[str, Any] = {"function": fn["name"], "state": fn["state"]}
        if client is not None:
            details["project"] = client.session.project
            endpoint = client.session.api_endpoint
            if endpoint and not endpoint.startswith("https://"):
                details["api_endpoint"] = endpoint
        if public is not None:
            details["public"] = public
            details["note"] = PUBLIC_NOTE if public else PRIVATE_NOTE
        if owner is not None:
            details["owner"] = owner
        return DeploymentInfo(
            name=name,
            provider=self.name,
            status=STATES.get(fn["state"], DeploymentStatus.PENDING),
            endpoint=fn.get("url"),
            region=fn["name"].split("/")[3],
            version=fn.get("revision"),
            message="; ".join(fn.get("messages") or []) or None,
            details=details,
        )
