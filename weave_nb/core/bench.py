"""A load test of one deployment: ``weave bench``, ``%weave_bench`` and ``weave_nb.bench``.

Every request goes through the same call ``weave invoke`` makes
(:meth:`DeploymentManager.invoker`: the provider's ``invoke``, signed where the
provider signs), from ``concurrency`` worker threads, so at most that many are
in flight at once. The caller's thread collects the answers as they finish
and reports progress; no worker thread touches a display.

The report: throughput (requests finished per second of wall time), the
requests by outcome (HTTP status, ``timeout`` or ``unreachable``), and
latency percentiles computed by the **nearest-rank** method over every
request that got an answer (error statuses included; timeouts and
unreachable ones left out): the p-th percentile of n sorted latencies is the
one at rank ``ceil(p/100 * n)``, so it is always a latency that was measured.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from .errors import ConfigError, EndpointError, InvokeTimeout, WeaveError

#: above this many requests, every front end asks first (``--yes`` skips the question)
CONFIRM_ABOVE = 1000
MAX_REQUESTS = 100_000
MAX_CONCURRENCY = 256
PERCENTILES = (50, 95, 99)


@dataclass(frozen=True)
class Request:
    """One request of a bench run.

    Attributes:
        index: 0-based, in the order it was sent.
        started: seconds after the run began.
        latency_ms: from send to answer (or to the failure), in milliseconds.
        status: the HTTP status (200 on success), or ``None`` when there was no answer.
        outcome: ``ok``, ``error`` (an error status), ``timeout`` or ``unreachable``.
        error: the first line of the failure, or ``""``.
    """

    index: int
    started: float
    latency_ms: float
    status: int | None
    outcome: str
    error: str = ""

    @property
    def key(self) -> str:
        """How it is counted in "by status": the status, or ``timeout``/``unreachable``."""
        return str(self.status) if self.status is not None else self.outcome


@dataclass
class BenchReport:
    """What a bench run measured.

    Attributes:
        name, provider: the deployment.
        requests: one :class:`Request` per request sent, in send order.
        concurrency: the number of workers.
        seconds: wall time from the first send to the last answer.
        peak_in_flight: the most requests that were in flight at once (at most ``concurrency``).
    """

    name: str
    provider: str
    requests: list[Request] = field(default_factory=list)
    concurrency: int = 1
    seconds: float = 0.0
    peak_in_flight: int = 0

    @property
    def count(self) -> int:
        """How many requests were sent."""
        return len(self.requests)

    @property
    def errors(self) -> int:
        """Requests that did not succeed (error status, timeout, unreachable)."""
        return sum(1 for r in self.requests if r.outcome != "ok")

    @property
    def throughput(self) -> float:
        """Requests finished per second of wall time."""
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def by_status(self) -> dict[str, int]:
        """Counts by HTTP status (``"200"``, ``"500"``) or ``timeout``/``unreachable``, most frequent first."""
        counts: dict[str, int] = {}
        for r in self.requests:
            counts[r.key] = counts.get(r.key, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def latencies(self) -> list[float]:
        """Latencies (ms) of the requests that got an answer, any status."""
        return [r.latency_ms for r in self.requests if r.status is not None]

    def percentiles(self, points: Iterable[int] = PERCENTILES) -> dict[str, float | None]:
        """``{"p50": ms, "p95": ms, "p99": ms}`` by nearest rank (``None`` without any answer)."""
        values = sorted(self.latencies())
        return {f"p{p}": nearest_rank(values, p) for p in points}

    def summary(self) -> str:
        """The text report ``weave bench`` prints."""
        pct = self.percentiles()
        lat = self.latencies()
        lines = [
            f"{self.name} on {self.provider}: {self.count} requests, {self.concurrency} concurrent, {self.seconds:.2f} s",
            f"  throughput   {self.throughput:.1f} requests/s",
            f"  errors       {self.errors} of {self.count} ({100.0 * self.errors / self.count if self.count else 0:.1f}%)",
            "  by status    " + ", ".join(f"{k}: {v}" for k, v in self.by_status().items()),
        ]
        if lat:
            lines.append("  latency ms   " + "  ".join(f"{k} {v:.1f}" for k, v in pct.items())
                         + f"  min {min(lat):.1f}  max {max(lat):.1f}  (nearest rank, {len(lat)} answered)")
        else:
            lines.append("  latency ms   no request got an answer")
        return "\n".join(lines)

    def frame(self) -> Any:
        """One row per request as a pandas DataFrame (real dtypes; ``status`` is a nullable Int64)."""
        import pandas as pd

        frame = pd.DataFrame({
            "request": pd.Series([r.index for r in self.requests], dtype="int64"),
            "started_s": pd.Series([r.started for r in self.requests], dtype="float64"),
            "latency_ms": pd.Series([r.latency_ms for r in self.requests], dtype="float64"),
            "status": pd.Series([r.status for r in self.requests], dtype="Int64"),
            "outcome": pd.Series([r.outcome for r in self.requests], dtype="string"),
            "error": pd.Series([r.error for r in self.requests], dtype="string"),
        })
        frame.attrs["summary"] = self.summary()
        frame.attrs["throughput"] = self.throughput
        frame.attrs["percentiles"] = self.percentiles()
        frame.attrs["by_status"] = self.by_status()
        return frame

    def __str__(self) -> str:
        return self.summary()


def nearest_rank(sorted_values: list[float], percent: float) -> float | None:
    """The ``percent``-th percentile of ``sorted_values`` by nearest rank: the value at rank ``ceil(p/100*n)``."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(percent / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def check_bench(requests: Any, concurrency: Any) -> tuple[int, int]:
    """``(requests, concurrency)`` as checked whole numbers.

    Raises:
        ConfigError: not whole numbers, or out of range.
    """
    values = []
    for label, value, top in (("requests (-n)", requests, MAX_REQUESTS), ("concurrency (-c)", concurrency, MAX_CONCURRENCY)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise ConfigError(f"{label} must be a whole number from 1 to {top}, got {value!r:.40}", "e.g. -n 200 -c 8")
        values.append(value)
    return values[0], values[1]


def needs_confirmation(requests: int) -> bool:
    """True when a run of ``requests`` must be confirmed first (more than :data:`CONFIRM_ABOVE`)."""
    return requests > CONFIRM_ABOVE


def run_bench(call: Callable[[Mapping[str, Any]], Any], payload: Mapping[str, Any], requests: int, concurrency: int,
              name: str = "", provider: str = "", progress: Callable[[int, int], None] | None = None,
              clock: Callable[[], float] = time.perf_counter) -> BenchReport:
    """Send ``requests`` calls of ``payload`` through ``call`` from ``concurrency`` workers.

    Args:
        call: one invoke (``DeploymentManager.invoker(...)``): takes the payload, returns the answer or raises.
        payload: the request body.
        requests, concurrency: how many, and how many at once.
        name, provider: the deployment, for the report.
        progress: called in the caller's thread with ``(done, total)`` after each answer.
        clock: a monotonic clock in seconds.

    Returns:
        The :class:`BenchReport`.
    """
    requests, concurrency = check_bench(requests, concurrency)
    report = BenchReport(name=name, provider=provider, concurrency=concurrency)
    lock = threading.Lock()
    in_flight = [0]
    t0 = clock()

    def one(index: int) -> Request:
        with lock:
            in_flight[0] += 1
            report.peak_in_flight = max(report.peak_in_flight, in_flight[0])
        start = clock()
        status: int | None = 200
        outcome, error = "ok", ""
        try:
            call(payload)
        except EndpointError as exc:
            status, outcome, error = exc.status or None, "error", exc.message
        except InvokeTimeout as exc:
            status, outcome, error = None, "timeout", exc.message
        except WeaveError as exc:
            status, outcome, error = None, "unreachable", exc.message
        finally:
            with lock:
                in_flight[0] -= 1
        end = clock()
        return Request(index, start - t0, (end - start) * 1000.0, status, outcome, error.splitlines()[0][:300] if error else "")

    done: list[Request] = []
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="weave-bench")
    try:
        # never more than `concurrency` queued: a Ctrl-C stops sending at once
        pending: set[Future[Request]] = set()
        sent = 0
        while sent < requests or pending:
            while sent < requests and len(pending) < concurrency:
                pending.add(pool.submit(one, sent))
                sent += 1
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                done.append(fut.result())
                if progress is not None:
                    progress(len(done), requests)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    report.seconds = clock() - t0
    report.requests = sorted(done, key=lambda r: r.index)
    return report


