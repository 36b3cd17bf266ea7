"""The ``weave`` command line: deploy, plan, deployments, undeploy, status, invoke, logs,
metrics, bench, alarm, init, package, sandbox and help.

Exit codes: 0 ok, 1 the operation failed, 2 usage error (bad flags or input;
nothing was created), 130 interrupted (Ctrl-C). Each error is printed once,
to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from typing import Any, Callable, Iterator, Sequence, TextIO

from .arguments import add_arguments, config_values
from ..core.config import check_name
from ..core.errors import ConfigError, WeaveError
from .shared import classify
from ..core.options import did_you_mean
from ..core.present import error_text

LIST_COLUMNS = ["name", "provider", "status", "region", "endpoint", "created_at", "drift"]

HELP = {
    "deploy": "deploy a weave (creates or updates every resource)",
    "plan": "show what a deploy would change, without changing anything",
    "estimate": "estimate a deployment's monthly cost from a dated price table (no cloud calls)",
    "deployments": "list deployments on every provider",
    "undeploy": "remove every resource a deployment made",
    "status": "show the live status of one deployment",
    "invoke": "call a deployed weave and print its JSON answer",
    "logs": "show a deployment's log lines (--since, --filter, --tail; --follow keeps printing)",
    "metrics": "summarise a deployment's requests: counts, errors, latency percentiles, tokens",
    "bench": "load-test a deployment: n requests, c at once; throughput, errors, latency percentiles",
    "alarm": "create, list or remove an alarm on a deployment's error rate or p95 latency (aws, gcp)",
    "releases": "list a deployment's releases (number, state, version id, traffic)",
    "rollback": "make an earlier release live again, without rebuilding (during a canary: end it)",
    "promote": "send all of the traffic to the canary release",
    "init": "write a starter .weave.yaml that deploys as is",
    "package": "write the artifact a deploy would ship, without deploying",
    "export": "write the deployment as SAM, CloudFormation, Terraform, Compose or Kubernetes files",
    "sandbox": "start, stop or show the local AWS and Cloud Functions stand-ins",
    "help": "show the help of the weave command or of one command",
}
# commands that change something a later undeploy would remove (their Ctrl-C hint says how to clean up)
CHANGING = ("deploy", "undeploy", "alarm", "rollback", "promote")


class WeaveParser(argparse.ArgumentParser):
    """An argument parser whose errors name the closest flag or command ("did you mean") and end with a hint."""

    def error(self, message: str) -> None:  # type: ignore[override]
        found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if found:
            message += did_you_mean(found.group(1), re.findall(r"'([^']*)'", found.group(2)))
        hint = "`weave --help` lists every command" if "argument COMMAND" in message else f"`{self.prog} --help` lists every option"
        self.print_usage(sys.stderr)
        sys.stderr.write(error_text(f"{self.prog}: {message}", hint) + "\n")
        raise SystemExit(2)


def build_parser() -> WeaveParser:
    """The ``weave`` argument parser."""
    from .. import __version__

    parser = WeaveParser(prog="weave", description="Deploy and manage Weave AI-agent workflows.")
    parser.add_argument("--version", "-V", action="version", version=f"weave {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command, text in HELP.items():
        add_arguments(sub.add_parser(command, help=text, description=text), command)
    return parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _parse(parser: WeaveParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; an unknown flag is reported by the subcommand's own parser, with "did you mean"."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        command = _subparsers(parser)[args.command]
        known = [flag for action in command._actions for flag in action.option_strings if flag.startswith("--")]
        first = next((e for e in extra if e.startswith("-")), extra[0])
        command.error(f"unrecognized arguments: {' '.join(extra)}{did_you_mean(first.split('=')[0], known)}")
    return args


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None, stdin: TextIO | None = None) -> int:
    """Run the CLI and return its exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            if not argv:  # bare `weave`: the help, as git and chalice do
                parser.print_help()
                return 0
            try:
                args = _parse(parser, argv)
                if args.command == "help":
                    return _help(parser, args.topic)
            except SystemExit as exc:
                return int(exc.code or 0)
        return _run(args, out, err, stdin or sys.stdin)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every failure: one message and hint (classify)
        verbose = getattr(args, "verbose", None)  # only deploy and plan have --verbose
        if verbose and _traceback_of(exc) is not None:
            import traceback

            err.write("".join(traceback.format_exception(_traceback_of(exc))))
        verdict = classify(exc, verbose, changes=getattr(args, "command", None) in CHANGING)
        err.write(verdict.text() + "\n")
        return verdict.exit_code


