"""The local provider's releases: each is a kept artifact folder; rollback restarts one beside the serving process.

A rollback starts the target release's folder on the same port (both
processes bound with SO_REUSEPORT), waits until the new process itself
answers ``/health``, and only then stops the old one: the endpoint answers
throughout, and a target that does not start leaves the old one serving (the
executor stops what it started). Local deployments serve one release at a
time, so there is no canary (``supports_canary`` stays False).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ...core.artifact import SPEC_FILE
from ...core.errors import ConfigError, NotFound
from ...core.plan import Plan, PlannedStep

if TYPE_CHECKING:
    from ...core.releases import Release
    from ..base import DeployContext


class LocalReleases:
    """Mixed into :class:`~weave_nb.providers.local.provider.LocalProvider`."""

    name = "local"

    def plan_rollback(self, ctx: "DeployContext", target: "Release", releases: "list[Release]") -> Plan:
        """Start ``target``'s kept folder beside the serving process, wait for its health, then stop the old one.

        Raises:
            NotFound: the deployment is not recorded.
            ConfigError: the folder is gone, or an env value the release needs is not in the environment.
        """
        rec = ctx.record
        if rec is None:
            raise NotFound(f"no local deployment named {ctx.name!r}", "list them with `weave deployments`")
        folder = Path(target.version_id)
        if not folder.joinpath(SPEC_FILE).is_file():
            raise ConfigError(f"the artifact folder of release {target.number} is gone ({folder.name})",
                              "redeploy that weave instead")
        missing = [n for n in target.details.get("env_names", []) if n not in ctx.env]
        if missing:
            raise ConfigError(f"release {target.number} runs with the environment variable(s) {', '.join(missing)}, "
                              "whose values are never stored",
                              "set them in this process's environment (or pass env= to weave_nb.rollback) and run again")
        old_pid = rec.details.get("pid") if self._alive(rec) else None  # type: ignore[attr-defined]
        port, host = rec.details.get("port"), rec.details.get("host") or "127.0.0.1"
        shares = bool(old_pid) and bool(rec.details.get("reuse_port"))
        start = {"python": target.details.get("python") or rec.details.get("python") or sys.executable,
                 "folder": str(folder), "host": host, "port": port, "reuse_port": True,
                 "log": str(folder.parent / "server.log"), "startup_timeout": target.details.get("startup_timeout") or 15.0}
        steps: list[PlannedStep] = []
        if old_pid and not shares:
            steps.append(PlannedStep(key="retire", resource=f"serving process {old_pid}", action="delete",
                                     detail="stopped first: it holds the port alone", call="stop_process",
                                     params={"pid": old_pid}, undo="restart_previous"))
        steps.append(PlannedStep(key="process", resource=f"server process of release {target.number} on {host}:{port}",
                                 action="replace" if old_pid else "create", detail=f"kept folder {folder.name}, no rebuild",
                                 call="start_process", params=start, undo="stop_started"))
        steps.append(PlannedStep(key="health", resource="GET /health of the new process", action="create",
                                 call="wait_healthy", params={"timeout": start["startup_timeout"]}))
        if old_pid and shares:
            steps.append(PlannedStep(key="retire", resource=f"serving process {old_pid}", action="delete",
                                     detail="once the new one is healthy", call="stop_process", params={"pid": old_pid}))
        return Plan(provider=self.name, name=ctx.name, operation="rollback", steps=steps,
                    observed={"pid": old_pid, "port": port, "target": target.number},
                    notes=[f"release {target.number} takes over from the serving process (blue/green); "
                           "local deployments have no canary"])

    def plan_prune(self, ctx: "DeployContext", releases_to_drop: "list[Release]") -> list[PlannedStep]:
        """One step removing the artifact folders of the dropped releases (never the serving one)."""
        serving = (ctx.record.details.get("folder") if ctx.record else None) or ""
        folders = sorted({r.version_id for r in releases_to_drop if r.version_id != serving and Path(r.version_id).is_dir()})
        if not folders:
            return []
        labels = ", ".join(r.label for r in releases_to_drop)
        return [PlannedStep(key="prune", resource=f"artifact folder(s) of old releases {labels}", action="delete",
                            detail="beyond the releases kept", call="remove_folders", params={"folders": folders})]
