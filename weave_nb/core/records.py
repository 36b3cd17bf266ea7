"""Request records parsed out of a deployment's logs, and the numbers ``weave metrics`` shows.

The runtime writes one JSON line per request (``weave_runtime.records``:
``{"type": "weave.request", "time", "request_id", "deployment", "weave",
"status", "duration_ms", "input_tokens", "output_tokens", "agents": [...],
"error"}``). Every provider's logs carry those lines, so metrics work the
same everywhere: read the lines (``DeploymentManager.read_logs``), parse
them here, summarise.

Percentiles use the **nearest-rank** method: with the ``n`` latencies sorted
ascending, the p-th percentile is the value at rank ``ceil(p / 100 * n)``
(1-based), so it is always one of the measured latencies. For 1..100 ms,
p50 = 50, p95 = 95, p99 = 99; for 1..10 ms, p95 = p99 = 10.

An error is a request answered with status 500 or more (a 4xx is the
caller's mistake), as in the CloudWatch ``Errors`` metric.

Estimated model cost: :func:`summarize` takes ``price_of(model)`` answering
``(USD per million input tokens, USD per million output tokens)`` or
``None``. No price table ships yet; when one lands, pass its lookup there
(the CLI, magic and API call :func:`summarize` with ``price_of=None`` today,
and the summary leaves the cost line out).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Sequence

from .log_lines import LogEntry, format_time, parse_time

__all__ = ["AgentCall", "RequestRecord", "Summary", "parse_record", "parse_records", "percentile", "summarize",
           "summary_text", "requests_frame", "read_requests", "RECORD_TYPE"]

RECORD_TYPE = "weave.request"
PriceOf = Callable[[str], "tuple[float, float] | None"]


@dataclass(frozen=True)
class AgentCall:
    """One agent's part of a request."""

    agent: str
    model: str
    backend: str
    duration_ms: float
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class RequestRecord:
    """One request, as the runtime recorded it."""

    time: datetime
    request_id: str
    deployment: str | None
    weave: str | None
    status: int
    duration_ms: float
    input_tokens: int
    output_tokens: int
    agents: tuple[AgentCall, ...] = ()
    error: str | None = None

    @property
    def failed(self) -> bool:
        """True for a server-side error (status 500 or more)."""
        return self.status >= 500


def _record_json(text: str) -> dict | None:
    start = text.find("{")
    if start < 0 or RECORD_TYPE not in text:
        return None
    try:
        data = json.loads(text[start:])
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("type") == RECORD_TYPE else None


def parse_record(entry: LogEntry) -> RequestRecord | None:
    """The request record on a log line, or ``None`` when the line holds none.

    A record without its own ``time`` (Cloud Logging moves ``time`` into the
    entry's timestamp) takes the line's time.
    """
    data = _record_json(entry.text)
    if data is None:
        return None
    when = parse_time(str(data.get("time") or "")) or entry.time
    if when is None:
        return None
    try:
        agents = tuple(AgentCall(str(a.get("agent")), str(a.get("model")), str(a.get("backend")),
                                 float(a.get("duration_ms") or 0.0), int(a.get("input_tokens") or 0),
                                 int(a.get("output_tokens") or 0))
                       for a in data.get("agents") or () if isinstance(a, dict))
        return RequestRecord(time=when, request_id=str(data.get("request_id") or ""), deployment=data.get("deployment"),
                             weave=data.get("weave"), status=int(data["status"]),
                             duration_ms=float(data.get("duration_ms") or 0.0),
                             input_tokens=int(data.get("input_tokens") or 0),
                             output_tokens=int(data.get("output_tokens") or 0), agents=agents, error=data.get("error"))
    except (KeyError, TypeError, ValueError):
        return None


