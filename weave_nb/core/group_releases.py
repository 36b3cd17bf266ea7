"""Releases of a deployment group: history, rollback and promote on every region, or on one.

Each region of a group (see :mod:`weave_nb.core.regions`) is a deployment of
its own, the *member* ``<group>-<region>``, and its releases are recorded by
the same code as a single deploy's (:func:`weave_nb.core.rollout.record_deploy`,
with the ``region`` column set). So here a command on a group is only a choice
of members:

- with ``region`` (or on a plain deployment): the one member, by
  :func:`weave_nb.core.regions.resolve`, then the single-deployment operation;
- without it, on a group: every member in turn, each with its own plan, lock
  and journal (:func:`weave_nb.core.rollout.rollback` / ``promote``); a failure
  in one region leaves the others done, and the result is reported per region
  like a group deploy's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from . import rollout
from .config import DeploymentInfo, DeploymentStatus, check_name
from .errors import DeploymentFailed, WeaveError
from .events import Done, PlanReady, Reporter, Sink, null_sink
from .plan import Plan
from .region_plan import combine, region_sink
from .regions import group_of, resolve
from .releases import Release

if TYPE_CHECKING:
    from .manager import DeploymentManager


def _regions(found: list[DeploymentInfo]) -> dict[str, DeploymentInfo]:
    return {d.details.get("group_region") or d.region or d.name: d for d in found}


def _every_region(mgr: "DeploymentManager", name: str, provider: str | None,
                  region: str | None) -> tuple[str, dict[str, DeploymentInfo]] | None:
    """``(provider, {region: member})`` when a command on ``name`` acts on every region of a group, else ``None``."""
    if region is not None:
        return None
    found = group_of(mgr, name, provider)
    if found is None or len(found[1]) < 2:
        return None
    return found[0], _regions(found[1])


def releases(mgr: "DeploymentManager", name: str, provider: str | None = None, region: str | None = None) -> list[Release]:
    """A deployment's releases, newest first; a group's without ``region``: every region's, region by region.

    Raises:
        NotFound: nothing by that name is recorded (or not in that region).
    """
    check_name(name)
    every = _every_region(mgr, name, provider, region)
    if every is not None:
        pname, members = every
        out: list[Release] = []
        for d in members.values():
            out += rollout.releases(mgr, d.name, pname)
        return out
    pname, member = resolve(mgr, name, provider, region)
    return rollout.releases(mgr, member, pname)


def rollback(mgr: "DeploymentManager", name: str, provider: str | None = None, to: int | None = None, dry_run: bool = False,
             sink: Sink = null_sink, env: Mapping[str, str] | None = None, region: str | None = None) -> DeploymentInfo | Plan:
    """Roll back one deployment, one region of a group (``region``), or every region of a group, one plan each."""
    check_name(name)

    def one(member: str, pname: str, dry: bool, to_sink: Sink) -> Any:
        return rollout.rollback(mgr, member, pname, to, dry, to_sink, env)

    return _run(mgr, name, provider, region, "rollback", one, dry_run, sink)


def promote(mgr: "DeploymentManager", name: str, provider: str | None = None, dry_run: bool = False,
            sink: Sink = null_sink, region: str | None = None) -> DeploymentInfo | Plan:
    """Promote the canary of one deployment, one region of a group (``region``), or every region of a group."""
    check_name(name)

    def one(member: str, pname: str, dry: bool, to_sink: Sink) -> Any:
        return rollout.promote(mgr, member, pname, dry, to_sink)

    return _run(mgr, name, provider, region, "promote", one, dry_run, sink)


def _run(mgr: "DeploymentManager", name: str, provider: str | None, region: str | None, operation: str,
         one: Callable[[str, str, bool, Sink], Any], dry_run: bool, sink: Sink) -> DeploymentInfo | Plan:
    every = _every_region(mgr, name, provider, region)
    if every is None:
        pname, member = resolve(mgr, name, provider, region)
        return one(member, pname, dry_run, sink)
    pname, members = every
    if dry_run:  # one plan: each region's steps, keyed by region (a region that cannot plan stops it, nothing changed)
        plans = {r: one(d.name, pname, True, null_sink) for r, d in members.items()}
        plan = combine(name, pname, plans, operation=operation)
        Reporter(sink).emit(PlanReady(plan))
        return plan
    outcomes: dict[str, dict[str, Any]] = {}
    with mgr._changing(pname, name):
        for r, d in members.items():
            try:
                info = one(d.name, pname, False, region_sink(sink, r))
                outcomes[r] = {"ok": True, "status": "done", "message": info.message or "", "member": d.name}
            except WeaveError as exc:
                outcomes[r] = {"ok": False, "status": "failed", "message": exc.message, "member": d.name}
    failed = [r for r, o in outcomes.items() if not o["ok"]]
    verb = "rolled back" if operation == "rollback" else "promoted"
    summary = f"{name} {verb} in {len(outcomes) - len(failed)} of {len(outcomes)} regions of {pname}" + "".join(
        f"; {r}: {o['message'] if o['ok'] else 'failed, ' + o['message']}" for r, o in outcomes.items())
    if failed:
        again = f"`weave {operation} {name} --provider {pname} --region {failed[0]}`"
        suggestion = (f"the other regions are done; `weave releases {name} --provider {pname}` shows each region's "
                      f"releases; fix the cause and run {again} for each failed region ({', '.join(failed)})")
        Reporter(sink).emit(Done(ok=False, message=summary, suggestion=suggestion))
        raise DeploymentFailed(summary, suggestion)
    info = DeploymentInfo(name=name, provider=pname, status=DeploymentStatus.ACTIVE, region=",".join(outcomes),
                          message=summary, details={"group": name, "regions": outcomes})
    Reporter(sink).emit(Done(ok=True, message=summary, info=info))
    return info