def _help(parser: WeaveParser, topic: str | None) -> int:
    """``weave help [COMMAND]``: the help of the command, or of ``weave`` itself."""
    commands = _subparsers(parser)
    if topic is None:
        parser.print_help()
        return 0
    if topic not in commands:
        commands["help"].error(f"argument COMMAND: invalid choice: {topic!r} (choose from {', '.join(map(repr, commands))})")
    commands[topic].print_help()
    return 0


def _traceback_of(exc: BaseException) -> BaseException | None:
    """The error whose traceback --verbose shows: a WeaveError's cause, any other error itself, none for Ctrl-C."""
    if isinstance(exc, KeyboardInterrupt):
        return None
    return exc.__cause__ if isinstance(exc, WeaveError) else exc


def _manager() -> Any:
    from ..core.manager import DeploymentManager

    return DeploymentManager()


def _sink(out: TextIO, verbose: bool = False) -> Callable[[Any], None]:
    """Progress lines on ``out``; the failure itself is left out (main prints it once, on stderr).

    A failed step shows as ``FAILED`` without its message, and the failed
    ``Done`` (``ERROR ...`` and its hint) is not shown.
    """
    import dataclasses

    from ..core.events import Done, StepFinished
    from .render import line_sink

    lines = line_sink(out, verbose=verbose)

    def sink(event: Any) -> None:
        if isinstance(event, Done) and not event.ok:
            return
        if isinstance(event, StepFinished) and event.outcome == "failed" and event.detail:
            event = dataclasses.replace(event, detail="")
        lines(event)

    return sink


@contextlib.contextmanager
def _aws_profile(profile: str | None) -> Iterator[None]:
    """``AWS_PROFILE`` set to ``profile`` for one command (``--profile`` of undeploy and status)."""
    import os

    if not profile:
        yield
        return
    saved = os.environ.get("AWS_PROFILE")
    os.environ["AWS_PROFILE"] = profile
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("AWS_PROFILE", None)
        else:
            os.environ["AWS_PROFILE"] = saved


