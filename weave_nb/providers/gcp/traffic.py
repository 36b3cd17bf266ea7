"""Releases on gcp: rollback, canary and promote as traffic on the function's Cloud Run service.

Each deploy of a Cloud Functions (2nd gen) function makes a new revision of
the Cloud Run service under it; a release's ``version_id`` is that revision's
name. Moving traffic goes through the Cloud Run Admin API v2
(``ServicesClient.update_service`` with the update mask ``traffic``, a
read-modify-write carrying the service's etag):

- rollback: 100% to the target release's revision (during a canary that is the
  live release, so the canary gets 0%);
- promote: 100% to the canary's revision;
- a canary deploy (``--canary PERCENT``): first pin the traffic on the revision
  serving now (so a ``LATEST`` target cannot hand the new revision everything),
  then update the function with ``serviceConfig.allTrafficOnLatestRevision``
  false (on true Cloud Functions sends all traffic to the new revision,
  whatever the split), then split: PERCENT to the new revision, the rest to the
  pinned one. Each traffic step's undo puts back the traffic it found, so a
  failed deploy leaves the split as it was;
- prune: delete the revisions of dropped releases (never one that serves
  traffic or is the latest).

Every change is a :class:`~weave_nb.core.plan.PlannedStep` run by the one executor.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ...core.errors import ConfigError, NotFound
from ...core.executor import Run
from ...core.plan import Plan, PlannedStep
from ...core import ownership
from ..base import DeployContext

NEW = None  # a traffic target's revision: the one this deploy makes (known once its operation ends)


def short(name: str) -> str:
    """``projects/.../revisions/R`` -> ``R`` (a short name stays as it is)."""
    return name.rsplit("/", 1)[-1] if name else ""


def split_of(svc: Any) -> dict[str, int]:
    """Revision (short name) -> percent of the traffic it serves, from the service's ``trafficStatuses``.

    A ``LATEST`` entry counts for the latest ready revision; entries with 0% are left out.
    """
    from google.cloud import run_v2

    latest = short(svc.latest_ready_revision)
    rows = list(svc.traffic_statuses) or list(svc.traffic)
    if not rows and latest:
        return {latest: 100}
    out: dict[str, int] = {}
    for row in rows:
        is_latest = row.type_ == run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
        name = latest if is_latest and not row.revision else short(row.revision)
        if row.percent > 0 and name:
            out[name] = out.get(name, 0) + int(row.percent)
    return out


def targets_of(svc: Any) -> list[dict[str, Any]]:
    """The service's ``traffic`` as plain data (what an undo puts back)."""
    from google.cloud import run_v2

    latest = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
    rows = [{"type": "LATEST" if t.type_ == latest else "REVISION", "revision": t.revision or None,
             "percent": int(t.percent), **({"tag": t.tag} if t.tag else {})} for t in svc.traffic]
    return rows or [{"type": "LATEST", "revision": None, "percent": 100}]


def pinned(svc: Any, revision: str) -> bool:
    """True when the service's traffic is exactly 100% on ``revision`` by name (no ``LATEST`` target)."""
    targets = [t for t in targets_of(svc) if t["percent"] > 0]
    return len(targets) == 1 and targets[0]["type"] == "REVISION" and targets[0]["revision"] == revision


def describe(split: dict[str, int]) -> str:
    return ", ".join(f"{rev} {pct}%" for rev, pct in split.items()) or "none"


