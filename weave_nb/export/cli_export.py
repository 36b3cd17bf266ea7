"""The front ends' side of ``weave export``: flags in, :func:`~weave_nb.export.writer.export_deployment`, a summary out."""

from __future__ import annotations

import argparse
from typing import Any, Mapping

from .writer import ExportResult, export_deployment


def export_values(args: argparse.Namespace | Mapping[str, Any]) -> dict[str, Any]:
    """The deploy values of parsed ``weave export`` / ``%weave_export`` arguments.

    Raises:
        ConfigError: a ``--env`` or ``--option`` item is not KEY=VALUE.
    """
    from ..frontends.arguments import config_values

    return config_values(args)


def run_export(manager: Any, args: argparse.Namespace, defaults: Mapping[str, Any] | None = None,
               weave_text: str | None = None) -> ExportResult:
    """Export what ``args`` describe (the cell body as the weave when ``weave_text`` is given)."""
    values = export_values(args)
    if weave_text:
        values["weave_text"] = weave_text
    return export_deployment(manager, values, args.format, args.output, bool(args.force), defaults=defaults)


def export_command(manager: Any, args: argparse.Namespace) -> str:
    """``weave export``: write the folder and return what to print."""
    return run_export(manager, args).summary()