def text_bar(done: int, total: int, width: int = 30) -> str:
    """``[#########.........]  60/200  30%``: the progress line the CLI redraws."""
    filled = int(width * done / total) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done:>{len(str(total))}}/{total} {100 * done // max(total, 1):>3}%"


def bench_deployment(manager: Any, name: str, provider: str | None = None, payload: Mapping[str, Any] | None = None,
                     requests: int = 100, concurrency: int = 4, timeout: float | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     note: Callable[[str], None] | None = None) -> BenchReport:
    """Load-test the recorded deployment ``name`` (every front end calls this).

    Args:
        manager: the DeploymentManager.
        name, provider: the deployment (provider: default the one it is recorded on).
        payload: the request body (``{"input": ..., "weave": ...}``).
        requests, concurrency: how many requests, and how many at once.
        timeout: the wait for each answer (default: as ``weave invoke``).
        progress: ``(done, total)`` after each answer, in the caller's thread.
        note: receives notes (e.g. a sandbox aws deployment runs its zip here).

    Returns:
        The :class:`BenchReport`.

    Raises:
        NotFound: the deployment is not in the inventory (nothing is sent).
        ConfigError: bad counts or timeout (nothing is sent).
    """
    from .config import check_name

    check_name(name)
    requests, concurrency = check_bench(requests, concurrency)
    provider = manager.provider_of(name, provider)
    if manager.inventory.get(provider, name) is None:  # a load test only ever goes to what this inventory made
        raise manager.not_found(name, provider)
    call = manager.invoker(name, provider, timeout=timeout, note=note)
    return run_bench(call, dict(payload or {"input": ""}), requests, concurrency, name=name, provider=provider,
                     progress=progress)
