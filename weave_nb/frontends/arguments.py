"""Argument definitions, written once and shared by the ``weave`` CLI and the magics.

Each command is a list of ``(flags, kwargs)`` pairs in ``argparse`` form.
:func:`add_arguments` applies them to a parser; :func:`magic_arguments`
turns them into IPython ``magic_arguments`` decorators, so ``%weave_deploy?``
and ``weave deploy --help`` show the same options. The help of deploy and
plan (``weave deploy --help``, ``%weave_deploy -h``) also lists every
provider's ``--option`` keys, read from each provider's options model when
the help is shown (plug-ins included).
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from ..core.config import parse_env_pairs
from ..core.listing import STATUSES
from .starters import STARTERS
from .estimate_args import PLAN_ESTIMATE, estimate_arguments

Arg = tuple[tuple[str, ...], dict[str, Any]]


def _positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (argparse shows the problem as a usage error, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    """An argparse type: a number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


PROFILE: Arg = (("--profile",), dict(metavar="PROFILE", help="aws: the AWS profile for this command (instead of AWS_PROFILE)"))

_DEPLOY: list[Arg] = [
    (("--name", "-n"), dict(help="deployment name (letters, digits, '-', '_')")),
    (("--provider", "-p"), dict(help="where to deploy: local (default), aws, gcp, docker, or a plug-in")),
    (("--type",), dict(dest="type", help="deployment type: lambda (aws), function (gcp), container (docker), process (local)")),
    (("--region", "-r"), dict(help="cloud region, e.g. us-east-1 or us-central1; aws/gcp: a comma-separated list "
                               "(us-east-1,eu-west-1) deploys one group to each")),
    (("--config", "-c"), dict(dest="weave_file", metavar="WEAVE_FILE", help="the .weave.yaml file (default: the one in the current folder)")),
    (("--memory",), dict(dest="memory_mb", type=int, metavar="MB", help="memory in MB")),
    (("--timeout",), dict(dest="timeout_seconds", type=int, metavar="SECONDS", help="request timeout in seconds")),
    (("--env", "-e"), dict(action="append", metavar="KEY=VALUE", help="environment variable for the weave (repeatable; values are secret)")),
    (("--secret",), dict(action="append", dest="secrets", metavar="NAME",
                         help="keep env NAME's value in the provider's secret store, out of the plain environment (repeatable)")),
    (("--public",), dict(action="store_true", default=None, help="allow unauthenticated calls to the endpoint")),
    (("--endpoint",), dict(choices=["url", "api", "none"], help="aws: Function URL (default), API Gateway HTTP API, or none")),
    (("--host",), dict(help="local/docker: address to listen on (default 127.0.0.1)")),
    (("--port",), dict(type=int, help="local/docker: port to listen on (default: a free one)")),
    (("--runtime",), dict(help="aws/gcp: runtime, e.g. python3.12 / python312")),
    (("--architecture",), dict(choices=["x86_64", "arm64"], help="aws: CPU architecture")),
    (("--project",), dict(help="gcp: project id")),
    (("--base-image",), dict(dest="base_image", help="docker: base image (default python:3.12-slim)")),
    (("--volume",), dict(action="append", dest="volumes", metavar="HOST:CONTAINER", help="docker: volume, e.g. ./data:/app/data (repeatable)")),
    (("--push",), dict(action="store_true", default=None, help="docker: push the image to DOCKER_REGISTRY_URL, then run it")),
    (("--push-only",), dict(dest="push_only", action="store_true", default=None, help="docker: build and push, run nothing")),
    (("--keep-on-failure",), dict(dest="keep_on_failure", action="store_true", default=None, help="keep what a failed deploy created")),
    (("--adopt",), dict(action="store_true", default=None, help="take over an existing resource of that name that this inventory did not make (shown as adopt in the plan)")),
    (("--option", "-o"), dict(action="append", dest="option", metavar="KEY=VALUE",
                              help="any provider option (repeatable); each provider's are listed by weave_nb.provider_options()")),
    (("--dry-run",), dict(dest="dry_run", action="store_true", help="show the plan and stop")),
    (("--verbose", "-v"), dict(action="store_true", help="also show progress percentages, and the traceback of an unexpected error")),
    PROFILE,
    (("--canary",), dict(type=int, metavar="PERCENT", help="aws/gcp: send PERCENT (1-99) of the traffic to the new release, the rest to the live one; end it with weave promote or weave rollback")),
]

