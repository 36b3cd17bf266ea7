"""Deployment groups: one weave deployed to several regions (gcp: locations) as one deployment.

``--region us-east-1,eu-west-1`` (or ``region=[...]`` in the Python API)
deploys the same weave to each region as one *group*: one plan (each step's
key prefixed by its region), one lock, and one inventory row per region.

How a group is recorded
-----------------------
Each region is an ordinary deployment, a *member*, keyed (provider, member
name) like any other, with the member name ``<group>-<region>``
(:func:`member_name`) and ``details`` holding ``group`` and
``group_region``. Nothing else in the inventory changes, so every existing
API (``Inventory.get(provider, name)``, the journal, resources, locks) works
on members unchanged, and single-region deployments are untouched. Every
cloud name derives from the member name, so each region has its own
resources: on AWS the Lambda function ``weave-<group>-<region>`` and, since
IAM is global, its own execution role ``weave-nb-<group>-<region>`` whose
inline log policy names only that region's log group; undeploying one region
never touches another region's role. The ownership marks carry the member
name, and each region's planner checks them as for any deployment.

Failures
--------
Planning (which only reads) runs for every region before any change; a
refusal there (an unknown region, a resource another inventory made) stops
the whole group with nothing created. The executor then runs each region's
part in turn: a failed step undoes only that region's finished steps,
the other regions stay deployed and recorded, and the result is reported per
region. Deploying the group again plans from what is live and finishes the
failed region.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from .config import NAME_PATTERN, DeploymentConfig, DeploymentInfo, DeploymentStatus
from .errors import ConfigError, DeploymentFailed, NotFound, WeaveError
from .events import Done, PlanReady, Reporter, Sink, inventory_changed, null_sink
from .executor import Executor
from .plan import Plan
from . import rollout
from .region_plan import MAX_REGIONS, RegionReporter, combine, member_name, parse_regions, region_sink

__all__ = ["MAX_REGIONS", "GROUP_PROVIDERS", "parse_regions", "member_name", "members", "group_request", "prepare",
           "plan_group", "deploy_group", "resolve", "group_of", "destroy_group", "shown", "combine", "RegionReporter",
           "region_sink"]

if TYPE_CHECKING:
    from .artifact import Artifact
    from .manager import DeploymentManager
    from ..providers.base import DeployContext, DeploymentProvider

GROUP_PROVIDERS = ("aws", "gcp")  # a plug-in opts in with the class attribute ``multi_region = True``


def members(mgr: "DeploymentManager", provider: str | None, group: str) -> list[DeploymentInfo]:
    """The recorded members of ``group`` (on ``provider``, if given), oldest first."""
    found = [d for d in mgr.inventory.list(provider) if d.details.get("group") == group]
    return sorted(found, key=lambda d: (d.created_at, d.name))


def _plain_values(values: Any) -> dict[str, Any]:
    if isinstance(values, DeploymentConfig):
        out = values.model_dump(exclude_unset=True)
        out["env"] = {k: v.get_secret_value() if hasattr(v, "get_secret_value") else v for k, v in out.get("env", {}).items()}
        return out
    return dict(values or {})


def group_request(mgr: "DeploymentManager", values: Any, defaults: Mapping[str, Any] | None) -> list[str] | None:
    """The regions when a deploy or plan is for a group, else ``None`` (a single-region deployment).

    A region list makes a group. A deploy of a name that is already a group
    (on the provider the deploy is for) stays a group: every recorded region
    without ``--region``, or just the one given (which may be a new one).
    """
    vals = _plain_values(values)
    given = vals.get("region") if vals.get("region") not in (None, "") else (defaults or {}).get("region")
    regions = parse_regions(given)
    if regions is not None:
        return regions
    name = vals.get("name")
    if not isinstance(name, str) or not any(d.details.get("group") == name for d in mgr.inventory.list()):
        return None
    config, _ = mgr.configure({**vals, "region": given}, defaults)
    found = members(mgr, config.provider, name)
    if not found:
        return None
    return [given] if given else [d.details.get("group_region") or d.region for d in found]


# -- deploy -------------------------------------------------------------------------------------
@dataclass
class Member:
    """One region of a group deploy: its config (named :func:`member_name`), provider and artifact."""

    region: str
    config: DeploymentConfig
    provider: "DeploymentProvider"
    artifact: "Artifact"
    ctx: "DeployContext | None" = None
    plan: Plan | None = None


def prepare(mgr: "DeploymentManager", values: Any, defaults: Mapping[str, Any] | None,
            regions: list[str]) -> tuple[str, list[Member]]:
    """Build and check every region's config and artifact (no remote call, nothing created).

    Returns:
        ``(group name, one Member per region)``.

    Raises:
        ConfigError: the provider has no regions, an unknown region, a name clash with a
            deployment that is not this group's member.
    """
    vals = _plain_values(values)
    plain_defaults = {**(defaults or {}), "region": None}
    probe, _ = mgr.configure({**vals, "region": regions[0]}, plain_defaults)
    group, pname = probe.name, probe.provider
    prov = mgr.provider(pname)
    if not getattr(prov, "multi_region", pname in GROUP_PROVIDERS):
        raise ConfigError(
            f"{pname} deploys to one place: a region list ({', '.join(regions)}) is for the aws and gcp providers",
            "pass a single --region, or deploy to --provider aws or gcp",
        )
    single = mgr.inventory.get(pname, group)
    if single is not None and not single.details.get("group"):
        raise ConfigError(
            f"a single-region deployment named {group!r} exists on {pname} ({single.region or 'default region'}); "
            "a group of that name would be a second deployment",
            f"undeploy it first (`weave undeploy {group} --provider {pname}`), or deploy the group under another name",
        )
    out = []
    for region in regions:
        name = member_name(group, region)
        clash = mgr.inventory.get(pname, name)
        if clash is not None and clash.details.get("group") != group:
            raise ConfigError(
                f"the {region} member of group {group!r} would be named {name!r}, and a deployment of that name exists on {pname}",
                "deploy the group under another name, or undeploy that deployment first",
            )
        try:
            config, provider, artifact = mgr._prepare({**vals, "name": name, "region": region}, plain_defaults)
        except ConfigError as exc:
            if rollout.canary_of(probe) is None:
                raise
            # --canary on a group: every member must take one, or the whole group is refused before any change
            hint = (exc.suggestion or "").replace(f"`weave promote {name}`", f"`weave promote {group} --region {region}`") \
                .replace(f"`weave rollback {name}`", f"`weave rollback {group} --region {region}`")
            raise ConfigError(f"--canary on group {group!r} refused, nothing was changed: in {region}, {exc.message}",
                              hint or None) from None
        out.append(Member(region, config, provider, artifact))
    return group, out


def _plan_all(mgr: "DeploymentManager", chosen: list[Member], sink: Sink) -> Reporter:
    """Plan every region (reads only); returns the group's reporter. A failure here stops everything."""
    first = chosen[0].config
    shared = Reporter(mgr._scrubbing(sink, first))
    for m in chosen:
        ctx = mgr.context(m.config.provider, m.config.name, env=m.config.env_plain())
        ctx.settings_hash = mgr.settings_hash(m.config)
        ctx.scrub = lambda text, config=m.config: mgr._scrub(text, config)
        ctx.reporter = RegionReporter(shared, m.region)
        m.ctx = ctx
        m.plan = rollout.plan_deploy(mgr, m.provider, ctx, m.config, m.artifact, ctx.settings_hash)  # as a single deploy
    return shared


