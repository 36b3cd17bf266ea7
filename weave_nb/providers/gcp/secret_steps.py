"""Managed secrets on GCP: Secret Manager secrets ``weave-<deployment>-<NAME>`` given to the function by reference.

For each ``--secret NAME`` the plan holds a step that creates the secret
(labelled with the ownership marks) with its first version, or adds a
version when the value changed; the function's
``serviceConfig.secretEnvironmentVariables`` then names it (version
``latest``), so Cloud Functions gives the value to the function's process as
``NAME`` and the plain ``environmentVariables`` never hold it. Uses the
official ``google-cloud-secret-manager`` client over REST. Values are read
from ``ctx.env`` when a step runs, never kept in a plan or the journal.
Secrets no longer named, and all of this deployment's secrets on undeploy,
are deleted, only when they carry this inventory's marks.

The function's runtime service account needs ``roles/secretmanager.secretAccessor``
on these secrets (grant it once per project; weave-nb does not change IAM on secrets).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core import ownership
from ...core.plan import PlannedStep

if TYPE_CHECKING:
    from ...core.executor import Run
    from ..base import DeployContext

SECRET_ENV = "serviceConfig.secretEnvironmentVariables"


def secret_id(deployment: str, name: str) -> str:
    """The Secret Manager id of secret ``name`` of ``deployment``."""
    return f"weave-{deployment}-{name}"


def secret_client(session: Any) -> Any:
    """The official Secret Manager client (REST transport) for a GCP session (its endpoint, when one is set)."""
    from google.api_core.client_options import ClientOptions
    from google.cloud import secretmanager_v1

    opts = ClientOptions(api_endpoint=session.api_endpoint) if session.api_endpoint else None
    return secretmanager_v1.SecretManagerServiceClient(credentials=session.credentials, transport="rest", client_options=opts)


def _found(sm: Any, name: str) -> Any:
    from google.api_core import exceptions

    try:
        return sm.get_secret(name=name)
    except exceptions.NotFound:
        return None


def _latest(sm: Any, name: str) -> str | None:
    from google.api_core import exceptions

    try:
        return sm.access_secret_version(name=f"{name}/versions/latest").payload.data.decode("utf-8")
    except exceptions.NotFound:
        return None


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def plan_secrets(session: Any, config: Any, ctx: "DeployContext") -> tuple[list[PlannedStep], list[dict[str, str]]]:
    """The secret steps of a deploy and the function's ``secretEnvironmentVariables``.

    Raises:
        ForeignResource: a secret of that id exists without our marks (and not ``--adopt``).
    """
    names = list(config.secrets)
    steps: list[PlannedStep] = []
    refs = [{"key": n, "project_id": session.project, "secret": secret_id(config.name, n), "version": "latest"} for n in names]
    if not names and not any(r.kind == "secret" for r in ctx.resources()):
        return steps, refs
    sm = secret_client(session)
    labels = ownership.marks("label", config.name, ctx.owner)
    for name in names:
        full = f"projects/{session.project}/secrets/{secret_id(config.name, name)}"
        found = _found(sm, full)
        resource = f"secret {secret_id(config.name, name)}"
        if found is None:
            steps.append(PlannedStep(key=f"secret-{name}", resource=resource, action="create", detail=f"the value of {name}",
                                     call="create_secret", undo="delete_secret",
                                     params={"secret": full, "env_name": name, "labels": labels}))
            continue
        adopt = ownership.check("label", resource, dict(found.labels), ctx.owner, bool(config.adopt), config.name)
        same = not adopt and _latest(sm, full) == ctx.env.get(name)  # compared in memory only
        steps.append(PlannedStep(key=f"secret-{name}", resource=resource, action="adopt" if adopt else "no-change" if same else "update",
                                 detail=f"the value of {name}" + ("" if same else ": a new version"),
                                 call=None if same else "add_secret_version", undo=None if same else "put_back_secret_version",
                                 params={} if same else {"secret": full, "env_name": name, "adopted": adopt}))
    for rec in ctx.resources("secret"):
        if rec.attrs.get("env_name") not in names:
            steps.append(PlannedStep(key=f"remove-secret-{rec.attrs.get('env_name')}", resource=f"secret {rec.id.rsplit('/', 1)[-1]}",
                                     action="delete", detail="no longer named by --secret", call="delete_secret",
                                     params={"secret": rec.id}))
    return steps, refs


def destroy_steps(session: Any, ctx: "DeployContext") -> list[PlannedStep]:
    """Delete steps for this deployment's secrets: recorded ones, and any found carrying this inventory's marks."""
    names = {r.id for r in ctx.resources("secret")}
    try:
        sm = secret_client(session)
    except ImportError:
        if names:
            raise
        return []  # nothing recorded and no Secret Manager client installed: this deployment made no secret
    _, kname, kowner = ownership.keys("label")
    listed = sm.list_secrets(request={"parent": f"projects/{session.project}",
                                      "filter": f"labels.{kname}={ownership.label_value(ctx.name)} labels.{kowner}={ctx.owner}"})
    for secret in listed:
        if secret.name.rsplit("/", 1)[-1].startswith(f"weave-{ctx.name}-"):
            names.add(f"projects/{session.project}/secrets/{secret.name.rsplit('/', 1)[-1]}")
    return [PlannedStep(key=f"delete-secret-{n.rsplit('/', 1)[-1]}", resource=f"secret {n.rsplit('/', 1)[-1]}", action="delete",
                        call="delete_secret", params={"secret": n}) for n in sorted(names)]


class GcpSecretSteps:
    """Apply and undo functions of the secret steps (mixed into the gcp provider)."""

    def _gcp(self, run: "Run") -> Any:  # provided by the provider
        raise NotImplementedError

    def _sm(self, run: "Run") -> Any:
        if "secret_client" not in run.scratch:
            run.scratch["secret_client"] = secret_client(self._gcp(run).session)
        return run.scratch["secret_client"]

    def _add_version(self, run: "Run", secret: str, value: str) -> str:
        data = value.encode("utf-8")
        return self._sm(run).add_secret_version(parent=secret, payload={"data": data, "data_crc32c": _crc32c(data)}).name

    def apply_create_secret(self, run: "Run", step: PlannedStep) -> dict[str, Any]:
        """Create the secret (automatic replication, our labels) and its first version from ``ctx.env``."""
        from google.api_core import exceptions

        p = step.params
        project, sid = p["secret"].split("/")[1], p["secret"].rsplit("/", 1)[-1]
        try:
            self._sm(run).create_secret(parent=f"projects/{project}", secret_id=sid,
                                        secret={"replication": {"automatic": {}}, "labels": p["labels"]})
        except exceptions.AlreadyExists:  # a lost answer of an earlier attempt: take it only when it is ours
            found = _found(self._sm(run), p["secret"])
            if found is None or not ownership.judge("label", dict(found.labels), run.ctx.owner).ours:
                raise
        version = self._add_version(run, p["secret"], run.ctx.env[p["env_name"]])
        run.ctx.add_resource("secret", p["secret"], env_name=p["env_name"])
        return {"version": version}

    def undo_delete_secret(self, run: "Run", step: PlannedStep, result: Any) -> None:
        self.apply_delete_secret(run, step)

    def apply_add_secret_version(self, run: "Run", step: PlannedStep) -> dict[str, Any]:
        """Add a version with the new value (the one before is kept in memory for the undo, never journaled)."""
        p = step.params
        run.scratch[f"previous-secret:{p['secret']}"] = _latest(self._sm(run), p["secret"])
        if p.get("adopted"):
            from google.protobuf import field_mask_pb2

            found = _found(self._sm(run), p["secret"])
            labels = {**dict(found.labels), **ownership.marks("label", run.ctx.name, run.ctx.owner)}
            self._sm(run).update_secret(secret={"name": p["secret"], "labels": labels},
                                        update_mask=field_mask_pb2.FieldMask(paths=["labels"]))
        version = self._add_version(run, p["secret"], run.ctx.env[p["env_name"]])
        run.ctx.add_resource("secret", p["secret"], env_name=p["env_name"])
        return {"version": version}

    def undo_put_back_secret_version(self, run: "Run", step: PlannedStep, result: Any) -> None:
        """Make the value that was latest before this run the latest again (as a new version)."""
        before = run.scratch.get(f"previous-secret:{step.params['secret']}")
        if before is not None:
            self._add_version(run, step.params["secret"], before)

    def apply_delete_secret(self, run: "Run", step: PlannedStep) -> dict[str, Any]:
        """Delete the secret (already gone is fine) and forget it."""
        from google.api_core import exceptions

        try:
            self._sm(run).delete_secret(name=step.params["secret"])
        except exceptions.NotFound:
            pass
        run.ctx.remove_resource("secret", step.params["secret"])
        return {}
