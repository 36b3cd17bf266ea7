"""DeploymentManager: the one entry for plan, deploy, status, destroy, list, invoke and logs.

Front ends (magics, widgets, CLI, Python API) all call this class; it knows
no provider's internals and never imports IPython, ipywidgets or pandas.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import secrets as _secrets
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from pydantic import SecretStr

from .artifact import Artifact
from .auth import AuthenticationManager, weave_home
from .config import DeploymentConfig, DeploymentInfo, DeploymentStatus, Plan, check_file_powers, check_name, file_defaults, make_config, utcnow
from .errors import CredentialsError, DeploymentFailed, NotFound, WeaveError
from .events import Done, PlanReady, Reporter, Sink, inventory_changed, null_sink
from .inventory import Inventory
from .private_files import write_once
from .executor import DisplayOnlyExecutor, Executor
from ..providers.base import DeployContext, DeploymentProvider
from .listing import Listing, effective_status, merge_live, split_owners
from .registry import load_provider_class, provider_names
from .regions import deploy_group, destroy_group, group_of, group_request, plan_group
from .regions import resolve as resolve_region, shown as shown_member
from ..runtime.errors import scrub


UNEXPECTED = (
    "an unexpected error: check that the provider's service is reachable, and report it if it keeps happening "
    "(`weave deploy --verbose` shows the traceback)"
)


class DeploymentManager:
    """The registry of providers and the one entry for every operation.

    Args:
        home: the state folder (default ``$WEAVE_HOME`` or ``~/.weave``).
        auth: the AuthenticationManager (default: environment, then credentials file).
        providers: provider instances or classes to use instead of the registered ones, by name.
        sleep: the sleep function providers use for waits and retries.
        lock_wait: seconds to wait for another process deploying the same name.
        keep_releases: how many releases keep their provider artifacts (default ``WEAVE_KEEP_RELEASES`` or 5).
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        auth: AuthenticationManager | None = None,
        providers: Mapping[str, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        lock_wait: float = 0.0,
        keep_releases: int | None = None,
    ) -> None:
        self.home = Path(home).expanduser().absolute() if home else weave_home()
        self.auth = auth or AuthenticationManager()
        self.inventory = Inventory(self.home)
        self.sleep = sleep
        self.lock_wait = lock_wait
        self._providers: dict[str, DeploymentProvider] = {}
        self._overrides = dict(providers or {})
        from .releases import keep_count

        self.keep_releases = max(1, int(keep_releases)) if keep_releases else keep_count()

    # providers ------------------------------------------------------------
    def provider_names(self) -> list[str]:
        """Every provider name known (built-in, plug-in, or given to this manager)."""
        names = provider_names()
        return names + [n for n in self._overrides if n not in names]

    def provider(self, name: str) -> DeploymentProvider:
        """Return the provider instance for ``name``, loading it on first use.

        Raises:
            ProviderUnavailable: unknown name, or its extra is not installed.
        """
        name = name.strip().lower()
        if name not in self._providers:
            found = self._overrides.get(name) or load_provider_class(name)
            self._providers[name] = found(self.auth) if isinstance(found, type) else found
        return self._providers[name]

    def provider_of(self, name: str, given: str | None = None) -> str:
        """The provider of deployment ``name``: ``given``, else the one the inventory records it on.

        Every front end resolves a deployment's provider here; an unknown name
        is never taken to be on some default provider.

        Raises:
            NotFound: no provider was given and nothing by that name is recorded.
            ConfigError: several providers have a deployment by that name and none was given.
        """
        if given:
            return given.strip().lower()
        found = sorted({d.provider for d in self.inventory.list() if d.name == name or d.details.get("group") == name})
        if len(found) > 1:
            from .errors import ConfigError

            raise ConfigError(f"several deployments are named {name!r} ({', '.join(found)})", "pass --provider")
        if not found:
            raise self.not_found(name)
        return found[0]

    def not_found(self, name: str, provider: str | None = None) -> NotFound:
        """The one NotFound every front end shows for an unknown deployment ``name``.

        Args:
            name: the deployment name asked for.
            provider: the provider that was searched (default: every known one).
        """
        searched = [provider] if provider else self.provider_names()
        hint = "list them with `weave deployments`"
        if not provider:  # a deployment the inventory lost (or never made) can still be named with its provider
            hint = "list them with `weave deployments`; for one this inventory does not record, name its provider (--provider)"
        return NotFound(f"no deployment named {name!r} in the inventory (providers searched: {', '.join(searched)})", hint)

    # configuration ----------------------------------------------------------
    def load_spec(self, config: DeploymentConfig) -> Any:
        """Load the weave a config names (cell text, file, or the one in the current folder)."""
        from ..spec.model import find_weave_file, load_weave, parse_weave

        if config.weave_text:
            return parse_weave(config.weave_text, source="<cell>")
        return load_weave(config.weave_file or find_weave_file())

    def configure(self, values: Mapping[str, Any] | DeploymentConfig, defaults: Mapping[str, Any] | None = None,
                  secret_values: bool = True) -> tuple[DeploymentConfig, Any]:
        """Build and validate the config and load its weave.

        Precedence: ``values`` (flags) over ``defaults`` (front-end settings)
        over the weave file's ``deployment`` section. ``secret_values=False``
        leaves the managed secrets' values unlooked-for (``weave estimate``).

        Returns:
            ``(config, spec)``.

        Raises:
            ConfigError, WeaveSpecError: invalid input; nothing was created.
        """
        if isinstance(values, DeploymentConfig):
            values = values.model_dump(exclude_unset=True)
            values["env"] = {k: v.get_secret_value() if hasattr(v, "get_secret_value") else v for k, v in values.get("env", {}).items()}
        values = dict(values)
        probe = DeploymentConfig.model_construct(weave_file=values.get("weave_file"), weave_text=values.get("weave_text"))
        spec = self.load_spec(probe)
        check_file_powers(spec.deployment or {}, spec.env)
        base = file_defaults(spec.deployment or {}, values.get("provider") or (defaults or {}).get("provider"))
        base.update({k: v for k, v in (defaults or {}).items() if v is not None})
        flag_env = {**_plain_env((defaults or {}).get("env")), **_plain_env(values.get("env"))}
        spec_env = spec.resolve_env({**self.auth.environ, **flag_env})  # --env NAME=VALUE satisfies ${NAME}
        config = make_config(values, base)
        if spec_env:  # the weave file's env, weaker than --env; its names were checked when it was parsed
            config = config.model_copy(update={"env": {**{k: SecretStr(v) for k, v in spec_env.items()}, **config.env}})
        if config.secrets and secret_values:  # managed secrets: each one's value from --env or the environment (core.secrets)
            from .secrets import with_secret_values

            config = with_secret_values(config, {**self.auth.environ, **flag_env})
        return config, spec

    def settings_hash(self, config: DeploymentConfig) -> str:
        """A hash of every setting that changes a deployment; env values are salted, never stored."""
        salt = self._salt()
        env = {k: hashlib.sha256(salt + v.get_secret_value().encode()).hexdigest() for k, v in sorted(config.env.items())}
        data = config.model_dump(mode="json", exclude={"weave_file", "weave_text", "env", "auth", "adopt"})
        data.get("options", {}).pop("canary", None)  # how traffic is split is not what runs
        data["env"] = env
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()

    def _salt(self) -> bytes:
        """This home's random salt, created once (see :func:`~weave_nb.core.private_files.write_once`)."""
        return write_once(self.home / "salt", lambda: _secrets.token_hex(16).encode())

    def context(self, provider: str, name: str, sink: Sink = null_sink, env: Mapping[str, str] | None = None, total: int = 0) -> DeployContext:
        """A DeployContext for one operation on one deployment."""
        return DeployContext(
            provider, name, self.inventory, Reporter(sink, total=total), self.auth, env=env, sleep=self.sleep
        )

    def _prepare(self, values: Any, defaults: Mapping[str, Any] | None) -> tuple[DeploymentConfig, DeploymentProvider, Artifact]:
        config, provider, artifact = self.package(values, defaults)
        self._guard(lambda: provider.check_credentials(config), config)
        return config, provider, artifact

    def package(self, values: Any, defaults: Mapping[str, Any] | None = None) -> tuple[DeploymentConfig, DeploymentProvider, Artifact]:
        """The artifact a deploy of ``values`` would ship, built and checked but not deployed (``weave package``).

        The same preparation a deploy runs (config, weave, the provider's
        checks and ``build_artifact``), without credentials or remote calls.

        Returns:
            ``(config, provider, artifact)``.

        Raises:
            ConfigError, WeaveSpecError: invalid input.
        """
        config, spec = self.configure(values, defaults)
        provider = self.provider(config.provider)
        if (config.options or {}).get("canary") is not None:
            from . import rollout

            config = rollout.check_canary(self, provider, config)

        def checked() -> Artifact:
            provider.validate_config(config)
            artifact = provider.build_artifact(spec, config)
            provider.validate_artifact(artifact, config)
            return artifact

        return config, provider, self._guard(checked, config)

    # operations -----------------------------------------------------------
    def plan(self, values: Any, defaults: Mapping[str, Any] | None = None, sink: Sink = null_sink) -> Plan:
        """What a deploy would do, without doing it (a dry run).

        A region list (``region="us-east-1,eu-west-1"``) plans a deployment group: one plan with each region's steps.
        """
        regions = group_request(self, values, defaults)
        if regions is not None:
            return plan_group(self, values, defaults, sink, regions)
        config, provider, artifact = self._prepare(values, defaults)
        return self._planned(config, provider, artifact, sink, self.settings_hash(config))[1]

    def _planned(self, config: DeploymentConfig, provider: DeploymentProvider, artifact: Artifact, sink: Sink, settings: str) -> tuple[DeployContext, Plan]:
        """Ask the provider for its plan inside a fresh context and announce it; returns both."""
        ctx = self.context(config.provider, config.name, self._scrubbing(sink, config), env=config.env_plain())
        ctx.settings_hash = settings
        ctx.scrub = lambda text: self._scrub(text, config)
        from . import rollout

        plan = rollout.plan_deploy(self, provider, ctx, config, artifact, settings)  # a group's members plan the same way
        ctx.reporter.total = len(plan.steps)
        DisplayOnlyExecutor().run(plan, ctx)
        return ctx, plan

    def deploy(self, values: Any, defaults: Mapping[str, Any] | None = None, sink: Sink = null_sink, dry_run: bool = False) -> DeploymentInfo | Plan:
        """Deploy (or, with ``dry_run``, plan) a weave.

        Args:
            values: a DeploymentConfig or a mapping of its fields (flags).
            defaults: front-end defaults, weaker than ``values``, stronger than the weave file.
            sink: receives progress events as they happen.
            dry_run: stop after the plan and return it.

        Returns:
            The DeploymentInfo, or the Plan for a dry run.

        Raises:
            WeaveError: bad input (nothing created) or a failed deploy (the
                inventory says what exists; the message and suggestion say what to do).
        """
        if dry_run:
            return self.plan(values, defaults, sink)  # the same plan, given to the display-only executor
        regions = group_request(self, values, defaults)
        if regions is not None:  # a deployment group: one member per region (see core.regions)
            return deploy_group(self, values, defaults, sink, regions)
        config, provider, artifact = self._prepare(values, defaults)
        settings = self.settings_hash(config)
        with self._changing(config.provider, config.name):
            ctx, plan = self._planned(config, provider, artifact, sink, settings)
            previous = ctx.record
            if previous is None or plan.has_changes or previous.status != DeploymentStatus.ACTIVE:
                # marked sandbox from the start, so a failed or stopped sandbox deploy goes with the sandbox too
                region = config.region or (previous.region if previous is not None else None) or provider.region_default
                ctx.save(status=DeploymentStatus.DEPLOYING, region=region, message=None,
                         details=sandbox_details({}, config.provider))
            executor = Executor(provider, provider.keep_on_failure(config))
            try:
                run = executor.run(plan, ctx, config, artifact)
                info = provider.finish(run)
            except BaseException as exc:
                message = self._scrub(getattr(exc, "message", None) or str(exc) or type(exc).__name__, config)
                suggestion = getattr(exc, "suggestion", None) or (
                    f"deploy again to finish, or `weave undeploy {config.name} --provider {config.provider}` to remove what was made"
                )
                restored = executor.last is not None and executor.last.rolled_back and previous is not None \
                    and previous.status == DeploymentStatus.ACTIVE
                if restored:  # the new release failed, the old one was never touched or was put back: it still serves
                    message = f"the new release failed and was rolled back; the previous release still serves: {message}"
                    ctx.save(status=DeploymentStatus.ACTIVE, message=message[:2000])
                else:
                    ctx.save(status=DeploymentStatus.FAILED, message=message[:2000])
                ctx.reporter.emit(Done(ok=False, message=message, suggestion=suggestion))
                if isinstance(exc, WeaveError):
                    raise type(exc)(message, suggestion) from None
                if isinstance(exc, Exception):
                    raise DeploymentFailed(message, suggestion) from None
                raise
            if not plan.has_changes:
                # never "no changes" over a record that was failed or unfinished: say it was repaired
                repaired = previous is not None and previous.status != DeploymentStatus.ACTIVE
                message = "no changes: the live resources already match; the record is active again" if repaired else "no changes"
                ctx.log(message)
                info = info.model_copy(update={"message": message})
            info = ctx.save(
                status=info.status,
                endpoint=info.endpoint,
                region=info.region or config.region,
                version=info.version,
                content_hash=artifact.content_hash,
                settings_hash=settings,
                message=info.message,
                # timeout_seconds: what `weave invoke` waits for (plus a margin); None clears an earlier one
                details=sandbox_details({**info.details, "timeout_seconds": config.timeout_seconds}, config.provider),
            )
            from . import rollout

            rollout.record_deploy(self, ctx, run, config, artifact, settings, info)
            ctx.reporter.emit(Done(ok=info.status == DeploymentStatus.ACTIVE, message=info.message or "deployed", info=info))
            return info

    def status(self, name: str, provider: str | None = None, region: str | None = None) -> DeploymentInfo:
        """The live status of one deployment, by the same rule as :meth:`list` (``effective_status``).

        Args:
            name: the deployment.
            provider: its provider (default: the one the inventory records it on).

        Raises:
            NotFound: nothing by that name is recorded or found.
            ConfigError: ``name`` is not a valid deployment name.
        """
        check_name(name)
        provider, name = resolve_region(self, name, provider, region)  # a group's member (region: which one)
        prov = self.provider(provider)
        ctx = self.context(provider, name)
        try:
            live = self._guard(lambda: prov.status(ctx))
        except NotFound:
            if ctx.record is None:
                raise self.not_found(name, provider) from None
            live = None
        return effective_status(ctx.record, live, locked=self.inventory.is_locked(provider, name))

    def destroy(self, name: str, provider: str | None = None, sink: Sink = null_sink, dry_run: bool = False,
                region: str | None = None, **options: Any) -> DeploymentInfo | Plan:
        """Remove every resource a deployment made and forget it (or, with ``dry_run``, return the undeploy plan).

        ``provider`` defaults to the one the deployment is recorded on.

        The provider plans one delete step per resource (checking each is this
        inventory's, unless ``adopt=True``); the executor runs them and
        journals each as it goes.

        Raises:
            NotFound: nothing by that name is recorded or found.
            ForeignResource: a resource to delete was not made by this inventory; nothing was removed.
            WeaveError: a resource could not be removed (the rest is kept on record).
            ConfigError: ``name`` is not a valid deployment name (nothing is looked up or created).

        A deployment group (see :mod:`~weave_nb.core.regions`) is removed from every region, or only from ``region``.
        """
        check_name(name)
        group = group_of(self, name, provider) if region is None else None
        if group is not None:
            return destroy_group(self, name, group[0], group[1], sink, dry_run, **options)
        if region is not None:
            provider, name = resolve_region(self, name, provider, region)
        provider = self.provider_of(name, provider)
        prov = self.provider(provider)
        if dry_run:
            ctx = self.context(provider, name, sink)
            plan = self._guard(lambda: prov.plan_destroy(ctx, **options))
            return DisplayOnlyExecutor().run(plan, ctx)
        with self._changing(provider, name):
            ctx = self.context(provider, name, sink)
            try:
                plan = self._guard(lambda: prov.plan_destroy(ctx, **options))
            except NotFound:
                if ctx.record is None:
                    raise self.not_found(name, provider) from None
                plan = None  # recorded but nothing left to remove
            if plan is not None:
                ctx.reporter.total = len(plan.steps)
                ctx.reporter.emit(PlanReady(plan))
                if ctx.record is not None:
                    ctx.save(status=DeploymentStatus.DESTROYING)
                try:
                    self._guard(lambda: Executor(prov).run(plan, ctx))
                except BaseException as exc:
                    if ctx.record is not None:
                        ctx.save(status=DeploymentStatus.FAILED, message=f"undeploy failed: {getattr(exc, 'message', exc)}")
                    ctx.reporter.emit(Done(ok=False, message=str(getattr(exc, "message", exc))))
                    raise
            self.inventory.delete(provider, name)
            from . import rollout

            rollout.store(self).delete(provider, name)
            removed = ctx.record  # what was removed: its region, endpoint and creation time, now destroyed
            if removed is not None:
                info = removed.model_copy(update={"status": DeploymentStatus.DESTROYED, "health": None, "updated_at": utcnow(),
                                                  "message": f"{name} removed from {provider}"})
            else:
                info = DeploymentInfo(name=name, provider=provider, status=DeploymentStatus.DESTROYED)
            ctx.reporter.emit(Done(ok=True, message=f"{name} removed from {provider}", info=info))
            return info

    def list(self, provider: str | None = None, refresh: bool = True, all_owners: bool = False,
             rebuild: bool = False) -> Listing:
        """Every deployment, recorded and live, with drift marked.

        Args:
            provider: only this provider (default: all known).
            refresh: ask the providers for their live view (else: the inventory only).
            all_owners: also list what other inventories made (marked ``drift="other owner"``, never as ours).
            rebuild: record again every live deployment that carries this inventory's owner mark
                but has no row (after a damaged inventory was moved aside); implies ``refresh``.

        Returns:
            A :class:`Listing`; a provider that is not installed or configured is
            skipped with a note, never an error.
        """
        if provider and provider not in self.provider_names():
            self.provider(provider)  # an unknown name: ProviderUnavailable naming the known ones, not an empty list
        names = [provider] if provider else self.provider_names()
        refresh = refresh or rebuild
        damaged: list[str] = []  # notes on inventory rows that cannot be read (skipped, not fatal)
        recorded = self.inventory.list(provider, skipped=damaged)
        by_provider: dict[str, list[DeploymentInfo]] = {}
        for info in recorded:
            by_provider.setdefault(info.provider, []).append(info)
        out = Listing(notes=damaged)
        hidden = 0
        for pname in names:
            records = by_provider.pop(pname, [])
            held = functools.partial(self.inventory.is_locked, pname)
            if not refresh:
                out.deployments.extend(merge_live(records, None, held))
                continue
            try:
                prov = self.provider(pname)
                self._credentials_or_skip(prov, pname)
                live = prov.list_deployments(records)
            except Exception as exc:  # noqa: BLE001 - an unreachable provider must not break the listing
                if provider:
                    if isinstance(exc, WeaveError):
                        raise
                    raise WeaveError(f"could not list {pname} deployments: {_one_line(exc)}",
                                     "check that the provider's service is reachable") from exc
                out.notes.append(f"skipped {pname}: {_one_line(exc)}")
                out.deployments.extend(merge_live(records, None, held))
                continue
            ours, theirs = split_owners(live, self.inventory.owner_id)
            if rebuild:
                records = records + self._rebuild(pname, records, ours, out)
            out.deployments.extend(merge_live(records, ours, held))
            hidden += len(theirs)
            if all_owners:
                out.deployments.extend(theirs)
        if hidden and not all_owners:
            out.notes.append(f"{hidden} deployment(s) made by other inventories are not shown: `weave deployments --all-owners` lists them")
        for pname, rest in by_provider.items():
            out.deployments.extend(merge_live(rest, None, functools.partial(self.inventory.is_locked, pname)))
        out.deployments = [shown_member(d) for d in out.deployments]  # a group's members listed under the group's name
        out.deployments.sort(key=lambda d: (d.created_at, d.name), reverse=True)
        from . import rollout

        for d in out.deployments:  # a canary's split, e.g. "v3 90% / v4 10%"
            traffic = rollout.traffic_of(self, d, refresh)
            if traffic:
                d.details["traffic"] = traffic
        boxed = sorted({d.provider for d in out.deployments if d.details.get("sandbox")})
        if boxed:
            out.notes.append(f"sandbox: the {', '.join(boxed)} deployments marked sandbox run on local stand-ins, not the real cloud")
        return out

    def _rebuild(self, pname: str, records: list[DeploymentInfo], live: list[DeploymentInfo], out: Listing) -> list[DeploymentInfo]:
        """Record the live deployments marked with this inventory's owner id that have no row; return the new rows.

        Only an exact owner mark counts (a resource without one could be anybody's).
        """
        known = {r.name for r in records}
        added = []
        for info in live:
            if info.name in known or info.details.get("owner") != self.inventory.owner_id:
                continue
            added.append(self.inventory.save(
                pname, info.name, status=info.status, region=info.region, endpoint=info.endpoint, version=info.version,
                message="recorded again from the owner marks on its resources (weave deployments --rebuild)",
                details={**info.details, "rebuilt": True},
            ))
        if added:
            out.notes.append(f"rebuilt {len(added)} {pname} deployment(s) from their owner marks: "
                             + ", ".join(sorted(d.name for d in added)))
        return added

    @staticmethod
    def _credentials_or_skip(prov: DeploymentProvider, pname: str) -> None:
        """Raise CredentialsError when ``prov`` has no credentials at all, before it loads its SDK to list.

        Only a CredentialsError counts; any other complaint about the bare
        settings used here is left for ``list_deployments`` to judge.
        """
        try:
            prov.check_credentials(DeploymentConfig(name="list", provider=pname))
        except CredentialsError:
            raise
        except Exception:  # noqa: BLE001 - not a verdict on credentials
            pass

    def invoke(self, name: str, provider: str | None = None, payload: Mapping[str, Any] | None = None, local: bool = False,
               timeout: float | None = None, note: Callable[[str], None] | None = None, region: str | None = None) -> Any:
        """Call a deployed weave and return its JSON answer (provider: default the recorded one).

        An aws deployment made in the sandbox runs its deployed zip locally
        (as ``local=True`` does): the Lambda stand-in's function URLs are not
        reachable. ``note`` receives one line saying so.

        Args:
            timeout: seconds to wait; default the deployment's own timeout plus a margin
                (:func:`weave_nb.core.invoke_wait.invoke_wait`).

        Raises:
            InvokeTimeout: no answer within the wait ("no answer within S s").
            EndpointError: the weave answered an error status.
        """
        return self.invoker(name, provider, local=local, timeout=timeout, note=note, region=region)(payload)

    def invoker(self, name: str, provider: str | None = None, local: bool = False, timeout: float | None = None,
                note: Callable[[str], None] | None = None, region: str | None = None) -> Callable[[Mapping[str, Any] | None], Any]:
        """The call :meth:`invoke` makes, resolved once: a function of the payload (``weave bench`` calls it many times).

        Raises:
            NotFound: nothing by that name is recorded (and ``local`` is not set).
            ConfigError: ``timeout`` is not a positive number.
        """
        from .invoke_wait import invoke_wait

        check_name(name)
        provider, name = resolve_region(self, name, provider, region)
        prov = self.provider(provider)
        ctx = self.context(provider, name)
        if ctx.record is None and not local:
            raise self.not_found(name, provider)
        if not local and provider == "aws" and ctx.record is not None and ctx.record.details.get("sandbox"):
            local = True
            if note is not None:
                note(SANDBOX_INVOKE_NOTE)
        wait = invoke_wait(ctx.record, prov, timeout)
        return lambda payload: self._guard(lambda: prov.invoke(ctx, dict(payload or {}), local=local, timeout=wait))

    def logs(self, name: str, provider: str | None = None, tail: int = 100, region: str | None = None) -> str:
        """Recent log output of a deployment (provider: default the recorded one; region: a group's member)."""
        prov, ctx = self._recorded(name, provider, region)
        return self._guard(lambda: prov.logs(ctx, tail=tail))

    # releases: history, rollback, canary, promote (see weave_nb.core.rollout) -----------------
    def releases(self, name: str, provider: str | None = None, region: str | None = None) -> list[Any]:
        """Every release of a deployment, newest first (:class:`~weave_nb.core.releases.Release`).

        A deployment group: every region's releases (``region`` column set), or only ``region``'s.

        Raises:
            NotFound: nothing by that name is recorded.
        """
        from . import group_releases

        return group_releases.releases(self, name, provider, region)

    def rollback(self, name: str, provider: str | None = None, to: int | None = None, dry_run: bool = False,
                 sink: Sink = null_sink, env: Mapping[str, str] | None = None, region: str | None = None) -> DeploymentInfo | Plan:
        """Make an earlier release live again without rebuilding (or, with ``dry_run``, return the plan).

        Default target: the previous release; during a canary, the live one (the canary gets 0%).
        A deployment group: every region, one plan each (or only ``region``); see :mod:`~weave_nb.core.group_releases`.

        Raises:
            NotFound: no such deployment or release. ConfigError: nothing to roll back to, or it was pruned.
            WeaveError: the provider keeps no releases, or a step failed (the executor undid what it did).
        """
        from . import group_releases

        return group_releases.rollback(self, name, provider, to, dry_run, sink, env, region)

    def promote(self, name: str, provider: str | None = None, dry_run: bool = False, sink: Sink = null_sink,
                region: str | None = None) -> DeploymentInfo | Plan:
        """Send all of the traffic to the canary release (or, with ``dry_run``, return the plan).

        A deployment group: every region's canary, one plan each (or only ``region``'s).

        Raises:
            ConfigError: no canary is on. WeaveError: the provider has no canary, or a step failed.
        """
        from . import group_releases

        return group_releases.promote(self, name, provider, dry_run, sink, region)

    def read_logs(self, name: str, provider: str | None = None, since: Any = None, filter: str | None = None,
                  tail: int | None = None, region: str | None = None) -> list[Any]:
        """A deployment's log lines (:class:`~weave_nb.core.log_lines.LogEntry`), oldest first.

        Args:
            since: ``10m``, ``2h``, an ISO time or a datetime (see :func:`~weave_nb.core.log_lines.parse_since`).
            filter: keep lines containing this text (ignoring case).
            tail: keep the newest ``tail`` lines.

        Raises:
            ConfigError: a bad ``since``; NotFound: no such deployment.
        """
        from .log_lines import parse_since

        when = parse_since(since)
        prov, ctx = self._recorded(name, provider, region)
        return self._guard(lambda: prov.read_logs(ctx, when, filter or None, tail))

    def follow_logs(self, name: str, provider: str | None = None, since: Any = None, filter: str | None = None,
                    tail: int | None = None, region: str | None = None) -> Any:
        """The lines :meth:`read_logs` answers, then each new one as it is written; stop by leaving the loop (or Ctrl-C).

        Bad input and an unknown name fail here, before the first line is read.
        """
        from .log_lines import parse_since

        when = parse_since(since)
        prov, ctx = self._recorded(name, provider, region)
        lines = prov.follow_logs(ctx, when, filter or None, tail)

        def guarded() -> Any:
            try:
                while True:
                    try:
                        entry = next(lines)
                    except StopIteration:
                        return
                    except WeaveError:
                        raise
                    except Exception as exc:  # as _guard: one message and hint, the cause attached
                        raise WeaveError(f"{type(exc).__name__}: {exc}", UNEXPECTED) from exc
                    yield entry
            finally:
                lines.close()

        return guarded()

    def _recorded(self, name: str, provider: str | None, region: str | None = None) -> tuple[DeploymentProvider, DeployContext]:
        """The provider and context of a recorded deployment (NotFound otherwise); a group's member in ``region``."""
        check_name(name)
        provider, name = resolve_region(self, name, provider, region)
        prov = self.provider(provider)
        ctx = self.context(provider, name)
        if ctx.record is None:
            raise self.not_found(name, provider)
        return prov, ctx

    # helpers --------------------------------------------------------------
    @contextlib.contextmanager
    def _changing(self, provider: str, name: str) -> Any:
        """Hold the deployment's lock; afterwards (done or failed) tell this process's listeners (e.g. a board)."""
        try:
            with self.inventory.lock(provider, name, wait=self.lock_wait):
                yield
        finally:
            inventory_changed(provider, name)

    def _guard(self, fn: Callable[[], Any], config: DeploymentConfig | None = None) -> Any:
        """Run ``fn``; any failure leaves as a WeaveError whose message holds no secret of ``config``."""
        try:
            return fn()
        except WeaveError as exc:
            if config is not None:
                scrubbed = self._scrub(exc.message, config)
                if scrubbed != exc.message:
                    raise type(exc)(scrubbed, exc.suggestion) from None
            raise
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"
            # any other error that quotes a secret is replaced, so the secret never reaches a traceback
            if config is not None:
                scrubbed = self._scrub(text, config)
                if scrubbed != text:
                    raise DeploymentFailed(scrubbed, "nothing was deployed; fix the problem and run again") from None
            # every front end shows a WeaveError as a message and a hint; the original stays attached as the cause
            raise WeaveError(text, UNEXPECTED) from exc

    def _scrubbing(self, sink: Sink, config: DeploymentConfig) -> Sink:
        """Wrap ``sink`` so no event text (log lines, step details, messages) carries a secret of ``config``."""

        def scrubbing(event: Any) -> None:
            changes = {}
            for name in ("text", "detail", "message", "description", "suggestion"):
                value = getattr(event, name, None)
                if isinstance(value, str):
                    clean = self._scrub(value, config)
                    if clean != value:
                        changes[name] = clean
            sink(dataclasses.replace(event, **changes) if changes else event)

        return scrubbing

    def _scrub(self, text: str, config: DeploymentConfig) -> str:
        """``text`` without the secrets of ``config``, also where an error quotes them JSON- or repr-escaped."""
        secrets = [v for v in config.env_plain().values() if len(v) >= 4]
        if config.auth:
            for val in config.auth.params.values():
                raw = val.get_secret_value() if hasattr(val, "get_secret_value") else None
                if raw and len(raw) >= 4:
                    secrets.append(raw)
        return scrub(text, secrets)


