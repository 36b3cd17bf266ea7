"""The shared presenters: one palette, one way to write a hint, and the HTML every front end shows.

Text: :func:`with_hint` and :func:`error_text` are the only places a
``hint:`` line is written (``WeaveError.__str__``, CLI lines, magics,
progress views and widgets all use them). HTML: :func:`deployment_html`,
:func:`plan_html`, :func:`deployments_html` and the colour helpers are shared
by ``DeploymentInfo``/``Plan`` displays, progress views and widgets.

Standard library only, and no import of the rest of weave_nb at module
level, so :mod:`weave_nb.core.errors` can use it.
"""

from __future__ import annotations

import html
import re
from typing import Any, Iterable, Mapping

# JupyterLab's theme variables, so every colour follows the light and the dark
# theme; the fallback after the comma is for pages without them (nbviewer,
# classic Notebook, exported HTML).
PALETTE = {
    "ok": "var(--jp-success-color1, #2e7d32)",
    "failed": "var(--jp-error-color1, #c62828)",
    "running": "var(--jp-brand-color1, #1565c0)",
    "warning": "var(--jp-warn-color1, #e65100)",
    "muted": "var(--jp-content-font-color3, #888)",
    "hint": "var(--jp-content-font-color2, #555)",
    "plain": "var(--jp-content-font-color1, #000)",
    "banner": "var(--jp-layout-color2, #fff3cd)",  # the sandbox banner, running (text: plain)
    "banner-off": "var(--jp-layout-color2, #eee)",
    "banner-edge": "var(--jp-warn-color1, #d39e00)",
}
STATUS_TONES = {"active": "ok", "failed": "failed", "destroyed": "muted"}  # pending, deploying, destroying: running
STEP_TONES = {"pending": "muted", "running": "running", "ok": "ok", "skipped": "muted", "failed": "failed"}
ACTION_TONES = {"create": "ok", "update": "running", "replace": "warning", "delete": "failed", "adopt": "warning",
                "no-change": "muted"}
EMPTY = "—"


def color(tone: str) -> str:
    """The colour of a tone (ok, failed, running, warning, muted, hint, plain)."""
    return PALETTE.get(tone, PALETTE["muted"])


def status_color(status: Any) -> str:
    """The colour of a deployment status (``DeploymentStatus`` or its value)."""
    return color(STATUS_TONES.get(getattr(status, "value", status), "running"))


def step_color(state: str) -> str:
    """The colour of a progress step's state (pending, running, ok, skipped, failed)."""
    return color(STEP_TONES.get(state, "muted"))


def action_color(action: str) -> str:
    """The colour of a plan step's action (create, update, replace, delete, no-change)."""
    return color(ACTION_TONES.get(action, "muted"))


# ----------------------------------------------------------------------------- text
def hint_line(suggestion: str, indent: str = "  ") -> str:
    """The one form of a hint line: ``  hint: <suggestion>``."""
    return f"{indent}hint: {suggestion}"


_URL = re.compile(r"https?://[^\s'\"<>`)]+")
_CLI_COMMAND = re.compile(r"(?<![\w%/-])weave (deploy|plan|deployments|undeploy|status|invoke|logs|sandbox)\b")


def shorten_urls(text: str, limit: int = 60) -> str:
    """``text`` with every URL longer than ``limit`` shortened: no query, and ``host/…/last/two`` for a long path.

    Cloud REST URLs (``…/v2/projects/P/locations/L/functions/F?updateMask=…``)
    otherwise fill a cell's error; the host and the resource's own name stay.
    """
    def short(match: re.Match) -> str:
        url = match.group(0)
        trail = ""
        while url and url[-1] in ".,:;":
            url, trail = url[:-1], url[-1] + trail
        if len(url) <= limit:
            return url + trail
        base = url.split("?", 1)[0].split("#", 1)[0]
        if len(base) > limit:
            scheme, _, rest = base.partition("://")
            host, _, path = rest.partition("/")
            parts = [p for p in path.split("/") if p]
            if len(parts) > 2:
                base = f"{scheme}://{host}/…/{'/'.join(parts[-2:])}"
        return base + ("?…" if "?" in url else "") + trail

    return _URL.sub(short, text)