def plan_group(mgr: "DeploymentManager", values: Any, defaults: Mapping[str, Any] | None, sink: Sink,
               regions: list[str]) -> Plan:
    """The group's one plan (a dry run): every region's steps, nothing changed."""
    group, chosen = prepare(mgr, values, defaults, regions)
    shared = _plan_all(mgr, chosen, sink)
    plan = combine(group, chosen[0].config.provider, {m.region: m.plan for m in chosen})  # type: ignore[misc]
    shared.total = len(plan.steps)
    shared.emit(PlanReady(plan))
    return plan


def deploy_group(mgr: "DeploymentManager", values: Any, defaults: Mapping[str, Any] | None, sink: Sink,
                 regions: list[str]) -> DeploymentInfo:
    """Deploy a group: one lock, one plan, then each region's part; a failed region is rolled back alone.

    Returns:
        The group's DeploymentInfo (``region`` lists the regions, ``details["regions"]`` each one's outcome).

    Raises:
        ConfigError, WeaveSpecError, ForeignResource: before any change (bad input, a refused plan).
        DeploymentFailed: one or more regions failed; the message reports each region.
    """
    group, chosen = prepare(mgr, values, defaults, regions)
    pname = chosen[0].config.provider
    with mgr._changing(pname, group), contextlib.ExitStack() as held:
        for m in chosen:
            held.enter_context(mgr.inventory.lock(pname, m.config.name, wait=mgr.lock_wait))
        try:
            shared = _plan_all(mgr, chosen, sink)
            plan = combine(group, pname, {m.region: m.plan for m in chosen})  # type: ignore[misc]
            shared.total = len(plan.steps)
            shared.emit(PlanReady(plan))
            outcomes = {m.region: _deploy_member(mgr, m, group) for m in chosen}
        finally:
            for m in chosen:
                inventory_changed(pname, m.config.name)
    failed = [r for r, o in outcomes.items() if not o["ok"]]
    for region, o in outcomes.items():
        shared.log(f"{region}: {o['status']}" + (f" {o['endpoint']}" if o.get("endpoint") and o["ok"] else "")
                   + ("" if o["ok"] else f" ({o['message']})"))
    done = [r for r in outcomes if r not in failed]
    summary = f"{group} deployed to {len(done)} of {len(outcomes)} regions" + "".join(
        f"; {r}: {o['status']}" + ("" if o["ok"] else f", {o['message']}") for r, o in outcomes.items())
    boxed = any((rec := mgr.inventory.get(pname, m.config.name)) is not None and rec.details.get("sandbox") for m in chosen)
    info = DeploymentInfo(  # no one endpoint: each region's is in details["regions"] (and in the lines above)
        name=group, provider=pname, status=DeploymentStatus.ACTIVE if not failed else DeploymentStatus.FAILED,
        region=",".join(outcomes), message=summary,
        details={"group": group, "regions": outcomes, "sandbox": True if boxed else None},
    )
    if failed:
        suggestion = (f"the other regions stay deployed; fix the cause and deploy the group again to finish "
                      f"{', '.join(failed)}, or `weave undeploy {group} --provider {pname}` to remove every region")
        shared.emit(Done(ok=False, message=summary, suggestion=suggestion, info=info))
        raise DeploymentFailed(summary, suggestion)
    shared.emit(Done(ok=True, message=summary + (" (SANDBOX: local stand-ins, not the real cloud)" if boxed else ""), info=info))
    return info


