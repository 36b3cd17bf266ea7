"""The docker provider's releases: each is a kept image tag; rollback runs it again without a build.

A rollback is the deploy's own switch-over (``switch``) with the kept image:
the image runs first as a trial container (no port) until Docker calls it
healthy, so a kept image that no longer starts leaves the serving container
untouched; then it runs in the port holder's network namespace next to the
serving container, both listening on the shared port, until its own server
answers ``/health``; only then is the old container stopped (its server
drains) and removed. The endpoint keeps answering throughout. There is no
canary (``supports_canary`` stays False).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core.errors import ConfigError, NotFound
from ...core.plan import Plan, PlannedStep
from .image import LABEL_MANAGED, LABEL_NAME, LABEL_OWNER, container_name
from .planner import owned_containers
from .switch import HOLDER_SUFFIX, PREVIOUS_SUFFIX, TRIAL_SUFFIX, switch_steps

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
        holder = by_name.get(cname + HOLDER_SUFFIX)
        if current is None and ctx.record is None:
            raise NotFound(f"no docker deployment named {ctx.name!r}", "list them with `weave deployments --provider docker`")
        timeout = float(target.details.get("health_timeout") or 30.0)
        port = (holder.port if holder is not None and holder.port else None) or (current.port if current else None) or run.get("port")
        run.update(name=cname, image=target.version_id, port=port)
        holder_image = run.pop("holder_image", None) or target.version_id
        run["holder_image"] = holder_image
        steps, notes = switch_steps(cname, run, current, aside, trial, holder, timeout=timeout, holder_image=holder_image,
                                    what=f"release {target.number}", why=f"release {target.number}: kept image {target.version_id}, no build")
        return Plan(provider="docker", name=ctx.name, operation="rollback", steps=steps,
                    observed={"image": target.version_id, "containers": [s.summary() for s in found], "target": target.number},
                    notes=[f"release {target.number} runs its kept image {target.version_id} (blue/green); docker has no canary",
                           *notes])

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
