"""The docker provider's releases: each is a kept image tag; rollback runs it again without a build.

A rollback is the deploy's own switch with the kept image: the image runs
first as a trial container (no port) until Docker calls it healthy, so a
kept image that no longer starts leaves the serving container untouched;
then the serving container is stopped and set aside, the kept image runs on
the same port, and the old container is removed once the new one is healthy
(a failure puts the old one back). Docker publishes a host port to one
container at a time, so the switch itself has a moment (the time the new
container takes to listen) in which new connections are refused. There is
no canary (``supports_canary`` stays False).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core.errors import ConfigError, NotFound
from ...core.plan import Plan, PlannedStep
from .image import LABEL_MANAGED, LABEL_NAME, LABEL_OWNER, container_name
from .planner import PREVIOUS_SUFFIX, TRIAL_SUFFIX, owned_containers

if TYPE_CHECKING:
    from ...core.releases import Release
    from ..base import DeployContext


class DockerReleases:
    """Mixed into :class:`~weave_nb.providers.docker.provider.DockerProvider`."""

    def plan_rollback(self, ctx: "DeployContext", target: "Release", releases: "list[Release]") -> Plan:
        """Trial-run the kept image, then switch the serving container over to it on the same port.

        Raises:
            ConfigError: the image is gone, the release has no recorded container settings, or an env value is missing.
            ForeignResource: a container of the deployment's name is not this inventory's.
        """
        run = dict(target.details.get("run") or {})
        if not run:
            raise ConfigError(f"release {target.number} was recorded without its container settings",
                              "redeploy that weave instead")
        eng = self.engine()  # type: ignore[attr-defined]
        image = eng.get_image(target.version_id)
        if image is None:
            raise ConfigError(f"the image {target.version_id} of release {target.number} is gone", "redeploy that weave instead")
        missing = [n for n in run.get("env", []) if n not in ctx.env]
        if missing:
            raise ConfigError(f"release {target.number} runs with the environment variable(s) {', '.join(missing)}, "
                              "whose values are never stored",
                              "set them in this process's environment (or pass env= to weave_nb.rollback) and run again")
        found, _ = owned_containers(eng, ctx.name, ctx.owner, False)
        cname = container_name(ctx.name)
        by_name = {s.name: s for s in found}
        current, aside, trial = by_name.get(cname), by_name.get(cname + PREVIOUS_SUFFIX), by_name.get(cname + TRIAL_SUFFIX)
        if current is None and ctx.record is None:
            raise NotFound(f"no docker deployment named {ctx.name!r}", "list them with `weave deployments --provider docker`")
        timeout = float(target.details.get("health_timeout") or 30.0)
        run.update(name=cname, image=target.version_id, port=(current.port if current and current.port else run.get("port")))
        steps: list[PlannedStep] = []
        for stale in (s for s in (trial, aside if current else None) if s is not None):
            steps.append(PlannedStep(key=f"stale{stale.name[len(cname):]}", resource=f"leftover container {stale.name} ({stale.id[:12]})",
                                     action="delete", detail="left by an interrupted deploy", call="remove_container",
                                     params={"id": stale.id, "stop": stale.status == "running"}))
        if current is not None and current.serving:
            steps.append(PlannedStep(key="trial", resource=f"trial container {cname}{TRIAL_SUFFIX} of release {target.number}",
                                     action="create", detail="the kept image must become healthy before the serving container is touched",
                                     call="trial_run", params={**run, "name": cname + TRIAL_SUFFIX, "port": None, "timeout": timeout}))
        old = current or aside
        if current is not None:
            steps.append(PlannedStep(key="retire", resource=f"serving container {cname} ({current.id[:12]})", action="update",
                                     detail=f"stopped and set aside as {cname}{PREVIOUS_SUFFIX}; put back if the kept image fails",
                                     call="set_aside", undo="put_back",
                                     params={"id": current.id, "name": cname, "aside": cname + PREVIOUS_SUFFIX,
                                             "was_running": current.status == "running", "was_serving": current.serving,
                                             "timeout": timeout}))
        steps.append(PlannedStep(key="container", resource=f"container {cname} of release {target.number} on {run['host']}:{run['port']}",
                                 action="replace" if old else "create", detail=f"kept image {target.version_id}, no build",
                                 call="run_container", params=run, undo="remove_started"))
        steps.append(PlannedStep(key="health", resource=f"wait for {cname} to be healthy", action="create",
                                 call="wait_healthy", params={"name": cname, "timeout": timeout}))
        if old is not None:
            steps.append(PlannedStep(key="old", resource=f"old container {cname}{PREVIOUS_SUFFIX} ({old.id[:12]})", action="delete",
                                     detail="once the new one is healthy", call="remove_container", params={"id": old.id, "stop": False}))
        return Plan(provider="docker", name=ctx.name, operation="rollback", steps=steps,
                    observed={"image": target.version_id, "containers": [s.summary() for s in found], "target": target.number},
                    notes=[f"release {target.number} runs its kept image {target.version_id} (blue/green); docker has no canary"])

    def plan_prune(self, ctx: "DeployContext", releases_to_drop: "list[Release]") -> list[PlannedStep]:
        """One step removing the kept images of the dropped releases (never the serving one's)."""
        eng = self.engine()  # type: ignore[attr-defined]
        serving = (ctx.record.details.get("image") if ctx.record else None) or ""
        wanted = {r.version_id for r in releases_to_drop if r.version_id != serving}
        mine = {LABEL_MANAGED: "true", LABEL_NAME: ctx.name, LABEL_OWNER: ctx.owner}
        images = [i for i in eng.list_images(mine) if wanted & set(i.tags or [])]
        if not images:
            return []
        tags = ", ".join(t for i in images for t in i.tags if t in wanted)
        return [PlannedStep(key="prune", resource=f"image(s) of old releases: {tags}", action="delete",
                            detail="beyond the releases kept", call="remove_images", params={"ids": [i.id for i in images]})]


def release_outputs(params: dict[str, Any], health_timeout: float | None = None) -> dict[str, Any]:
    """What a started container reports for the release history (its image) and the record (where it serves)."""
    return {"release_version": params["image"],
            "release_details": {"run": {k: v for k, v in params.items() if k != "name"}, "health_timeout": health_timeout}}
