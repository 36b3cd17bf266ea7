"""The command line's ``weave bench`` and ``weave alarm`` (called from :mod:`weave_nb.frontends.cli`)."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from ..core.errors import ConfigError


def bench_command(mgr: Any, provider: str, args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO,
                  terminal: bool) -> int:
    """``weave bench NAME -n N -c C``: the progress bar on stderr, the report on stdout.

    Exit code 0 when every request succeeded, 1 when some failed.
    """
    from ..core.bench import CONFIRM_ABOVE, bench_deployment, check_bench, needs_confirmation, text_bar
    from .shared import invoke_payload

    requests, concurrency = check_bench(args.requests, args.concurrency)
    if needs_confirmation(requests) and not args.yes:
        if not terminal:
            raise ConfigError(f"refusing to send {requests} requests (more than {CONFIRM_ABOVE}) without asking, and there is no terminal to ask",
                              f"pass --yes to send them: weave bench {args.name} -n {requests} --yes")
        out.write(f"Send {requests} requests to {args.name!r} on {provider}? [y/N] ")
        out.flush()
        if stdin.readline().strip().lower() not in ("y", "yes"):
            out.write("cancelled: nothing was sent\n")
            return 1
    payload = invoke_payload(args.input, args.weave)
    redraw = _is_terminal(err)
    step = max(1, requests // 10)

    def progress(done: int, total: int) -> None:
        if redraw:
            err.write("\r" + text_bar(done, total))
            if done == total:
                err.write("\n")
        elif done % step == 0 or done == total:  # a log, not a terminal: a line every 10%
            err.write(text_bar(done, total) + "\n")
        err.flush()

    report = bench_deployment(mgr, args.name, provider, payload, requests, concurrency, timeout=args.timeout,
                              progress=progress, note=lambda text: err.write(f"note: {text}\n"))
    out.write(report.summary() + "\n")
    return 0 if report.errors == 0 else 1


def alarm_command(mgr: Any, provider: str, args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO,
                  terminal: bool) -> int:
    """``weave alarm NAME --error-rate P | --p95-ms MS [--email A]``, ``--list``, ``--delete ALARM``, ``--dry-run``."""
    from ..core.alarms import Alarms, alarm_spec
    from .cli import _sink

    alarms = Alarms(mgr)
    if args.list:
        if args.error_rate is not None or args.p95_ms is not None or args.delete:
            raise ConfigError("--list takes no other alarm option", f"weave alarm {args.name} --list")
        out.write(alarm_table(alarms.list(args.name, provider)) + "\n")
        return 0
    if args.delete:
        if args.error_rate is not None or args.p95_ms is not None:
            raise ConfigError("--delete removes an alarm; it takes no --error-rate or --p95-ms", f"weave alarm {args.name} --delete ALARM")
        result = alarms.delete(args.name, args.delete, provider, sink=_sink(out), dry_run=args.dry_run)
    else:
        spec = alarm_spec(args.error_rate, args.p95_ms, args.email, args.period)
        result = alarms.create(args.name, spec, provider, sink=_sink(out), dry_run=args.dry_run)
    if not args.dry_run:
        out.write(alarm_table(result) + "\n")
    return 0


def alarm_table(rows: list[dict[str, Any]]) -> str:
    """The alarms as a text table (``(no alarms)`` when there is none)."""
    from .render import table

    if not rows:
        return "(no alarms)"
    return table(rows, ["name", "kind", "threshold", "state", "metric", "notify"])


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
