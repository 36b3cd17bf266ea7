"""Live progress for deploys: the state of a running operation and three ways to show it.

:class:`ProgressState` folds events into steps, a fraction and the latest log
lines (pure Python, thread-safe). The views render it as it changes:

- :class:`WidgetProgress`: ipywidgets (steps, a progress bar, latest log lines),
  replaced by a static HTML/text copy when the operation ends, so a saved
  notebook (nbconvert, nbclient) keeps the final state without widget state;
- :class:`HtmlProgress`: one display updated in place through a display id;
- :class:`TextProgress`: plain lines as events arrive (terminal IPython, CI).

IPython and ipywidgets are imported lazily, only by the views that need them.
"""

from __future__ import annotations

import contextvars
import html
import importlib.util
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, TextIO

from ..core.events import (
    Done,
    Event,
    LogLine,
    PlanReady,
    ProgressUpdate,
    StepFinished,
    StepStarted,
    WarningEvent,
)
from ..core.present import color, hint_html, hint_line, step_color
from .render import format_event, line_sink

TRANSCRIPT_LINES = 400
BAR_WIDTH, BAR_ROW, BAR_GAP = "20em", "28px", "6px"  # the bar row, live (widget) and static (HTML) alike
MARKS = {"pending": "·", "running": "▶", "ok": "✓", "skipped": "=", "failed": "✗"}


@dataclass
class StepView:
    """One step as shown: its key, description and state (pending, running, ok, skipped, failed)."""

    key: str
    description: str
    state: str = "pending"
    detail: str = ""
    seconds: float = 0.0


