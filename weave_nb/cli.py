"""The ``weave`` command line: deploy, plan, deployments, undeploy, status, invoke, logs.

Exit codes: 0 ok, 1 the operation failed, 2 usage error (bad flags or input;
nothing was created).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any, Sequence, TextIO

from .arguments import add_arguments, config_values
from .config import check_name
from .errors import ConfigError, WeaveError
from .frontend import classify

LIST_COLUMNS = ["name", "provider", "status", "region", "endpoint", "created_at", "drift"]

HELP = {
    "deploy": "deploy a weave (creates or updates every resource)",
    "plan": "show what a deploy would change, without changing anything",
    "deployments": "list deployments on every provider",
    "undeploy": "remove every resource a deployment made",
    "status": "show the live status of one deployment",
    "invoke": "call a deployed weave and print its JSON answer",
    "logs": "show a deployment's recent log output",
}


def build_parser() -> argparse.ArgumentParser:
    """The ``weave`` argument parser."""
    parser = argparse.ArgumentParser(prog="weave", description="Deploy and manage Weave AI-agent workflows.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command, text in HELP.items():
        add_arguments(sub.add_parser(command, help=text, description=text), command)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None, stdin: TextIO | None = None) -> int:
    """Run the CLI and return its exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return _run(args, out, err, stdin or sys.stdin)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every failure: one message and hint (classify)
        verbose = getattr(args, "verbose", None)  # only deploy and plan have --verbose
        if verbose and _traceback_of(exc) is not None:
            import traceback

            err.write("".join(traceback.format_exception(_traceback_of(exc))))
        verdict = classify(exc, verbose)
        err.write(verdict.text() + "\n")
        return verdict.exit_code


def _traceback_of(exc: BaseException) -> BaseException | None:
    """The error whose traceback --verbose shows: a WeaveError's cause, any other error itself, none for Ctrl-C."""
    if isinstance(exc, KeyboardInterrupt):
        return None
    return exc.__cause__ if isinstance(exc, WeaveError) else exc


def _manager() -> Any:
    from .manager import DeploymentManager

    return DeploymentManager()


def _run(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from .render import line_sink, table

    cmd = args.command
    if cmd in ("deploy", "plan"):
        values = config_values(args)
        if not values.get("name"):
            raise ConfigError("--name is required", "give the deployment a name, e.g. --name demo")
        mgr = _manager()
        sink = line_sink(out, verbose=getattr(args, "verbose", False))
        if cmd == "plan" or args.dry_run:
            mgr.plan(values, sink=sink)
            return 0
        info = mgr.deploy(values, sink=sink)
        _notes(info, out)
        return 0
    if cmd == "deployments":
        listing = _manager().list(provider=args.provider, refresh=args.refresh, all_owners=args.all_owners)
        rows = [d.row() for d in listing.only(args.status)]
        out.write(table(rows, LIST_COLUMNS) + "\n")
        for note in listing.notes:
            err.write(f"note: {note}\n")
        return 0
    check_name(args.name)  # before the manager opens (and creates) anything
    mgr = _manager()
    provider = mgr.provider_of(args.name, args.provider)
    if cmd == "undeploy":
        opts = {k: True for k in ("keep_image", "purge_logs", "adopt") if getattr(args, k)}
        if args.dry_run:
            out.write(mgr.destroy(args.name, provider, dry_run=True, **opts).render() + "\n")
            return 0
        if not args.force and not _confirm(f"Remove {args.name!r} and everything it made on {provider}? [y/N] ", out, stdin):
            out.write("cancelled\n")
            return 1
        mgr.destroy(args.name, provider, sink=line_sink(out), **opts)
        return 0
    if cmd == "status":
        info = mgr.status(args.name, provider)
        data = info.model_dump(mode="json", exclude={"resources", "settings_hash"})
        data["resources"] = [f"{r.kind} {r.id}" for r in info.resources]
        out.write(json.dumps(data, indent=2) + "\n")
        return 0 if info.status.value == "active" else 1
    if cmd == "invoke":
        from .frontend import invoke_payload

        result = mgr.invoke(args.name, provider, invoke_payload(args.input, args.weave, args.json), local=args.local,
                            note=lambda text: err.write(f"note: {text}\n"))
        out.write(json.dumps(result, indent=2) + "\n")
        return 0
    if cmd == "logs":
        out.write(mgr.logs(args.name, provider, tail=args.tail) + "\n")
        return 0
    raise ConfigError(f"unknown command {cmd}")


def _notes(info: Any, out: TextIO) -> None:
    note = (info.details or {}).get("note")
    if note:
        out.write(f"note: {note}\n")


def _confirm(prompt: str, out: TextIO, stdin: TextIO) -> bool:
    out.write(prompt)
    out.flush()
    answer = stdin.readline()
    return answer.strip().lower() in ("y", "yes")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
