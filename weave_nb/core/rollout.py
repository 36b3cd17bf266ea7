"""Releases in the manager's operations: recording them, pruning old ones, rollback, canary and promote.

:class:`~weave_nb.core.manager.DeploymentManager` calls these functions; they
plan like a deploy (the provider's plan, shown by the display-only executor
for a dry run, run by the one :class:`~weave_nb.core.executor.Executor`
under the deployment's lock, rolled back by it on failure) and keep the
release history of :mod:`weave_nb.core.releases` (numbers and states are
decided here, never by a provider).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from .config import DeploymentConfig, DeploymentInfo, DeploymentStatus, check_name
from .errors import ConfigError, DeploymentFailed, NotFound, WeaveError
from .events import Done, PlanReady, Sink, null_sink
from .executor import DisplayOnlyExecutor, Executor, Run
from .plan import Plan
from .releases import (CANARY, LIVE, PREVIOUS, Release, ReleaseStore, after_deploy, after_promote, after_rollback, find,
                       new_release, to_prune, traffic_text)

if TYPE_CHECKING:
    from ..providers.base import DeployContext, DeploymentProvider
    from .artifact import Artifact
    from .manager import DeploymentManager


def store(mgr: "DeploymentManager") -> ReleaseStore:
    """The manager's release store (made once)."""
    found = getattr(mgr, "_release_store", None)
    if found is None:
        found = mgr._release_store = ReleaseStore(mgr.inventory)
    return found


def keeps_releases(prov: "DeploymentProvider") -> bool:
    """True when the provider implements the release contract (it can prune, roll back...)."""
    from ..providers.base import DeploymentProvider

    return type(prov).plan_prune is not DeploymentProvider.plan_prune


def canary_of(config: DeploymentConfig) -> int | None:
    """The ``--canary`` percent of a deploy (``options["canary"]``), or ``None``.

    Raises:
        ConfigError: not a whole number from 1 to 99.
    """
    raw = (config.options or {}).get("canary")
    if raw is None or raw == "":
        return None
    try:
        value = int(str(raw).strip().rstrip("%"))
    except ValueError:
        value = -1
    if not 1 <= value <= 99:
        raise ConfigError(f"--canary must be a whole percent from 1 to 99, got {raw!r}",
                          "e.g. --canary 10 sends 10% of the traffic to the new release")
    return value


def check_canary(mgr: "DeploymentManager", prov: "DeploymentProvider", config: DeploymentConfig) -> DeploymentConfig:
    """Check a ``--canary`` deploy before anything is built or created; returns the config with an int percent.

    Raises:
        ConfigError: the provider has no canary, nothing is live to split with, or a canary is already on.
    """
    percent = canary_of(config)
    if percent is None:
        return config
    if not prov.supports_canary:
        raise ConfigError(
            f"the {prov.name} provider has no canary: --canary splits traffic between two releases, "
            f"and a {prov.name} deployment serves one at a time",
            f"deploy without --canary; `weave rollback {config.name} --provider {prov.name}` switches back "
            "(blue/green) if the new release misbehaves")
    rels = store(mgr).list(prov.name, config.name)
    if find(rels, LIVE) is None:
        raise ConfigError(f"--canary needs a live release of {config.name!r} on {prov.name} to split the traffic with",
                          "deploy once without --canary first")
    running = find(rels, CANARY)
    if running is not None:
        raise ConfigError(f"{running.label} of {config.name!r} is already a canary ({round((running.weight or 0) * 100)}%)",
                          f"`weave promote {config.name}` or `weave rollback {config.name}` ends it first")
    return config.model_copy(update={"options": {**config.options, "canary": percent}})


def plan_deploy(mgr: "DeploymentManager", prov: "DeploymentProvider", ctx: "DeployContext", config: DeploymentConfig,
                artifact: "Artifact", settings: str) -> Plan:
    """A deploy's plan: the provider's steps, then the prune steps of old releases (:func:`plan_releases`).

    The one planner of a release: a single-region deploy and each region of a deployment group call it.
    """
    plan = mgr._guard(lambda: prov.plan(config, artifact, ctx), config)
    return mgr._guard(lambda: plan_releases(mgr, prov, ctx, plan, config, artifact, settings), config)


def plan_releases(mgr: "DeploymentManager", prov: "DeploymentProvider", ctx: "DeployContext", plan: Plan,
                  config: DeploymentConfig, artifact: "Artifact", settings: str) -> Plan:
    """Append the prune steps of old releases to a deploy's plan (shown by ``weave plan``).

    Records in ``plan.observed["releases"]`` whether the deploy makes a new
    release and which ones it prunes.

    Raises:
        ConfigError: ``--canary`` on a deploy that changes nothing that runs.
    """
    rels = store(mgr).list(prov.name, config.name)
    live = find(rels, LIVE)
    adding = live is None or (live.content_hash, live.settings_hash) != (artifact.content_hash, settings)
    if canary_of(config) and not adding:
        raise ConfigError(f"--canary: this deploy of {config.name!r} changes nothing that runs, so there is no new release to send traffic to",
                          "change the weave or its settings, or deploy without --canary")
    drop = to_prune(rels, mgr.keep_releases, adding, artifact.content_hash, bool(canary_of(config))) if keeps_releases(prov) else []
    if drop:
        steps = prov.plan_prune(ctx, drop)
        plan.steps.extend(steps)
        if steps:
            plan.notes.append(f"keeps the newest {mgr.keep_releases} releases' artifacts; prunes "
                              + ", ".join(r.label for r in drop))
    plan.observed["releases"] = {"new": adding, "prune": [r.number for r in drop] if drop else []}
    return plan