def _run(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    cmd = args.command
    if cmd in ("deploy", "plan"):
        values = config_values(args)
        if not values.get("name"):
            raise ConfigError("--name is required", "give the deployment a name, e.g. --name demo")
        mgr = _manager()
        sink = _sink(out, verbose=getattr(args, "verbose", False))
        if cmd == "plan" or args.dry_run:
            if getattr(args, "estimate", False):
                from .estimate_args import estimate_kwargs

                figures = estimate_kwargs(args)  # a missing --requests is reported before the plan is made
            mgr.plan(values, sink=sink)
            if getattr(args, "estimate", False):
                from ..core.estimate import estimate_deployment

                out.write(estimate_deployment(values, manager=mgr, **figures).text() + "\n")
            return 0
        info = mgr.deploy(values, sink=sink)
        _notes(info, out)
        _next_steps(info, out)
        return 0
    if cmd == "estimate":
        from ..core.estimate import estimate_deployment
        from .estimate_args import estimate_kwargs

        values = config_values(args)
        if not values.get("name"):
            raise ConfigError("--name is required", "name the deployment to estimate, e.g. --name demo")
        out.write(estimate_deployment(values, manager=_manager(), **estimate_kwargs(args)).text() + "\n")
        return 0
    if cmd == "deployments":
        return _deployments(args, out, err)
    if cmd == "init":
        from .cli_files import write_starter

        out.write(write_starter(args.example, args.output, args.force) + "\n")
        return 0
    if cmd == "package":
        from .cli_files import write_package

        check_name(args.name)
        out.write(write_package(_manager(), args) + "\n")
        return 0
    if cmd == "export":
        from ..export.cli_export import export_command

        out.write(export_command(_manager(), args) + "\n")
        return 0
    if cmd == "sandbox":
        from ..sandbox.background import sandbox_command

        return sandbox_command(args.action, args.only, out, err)
    check_name(args.name)  # before the manager opens (and creates) anything
    if cmd == "undeploy" and not args.force and not args.dry_run and not _is_terminal(stdin):
        raise ConfigError("refusing to prompt without a terminal: pass --force",
                          f"weave undeploy {args.name} --force removes it without asking")
    with _aws_profile(getattr(args, "profile", None)):
        return _on_deployment(args, out, err, stdin)


def _on_deployment(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    """undeploy, status, invoke, logs and metrics: commands on one recorded deployment."""
    cmd = args.command
    mgr = _manager()
    provider = mgr.provider_of(args.name, args.provider)
    if cmd == "undeploy":
        opts = {k: True for k in ("keep_image", "purge_logs", "adopt") if getattr(args, k)}
        if args.dry_run:
            out.write(mgr.destroy(args.name, provider, dry_run=True, **_region(args), **opts).render() + "\n")
            return 0
        if not args.force and not _confirm(f"Remove {args.name!r} and everything it made on {provider}? [y/N] ", out, stdin):
            out.write("cancelled\n")
            return 1
        mgr.destroy(args.name, provider, sink=_sink(out), **_region(args), **opts)
        return 0
    if cmd == "status":
        info = mgr.status(args.name, provider, **_region(args))
        data = info.model_dump(mode="json", exclude={"resources", "settings_hash"})
        data["resources"] = [f"{r.kind} {r.id}" for r in info.resources]
        if args.output == "json":
            out.write(json.dumps(data, indent=2) + "\n")
        else:
            out.write(_status_table(data) + "\n")
        return 0 if info.status.value == "active" else 1
    if cmd == "invoke":
        from .shared import invoke_payload

        text = stdin.read().rstrip("\r\n") if args.input == "-" else args.input  # --input -: the text from stdin
        result = mgr.invoke(args.name, provider, invoke_payload(text, args.weave, args.json), local=args.local,
                            timeout=args.timeout, note=lambda text: err.write(f"note: {text}\n"), **_region(args))
        out.write(json.dumps(result, indent=2) + "\n")
        return 0
    if cmd in ("logs", "metrics"):  # a deployment group's member: the region given, or the group's only one
        from ..core.regions import resolve

        provider, args.name = resolve(mgr, args.name, provider, getattr(args, "region", None))
    if cmd == "logs":
        from .observe import cli_logs

        return cli_logs(mgr, args, provider, out, err)
    if cmd == "metrics":
        from .observe import cli_metrics

        return cli_metrics(mgr, args, provider, out)
    if cmd in ("bench", "alarm"):
        from ..core.regions import resolve
        from .ops_cli import alarm_command, bench_command

        provider, args.name = resolve(mgr, args.name, provider, args.region)  # a deployment group's member

        command = bench_command if cmd == "bench" else alarm_command
        return command(mgr, provider, args, out, err, stdin, _is_terminal(stdin))
    if cmd in ("releases", "rollback", "promote"):
        from .cli_releases import release_command

        return release_command(mgr, provider, args, out, _sink(out))
    raise ConfigError(f"unknown command {cmd}")


def _deployments(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .render import table

    listing = _manager().list(provider=args.provider, refresh=args.refresh, all_owners=args.all_owners, rebuild=args.rebuild)
    chosen = listing.only(args.status)
    columns = LIST_COLUMNS + (["traffic"] if any(d.row().get("traffic") for d in chosen) else [])  # during a canary
    if args.output == "json":
        out.write(json.dumps([_json_row(d) for d in chosen], indent=2) + "\n")
    elif args.output == "csv":
        import csv

        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for d in chosen:
            writer.writerow({k: ("" if v is None else v) for k, v in _json_row(d).items()})
    else:
        out.write(table([d.row() for d in chosen], columns) + "\n")
    for note in listing.notes:
        err.write(f"note: {note}\n")
    return 0


def _json_row(info: Any) -> dict[str, Any]:
    """One listed deployment with real JSON types: ISO times, null for what is missing."""
    row = info.row()
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


def _status_table(data: dict[str, Any]) -> str:
    """``weave status --output table``: one ``key  value`` line per field."""
    from ..core.present import cell

    lines = []
    for key in ("name", "provider", "status", "health", "drift", "endpoint", "region", "version", "created_at",
                "updated_at", "message"):
        lines.append(f"{key:<11} {cell(data.get(key), '-')}")
    for resource in data.get("resources") or []:
        lines.append(f"{'resource':<11} {resource}")
    return "\n".join(lines)


def _notes(info: Any, out: TextIO) -> None:
    note = (info.details or {}).get("note")
    if note:
        out.write(f"note: {note}\n")


def _next_steps(info: Any, out: TextIO) -> None:
    """After a deploy: the commands people run next, once."""
    where = "" if info.provider == "local" else f" --provider {info.provider}"
    regions = list((info.details or {}).get("regions") or [])
    one = f" --region {regions[0]}" if len(regions) > 1 else ""  # a deployment group: invoke and logs pick a region
    out.write(
        "next:\n"
        f"  weave invoke {info.name}{where}{one} --input \"hello\"\n"
        f"  weave logs {info.name}{where}{one}\n"
        f"  weave undeploy {info.name}{where}\n"
    )


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _confirm(prompt: str, out: TextIO, stdin: TextIO) -> bool:
    out.write(prompt)
    out.flush()
    answer = stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def _region(args: Any) -> dict[str, Any]:
    """``{"region": R}`` when ``--region`` picked a deployment group's region, else nothing (older managers take no region)."""
    region = getattr(args, "region", None)
    return {"region": region} if region else {}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
