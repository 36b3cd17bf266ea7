"""Load tests and alarms for scripts and notebooks: ``weave_nb.bench``, ``alarm``, ``alarms``, ``remove_alarm``.

Also what ``%weave_bench`` and ``%weave_alarm`` show in a cell: a progress bar
(an ipywidgets ``IntProgress`` when ipywidgets is there, else one line redrawn
in place), the report, and a latency histogram drawn with matplotlib (as a
PNG, so a saved or headless-run notebook keeps it).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ..core.bench import CONFIRM_ABOVE, BenchReport, bench_deployment, check_bench, needs_confirmation
from ..core.errors import ConfigError
from .shared import invoke_payload


def _mgr(manager: Any) -> Any:
    if manager is not None:
        return manager
    from ..core.manager import DeploymentManager

    return DeploymentManager()


def bench(name: str, requests: int = 100, concurrency: int = 4, input: str = "", weave: str | None = None,
          provider: str | None = None, *, data: str | Mapping[str, Any] | None = None, timeout: float | None = None,
          yes: bool = False, progress: Callable[[int, int], None] | None = None, manager: Any = None) -> BenchReport:
    """Load-test a recorded deployment through the same call as :func:`weave_nb.invoke`.

    Args:
        name: the deployment (it must be in the inventory: nothing is sent otherwise).
        requests, concurrency: how many requests, and how many at once (``concurrency`` worker threads).
        input, weave, data: the request body, as for :func:`weave_nb.invoke`.
        provider: its provider (default: the one it is recorded on).
        timeout: the wait for each answer (default: the deployment's own timeout plus a margin).
        yes: needed for more than 1000 requests (a script cannot be asked).
        progress: called with ``(done, total)`` after each answer.
        manager: a DeploymentManager to use instead of a new one.

    Returns:
        The :class:`~weave_nb.core.bench.BenchReport`: ``print(report)`` for the summary,
        ``report.frame()`` for one row per request, ``report.percentiles()`` (nearest rank).

    Raises:
        NotFound: the deployment is not in the inventory.
        ConfigError: bad counts, or more than 1000 requests without ``yes=True``.
    """
    requests, concurrency = check_bench(requests, concurrency)
    if needs_confirmation(requests) and not yes:
        raise ConfigError(f"refusing to send {requests} requests (more than {CONFIRM_ABOVE}) without yes=True",
                          f"pass yes=True to send them: weave_nb.bench({name!r}, requests={requests}, yes=True)")
    payload = invoke_payload(input, weave, data)
    return bench_deployment(_mgr(manager), name, provider, payload, requests, concurrency, timeout=timeout,
                            progress=progress, note=lambda text: print(f"note: {text}"))


def alarm(name: str, error_rate: float | None = None, p95_ms: float | None = None, email: str | None = None,
          provider: str | None = None, *, period: int = 300, dry_run: bool = False, manager: Any = None) -> Any:
    """Create (or update) an alarm on a deployment's error rate or p95 latency (aws, gcp).

    Args:
        name: the deployment.
        error_rate: alarm above this percentage of requests with status >= 500; or
        p95_ms: alarm above this 95th percentile latency in milliseconds.
        email: notify this address (it must confirm the subscription).
        provider: its provider (default: the one it is recorded on).
        period: seconds each check looks at (a multiple of 60).
        dry_run: return the plan and change nothing.
        manager: a DeploymentManager to use instead of a new one.

    Returns:
        The Plan with ``dry_run``; else the deployment's alarms as a DataFrame.

    Raises:
        ConfigError: bad arguments, or alarms are not available on the provider (docker, local).
        NotFound: the deployment is not in the inventory.
    """
    from ..core.alarms import Alarms, alarm_spec

    spec = alarm_spec(error_rate, p95_ms, email, period)
    result = Alarms(_mgr(manager)).create(name, spec, provider, dry_run=dry_run)
    return result if dry_run else alarms_frame(result)


def alarms(name: str, provider: str | None = None, manager: Any = None) -> Any:
    """The deployment's alarms, as the provider reports them live, as a DataFrame."""
    from ..core.alarms import Alarms

    return alarms_frame(Alarms(_mgr(manager)).list(name, provider))


def remove_alarm(name: str, alarm: str, provider: str | None = None, *, dry_run: bool = False, manager: Any = None) -> Any:
    """Remove one alarm (by the name :func:`alarms` shows); its notification target goes with the last alarm.

    Returns:
        The Plan with ``dry_run``; else the alarms left, as a DataFrame.
    """
    from ..core.alarms import Alarms

    result = Alarms(_mgr(manager)).delete(name, alarm, provider, dry_run=dry_run)
    return result if dry_run else alarms_frame(result)


def alarms_frame(rows: list[dict[str, Any]]) -> Any:
    """Alarms as a DataFrame (columns name, kind, threshold, state, metric, notify)."""
    import pandas as pd

    columns = ["name", "kind", "threshold", "state", "metric", "notify"]
    frame = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)
    frame["threshold"] = pd.to_numeric(frame["threshold"], errors="coerce").astype("float64")
    return frame


