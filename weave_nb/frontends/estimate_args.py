"""The flags of ``weave estimate`` / ``%weave_estimate`` and of ``weave plan --estimate``, and their use.

Kept apart from :mod:`weave_nb.frontends.arguments` (which imports them) so
the estimate's front-end code lives in one place.
"""

from __future__ import annotations

import argparse
from typing import Any, Mapping

Arg = tuple[tuple[str, ...], dict[str, Any]]


def _count(text: str) -> int:
    """An argparse type: a whole number of at least 0 (``1e6`` and ``1_000_000`` are accepted)."""
    try:
        value = float(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of requests, got {text!r}") from None
    if value < 0 or not value.is_integer():
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 0, got {text!r}")
    return int(value)


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of milliseconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
    return value


# what the estimate needs beyond a deploy's settings (plan --estimate takes them too)
ESTIMATE_FIGURES: list[Arg] = [
    (("--requests",), dict(type=_count, metavar="N", help="estimate: requests a month (e.g. 100000 or 1e6)")),
    (("--duration-ms",), dict(dest="duration_ms", type=_milliseconds, metavar="MS", help="estimate: how long one request runs (default 1000)")),
    (("--tokens-per-call",), dict(dest="tokens_per_call", metavar="IN,OUT",
                                  help="estimate: input and output tokens of each model call (default: measured with the mock model, a baseline)")),
    (("--prices",), dict(metavar="FILE", help="estimate: a JSON or YAML price file merged over the shipped, dated table")),
    (("--free-tier",), dict(dest="free_tier", action="store_true", help="estimate: subtract the account's monthly free tier (not subtracted by default)")),
    (("--weave", "-w"), dict(help="estimate: which weave of the file a request runs (default: the only one)")),
]
PLAN_ESTIMATE: list[Arg] = [
    (("--estimate",), dict(action="store_true", help="also show the monthly cost estimate (needs --requests)")),
    *[a for a in ESTIMATE_FIGURES if a[0][0] != "--weave"],
]
_KEPT = ("--name", "--provider", "--type", "--region", "--config", "--memory", "--timeout", "--endpoint", "--architecture",
         "--option", "--project")


def estimate_arguments(deploy_args: list[Arg]) -> list[Arg]:
    """``weave estimate``'s arguments: the deploy settings that change a price, then :data:`ESTIMATE_FIGURES`."""
    return [a for a in deploy_args if a[0][0] in _KEPT] + ESTIMATE_FIGURES


def estimate_kwargs(args: Any) -> dict[str, Any]:
    """The keyword arguments of :func:`weave_nb.core.estimate.estimate_deployment` from parsed flags.

    Raises:
        ConfigError: ``--requests`` is missing.
    """
    from ..core.errors import ConfigError

    ns: Mapping[str, Any] = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    if ns.get("requests") is None:
        raise ConfigError("--requests is required for an estimate", "say how many requests a month, e.g. --requests 100000")
    return {"requests": ns["requests"], "duration_ms": ns.get("duration_ms"), "tokens_per_call": ns.get("tokens_per_call"),
            "prices": ns.get("prices"), "free_tier": bool(ns.get("free_tier")), "weave": ns.get("weave")}