class ProgressState:
    """Everything a progress view shows, folded from events as they arrive.

    ``transcript`` keeps the events as text lines (the last 400), the form a
    text-only renderer shows for a finished operation.

    Args:
        title: a heading, e.g. ``deploy demo``.
        log_lines: how many of the latest log lines to keep.
    """

    def __init__(self, title: str = "", log_lines: int = 8, clock: Callable[[], float] = time.monotonic,
                 failure_below: bool = False) -> None:
        self.title = title
        # the front end shows a failure's message and hint right below the view (a magic's error, a form's
        # output): the view then says only which step failed, so each is shown once
        self.failure_below = failure_below
        self.clock = clock
        self.started: float | None = None  # the first event's time
        self.ended: float | None = None  # the Done event's time
        self.steps: list[StepView] = []
        self.fraction = 0.0
        self.logs: deque[str] = deque(maxlen=max(1, log_lines))
        self.warnings: list[str] = []
        self.done: Done | None = None
        self.events = 0
        self.transcript: deque[str] = deque(maxlen=TRANSCRIPT_LINES)
        self._lock = threading.RLock()

    def apply(self, event: Event) -> None:
        """Fold one event into the state."""
        with self._lock:
            self.events += 1
            if self.started is None:
                self.started = self.clock()
            line = format_event(self._quiet(event) if self.failure_below else event)
            if line is not None and not (self.failure_below and isinstance(event, Done) and not event.ok):
                self.transcript.extend(line.splitlines())
            if isinstance(event, PlanReady):
                known = {s.key for s in self.steps}
                for planned in getattr(event.plan, "steps", []):
                    if planned.key not in known:
                        self.steps.append(StepView(planned.key, planned.resource))
            elif isinstance(event, StepStarted):
                step = self._step(event.step, event.description)
                step.description, step.state = event.description, "running"
            elif isinstance(event, StepFinished):
                step = self._step(event.step, event.step)
                detail = "" if self.failure_below and event.outcome == "failed" else event.detail
                step.state, step.detail, step.seconds = event.outcome, detail, event.seconds
            elif isinstance(event, LogLine):
                for line in event.text.splitlines() or [""]:
                    self.logs.append(line)
            elif isinstance(event, ProgressUpdate):
                self.fraction = event.fraction
            elif isinstance(event, WarningEvent):
                self.warnings.append(event.text)
            elif isinstance(event, Done):
                self.done = event
                self.ended = self.clock()
                if event.ok:
                    self.fraction = 1.0

    def elapsed(self) -> float:
        """Seconds from the first event to the end (or to now, while running)."""
        if self.started is None:
            return 0.0
        return max(0.0, (self.ended if self.ended is not None else self.clock()) - self.started)

    def bar_label(self) -> str:
        """The words beside the bar: percent done and elapsed time, e.g. ``40% · 3.2s``."""
        return f"{self.fraction:.0%} · {self.elapsed():.1f}s"

    def bar_tone(self) -> str:
        """The bar's tone: running, ok or failed (so a failed operation's bar is not the running blue)."""
        return "running" if self.done is None else "ok" if self.done.ok else "failed"

    @staticmethod
    def _quiet(event: Event) -> Event:
        """``event`` without the failure detail the front end shows below the view."""
        if isinstance(event, StepFinished) and event.outcome == "failed" and event.detail:
            return StepFinished(event.step, event.outcome, "", event.seconds)
        return event

    def _step(self, key: str, description: str) -> StepView:
        for step in self.steps:
            if step.key == key:
                return step
        step = StepView(key, description)
        self.steps.append(step)
        return step

    @property
    def status(self) -> str:
        """running, done or failed."""
        if self.done is None:
            return "running"
        return "done" if self.done.ok else "failed"

    def render_text(self) -> str:
        """The state as plain text (the text/plain form of every display)."""
        with self._lock:
            lines = [f"{self.title}: {self.status} ({self.bar_label()})" if self.title else f"{self.status} ({self.bar_label()})"]
            for s in self.steps:
                extra = f" ({s.seconds:.2f}s)" if s.state in ("ok", "failed") else ""
                detail = f": {s.detail}" if s.detail else ""
                lines.append(f"  {MARKS.get(s.state, '?')} {s.description}{extra}{detail}")
            lines.extend(f"  warning: {w}" for w in self.warnings)
            lines.extend(f"    | {line}" for line in self.logs)
            if self.done is not None and not (self.failure_below and not self.done.ok):
                lines.append(("  " + self.done.message) if self.done.message else "")
                if not self.done.ok and self.done.suggestion:
                    lines.append(hint_line(self.done.suggestion))
            return "\n".join(line for line in lines if line)

    def render_steps_html(self) -> str:
        """The steps and warnings as HTML."""
        with self._lock:
            items = []
            for s in self.steps:
                extra = f" <span style='color:{color('muted')}'>{s.seconds:.2f}s</span>" if s.state in ("ok", "failed") else ""
                detail = f" — {html.escape(s.detail)}" if s.detail else ""
                items.append(
                    f"<div style='color:{step_color(s.state)}'>{MARKS.get(s.state, '?')} {html.escape(s.description)}{extra}{detail}</div>"
                )
            items.extend(f"<div style='color:{color('warning')}'>warning: {html.escape(w)}</div>" for w in self.warnings)
            return "".join(items)

    def render_logs_html(self) -> str:
        """The latest log lines as an HTML block."""
        with self._lock:
            if not self.logs:
                return ""
            body = html.escape("\n".join(self.logs))
            return f"<pre style='margin:4px 0;max-height:12em;overflow:auto;font-size:85%'>{body}</pre>"

    def render_done_html(self) -> str:
        """The outcome line as HTML (empty while running)."""
        with self._lock:
            if self.done is None:
                return ""
            tone = color("ok" if self.done.ok else "failed")
            if self.failure_below and not self.done.ok:
                return f"<div style='color:{tone};font-weight:bold'>failed</div>"  # the message and hint follow below
            text = html.escape(self.done.message or ("done" if self.done.ok else "failed"))
            hint = hint_html(self.done.suggestion) if not self.done.ok else ""
            return f"<div style='color:{tone};font-weight:bold'>{text}</div>{hint}"

    def render_html(self) -> str:
        """The whole state as one HTML block (title, steps, bar, logs, outcome)."""
        with self._lock:
            # the same rows, widths and heights as the live widget, so the static copy replacing it does not jump
            title = f"<div class='weave-progress-title'><b>{html.escape(self.title)}</b></div>" if self.title else ""
            bar = (
                f"<div class='weave-progress-bar' style='display:flex;align-items:center;gap:{BAR_GAP};height:{BAR_ROW}'>"
                f"<progress value='{self.fraction:.3f}' max='1' style='width:{BAR_WIDTH};accent-color:{color(self.bar_tone())}'>"
                f"</progress><span>{html.escape(self.bar_label())}</span></div>"
            )
            return (
                f"<div class='weave-progress'>{title}{bar}{self.render_steps_html()}"
                f"{self.render_logs_html()}{self.render_done_html()}</div>"
            )