def _deploy_member(mgr: "DeploymentManager", m: Member, group: str) -> dict[str, Any]:
    """Run one region's part of the plan as a deploy of its own; a failure is rolled back in that region only."""
    from .manager import sandbox_details

    ctx, plan, config, prov = m.ctx, m.plan, m.config, m.provider
    assert ctx is not None and plan is not None
    mark = {"group": group, "group_region": m.region}
    previous = ctx.record
    if previous is None or plan.has_changes or previous.status != DeploymentStatus.ACTIVE:
        ctx.save(status=DeploymentStatus.DEPLOYING, region=m.region, message=None,
                 details=sandbox_details(mark, config.provider))
    executor = Executor(prov, prov.keep_on_failure(config))
    try:
        run = executor.run(plan, ctx, config, m.artifact)
        info = prov.finish(run)
    except BaseException as exc:
        message = mgr._scrub(getattr(exc, "message", None) or str(exc) or type(exc).__name__, config)
        restored = executor.last is not None and executor.last.rolled_back and previous is not None \
            and previous.status == DeploymentStatus.ACTIVE
        if restored:
            message = f"the new release failed and was rolled back; the previous release still serves: {message}"
        rolled = executor.last is not None and executor.last.rolled_back
        ctx.save(status=DeploymentStatus.ACTIVE if restored else DeploymentStatus.FAILED, message=message[:2000],
                 details=mark)
        if not isinstance(exc, Exception):
            raise
        status = "active (previous release)" if restored else "failed, rolled back" if rolled else "failed"
        return {"ok": False, "status": status, "message": message[:300], "member": config.name,
                "endpoint": previous.endpoint if restored and previous is not None else None}
    message = info.message
    if not plan.has_changes:
        message = "no changes"
    saved = ctx.save(status=info.status, endpoint=info.endpoint, region=info.region or m.region, version=info.version,
                     content_hash=m.artifact.content_hash, settings_hash=ctx.settings_hash, message=message,
                     details=sandbox_details({**info.details, **mark}, config.provider))
    rollout.record_deploy(mgr, ctx, run, config, m.artifact, ctx.settings_hash, saved, region=m.region)  # as a single deploy
    return {"ok": saved.status == DeploymentStatus.ACTIVE, "status": saved.status.value, "endpoint": saved.endpoint,
            "member": config.name, "message": message or ""}