# -- in a notebook cell ---------------------------------------------------------------------
class CellProgress:
    """A progress bar in the cell: an ``IntProgress`` widget, or one text line redrawn through a display id.

    Called only from the cell's own thread (the bench collects answers there).
    """

    def __init__(self, total: int, label: str, widgets: bool = True) -> None:
        from IPython.display import display

        self.total = total
        self.label = label
        self.bar: Any = None
        self.handle: Any = None
        if widgets:
            try:
                import ipywidgets as w

                self.bar = w.IntProgress(value=0, min=0, max=total, description=label,
                                         layout=w.Layout(width="32em"), style={"description_width": "initial"})
                self.text = w.Label(f"0/{total}")
                self.box = w.HBox([self.bar, self.text])
                display(self.box)
                return
            except ImportError:
                pass
        self.handle = display(self._line(0), display_id=True)

    def _line(self, done: int) -> Any:
        from IPython.display import Pretty

        from ..core.bench import text_bar

        return Pretty(f"{self.label} {text_bar(done, self.total)}")

    def __call__(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.value = done
            self.text.value = f"{done}/{total}"
        elif self.handle is not None:
            self.handle.update(self._line(done))

    def close(self) -> None:
        """Leave the bar at its final value; style it done."""
        if self.bar is not None:
            self.bar.bar_style = "success"


def histogram_png(report: BenchReport) -> bytes | None:
    """A latency histogram of ``report`` (with the p50/p95/p99 lines) as PNG bytes; ``None`` without matplotlib or answers."""
    latencies = report.latencies()
    if not latencies:
        return None
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    import io

    fig = Figure(figsize=(7, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.hist(latencies, bins=min(40, max(5, len(latencies) // 5)), color="tab:blue", edgecolor="white")
    for (label, value), style in zip(report.percentiles().items(), ("-", "--", ":")):
        if value is not None:
            ax.axvline(value, color="tab:red", linestyle=style, label=f"{label} {value:.0f} ms")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("requests")
    ax.set_title(f"{report.name}: {report.count} requests, {report.concurrency} concurrent")
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def bench_in_cell(mgr: Any, name: str, provider: str | None, requests: int, concurrency: int, payload: dict[str, Any],
                  timeout: float | None, widgets: bool = True) -> Any:
    """``%weave_bench``: progress in the cell, then the summary and the histogram; returns the DataFrame of requests."""
    from IPython.display import Image, display

    bar = CellProgress(requests, f"bench {name}", widgets)
    try:
        report = bench_deployment(mgr, name, provider, payload, requests, concurrency, timeout=timeout, progress=bar,
                                  note=lambda text: print(f"note: {text}"))
    finally:
        bar.close()
    print(report.summary())
    png = histogram_png(report)
    if png is not None:
        display(Image(data=png, format="png"))
    return report.frame()