class _Throttle:
    """Calls ``flush`` at most every ``interval`` seconds; a skipped call is flushed later by a timer."""

    def __init__(self, flush: Callable[[], None], interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.flush, self.interval, self.clock = flush, interval, clock
        self._last = float("-inf")
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def __call__(self, urgent: bool) -> None:
        with self._lock:
            now = self.clock()
            if not urgent and now - self._last < self.interval:
                if self._timer is None:
                    # run in the caller's context, so a display update keeps the cell's parent message
                    context = contextvars.copy_context()
                    self._timer = threading.Timer(self.interval, context.run, args=(self._late,))
                    self._timer.daemon = True
                    self._timer.start()
                return
            self._cancel()
            self._last = now
        self.flush()

    def _late(self) -> None:
        with self._lock:
            self._timer = None
            self._last = self.clock()
        self.flush()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        """Cancel a pending late flush."""
        with self._lock:
            self._cancel()


class ProgressView:
    """Base of the views: a sink that folds events into :attr:`state` and re-renders.

    Log lines and progress fractions are rendered at most every ``interval``
    seconds (a late flush follows, so the latest line is never lost); step
    changes, warnings and the end are rendered at once.
    """

    def __init__(self, title: str = "", log_lines: int = 8, interval: float = 0.1, failure_below: bool = False) -> None:
        self.state = ProgressState(title, log_lines, failure_below=failure_below)
        self._throttle = _Throttle(self.refresh, interval)

    def __call__(self, event: Event) -> None:
        self.state.apply(event)
        urgent = not isinstance(event, (LogLine, ProgressUpdate))
        if isinstance(event, Done):
            self._throttle.close()
            self.finish()
        else:
            self._throttle(urgent)

    def refresh(self) -> None:
        """Show the current state (subclasses)."""

    def finish(self) -> None:
        """Show the final state (default: one more refresh)."""
        self.refresh()

    def close(self, message: str = "interrupted") -> None:
        """End the view even when no Done event came (an error or an interrupt).

        Nothing is shown when no event ever arrived (e.g. a usage error).
        """
        self._throttle.close()
        if self.state.done is None and self.state.events:
            self.state.apply(Done(ok=False, message=message))
            self.finish()


class TextProgress(ProgressView):
    """Plain lines, one per event, written as events arrive (terminal IPython, nbconvert, CI).

    Args:
        stream: where to write (default: the current ``sys.stdout``).
        verbose: passed to :func:`weave_nb.frontends.render.format_event`.
        show_done: also print the final Done line.
    """

    def __init__(self, title: str = "", stream: TextIO | None = None, verbose: bool = False, show_done: bool = False,
                 failure_below: bool = False) -> None:
        super().__init__(title, failure_below=failure_below)
        self._stream = stream
        self._verbose = verbose
        self._show_done = show_done

    def __call__(self, event: Event) -> None:
        self.state.apply(event)
        shown = self.state._quiet(event) if self.state.failure_below else event
        line_sink(self._stream or sys.stdout, self._verbose, skip_done=not self._show_done)(shown)

    def close(self, message: str = "interrupted") -> None:
        """Nothing to clean up (errors are reported by the caller)."""


class HtmlProgress(ProgressView):
    """One rich display (HTML + text) updated in place through a display id.

    Args:
        display: IPython's ``display`` (injectable for tests).
    """

    def __init__(self, title: str = "", log_lines: int = 8, display: Callable[..., Any] | None = None,
                 failure_below: bool = False) -> None:
        super().__init__(title, log_lines, failure_below=failure_below)
        if display is None:
            from IPython.display import display
        self._display = display
        self._handle: Any = None

    def refresh(self) -> None:
        if self._handle is None:
            self._handle = self._display(_Snapshot(self.state), display_id=True)
        else:
            self._handle.update(_Snapshot(self.state))


class WidgetProgress(ProgressView):
    """An ipywidgets view: steps, a progress bar and the latest log lines.

    The widget is :attr:`widget`; it is not displayed by the constructor.
    :meth:`show` displays it in the current cell and, at the end, replaces it
    with a static copy of the final state (so saved notebooks keep it).
    """

    def __init__(self, title: str = "", log_lines: int = 8, interval: float = 0.1, failure_below: bool = False) -> None:
        import ipywidgets as w

        super().__init__(title, log_lines, interval, failure_below)
        self.title_html = w.HTML(f"<b>{html.escape(title)}</b>" if title else "")
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, description="", bar_style="info",
                                   layout=w.Layout(width=BAR_WIDTH, height=BAR_ROW))
        self.bar_label = w.HTML("")  # percent and elapsed time
        self.steps_html = w.HTML("")
        self.log_html = w.HTML("")
        self.done_html = w.HTML("")
        self.bar_row = w.HBox([self.bar, self.bar_label], layout=w.Layout(align_items="center", height=BAR_ROW))
        self.widget = w.VBox([self.title_html, self.bar_row, self.steps_html, self.log_html, self.done_html])
        self._ticker: threading.Timer | None = None
        self._handle: Any = None
        self._display: Callable[..., Any] | None = None

    def show(self, display: Callable[..., Any] | None = None) -> WidgetProgress:
        """Display the widget (with a display id) in the current output when the first event arrives.

        Returns:
            self.
        """
        if display is None:
            from IPython.display import display
        self._display = display
        return self

    def refresh(self) -> None:
        st = self.state
        if self._display is not None and self._handle is None:
            self._handle = self._display(self.widget, display_id=True)
        self.bar.value = st.fraction
        self.bar_label.value = html.escape(st.bar_label())
        if st.done is None and self._handle is not None and self._ticker is None:
            self._tick_later()
        if st.done is not None:
            self.bar.bar_style = "success" if st.done.ok else "danger"
        self.steps_html.value = st.render_steps_html()
        self.log_html.value = st.render_logs_html()
        self.done_html.value = st.render_done_html()

    def finish(self) -> None:
        self.refresh()
        if self._handle is not None:
            self._handle.update(_Snapshot(self.state))
            # the cell now holds the static copy: free the widgets
            self.close_widgets()

    def _tick_later(self) -> None:
        """Update the elapsed time every second while the operation runs (a long step sends no events)."""
        context = contextvars.copy_context()  # keep the cell's parent message, as the throttle does
        self._ticker = threading.Timer(1.0, context.run, args=(self._tick,))
        self._ticker.daemon = True
        self._ticker.start()

    def _tick(self) -> None:
        if self.state.done is not None or self._ticker is None:
            return
        self.bar_label.value = html.escape(self.state.bar_label())
        self._tick_later()

    def close_widgets(self) -> None:
        """Close the widgets (their models leave the kernel and the frontend)."""
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
        for widget in (self.bar, self.bar_label, *self.widget.children, self.widget):
            widget.close()


