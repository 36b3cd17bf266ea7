"""The provider interface and the context a provider works in.

A provider turns a :class:`~weave_nb.core.config.DeploymentConfig` and an
:class:`~weave_nb.core.artifact.Artifact` into running resources. It never prints
and never touches the inventory's tables directly: it reports through the
:class:`DeployContext`, which emits events and records every resource the
moment it exists, so a failed or interrupted deploy can be finished or torn
down later.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, Mapping

from pydantic import BaseModel, ConfigDict, ValidationError

from ..core.config import DeploymentConfig, DeploymentInfo, Resource
from ..core.plan import Plan, PlannedStep
from ..core.errors import ConfigError
from ..core.events import Reporter

if TYPE_CHECKING:
    from datetime import datetime

    from ..core.log_lines import LogEntry
    from ..core.artifact import Artifact
    from ..core.auth import AuthenticationManager
    from ..core.executor import Run
    from ..core.inventory import Inventory


class NoOptions(BaseModel):
    """Options model for providers without provider-specific options."""

    model_config = ConfigDict(extra="forbid")


class DeployContext:
    """What a provider may use while it works on one deployment.

    Attributes:
        provider: provider name.
        name: deployment name.
        reporter: emits events (``ctx.log``, ``ctx.warn``, ``ctx.progress``).
        auth: the AuthenticationManager.
        env: the deployment's environment variables, values revealed (never log them).
        sleep: the sleep function (tests pass a fake).
        clock: a monotonic clock.
        record: the inventory row as it stood when the operation began (or ``None``).
        settings_hash: hash of the settings being deployed (set by the manager for plan/deploy).
    """

    def __init__(
        self,
        provider: str,
        name: str,
        inventory: "Inventory",
        reporter: Reporter,
        auth: "AuthenticationManager",
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.name = name
        self.inventory = inventory
        self.reporter = reporter
        self.auth = auth
        self.env = dict(env or {})
        self.sleep = sleep
        self.clock = clock
        self.record = inventory.get(provider, name)
        self.settings_hash: str | None = None
        self.scrub: Callable[[str], str] = self._scrub_env

    def _scrub_env(self, text: str) -> str:
        """``text`` with this deployment's env values masked (the manager widens this to auth secrets)."""
        for value in self.env.values():
            if len(value) >= 4:
                text = text.replace(value, "***")
        return text

    @property
    def owner(self) -> str:
        """This inventory's id: the owner mark on every resource this deployment makes."""
        return self.inventory.owner_id

    # events ---------------------------------------------------------------
    def log(self, text: str, step: str | None = None) -> None:
        """Emit a log line."""
        self.reporter.log(text, step)

    def warn(self, text: str) -> None:
        """Emit a warning."""
        self.reporter.warn(text)

    def progress(self, fraction: float, step: str | None = None) -> None:
        """Emit a progress fraction."""
        self.reporter.progress(fraction, step)

    @contextlib.contextmanager
    def step(self, key: str, description: str) -> Iterator[None]:
        """Run one plan step: emits started/finished (or failed) events around it."""
        started = self.reporter.start(key, description)
        try:
            yield
        except BaseException as exc:
            self.reporter.finish(key, started, "failed", _short(exc))
            raise
        self.reporter.finish(key, started, "ok")

    def skip(self, key: str, description: str, detail: str = "no change") -> None:
        """Report a plan step that needs no work."""
        started = self.reporter.start(key, description)
        self.reporter.finish(key, started, "skipped", detail)

    # inventory --------------------------------------------------------------
    def add_resource(self, kind: str, rid: str, **attrs: Any) -> None:
        """Record a resource the moment it exists (never pass secrets in ``attrs``)."""
        self.inventory.add_resource(self.provider, self.name, kind, rid, **attrs)

    def remove_resource(self, kind: str, rid: str) -> None:
        """Forget a resource once it is deleted."""
        self.inventory.remove_resource(self.provider, self.name, kind, rid)

    def resources(self, kind: str | None = None) -> list[Resource]:
        """The resources recorded for this deployment, oldest first."""
        found = self.inventory.resources(self.provider, self.name)
        return [r for r in found if kind is None or r.kind == kind]

    def save(self, **fields: Any) -> DeploymentInfo:
        """Update this deployment's inventory row (status, endpoint, details...)."""
        return self.inventory.save(self.provider, self.name, **fields)