def magic_syntax(text: str) -> str:
    """``text`` with ``weave COMMAND`` spelled as the magic ``%weave_COMMAND`` (hints shown in a notebook cell)."""
    return _CLI_COMMAND.sub(lambda m: f"%weave_{m.group(1)}", text)


def with_hint(message: str, suggestion: str | None, indent: str = "  ") -> str:
    """``message``, then the hint on its own line when there is a suggestion."""
    return f"{message}\n{hint_line(suggestion, indent)}" if suggestion else message


def error_text(message: str, suggestion: str | None = None) -> str:
    """``error: <message>`` and its hint, as the CLI, magics and widgets print a failure."""
    return with_hint(f"error: {message}", suggestion)


def cell(value: Any, empty: str = EMPTY) -> str:
    """A table cell's text: ``empty`` for None, seconds-precision times, else ``str``."""
    if value is None:
        return empty
    if hasattr(value, "isoformat"):
        return value.isoformat(timespec="seconds")
    return str(value)


# ----------------------------------------------------------------------------- HTML
def hint_html(suggestion: str | None) -> str:
    """The hint as an HTML line (empty without a suggestion)."""
    if not suggestion:
        return ""
    return f"<div style='color:{color('hint')}'>hint: {html.escape(suggestion)}</div>"


def status_html(status: Any) -> str:
    """A status word, coloured and bold."""
    value = getattr(status, "value", status)
    return f"<span style='color:{status_color(value)};font-weight:bold'>{html.escape(str(value))}</span>"


def deployment_html(info: Any) -> str:
    """One deployment (a ``DeploymentInfo``) as an HTML table."""
    esc = html.escape
    endpoint = f'<a href="{esc(info.endpoint)}" target="_blank">{esc(info.endpoint)}</a>' if info.endpoint else EMPTY
    if info.endpoint and getattr(info.status, "value", info.status) == "destroyed":
        endpoint = f"{esc(info.endpoint)} (removed)"  # no link to what no longer answers
    rows = [
        ("name", esc(info.name)),
        ("provider", esc(info.provider)),
        ("status", status_html(info.status)),
        ("endpoint", endpoint),
        ("region", esc(info.region or EMPTY)),
        ("created", esc(cell(info.created_at))),
        ("updated", esc(cell(info.updated_at))),
    ]
    if info.details.get("sandbox"):
        rows.append(("note", "sandbox: local stand-in, not the real cloud"))
    for key in ("health", "drift", "message"):
        if getattr(info, key):
            rows.append((key, esc(getattr(info, key))))
    body = "".join(f"<tr><th style='text-align:left'>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table class='weave-deployment'>{body}</table>"


def plan_html(plan: Any) -> str:
    """A ``Plan`` as HTML: one coloured row per step, then notes."""
    esc = html.escape
    rows = "".join(
        f"<tr><td style='color:{action_color(s.action)}'>{esc(s.action)}</td><td>{esc(s.resource)}</td>"
        f"<td>{esc(s.detail)}</td></tr>"
        for s in plan.steps
    )
    notes = "".join(f"<div>note: {esc(n)}</div>" for n in plan.notes)
    changes = "" if plan.has_changes else "<div>no changes</div>"
    return (
        f"<div class='weave-plan'><b>{esc(plan.title)}</b>"
        f"<table>{rows}</table>{changes}{notes}</div>"
    )


def notes_html(notes: Iterable[str]) -> str:
    """Listing notes (skipped providers, sandbox) as muted lines."""
    return "".join(f"<div style='color:{color('muted')}'>note: {html.escape(n)}</div>" for n in notes)


def deployments_html(rows: list[Mapping[str, Any]], columns: list[str], notes: Iterable[str] = ()) -> str:
    """Deployment rows (``DeploymentInfo.row()`` dicts) as an HTML table with coloured statuses, then notes."""
    if not rows:
        return f"<i>no deployments</i>{notes_html(notes)}"
    head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(
            f"<td>{status_html(r.get(c))}</td>" if c == "status" and r.get(c) else f"<td>{html.escape(cell(r.get(c)))}</td>"
            for c in columns
        ) + "</tr>"
        for r in rows
    )
    return f"<table class='weave-deployments'><tr>{head}</tr>{body}</table>{notes_html(notes)}"