_NAME_PROVIDER: list[Arg] = [
    (("name",), dict(help="deployment name")),
    (("--provider", "-p"), dict(help="provider of the deployment (default: the one the inventory records it on)")),
]

# estimate and export describe one region (a group's regions are estimated or exported one at a time)
_ONE_REGION: Arg = (("--region", "-r"), dict(help="cloud region, e.g. us-east-1 or us-central1 (one region)"))


def _one_region(args: list[Arg]) -> list[Arg]:
    return [_ONE_REGION if a[0][0] == "--region" else a for a in args]


# weave export / %weave_export: the deploy settings (a positional NAME; --option has no -o, which names the folder here)
_EXPORT_SKIP = ("--name", "--provider", "--dry-run", "--verbose", "--adopt", "--keep-on-failure", "--push", "--push-only", "--option",
                "--canary")
_EXPORT: list[Arg] = [
    (("name",), dict(help="deployment name (as for a deploy: it names the resources)")),
    (("--format",), dict(dest="format", required=True, metavar="FORMAT",
                        help="sam, cloudformation, terraform, compose or kubernetes")),
    (("--provider", "-p"), dict(help="whose settings to export (default: the format's first: aws for sam, cloudformation "
                                     "and terraform; terraform also takes gcp)")),
    (("--output", "-o"), dict(dest="output", metavar="DIR", help="the folder to write (default ./weave-export/NAME-FORMAT)")),
    (("--force", "-f"), dict(action="store_true", help="write into a non-empty folder that is not an earlier export of this deployment")),
    (("--option",), dict(action="append", dest="option", metavar="KEY=VALUE", help="any provider option (repeatable), as for a deploy")),
] + _one_region([a for a in _DEPLOY if a[0][0] not in _EXPORT_SKIP])

COMMANDS: dict[str, list[Arg]] = {
    "deploy": _DEPLOY,
    "plan": [a for a in _DEPLOY if a[0][0] not in ("--dry-run",)] + PLAN_ESTIMATE,
    "estimate": _one_region(estimate_arguments(_DEPLOY)),
    "deployments": [
        (("--provider", "-p"), dict(help="only this provider (default: every provider)")),
        (("--status", "-s"), dict(choices=list(STATUSES), help="only this status")),
        (("--refresh",), dict(action="store_true", default=True, help="ask the providers for live state (default)")),
        (("--no-refresh",), dict(dest="refresh", action="store_false", help="read the inventory only")),
        (("--all-owners",), dict(dest="all_owners", action="store_true", help="also list what other weave-nb inventories made (marked other owner)")),
        (("--rebuild",), dict(action="store_true", help="record again every live deployment marked with this inventory's owner id (after a damaged inventory was moved aside)")),
    ],
    "undeploy": _NAME_PROVIDER
    + [
        (("--force", "-f"), dict(action="store_true", help="do not ask for confirmation")),
        (("--keep-image",), dict(dest="keep_image", action="store_true", help="docker: keep the image")),
        (("--purge-logs",), dict(dest="purge_logs", action="store_true", help="aws: also delete the log group")),
        (("--adopt",), dict(action="store_true", help="also remove resources of that name this inventory did not make")),
        (("--dry-run",), dict(dest="dry_run", action="store_true", help="show the undeploy plan and stop")),
    ],
    "status": list(_NAME_PROVIDER),
    "invoke": _NAME_PROVIDER
    + [
        (("--input", "-i"), dict(dest="input", default="", help="the input text for the weave")),
        (("--weave", "-w"), dict(help="which weave of the file to run (default: the only one)")),
        (("--json", "-j"), dict(dest="json", metavar="JSON", help="the whole request body, a JSON object; --input and --weave override its fields")),
        (("--local",), dict(action="store_true", help="aws: run the built artifact locally with a Lambda event")),
        (("--timeout",), dict(type=_seconds, metavar="SECONDS", help="how long to wait for the answer (default: the deployment's own timeout plus 10 s)")),
    ],
    "logs": _NAME_PROVIDER + [
        (("--tail",), dict(type=_positive_int, default=None, metavar="N",
                           help="only the newest N lines (default: 100 without --since, all with it)")),
        (("--since",), dict(metavar="WHEN", help="only lines since a duration ago (30s, 10m, 2h, 1d) or an ISO time")),
        (("--filter",), dict(metavar="TEXT", help="only lines containing TEXT (ignoring case)")),
        (("--follow", "-f"), dict(action="store_true", help="keep printing new lines until Ctrl-C")),
    ],
    "metrics": _NAME_PROVIDER + [
        (("--since",), dict(default="1h", metavar="WHEN",
                            help="requests since a duration ago (30m, 1h, 1d) or an ISO time (default 1h)")),
    ],
    "bench": _NAME_PROVIDER + [
        (("-n", "--requests"), dict(dest="requests", type=_positive_int, default=100, metavar="N", help="how many requests (default 100; more than 1000 asks first)")),
        (("-c", "--concurrency"), dict(dest="concurrency", type=_positive_int, default=4, metavar="C", help="how many at once (default 4)")),
        (("--input", "-i"), dict(dest="input", default="", help="the input text of every request")),
        (("--weave", "-w"), dict(help="which weave of the file to run (default: the only one)")),
        (("--timeout",), dict(type=_seconds, metavar="SECONDS", help="the wait for each answer (default: as weave invoke)")),
        (("--yes", "-y"), dict(action="store_true", help="do not ask before more than 1000 requests")),
    ],
    "alarm": _NAME_PROVIDER + [
        (("--error-rate",), dict(dest="error_rate", type=float, metavar="PERCENT", help="alarm when more than PERCENT percent of requests fail (status >= 500)")),
        (("--p95-ms",), dict(dest="p95_ms", type=float, metavar="MS", help="alarm when the 95th percentile latency is above MS milliseconds")),
        (("--email",), dict(metavar="ADDRESS", help="send the alarm to this address (it must confirm the subscription)")),
        (("--period",), dict(type=_positive_int, default=300, metavar="SECONDS", help="the window each check looks at (default 300, a multiple of 60)")),
        (("--list",), dict(dest="list", action="store_true", help="list the deployment's alarms")),
        (("--delete",), dict(metavar="ALARM", help="remove this alarm (its name as --list shows it)")),
        (("--dry-run",), dict(dest="dry_run", action="store_true", help="show the plan and stop")),
    ],
    "releases": list(_NAME_PROVIDER),
    "rollback": _NAME_PROVIDER + [
        (("--to",), dict(type=_positive_int, metavar="RELEASE", help="the release number to make live (default: the previous release; during a canary, the live one)")),
        (("--dry-run",), dict(dest="dry_run", action="store_true", help="show the rollback plan and stop")),
    ],
    "promote": _NAME_PROVIDER + [
        (("--dry-run",), dict(dest="dry_run", action="store_true", help="show the promote plan and stop")),
    ],
    "export": _EXPORT,
}