def record_deploy(mgr: "DeploymentManager", ctx: "DeployContext", run: Run, config: DeploymentConfig, artifact: "Artifact",
                  settings: str, info: DeploymentInfo, region: str | None = None) -> Release | None:
    """Record the release a successful deploy made (or refresh the live one's version id); returns the new one.

    The one recorder of releases: a single-region deploy and each region of a
    deployment group (``region``: the member's region, kept in the release's
    ``region`` column) call it.
    """
    st = store(mgr)
    rels = st.list(ctx.provider, ctx.name)
    planned = run.plan.observed.get("releases") or {}
    pruned = set(planned.get("prune") or [])
    rels = [_pruned(r) if r.number in pruned else r for r in rels]
    version = str(run.outputs.get("release_version") or info.version or "")
    live = find(rels, LIVE)
    if planned.get("new", live is None):
        release = new_release(st.next_number(ctx.provider, ctx.name), ctx.provider, ctx.name, version or artifact.content_hash[:12],
                              artifact.content_hash, settings, region=region,
                              details={"env_names": sorted(config.env), **dict(run.outputs.get("release_details") or {})})
        st.save(after_deploy(rels, release, canary_of(config)))
        return release
    if live is not None and version and live.version_id != version:  # a repair made a new version of the same release
        rels = [_with_version(r, version) if r.number == live.number else r for r in rels]
    st.save(rels)
    return None


def _pruned(r: Release) -> Release:
    return Release(**{**r.__dict__, "details": {**r.details, "pruned": True}})


def _with_version(r: Release, version: str) -> Release:
    return Release(**{**r.__dict__, "version_id": version})


def releases(mgr: "DeploymentManager", name: str, provider: str | None = None) -> list[Release]:
    """Every release of a deployment, newest first.

    Raises:
        NotFound: no deployment by that name is recorded.
    """
    check_name(name)
    provider = mgr.provider_of(name, provider)
    if mgr.inventory.get(provider, name) is None and not store(mgr).list(provider, name):
        raise mgr.not_found(name, provider)
    return list(reversed(store(mgr).list(provider, name)))


def rollback_target(rels: list[Release], name: str, provider: str, to: int | None) -> Release:
    """The release a rollback makes live: ``to``, else the live one during a canary, else the previous one.

    Raises:
        NotFound: no such release; ConfigError: it is live already, or its artifact was pruned.
    """
    where = f"{name!r} on {provider}"
    if not rels:
        raise NotFound(f"{where} has no releases recorded", f"deploy it first; `weave releases {name}` lists them")
    live, canary = find(rels, LIVE), find(rels, CANARY)
    if to is None:
        if canary is not None and live is not None:
            return live
        below = [r for r in rels if r.state != LIVE and not r.pruned and (live is None or r.number < live.number)]
        target = find(rels, PREVIOUS) or (below[-1] if below else None)
        if target is None or target.pruned:
            raise ConfigError(f"{where} has no earlier release to roll back to",
                              f"`weave releases {name} --provider {provider}` lists them")
        return target
    target = next((r for r in rels if r.number == int(to)), None)
    if target is None:
        raise NotFound(f"{where} has no release {to}",
                       f"`weave releases {name} --provider {provider}` lists them ({', '.join(str(r.number) for r in rels)})")
    if target.state == LIVE and canary is None:
        raise ConfigError(f"release {target.number} of {where} is live already", "nothing to roll back")
    if target.pruned:
        raise ConfigError(f"release {target.number} of {where} was pruned: its artifact is gone",
                          f"only the newest {len([r for r in rels if not r.pruned])} releases are kept; redeploy that weave instead")
    return target


def rollback(mgr: "DeploymentManager", name: str, provider: str | None = None, to: int | None = None, dry_run: bool = False,
             sink: Sink = null_sink, env: Mapping[str, str] | None = None) -> DeploymentInfo | Plan:
    """Make an earlier release live again without rebuilding (during a canary: the canary gets 0%).

    Args:
        to: the release number (default: the previous release; during a canary, the live one).
        env: values for the release's environment variables (local and docker restart it; values are
            never stored, so they come from here or from this process's environment).
    """
    check_name(name)
    provider = mgr.provider_of(name, provider)
    prov = mgr.provider(provider)

    def choose(rels: list[Release]) -> Release:
        return rollback_target(rels, name, provider, to)

    def after(rels: list[Release], target: Release) -> list[Release]:
        return after_rollback(rels, target)

    def message(rels: list[Release], target: Release) -> str:
        canary = find(rels, CANARY)
        if canary is not None and target.state == LIVE:
            return f"canary {canary.label} ended: {target.label} takes all of the traffic again"
        return f"rolled back: {target.label} is live again"

    return _operate(mgr, prov, name, "rollback", choose, lambda ctx, t, rels: prov.plan_rollback(ctx, t, rels), after, message,
                    dry_run, sink, env)


