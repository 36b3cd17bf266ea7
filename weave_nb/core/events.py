"""Progress events: small frozen records passed to a sink callback.

Providers never print. They emit events through a :class:`Reporter`; the
front ends (cell output, widgets, CLI lines) decide how to show them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Union


@dataclass(frozen=True)
class StepStarted:
    """A plan step began."""

    step: str
    description: str
    index: int = 0
    total: int = 0


@dataclass(frozen=True)
class StepFinished:
    """A plan step ended: ``outcome`` is ``ok``, ``skipped`` or ``failed``."""

    step: str
    outcome: str = "ok"
    detail: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class LogLine:
    """One line of output from long work (a build, a cloud operation)."""

    text: str
    step: str | None = None


@dataclass(frozen=True)
class ProgressUpdate:
    """How far the whole operation has come, from 0.0 to 1.0."""

    fraction: float
    step: str | None = None


@dataclass(frozen=True)
class WarningEvent:
    """Something the user should know that does not stop the work."""

    text: str


@dataclass(frozen=True)
class PlanReady:
    """The plan that is about to run (or, for a dry run, that would)."""

    plan: Any


@dataclass(frozen=True)
class Done:
    """The operation ended; ``info`` is the final DeploymentInfo when there is one."""

    ok: bool
    message: str = ""
    info: Any = None
    suggestion: str | None = None


Event = Union[StepStarted, StepFinished, LogLine, ProgressUpdate, WarningEvent, PlanReady, Done]
Sink = Callable[[Event], None]


def null_sink(event: Event) -> None:
    """A sink that drops every event."""


@dataclass
class Reporter:
    """Emits events for one operation and keeps count of plan steps.

    Args:
        sink: the callback each event goes to.
        total: how many steps the plan has (for progress fractions).
    """

    sink: Sink = null_sink
    total: int = 0
    clock: Callable[[], float] = time.monotonic
    _done: int = field(default=0, init=False)

    def emit(self, event: Event) -> None:
        """Send one event to the sink; a failing sink never breaks a deploy."""
        try:
            self.sink(event)
        except Exception:  # noqa: BLE001 - a broken display must not break a deploy
            pass

    def log(self, text: str, step: str | None = None) -> None:
        """Emit a log line."""
        self.emit(LogLine(text=text, step=step))

    def warn(self, text: str) -> None:
        """Emit a warning."""
        self.emit(WarningEvent(text=text))

    def progress(self, fraction: float, step: str | None = None) -> None:
        """Emit a progress fraction, clamped to [0, 1]."""
        self.emit(ProgressUpdate(fraction=max(0.0, min(1.0, fraction)), step=step))

    def start(self, step: str, description: str) -> float:
        """Emit StepStarted and return the start time."""
        self.emit(StepStarted(step=step, description=description, index=self._done + 1, total=self.total))
        return self.clock()

    def finish(self, step: str, started: float, outcome: str = "ok", detail: str = "") -> None:
        """Emit StepFinished and the new overall progress."""
        self.emit(StepFinished(step=step, outcome=outcome, detail=detail, seconds=self.clock() - started))
        if outcome != "failed":
            self._done += 1
            if self.total:
                self.progress(self._done / self.total, step)


# ----------------------------------------------------------------------------- inventory changes in this process
_change_listeners: list[Any] = []  # weakref.WeakMethod or plain callables


def on_inventory_change(listener: Callable[[str, str], None]) -> Callable[[], None]:
    """Call ``listener(provider, name)`` after every deploy or undeploy this process makes (any front end).

    A bound method is held weakly, so a widget that is gone stops listening
    by itself. Returns a function that stops the listening.
    """
    import weakref

    ref: Any = weakref.WeakMethod(listener) if hasattr(listener, "__self__") else (lambda: listener)
    _change_listeners.append(ref)

    def stop() -> None:
        if ref in _change_listeners:
            _change_listeners.remove(ref)

    return stop


def inventory_changed(provider: str, name: str) -> None:
    """Tell the listeners that ``provider``/``name`` was deployed, changed or removed; a failing listener is ignored."""
    for ref in list(_change_listeners):
        listener = ref()
        if listener is None:
            _change_listeners.remove(ref)
            continue
        try:
            listener(provider, name)
        except Exception:  # noqa: BLE001 - a display must never break a deploy
            pass
