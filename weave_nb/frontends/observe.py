"""``weave logs`` / ``weave metrics`` and their magics: what the front ends share.

Lines and numbers come from :class:`~weave_nb.core.manager.DeploymentManager`
(``read_logs``, ``follow_logs``) and :mod:`weave_nb.core.records`; this module
only prints them, and draws the metrics plots (matplotlib, imported when a
plot is drawn).
"""

from __future__ import annotations

from typing import Any, Callable, TextIO

DEFAULT_TAIL = 100


def tail_for(tail: int | None, since: Any) -> int | None:
    """``--tail`` as given, else 100 lines without ``--since`` and every line with it."""
    return tail if tail else (None if since else DEFAULT_TAIL)


def empty_note(name: str, provider: str, since: Any, text: str | None) -> str:
    """What an empty log says (never a blank line)."""
    from ..core.log_lines import format_time, parse_since

    when = parse_since(since)
    where = f" since {format_time(when)}" if when else ""
    match = f" containing {text!r}" if text else ""
    return f"no log lines for {name!r} on {provider}{where}{match}"


def print_logs(mgr: Any, name: str, provider: str, since: Any, text: str | None, tail: int | None, follow: bool,
               write: Callable[[str], None], note: Callable[[str], None]) -> int:
    """Print a deployment's log lines through ``write`` (one call per line); with ``follow``, keep printing.

    Returns:
        0, or 130 when Ctrl-C stopped ``follow`` (nothing else is printed then).
    """
    tail = tail_for(tail, since)
    if not follow:
        entries = mgr.read_logs(name, provider, since=since, filter=text, tail=tail)
        for entry in entries:
            write(entry.line())
        if not entries:
            note(empty_note(name, provider, since, text))
        return 0
    lines = mgr.follow_logs(name, provider, since=since, filter=text, tail=tail)
    try:
        for entry in lines:
            write(entry.line())
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        lines.close()


def cli_logs(mgr: Any, args: Any, provider: str, out: TextIO, err: TextIO) -> int:
    """``weave logs``: lines on ``out``, an empty log's note on ``err``; Ctrl-C during ``--follow`` exits 130 quietly."""

    def write(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    if args.follow:
        err.write(f"following {args.name} on {provider} (Ctrl-C stops)\n")
        err.flush()
    return print_logs(mgr, args.name, provider, args.since, args.filter, args.tail, args.follow, write,
                      lambda text: err.write(text + "\n"))


def cli_metrics(mgr: Any, args: Any, provider: str, out: TextIO) -> int:
    """``weave metrics``: the summary of the requests recorded since ``--since``."""
    from ..core.log_lines import parse_since
    from ..core.records import read_requests, summarize, summary_text

    since = parse_since(args.since)
    records = read_requests(mgr, args.name, provider, since)
    out.write(summary_text(args.name, provider, since, summarize(records)) + "\n")
    return 0


def metrics_figure(frame: Any, title: str = "") -> Any:
    """Latency over time, a latency histogram and per-agent time (stacked bars, newest 50 requests).

    Args:
        frame: from :func:`weave_nb.core.records.requests_frame`.
        title: the figure's title.

    Returns:
        A matplotlib ``Figure`` (made without pyplot, so nothing global changes).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.6), layout="constrained")
    over_time, histogram, per_agent = fig.subplots(1, 3)
    if title:
        fig.suptitle(title)
    ok = frame[~frame["failed"]]
    bad = frame[frame["failed"]]
    over_time.plot(ok["time"], ok["duration_ms"], "o-", markersize=3, linewidth=0.8, label="ok")
    if len(bad):
        over_time.plot(bad["time"], bad["duration_ms"], "x", color="tab:red", label="error (>= 500)")
    over_time.set_title("latency over time")
    over_time.set_ylabel("ms")
    over_time.legend(loc="upper left", fontsize="small")
    over_time.tick_params(axis="x", labelrotation=30, labelsize="small")
    histogram.hist(frame["duration_ms"], bins=min(30, max(5, len(frame) // 3)), color="tab:blue")
    histogram.set_title("latency histogram")
    histogram.set_xlabel("ms")
    histogram.set_ylabel("requests")
    agents = [c for c in frame.columns if c.startswith("agent:")]
    recent = frame.tail(50)
    bottom = [0.0] * len(recent)
    positions = list(range(len(recent)))
    for column in agents:
        values = recent[column].fillna(0.0).tolist()
        per_agent.bar(positions, values, bottom=bottom, label=column.split(":", 1)[1])
        bottom = [b + v for b, v in zip(bottom, values)]
    per_agent.set_title("time per agent (newest requests)")
    per_agent.set_xlabel("request")
    per_agent.set_ylabel("ms")
    if agents:
        per_agent.legend(fontsize="small")
    return fig


def figure_png(fig: Any) -> bytes:
    """The figure as PNG bytes."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()