SANDBOX_INVOKE_NOTE = ("sandbox: ran the deployed zip on this machine (as --local does); "
                       "the sandbox's Lambda stand-in serves no function URL")


def sandbox_details(details: Mapping[str, Any], provider: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``details`` plus ``sandbox: True`` when a sandbox stands in for ``provider`` (``WEAVE_SANDBOX=1``), else ``sandbox: None``.

    ``WEAVE_SANDBOX_PROVIDERS`` (comma-separated) limits which providers it covers.
    """
    env = os.environ if environ is None else environ
    out = dict(details or {})
    out["sandbox"] = None  # None clears a mark stored by an earlier sandbox deploy
    if env.get("WEAVE_SANDBOX", "").strip().lower() in ("1", "true", "yes", "on"):
        covered = [p.strip() for p in env.get("WEAVE_SANDBOX_PROVIDERS", "").split(",") if p.strip()]
        if not covered or provider in covered:
            out["sandbox"] = True
    return out


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if not isinstance(exc, WeaveError):
        text = f"{type(exc).__name__}: {text}"
    return text.splitlines()[0][:200]


def _plain_env(env: Any) -> dict[str, str]:
    """``--env`` values (NAME=VALUE pairs or a mapping, maybe secret) as plain strings."""
    from .config import parse_env_pairs

    if not env:
        return {}
    if isinstance(env, (list, tuple)):
        env = parse_env_pairs(env)
    if not isinstance(env, Mapping):
        return {}
    return {str(k): v.get_secret_value() if hasattr(v, "get_secret_value") else str(v) for k, v in env.items()}