class _Snapshot:
    """A frozen copy of a state's rendering (HTML and text), for display/update."""

    def __init__(self, state: ProgressState) -> None:
        self.html = state.render_html()
        # the end state's text form is the event lines (what a text-only renderer shows)
        self.text = "\n".join(state.transcript) if state.done is not None else state.render_text()

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def in_kernel(shell: Any) -> bool:
    """True when ``shell`` runs in a Jupyter kernel (so rich displays and widgets can show)."""
    return shell is not None and getattr(shell, "kernel", None) is not None


def make_view(mode: str, shell: Any = None, title: str = "", log_lines: int = 8, verbose: bool = False,
              failure_below: bool = False) -> ProgressView:
    """The progress view for a cell.

    Args:
        mode: ``auto`` (widgets in a kernel that has ipywidgets, else text), ``widgets``, ``html`` or ``text``.
        shell: the InteractiveShell (decides ``auto``).
        title: the heading.
        log_lines: latest log lines kept on screen.
        verbose: for text mode, every log line.
        failure_below: the caller shows a failure's message and hint below the view (so the view does not).

    Returns:
        A displayed view; call it with events, then ``close()``.
    """
    if mode == "auto":
        mode = "widgets" if in_kernel(shell) and importlib.util.find_spec("ipywidgets") else "text"
    if mode == "widgets":
        return WidgetProgress(title, log_lines, failure_below=failure_below).show()
    if mode == "html":
        return HtmlProgress(title, log_lines, failure_below=failure_below)
    return TextProgress(title, verbose=verbose, failure_below=failure_below)