# A deployment group's region (see weave_nb.core.regions): which member status, invoke, logs, metrics, bench and
# alarm act on;
# undeploy removes every region unless one is given.
REGION_PICK: Arg = (("--region", "-r"), dict(help="for a deployment group: which region (undeploy: only this one; default every region)"))
for _command in ("undeploy", "status", "invoke", "logs", "metrics", "bench", "alarm"):
    COMMANDS[_command].append(REGION_PICK)
# releases, rollback and promote on a deployment group: every region (one plan each) unless one is given
REGION_EACH: Arg = (("--region", "-r"), dict(help="for a deployment group: only this region (default: every region, each with its own release history)"))
for _command in ("releases", "rollback", "promote"):
    COMMANDS[_command].append(REGION_EACH)

# The command line's own commands and flags: init, package, sandbox (the magics have %weave_sandbox) and
# help; --output (a magic returns a DataFrame or a DeploymentInfo instead); --profile of undeploy and
# status (in a notebook, set AWS_PROFILE).
OUTPUT_FORMATS = {"deployments": ("table", "json", "csv"), "status": ("table", "json"), "releases": ("table", "json")}
_OUTPUT_DEFAULT = {"deployments": "table", "status": "json", "releases": "table"}
CLI_COMMANDS: dict[str, list[Arg]] = {
    **{command: list(args) for command, args in COMMANDS.items()},
    "init": [
        (("--example",), dict(default="hello", choices=list(STARTERS), help="which starter weave to write")),
        (("--output", "-o"), dict(default=".weave.yaml", metavar="FILE", help="where to write it (default .weave.yaml)")),
        (("--force", "-f"), dict(action="store_true", help="overwrite the file if it exists")),
    ],
    "package": [
        (("name",), dict(help="deployment name (it is part of the artifact's settings, as in a deploy)")),
        (("--provider", "-p"), dict(help="whose artifact to build: local (default), aws, gcp, docker, or a plug-in")),
        (("--config", "-c"), dict(dest="weave_file", metavar="WEAVE_FILE", help="the .weave.yaml file (default: the one in the current folder)")),
        (("--output", "-o"), dict(metavar="FILE", help="where to write it (default NAME-PROVIDER.zip; docker: NAME-docker.tar, or a folder when FILE ends in /)")),
        (("--force", "-f"), dict(action="store_true", help="overwrite the file if it exists")),
    ],
    "sandbox": [
        (("action",), dict(nargs="?", default="status", choices=["start", "stop", "status", "env"], metavar="ACTION",
                          help="start, stop, status (default) or env (the export lines for eval)")),
        (("--only",), dict(action="append", choices=["aws", "gcp"], help="start: only this stand-in (repeatable)")),
    ],
    "help": [(("topic",), dict(nargs="?", metavar="COMMAND", help="the command to describe"))],
}
for _command in ("undeploy", "status"):
    CLI_COMMANDS[_command].append(PROFILE)