class GcpTraffic:
    """Releases (rollback, promote, canary, prune) of :class:`~weave_nb.providers.gcp.provider.GcpProvider`."""

    supports_canary: ClassVar[bool] = True

    # -- reading ------------------------------------------------------------------------
    def _service_of(self, ctx: DeployContext, changing: bool = False) -> tuple[Any, Any, Any]:
        """(client, options, the function's Cloud Run service) for a recorded deployment.

        Args:
            changing: the caller will change the service's traffic: the function must carry this
                inventory's owner mark, as for a deploy.

        Raises:
            NotFound: no function or service is there.
            ForeignResource: ``changing`` and the function is not this inventory's.
        """
        config = self._config_from(ctx)
        client = self._client(config, ctx)
        rec = ctx.record
        name = (rec.details.get("function") if rec else None) or client.function_name(config.region or self.default_region, ctx.name)
        fn = client.get(name)
        if fn is None or not fn.service_config.service:
            raise NotFound(f"no gcp function for {ctx.name!r} exists", "deploy it first, or check `weave status`")
        if changing:
            ownership.check("label", f"Cloud Function {name}", dict(fn.labels), ctx.owner, False, ctx.name)
        svc = client.service(fn.service_config.service)
        if svc is None:
            raise NotFound(f"the Cloud Run service of {name} does not exist (its first build may have failed)",
                           "deploy it again")
        return client, self.options(config), svc

    def traffic(self, ctx: DeployContext) -> dict[str, float]:
        """Revision name -> fraction of the traffic it serves, read from the Cloud Run service.

        Raises:
            NotFound: the deployment has no function or service.
        """
        _, _, svc = self._service_of(ctx)
        return {rev: pct / 100 for rev, pct in split_of(svc).items()}

    # -- rollback and promote -------------------------------------------------------------
    def plan_rollback(self, ctx: DeployContext, target: Any, releases: list[Any]) -> Plan:
        """One step: 100% of the service's traffic to ``target.version_id`` (a canary's revision gets 0%).

        Raises:
            NotFound: the deployment, or the target's revision, no longer exists.
        """
        canaries = [r for r in releases if getattr(r, "state", None) == "canary" and r.version_id != target.version_id]
        why = f"roll back to release {target.number}"
        if canaries:
            why += f"; the canary {', '.join(r.version_id for r in canaries)} gets 0%"
        return self._plan_all_traffic(ctx, target.version_id, why)

    def plan_promote(self, ctx: DeployContext, canary: Any, releases: list[Any]) -> Plan:
        """One step: 100% of the service's traffic to the canary's revision ``canary.version_id``.

        Raises:
            NotFound: the deployment, or the canary's revision, no longer exists.
        """
        return self._plan_all_traffic(ctx, canary.version_id, f"promote release {canary.number}")

    def _plan_all_traffic(self, ctx: DeployContext, revision: str, why: str) -> Plan:
        client, opts, svc = self._service_of(ctx, changing=True)
        rev = short(revision)
        if client.revision(f"{svc.name}/revisions/{rev}") is None:
            raise NotFound(f"the revision {rev} no longer exists on {svc.name}",
                           "pick a release whose revision still exists (`weave releases`)")
        split = split_of(svc)
        resource = f"traffic of Cloud Run service {short(svc.name)}"
        if split == {rev: 100}:
            step = PlannedStep(key="traffic", resource=resource, action="no-change", detail=f"{rev} already serves 100%")
        else:
            step = PlannedStep(key="traffic", resource=resource, action="update",
                               detail=f"{why}: 100% to {rev} (now {describe(split)})", call="set_traffic",
                               undo="set_traffic_back",
                               params={"service": svc.name, "targets": [{"type": "REVISION", "revision": rev, "percent": 100}],
                                       "serves": rev, "interval": opts.poll_interval, "timeout": opts.operation_timeout})
        observed = {"service": svc.name, "traffic": split, "latest": short(svc.latest_ready_revision)}
        return Plan(provider=self.name, name=ctx.name, steps=[step], observed=observed)

    # -- canary (steps of a deploy plan) ---------------------------------------------------
    def canary_steps(self, client: Any, fn: Any, percent: int, opts: Any) -> tuple[PlannedStep, PlannedStep, dict[str, Any]]:
        """The pin step (before the function update) and the split step (after its operation) of a canary deploy.

        The stable revision is the one serving the largest share now (the live release).

        Raises:
            ConfigError: there is no live revision to split the traffic with.
        """
        svc = client.service(fn.service_config.service) if fn is not None and fn.service_config.service else None
        split = split_of(svc) if svc is not None else {}
        if not split:
            raise ConfigError("--canary needs a live release to split the traffic with, and this function has none",
                              "deploy it once without --canary, then deploy the new code with --canary PERCENT")
        stable = max(split, key=lambda rev: (split[rev], rev == short(svc.latest_ready_revision)))
        wait = {"service": svc.name, "interval": opts.poll_interval, "timeout": opts.operation_timeout}
        resource = f"traffic of Cloud Run service {short(svc.name)}"
        if pinned(svc, stable):
            pin = PlannedStep(key="pin", resource=resource, action="no-change", detail=f"already pinned on {stable}")
        else:
            pin = PlannedStep(key="pin", resource=resource, action="update", call="set_traffic", undo="set_traffic_back",
                              detail=f"pin 100% on {stable} (now {describe(split)}) so the new revision starts with none",
                              params={**wait, "targets": [{"type": "REVISION", "revision": stable, "percent": 100}]})
        canary = PlannedStep(key="canary", resource=resource, action="update", call="set_traffic", undo="set_traffic_back",
                             detail=f"canary: {percent}% to the new revision, {100 - percent}% stays on {stable}",
                             params={**wait, "targets": [{"type": "REVISION", "revision": stable, "percent": 100 - percent},
                                                         {"type": "REVISION", "revision": NEW, "percent": percent}]})
        return pin, canary, {"traffic": split, "stable": stable}

    # -- prune ----------------------------------------------------------------------------
    def plan_prune(self, ctx: DeployContext, releases_to_drop: list[Any]) -> list[PlannedStep]:
        """Delete steps for the revisions of ``releases_to_drop`` (appended to a deploy plan, so they run last).

        A revision that serves traffic is kept (a no-change step says so). The
        latest revision can only go once the deploy made a newer one; should
        Cloud Run still refuse a delete when it runs, the revision is kept with
        a warning and the deploy stands (see :meth:`apply_delete_revision`).
        """
        try:
            _, opts, svc = self._service_of(ctx)
        except NotFound:
            return []
        split, latest = split_of(svc), short(svc.latest_ready_revision)
        steps = []
        for release in releases_to_drop:
            rev = short(getattr(release, "version_id", "") or "")
            if not rev:
                continue
            resource = f"Cloud Run revision {rev} (release {release.number})"
            if rev in split:
                steps.append(PlannedStep(key=f"prune-{rev}", resource=resource, action="no-change",
                                         detail=f"kept: it serves {split[rev]}% of the traffic"))
                continue
            why = "an old release dropped from the history"
            if rev == latest:
                why += "; the latest revision now, so deleted once this deploy's new revision is ready"
            steps.append(PlannedStep(key=f"prune-{rev}", resource=resource, action="delete", call="delete_revision",
                                     detail=why, params={"name": f"{svc.name}/revisions/{rev}", "interval": opts.poll_interval,
                                                         "timeout": opts.operation_timeout}))
        return steps

    # -- apply / undo ------------------------------------------------------------------------
    def apply_set_traffic(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        """Set the service's traffic to the step's targets (``revision`` None: the revision this run made)."""
        p = step.params
        client = self._gcp(run)
        targets = []
        for t in p["targets"]:
            revision = t["revision"] if t["revision"] is not NEW else run.outputs.get("release_version")
            if not revision:
                raise ConfigError("no new revision was made to send canary traffic to", "deploy again")
            targets.append({**t, "revision": revision})
        before = client.service(p["service"])
        previous = targets_of(before) if before is not None else None
        svc = client.set_traffic(p["service"], targets, lambda text: run.ctx.log(text, step.key), p["interval"], p["timeout"])
        out: dict[str, Any] = {"traffic": split_of(svc), "previous_traffic": previous}
        if p.get("serves"):  # a rollback or promote: the revision that now serves everything
            out["release_version"] = out["version"] = p["serves"]
        return out

    def undo_set_traffic_back(self, run: Run, step: PlannedStep, result: Any) -> None:
        """Put back the traffic the step found."""
        previous = (result or {}).get("previous_traffic")
        if not previous:
            return
        p = step.params
        self._gcp(run).set_traffic(p["service"], previous, lambda text: run.ctx.log(text, step.key), p["interval"], p["timeout"])
        run.ctx.log(f"put the traffic of {short(p['service'])} back: {describe({t['revision'] or 'latest': t['percent'] for t in previous})}")

    def apply_delete_revision(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        """Delete an old release's revision (already gone is fine).

        A revision Cloud Run refuses to delete (400 FAILED_PRECONDITION: it is a
        traffic target or the latest) is kept with a warning: pruning never
        undoes the deploy it ends.
        """
        from google.api_core import exceptions as gexc

        p = step.params
        try:
            deleted = self._gcp(run).delete_revision(p["name"], p["interval"], p["timeout"])
        except (gexc.FailedPrecondition, gexc.BadRequest) as exc:
            run.ctx.warn(f"kept the revision {short(p['name'])}: {getattr(exc, 'message', exc)}")
            return {"kept_revision": short(p["name"])}
        if not deleted:
            run.ctx.log(f"{short(p['name'])} was already gone", step.key)
        return {"deleted_revision": short(p["name"])}