# -- the other commands -------------------------------------------------------------------------
def resolve(mgr: "DeploymentManager", name: str, provider: str | None, region: str | None) -> tuple[str, str]:
    """The (provider, deployment name) a command on ``name`` (maybe a group) in ``region`` acts on.

    A group with one region needs no ``--region``; with several, ``--region`` picks one.

    Raises:
        NotFound: nothing by that name, or not in that region.
        ConfigError: a group with several regions and no ``--region``.
    """
    provider = mgr.provider_of(name, provider)
    found = members(mgr, provider, name)
    if not found:
        if region:
            rec = mgr.inventory.get(provider, name)
            if rec is not None and rec.region and rec.region != region:
                raise NotFound(f"{name!r} on {provider} is deployed in {rec.region}, not in {region}",
                               f"leave out --region, or pass --region {rec.region}")
        return provider, name
    where = [d.details.get("group_region") or d.region for d in found]
    if region is None:
        if len(found) == 1:
            return provider, found[0].name
        raise ConfigError(f"{name!r} on {provider} is deployed to {len(found)} regions ({', '.join(where)}): say which one",
                          f"pass --region, e.g. --region {where[0]}")
    for d, r in zip(found, where):
        if r == region:
            return provider, d.name
    raise NotFound(f"{name!r} on {provider} is not deployed in {region} (its regions: {', '.join(where)})",
                   f"pass one of them, e.g. --region {where[0]}")


def group_of(mgr: "DeploymentManager", name: str, provider: str | None) -> tuple[str, list[DeploymentInfo]] | None:
    """``(provider, members)`` when ``name`` is a recorded group, else ``None`` (never raises for unknown names)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        return None
    try:
        pname = mgr.provider_of(name, provider)
    except WeaveError:
        return None
    found = members(mgr, pname, name)
    return (pname, found) if found else None


def destroy_group(mgr: "DeploymentManager", name: str, provider: str, found: list[DeploymentInfo], sink: Sink = null_sink,
                  dry_run: bool = False, **options: Any) -> DeploymentInfo | Plan:
    """Undeploy every region of group ``name`` (each as its own undeploy, under the group's lock).

    Raises:
        DeploymentFailed: a region could not be removed (the others were; the message reports each).
    """
    prov = mgr.provider(provider)
    regions = {d.details.get("group_region") or d.region or d.name: d for d in found}
    if dry_run:
        plans = {}
        for region, d in regions.items():
            ctx = mgr.context(provider, d.name)
            plans[region] = mgr._guard(lambda ctx=ctx: prov.plan_destroy(ctx, **options))
        plan = combine(name, provider, plans, operation="undeploy")
        Reporter(sink).emit(PlanReady(plan))
        return plan
    outcomes: dict[str, str] = {}
    with mgr._changing(provider, name):
        for region, d in regions.items():
            try:
                mgr.destroy(d.name, provider, sink=region_sink(sink, region), **options)
                outcomes[region] = "removed"
            except WeaveError as exc:
                outcomes[region] = f"failed: {exc.message}"
    failed = [r for r, o in outcomes.items() if o != "removed"]
    summary = f"{name} removed from {len(outcomes) - len(failed)} of {len(outcomes)} regions of {provider}" + "".join(
        f"; {r}: {o}" for r, o in outcomes.items())
    if failed:
        suggestion = f"run `weave undeploy {name} --provider {provider}` again once the cause is fixed"
        Reporter(sink).emit(Done(ok=False, message=summary, suggestion=suggestion))
        raise DeploymentFailed(summary, suggestion)
    info = DeploymentInfo(name=name, provider=provider, status=DeploymentStatus.DESTROYED, region=",".join(outcomes),
                          message=summary, details={"group": name, "regions": outcomes})
    Reporter(sink).emit(Done(ok=True, message=summary, info=info))
    return info


def shown(info: DeploymentInfo) -> DeploymentInfo:
    """A listed member as people see it: the group's name, its region in the region column, ``member`` in details."""
    group = info.details.get("group")
    if not group or info.name == group:
        return info
    return info.model_copy(update={"name": group, "details": {**info.details, "member": info.name}})