def _short(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return text.splitlines()[0][:300] if text else type(exc).__name__


class DeploymentProvider(ABC):
    """The interface every provider implements.

    Subclasses set ``name`` and, when they take options, ``options_model``
    (a pydantic model; ``DeploymentConfig.options`` is validated against it
    by :meth:`options`). ``extra`` names the pip extra that installs the
    provider's dependencies.

    Args:
        auth: the AuthenticationManager used for credentials.
    """

    name: ClassVar[str] = ""
    extra: ClassVar[str | None] = None
    options_model: ClassVar[type[BaseModel]] = NoOptions
    description: ClassVar[str] = ""
    region_default: ClassVar[str | None] = None  # recorded from the first row on, so even a failed deploy shows it
    timeout_default: ClassVar[float | None] = None  # the deployment's request timeout when none is set (None: no limit)

    def __init__(self, auth: "AuthenticationManager") -> None:
        self.auth = auth

    # validation, no remote calls -------------------------------------------
    def options(self, config: DeploymentConfig) -> BaseModel:
        """Validate and return ``config.options`` as this provider's options model.

        Raises:
            ConfigError: an option is unknown or invalid.
        """
        try:
            return self.options_model(**config.options)
        except ValidationError as exc:
            from ..core.options import describe_option_errors

            raise ConfigError(*describe_option_errors(exc, self.options_model, self.name)) from None

    def validate_config(self, config: DeploymentConfig) -> None:
        """Check the settings against this provider's limits, without any remote call.

        Raises:
            ConfigError: a setting is out of range; the message says which and what is allowed.
        """
        self.options(config)

    def check_credentials(self, config: DeploymentConfig) -> None:
        """Make sure credentials can be found, without any remote call.

        Raises:
            CredentialsError: none found; the message lists the ways to provide them.
        """

    def build_artifact(self, spec: Any, config: DeploymentConfig) -> "Artifact":
        """Build this provider's artifact for ``spec`` (the default: the plain runtime zip)."""
        from ..core.artifact import build_artifact

        return build_artifact(spec)

    def validate_artifact(self, artifact: "Artifact", config: DeploymentConfig) -> None:
        """Check the artifact against the provider's size limits.

        Raises:
            ConfigError: the artifact is too large.
        """

    def keep_on_failure(self, config: DeploymentConfig) -> bool:
        """True when a failed deploy should keep what it made instead of rolling back (option ``keep_on_failure``)."""
        return bool(getattr(self.options(config), "keep_on_failure", False))

    # operations -----------------------------------------------------------
    @abstractmethod
    def plan(self, config: DeploymentConfig, artifact: "Artifact", ctx: DeployContext) -> Plan:
        """Read the remote state and return the plan a deploy runs; never changes anything.

        Every step that changes something names its apply function
        (``step.call`` → ``apply_<call>``) and the parameters it sends, and,
        where it can be undone, its undo function (``step.undo`` →
        ``undo_<undo>``). A resource found with the deployment's name that
        this inventory did not make stops the plan
        (:func:`weave_nb.core.ownership.check`) unless ``config.adopt``.
        """

    @abstractmethod
    def plan_destroy(self, ctx: DeployContext, **options: Any) -> Plan:
        """Return the undeploy plan: a delete step for every resource the deployment made.

        Raises:
            NotFound: nothing by that name is recorded or found.
            ForeignResource: a resource to delete is not this inventory's.
        """

    @abstractmethod
    def finish(self, run: "Run") -> DeploymentInfo:
        """The deployment as it stands after ``run`` executed its plan (status ``active`` on success)."""

    def apply_step(self, run: "Run", step: PlannedStep) -> Mapping[str, Any] | None:
        """Carry out one step by calling ``apply_<step.call>(run, step)``.

        Returns:
            Values for later steps and ``finish`` (recorded in the journal; never secrets).
        """
        fn = getattr(self, f"apply_{step.call}", None)
        if fn is None:
            raise TypeError(f"{type(self).__name__} has no apply_{step.call} for step {step.key!r}")
        return fn(run, step)

    def undo_step(self, run: "Run", step: PlannedStep, result: Mapping[str, Any]) -> None:
        """Undo one finished step by calling ``undo_<step.undo>(run, step, result)``."""
        fn = getattr(self, f"undo_{step.undo}", None)
        if fn is None:
            raise TypeError(f"{type(self).__name__} has no undo_{step.undo} for step {step.key!r}")
        fn(run, step, result)

    @abstractmethod
    def status(self, ctx: DeployContext) -> DeploymentInfo:
        """The live state of the deployment recorded in ``ctx.record``.

        A recorded deployment that no longer exists is returned with
        ``drift="missing"`` (or NotFound is raised); the manager applies the one
        status rule (:func:`weave_nb.core.listing.effective_status`) to the result.

        Raises:
            NotFound: the deployment does not exist.
        """

    @abstractmethod
    def list_deployments(self, records: list[DeploymentInfo]) -> list[DeploymentInfo]:
        """Every deployment this provider finds live, as the provider itself reports it.

        Each carries the owner mark found on it in ``details["owner"]``. The manager merges the answer with ``records`` through the one status
        rule: a record missing from the answer shows as ``failed``/``missing``,
        an answer without a record as ``unrecorded``.

        Args:
            records: this provider's inventory rows (where to look: regions,
                resource names, pids...).

        Raises:
            CredentialsError: the provider is not configured (the caller skips it with a note).
        """

    def logs(self, ctx: DeployContext, tail: int = 100) -> str:
        """Recent log output of the deployment, as text (the older contract; :meth:`read_logs` is the one to implement).

        Raises:
            WeaveError: this provider cannot show logs here.
        """
        return "\n".join(entry.text for entry in self.read_logs(ctx, tail=tail))

    def read_logs(self, ctx: DeployContext, since: "datetime | None" = None, filter: str | None = None,
                  tail: int | None = None) -> "list[LogEntry]":
        """The deployment's log lines, oldest first.

        Args:
            ctx: the deployment.
            since: only lines at or after this time (UTC); ``None``: as far back as the provider keeps
                (clouds: the last 24 hours).
            filter: only lines containing this text, ignoring case (:func:`weave_nb.core.log_lines.matches`).
            tail: only the newest ``tail`` lines.

        Raises:
            WeaveError: this provider cannot show logs here.
        """
        from ..core.errors import WeaveError
        from ..core.log_lines import LogEntry, select

        if type(self).logs is DeploymentProvider.logs:  # neither contract implemented
            raise WeaveError(f"the {self.name} provider cannot show logs from here")
        text = self.logs(ctx, tail=tail or 100)  # a provider written for the older contract
        return select((LogEntry(None, line) for line in text.splitlines()), since, filter, tail)

    def follow_logs(self, ctx: DeployContext, since: "datetime | None" = None, filter: str | None = None,
                    tail: int | None = None, interval: float = 1.0) -> "Iterator[LogEntry]":
        """The lines :meth:`read_logs` answers, then each new line as it is written, until the caller stops.

        The default reads again every ``interval`` seconds; providers that can
        stream (Docker) or tail a file (local) do better.
        """
        from ..core.log_lines import poll_follow

        first = self.read_logs(ctx, since, filter, tail)
        yield from first
        yield from poll_follow(lambda mark: self.read_logs(ctx, mark, None, None), since, filter, interval, time.sleep,
                               first=first)

    def invoke(self, ctx: DeployContext, payload: dict[str, Any], local: bool = False, timeout: float = 60) -> Any:
        """Call the deployed endpoint with ``payload`` and return the decoded JSON answer.

        The default POSTs to the recorded endpoint; providers override it to
        sign requests or to run the artifact locally. ``timeout`` is the wait
        the manager chose (:mod:`weave_nb.core.invoke_wait`).

        Raises:
            EndpointError: the weave answered an error status (``.status``).
            InvokeTimeout: no answer within ``timeout`` seconds.
        """
        from ..core.http_call import post_json
        from ..core.errors import WeaveError

        endpoint = ctx.record.endpoint if ctx.record else None
        if not endpoint:
            raise WeaveError(f"{ctx.name!r} on {self.name} has no endpoint", "deploy it first, or check `weave status`")
        return post_json(endpoint, payload, timeout=timeout)