for _command, _formats in OUTPUT_FORMATS.items():
    CLI_COMMANDS[_command].append((("--output",), dict(
        choices=list(_formats), default=_OUTPUT_DEFAULT[_command],
        help=f"output format: {', '.join(_formats)} (default {_OUTPUT_DEFAULT[_command]})")))

CLI_ONLY_FLAGS: dict[str, set[str]] = {
    command: {f for flags, _ in args for f in flags if f.startswith("-")}
    - {f for flags, _ in COMMANDS.get(command, []) for f in flags}
    for command, args in CLI_COMMANDS.items()
}

OPTION_FLAGS = ("endpoint", "runtime", "architecture", "project", "base_image", "volumes", "push", "push_only", "keep_on_failure",
                "canary")
CONFIG_FLAGS = ("name", "provider", "type", "region", "weave_file", "memory_mb", "timeout_seconds", "public", "host", "port", "adopt",
                "secrets")


OPTIONS_HELP_COMMANDS = ("deploy", "plan")


def add_arguments(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """Add ``command``'s command-line arguments (:data:`CLI_COMMANDS`) to ``parser`` and return it."""
    for flags, kwargs in CLI_COMMANDS[command]:
        parser.add_argument(*flags, **kwargs)
    return with_options_help(parser, command)


def with_options_help(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """Make ``parser``'s help end with every provider's options (deploy and plan only).

    The list is built when the help is shown, so building the parser imports no provider.
    """
    if command in OPTIONS_HELP_COMMANDS:
        plain = parser.format_help

        def format_help() -> str:
            from .shared import provider_options_help

            return plain().rstrip("\n") + "\n\n" + provider_options_help() + "\n"

        parser.format_help = format_help  # type: ignore[method-assign]
    return parser


def magic_arguments(command: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator giving an IPython magic ``command``'s arguments (imports IPython lazily)."""
    from IPython.core import magic_arguments as ma

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for flags, kwargs in reversed(COMMANDS[command]):
            func = ma.argument(*flags, **kwargs)(func)
        func = ma.magic_arguments()(func)
        with_options_help(func.parser, command)
        return func

    return decorate


def config_values(ns: argparse.Namespace | dict[str, Any]) -> dict[str, Any]:
    """Turn parsed deploy/plan arguments into ``DeploymentConfig`` values (``None`` = not given).

    ``--option`` values stay text: the provider's options model converts them
    to its field types (``python_version=3.10`` stays ``"3.10"`` for a text
    field, ``replicas=2`` becomes ``2`` for a number, ``push=yes`` ``True``).

    Raises:
        ConfigError: a ``--env`` or ``--option`` item is not KEY=VALUE.
    """
    args = vars(ns) if isinstance(ns, argparse.Namespace) else dict(ns)
    values: dict[str, Any] = {k: args.get(k) for k in CONFIG_FLAGS}
    if args.get("env"):
        values["env"] = parse_env_pairs(args["env"])
    options: dict[str, Any] = {k: args.get(k) for k in OPTION_FLAGS if args.get(k) is not None}
    for item in args.get("option") or []:
        key, _, val = item.partition("=")
        if _ and not key.strip():
            from ..core.errors import ConfigError

            raise ConfigError("--option expects KEY=VALUE, but an item has no KEY before '='", "write it as --option name=value")
        if not _:
            from ..core.errors import ConfigError

            raise ConfigError("--option expects KEY=VALUE, but an item has no '='", "write it as --option name=value")
        options[key.strip().replace("-", "_")] = val
    values["options"] = options
    if args.get("profile"):  # --profile (command line): the AWS profile, carried as config.auth like a weave-file setting
        values["auth"] = {"method": "config_file", "profile": args["profile"]}
    return values
