"""``weave releases``, ``weave rollback`` and ``weave promote``: the command line side of release history."""

from __future__ import annotations

import argparse
import json
from typing import Any, Callable, TextIO

from ..core.releases import COLUMNS


def release_command(mgr: Any, provider: str, args: argparse.Namespace, out: TextIO, sink: Callable[[Any], None]) -> int:
    """Run one of the three commands on a recorded deployment; returns the exit code.

    On a deployment group, ``--region`` picks one region; without it each command acts on every region.
    """
    region = getattr(args, "region", None)
    if args.command == "releases":
        rows = [r.row() for r in mgr.releases(args.name, provider, region=region)]
        if args.output == "json":
            out.write(json.dumps(rows, indent=2) + "\n")
        else:
            from .render import table

            out.write(table(rows, COLUMNS) + "\n")
        return 0
    if args.command == "rollback":
        if args.dry_run:
            out.write(mgr.rollback(args.name, provider, to=args.to, dry_run=True, region=region).render() + "\n")
            return 0
        mgr.rollback(args.name, provider, to=args.to, sink=sink, region=region)
        return 0
    if args.dry_run:
        out.write(mgr.promote(args.name, provider, dry_run=True, region=region).render() + "\n")
        return 0
    mgr.promote(args.name, provider, sink=sink, region=region)
    return 0
