"""Plain-text rendering of events and listings (CLI lines, notebooks without widgets)."""

from __future__ import annotations

from typing import Any, Callable, TextIO

from ..core.events import Done, Event, LogLine, PlanReady, ProgressUpdate, StepFinished, StepStarted, WarningEvent
from ..core.present import cell, with_hint


def format_event(event: Event, verbose: bool = False) -> str | None:
    """One line of text for an event, or ``None`` when it is not shown.

    Args:
        event: the event.
        verbose: also show progress fractions (every other event is shown either way).
    """
    if isinstance(event, StepStarted):
        count = f"[{event.index}/{event.total}] " if event.total else ""
        return f"==> {count}{event.description}"
    if isinstance(event, StepFinished):
        mark = {"ok": "done", "skipped": "skipped", "failed": "FAILED"}.get(event.outcome, event.outcome)
        detail = f": {event.detail}" if event.detail else ""
        return f"    {mark} ({event.seconds:.2f}s){detail}"
    if isinstance(event, LogLine):
        return f"    {event.text}"
    if isinstance(event, WarningEvent):
        return f"warning: {event.text}"
    if isinstance(event, PlanReady):
        return event.plan.render()
    if isinstance(event, Done):
        if event.ok:
            info = event.info
            if info is not None and getattr(info, "endpoint", None) and getattr(info.status, "value", "") != "destroyed":
                note = f" ({info.message})" if getattr(info, "message", None) else ""
                if (getattr(info, "details", None) or {}).get("sandbox"):
                    note += " (SANDBOX: local stand-in, not the real cloud)"
                return f"OK {info.name} is {info.status.value} at {info.endpoint}{note}"
            return f"OK {event.message}"
        return with_hint(f"ERROR {event.message}", event.suggestion)
    if isinstance(event, ProgressUpdate) and verbose:
        return f"    {event.fraction:.0%} done"
    return None


def line_sink(stream: TextIO, verbose: bool = False, skip_done: bool = False) -> Callable[[Event], None]:
    """A sink that writes each event as a line to ``stream`` as it arrives."""

    def sink(event: Event) -> None:
        if skip_done and isinstance(event, Done):
            return
        text = format_event(event, verbose)
        if text is not None:
            stream.write(text + "\n")
            stream.flush()

    return sink


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A fixed-width text table."""
    if not rows:
        return "(no deployments)"
    cells = [[cell(r.get(c), "-") for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    head = "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))
    body = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join([head, *body])