def promote(mgr: "DeploymentManager", name: str, provider: str | None = None, dry_run: bool = False,
            sink: Sink = null_sink) -> DeploymentInfo | Plan:
    """Send all of the traffic to the canary release."""
    check_name(name)
    provider = mgr.provider_of(name, provider)
    prov = mgr.provider(provider)

    def choose(rels: list[Release]) -> Release:
        canary = find(rels, CANARY)
        if canary is None:
            raise ConfigError(f"{name!r} on {provider} has no canary to promote",
                              f"`weave deploy ... --canary 10` starts one; `weave releases {name}` lists the releases")
        return canary

    return _operate(mgr, prov, name, "promote", choose, lambda ctx, t, rels: prov.plan_promote(ctx, t, rels),
                    lambda rels, t: after_promote(rels, t), lambda rels, t: f"promoted: {t.label} takes all of the traffic",
                    dry_run, sink, None)


def _operate(mgr: "DeploymentManager", prov: "DeploymentProvider", name: str, operation: str, choose: Any, planner: Any,
             after: Any, message: Any, dry_run: bool, sink: Sink, env: Mapping[str, str] | None) -> DeploymentInfo | Plan:
    """Plan, show and run one rollback or promote like a deploy: lock, events, journal, executor."""
    from ..providers.base import DeploymentProvider

    provider = prov.name
    method = "plan_rollback" if operation == "rollback" else "plan_promote"
    st = store(mgr)

    def prepare() -> tuple["DeployContext", Release, list[Release], Plan]:
        rels = st.list(provider, name)
        target = choose(rels)
        if getattr(type(prov), method) is getattr(DeploymentProvider, method):  # the contract's default: a clear refusal
            raise prov._no_releases("roll back" if operation == "rollback" else "promote a canary")
        values = _env_for(mgr, target, env)
        ctx = mgr.context(provider, name, sink, env=values)
        plan = mgr._guard(lambda: planner(ctx, target, rels))
        plan.observed.setdefault("target", target.number)
        ctx.reporter.total = len(plan.steps)
        return ctx, target, rels, plan

    if dry_run:
        ctx, _, _, plan = prepare()
        return DisplayOnlyExecutor().run(plan, ctx)
    with mgr._changing(provider, name):
        ctx, target, rels, plan = prepare()
        ctx.reporter.emit(PlanReady(plan))
        executor = Executor(prov)
        try:
            run = executor.run(plan, ctx)
        except BaseException as exc:
            text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            undone = executor.last is not None and executor.last.rolled_back
            text = f"{operation} failed{' and was undone; what served still serves' if undone else ''}: {text}"
            hint = getattr(exc, "suggestion", None) or f"`weave status {name} --provider {provider}` shows what serves"
            ctx.reporter.emit(Done(ok=False, message=text, suggestion=hint))
            if isinstance(exc, WeaveError):
                raise type(exc)(text, hint) from None
            if isinstance(exc, Exception):
                raise DeploymentFailed(text, hint) from None
            raise
        final = after(rels, target)
        st.save(final)
        text = message(rels, target)
        serving = find(final, LIVE) or target
        fields: dict[str, Any] = {}
        if run.outputs.get("record_details"):  # where the serving process or container now is (local, docker)
            fields["details"] = run.outputs["record_details"]
        if run.outputs.get("endpoint"):
            fields["endpoint"] = run.outputs["endpoint"]
        info = ctx.save(status=DeploymentStatus.ACTIVE, version=str(run.outputs["version"]) if run.outputs.get("version") else (ctx.record.version if ctx.record else None),
                        content_hash=serving.content_hash, settings_hash=serving.settings_hash, message=text, **fields)
        ctx.reporter.emit(Done(ok=True, message=text, info=info))
        return info


def _env_for(mgr: "DeploymentManager", target: Release, env: Mapping[str, str] | None) -> dict[str, str]:
    """The env values a restarted release gets: ``env``, else this process's environment, for the names it was deployed with."""
    given = dict(env or {})
    environ = mgr.auth.environ
    return {n: given[n] if n in given else environ[n] for n in target.details.get("env_names", []) if n in given or n in environ}


def traffic_of(mgr: "DeploymentManager", info: DeploymentInfo, refresh: bool) -> str | None:
    """The ``traffic`` cell of a listed deployment: ``v3 90% / v4 10%`` during a canary, else ``None``.

    A group's member is listed under the group's name (``details["member"]`` is its own): its own releases count.
    """
    name = info.details.get("member") or info.name
    rels = store(mgr).list(info.provider, name)
    if find(rels, CANARY) is None:
        return None
    split: dict[str, float] = {}
    if refresh:
        try:
            prov = mgr.provider(info.provider)
            split = prov.traffic(mgr.context(info.provider, name))
        except Exception:  # noqa: BLE001 - the recorded split stands in when the live one cannot be read
            split = {}
    return traffic_text(rels, split)
