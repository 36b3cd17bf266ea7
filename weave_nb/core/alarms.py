"""Alarms on a deployment's metrics: ``weave alarm``, ``%weave_alarm`` and ``weave_nb.alarm``.

An alarm is a resource of its deployment, made like every other one: the
provider plans it (``plan_alarm``: a create, update or no-change step for the
alarm, and for its notification target), the one
:class:`~weave_nb.core.executor.Executor` runs the plan and journals it, and
every resource is recorded in the inventory the moment it exists, with the
ownership marks. ``weave alarm NAME --dry-run`` shows the plan;
``weave undeploy`` removes the alarms with the rest; ``--delete ALARM``
removes one (and the notification target once no alarm uses it).

The metrics the alarms watch are the ones the runtime emits for every
request (namespace ``WeaveNb``, dimension ``Deployment``: ``Requests``,
``Errors`` for status >= 500, ``Latency`` in milliseconds). Providers without
a metrics service (local, docker) refuse with a clear error before anything
is looked up.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Callable

from .errors import ConfigError
from .events import Done, PlanReady, Sink, null_sink
from .executor import DisplayOnlyExecutor, Executor
from .plan import Plan

KINDS = ("error-rate", "p95-ms")
_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")


@dataclass(frozen=True)
class AlarmSpec:
    """What one alarm watches.

    Attributes:
        kind: ``error-rate`` (percent of requests with status >= 500) or ``p95-ms``
            (95th percentile latency in milliseconds).
        threshold: the alarm fires when the value is above it.
        period: seconds each check looks at (a multiple of 60).
        email: where to send it, or ``None`` (the alarm changes state; nobody is told).
    """

    kind: str
    threshold: float
    period: int = 300
    email: str | None = None

    def alarm_name(self, deployment: str) -> str:
        """The alarm's name: ``weave-nb-<deployment>-<kind>`` (one alarm of each kind per deployment)."""
        return f"weave-nb-{deployment}-{self.kind}"

    def describe(self) -> str:
        """For people: ``error rate above 5% over 300 s`` or ``p95 latency above 800 ms over 300 s``."""
        if self.kind == "error-rate":
            return f"error rate above {self.threshold:g}% over {self.period} s"
        return f"p95 latency above {self.threshold:g} ms over {self.period} s"

    def params(self) -> dict[str, Any]:
        """The spec as plan parameters (JSON values)."""
        return asdict(self)


def alarm_spec(error_rate: float | None = None, p95_ms: float | None = None, email: str | None = None,
               period: int = 300) -> AlarmSpec:
    """Check the alarm arguments and return the spec (nothing remote is touched).

    Raises:
        ConfigError: neither or both of ``error_rate`` and ``p95_ms``, a value out of range, or a bad address.
    """
    if (error_rate is None) == (p95_ms is None):
        raise ConfigError("give one of --error-rate PERCENT or --p95-ms MS",
                          "e.g. weave alarm NAME --error-rate 5 --email you@example.com")
    for value, label in ((error_rate, "--error-rate"), (p95_ms, "--p95-ms")):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"{label} must be a number, got {value!r:.40}", "e.g. --error-rate 5 or --p95-ms 800")
    if error_rate is not None and not 0 < error_rate <= 100:
        raise ConfigError(f"--error-rate is a percentage above 0 and at most 100, got {error_rate:g}", "e.g. --error-rate 5")
    if p95_ms is not None and not 0 < p95_ms <= 3_600_000:
        raise ConfigError(f"--p95-ms must be above 0 ms (and at most an hour), got {p95_ms:g}", "e.g. --p95-ms 800")
    if isinstance(period, bool) or not isinstance(period, int) or period < 60 or period % 60 or period > 86400:
        raise ConfigError(f"--period must be a multiple of 60 seconds from 60 to 86400, got {period!r:.40}",
                          "e.g. --period 300 (five minutes)")
    if email is not None and not _EMAIL.match(email):
        raise ConfigError(f"--email {email!r:.80} is not an e-mail address", "e.g. --email oncall@example.com")
    if error_rate is not None:
        return AlarmSpec("error-rate", float(error_rate), period, email)
    return AlarmSpec("p95-ms", float(p95_ms), period, email)  # type: ignore[arg-type]