def parse_records(entries: Iterable[LogEntry]) -> list[RequestRecord]:
    """Every request record among ``entries``, oldest first, each request once (by request id and time)."""
    seen: set[tuple[str, datetime]] = set()
    out = []
    for entry in entries:
        rec = parse_record(entry)
        if rec is not None and (rec.request_id, rec.time) not in seen:
            seen.add((rec.request_id, rec.time))
            out.append(rec)
    return sorted(out, key=lambda r: r.time)


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of ``values``; ``None`` for no values."""
    if not values:
        return None
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Summary:
    """What ``weave metrics`` prints."""

    requests: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    input_tokens: int
    output_tokens: int
    first: datetime | None
    last: datetime | None
    statuses: dict[int, int] = field(default_factory=dict)
    agents: dict[str, dict[str, float]] = field(default_factory=dict)
    cost_usd: float | None = None
    unpriced: list[str] = field(default_factory=list)


def summarize(records: Sequence[RequestRecord], price_of: PriceOf | None = None) -> Summary:
    """Counts, error rate, nearest-rank latency percentiles, tokens and per-agent time of ``records``.

    Args:
        records: the requests.
        price_of: ``model -> (USD per 1M input tokens, USD per 1M output tokens)`` or ``None``
            for an unknown model; with it the summary has ``cost_usd`` (the hook for a price table).
    """
    latencies = [r.duration_ms for r in records]
    errors = sum(1 for r in records if r.failed)
    statuses: dict[int, int] = {}
    agents: dict[str, dict[str, float]] = {}
    for rec in records:
        statuses[rec.status] = statuses.get(rec.status, 0) + 1
        for call in rec.agents:
            row = agents.setdefault(call.agent, {"calls": 0, "total_ms": 0.0, "input_tokens": 0, "output_tokens": 0})
            row["calls"] += 1
            row["total_ms"] += call.duration_ms
            row["input_tokens"] += call.input_tokens
            row["output_tokens"] += call.output_tokens
    cost, unpriced = None, []
    if price_of is not None:
        cost = 0.0
        for rec in records:
            for call in rec.agents:
                price = price_of(call.model)
                if price is None:
                    if call.model not in unpriced:
                        unpriced.append(call.model)
                    continue
                cost += call.input_tokens / 1e6 * price[0] + call.output_tokens / 1e6 * price[1]
    n = len(records)
    return Summary(
        requests=n, errors=errors, error_rate=errors / n if n else 0.0,
        p50_ms=percentile(latencies, 50), p95_ms=percentile(latencies, 95), p99_ms=percentile(latencies, 99),
        mean_ms=sum(latencies) / n if n else None,
        input_tokens=sum(r.input_tokens for r in records), output_tokens=sum(r.output_tokens for r in records),
        first=records[0].time if records else None, last=records[-1].time if records else None,
        statuses=dict(sorted(statuses.items())), agents=agents, cost_usd=cost, unpriced=unpriced)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def summary_text(name: str, provider: str, since: datetime | None, summary: Summary) -> str:
    """The summary as ``weave metrics`` prints it."""
    window = f"since {format_time(since)}" if since else "all recorded"
    if not summary.requests:
        return f"no requests recorded for {name!r} on {provider} {window}"
    lines = [
        f"{name} on {provider}, {window}",
        f"  requests      {summary.requests}",
        f"  errors        {summary.errors} ({summary.error_rate * 100:.1f}%, status >= 500)",
        "  statuses      " + ", ".join(f"{code}: {count}" for code, count in summary.statuses.items()),
        f"  latency       p50 {_ms(summary.p50_ms)}, p95 {_ms(summary.p95_ms)}, p99 {_ms(summary.p99_ms)}"
        f" (nearest rank), mean {_ms(summary.mean_ms)}",
        f"  tokens        {summary.input_tokens} in, {summary.output_tokens} out",
    ]
    if summary.cost_usd is not None:
        extra = f" (no price for {', '.join(summary.unpriced)})" if summary.unpriced else ""
        lines.append(f"  est. cost     ${summary.cost_usd:.4f}{extra}")
    for agent, row in summary.agents.items():
        mean = row["total_ms"] / row["calls"] if row["calls"] else 0.0
        lines.append(f"  agent {agent:<12} {int(row['calls'])} calls, mean {mean:.1f} ms, "
                     f"{int(row['input_tokens'])} in / {int(row['output_tokens'])} out tokens")
    lines.append(f"  first/last    {format_time(summary.first)} .. {format_time(summary.last)}")  # type: ignore[arg-type]
    return "\n".join(lines)


def requests_frame(records: Sequence[RequestRecord]) -> Any:
    """One row per request, with real dtypes.

    Columns: ``time`` (datetime64[ns, UTC]), ``request_id``, ``deployment``,
    ``weave``, ``status`` (int64), ``duration_ms`` (float64),
    ``input_tokens``/``output_tokens`` (int64), ``error``, ``failed`` (bool),
    and one ``agent:NAME`` column (float64, ms; NaN when the agent did not run)
    per agent seen, in the order they first ran.
    """
    import pandas as pd

    agents: list[str] = []
    for rec in records:
        for call in rec.agents:
            if call.agent not in agents:
                agents.append(call.agent)
    frame = pd.DataFrame({
        "time": pd.to_datetime([r.time for r in records], utc=True).astype("datetime64[ns, UTC]"),
        "request_id": pd.Series([r.request_id for r in records], dtype=object),
        "deployment": pd.Series([r.deployment for r in records], dtype=object),
        "weave": pd.Series([r.weave for r in records], dtype=object),
        "status": pd.Series([r.status for r in records], dtype="int64"),
        "duration_ms": pd.Series([r.duration_ms for r in records], dtype="float64"),
        "input_tokens": pd.Series([r.input_tokens for r in records], dtype="int64"),
        "output_tokens": pd.Series([r.output_tokens for r in records], dtype="int64"),
        "error": pd.Series([r.error for r in records], dtype=object),
        "failed": pd.Series([r.failed for r in records], dtype=bool),
    })
    for agent in agents:
        frame[f"agent:{agent}"] = pd.Series(
            [sum(c.duration_ms for c in r.agents if c.agent == agent) if any(c.agent == agent for c in r.agents)
             else float("nan") for r in records], dtype="float64")
    return frame


def read_requests(manager: Any, name: str, provider: str | None = None, since: Any = "1h") -> list[RequestRecord]:
    """The request records of a deployment since ``since``, read from its logs through ``manager``."""
    from .log_lines import parse_since

    when = parse_since(since)
    return [r for r in parse_records(manager.read_logs(name, provider, since=when, filter=RECORD_TYPE))
            if when is None or r.time >= when]