def not_available(provider: str) -> ConfigError:
    """The error every front end shows for alarms on a provider without a metrics service."""
    return ConfigError(
        f"alarms are not available on {provider}: a {provider} deployment has no metrics service to watch",
        "alarms work on aws (CloudWatch) and gcp (Cloud Monitoring); here, measure with `weave bench`",
    )


class Alarms:
    """Alarm operations on the deployments of one :class:`~weave_nb.core.manager.DeploymentManager`.

    Args:
        manager: the DeploymentManager (its inventory, providers, lock and error guard).
    """

    def __init__(self, manager: Any) -> None:
        self.manager = manager

    def _open(self, name: str, provider: str | None, sink: Sink) -> tuple[Any, Any]:
        from .config import check_name

        check_name(name)
        mgr = self.manager
        provider = mgr.provider_of(name, provider)
        prov = mgr.provider(provider)
        if not getattr(prov, "supports_alarms", False):
            raise not_available(provider)
        ctx = mgr.context(provider, name, sink)
        if ctx.record is None:
            raise mgr.not_found(name, provider)
        return prov, ctx

    def create(self, name: str, spec: AlarmSpec, provider: str | None = None, sink: Sink = null_sink,
               dry_run: bool = False) -> Plan | list[dict[str, Any]]:
        """Create (or update) the alarm ``spec`` on deployment ``name``.

        Returns:
            The plan with ``dry_run``; else the deployment's alarms afterwards (as :meth:`list`).

        Raises:
            ConfigError: alarms are not available on the provider.
            NotFound: the deployment is not in the inventory.
        """
        return self._execute(name, provider, sink, dry_run, lambda prov, ctx: prov.plan_alarm(ctx, spec),
                             f"alarm {spec.alarm_name(name)}: {spec.describe()}")

    def delete(self, name: str, alarm: str, provider: str | None = None, sink: Sink = null_sink,
               dry_run: bool = False) -> Plan | list[dict[str, Any]]:
        """Remove the alarm named ``alarm`` of deployment ``name`` (and its notification target once unused).

        Raises:
            NotFound: no such alarm is recorded for the deployment.
        """
        return self._execute(name, provider, sink, dry_run, lambda prov, ctx: prov.plan_alarm_delete(ctx, alarm),
                             f"alarm {alarm} removed")

    def list(self, name: str, provider: str | None = None) -> list[dict[str, Any]]:
        """The deployment's alarms as the provider reports them live.

        Returns:
            One dict per alarm: ``name``, ``kind``, ``threshold``, ``state``, ``metric``, ``notify``.
        """
        prov, ctx = self._open(name, provider, null_sink)
        return self.manager._guard(lambda: prov.list_alarms(ctx))

    def _execute(self, name: str, provider: str | None, sink: Sink, dry_run: bool,
                 planner: Callable[[Any, Any], Plan], done: str) -> Plan | list[dict[str, Any]]:
        mgr = self.manager
        prov, ctx = self._open(name, provider, sink)
        if dry_run:
            plan = mgr._guard(lambda: planner(prov, ctx))
            return DisplayOnlyExecutor().run(plan, ctx)
        with mgr._changing(ctx.provider, name):
            plan = mgr._guard(lambda: planner(prov, ctx))
            ctx.reporter.total = len(plan.steps)
            ctx.reporter.emit(PlanReady(plan))
            try:
                mgr._guard(lambda: Executor(prov).run(plan, ctx))
            except BaseException as exc:
                ctx.reporter.emit(Done(ok=False, message=str(getattr(exc, "message", exc)),
                                       suggestion=getattr(exc, "suggestion", None)))
                raise
            ctx.reporter.emit(Done(ok=True, message=done if plan.has_changes else "no changes"))
        return self.list(name, ctx.provider)
