"""The ``%weave_*`` magics: a thin front end over :class:`~weave_nb.core.manager.DeploymentManager`.

``%load_ext weave_nb`` registers :class:`WeaveMagics`. The arguments come from
:mod:`weave_nb.frontends.arguments` (shared with the ``weave`` CLI, so ``%weave_deploy?``
shows the same options as ``weave deploy --help``). Settings are traitlets:
``%config WeaveMagics.default_provider = "docker"``.

User mistakes raise :class:`~IPython.core.error.UsageError` (a short message,
no traceback); a failed deploy shows its message and suggestion, no traceback.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import parse_argstring as _parse_argstring
from traitlets import Bool, CaselessStrEnum, Int, Unicode
from traitlets.config import Configurable

from .arguments import config_values, magic_arguments
from ..core.errors import WeaveError
from ..core.regions import resolve as resolve_region
from .shared import classify
from ..core.present import hint_line, magic_syntax, shorten_urls, with_hint

YES = ("y", "yes")


def strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment``, as a shell reads it.

    A ``#`` starts a comment at the start of a word outside quotes, so
    ``--input "a # b"`` and ``--input a#b`` keep theirs.
    """
    quote = ""
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line


def wants_help(line: str) -> bool:
    """True when the line asks for help: a ``-h`` or ``--help`` word outside quotes and comments."""
    import shlex

    text = strip_comment(line)
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    return "-h" in words or "--help" in words


def help_flag(func: Callable[..., Any]) -> Callable[..., Any]:
    """Let ``%magic --help`` (or ``-h``) print what ``%magic?`` shows: the docstring with the usage and options."""
    import functools
    import inspect

    @functools.wraps(func)
    def wrapper(self: Any, line: str = "", *rest: Any, **kwargs: Any) -> Any:
        if wants_help(line):
            print(inspect.cleandoc(func.__doc__ or ""))
            return None
        return func(self, line, *rest, **kwargs)

    return wrapper


def parse_argstring(func: Any, line: str) -> Any:
    """IPython's ``parse_argstring`` after dropping a trailing ``# comment``."""
    return _parse_argstring(func, strip_comment(line))


class WeaveFailure(Exception):
    """A failed operation, shown as its message and suggestion without a traceback.

    IPython renders it through ``_render_traceback_``; the cell counts as failed,
    so "Run all" stops there.
    """

    def __init__(self, message: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.suggestion = suggestion

    def _render_traceback_(self) -> list[str]:
        lines = [f"\x1b[31merror:\x1b[0m {self.message}"]
        if self.suggestion:
            lines.append(hint_line(self.suggestion))
        return lines


class InvokeResult(dict):
    """A weave's JSON answer: a plain ``dict`` that displays as indented JSON."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(json.dumps(self, indent=2, default=str))


@magics_class
class WeaveMagics(Magics, Configurable):
    """Deploy and manage weaves from a notebook.

    Args:
        shell: the InteractiveShell.
        manager: a DeploymentManager to use (default: a new one per call, honouring ``weave_home``).
        ask: the confirmation prompt, ``input``-like (default: ``input`` as it is when the prompt is shown,
            which a kernel routes to the front end while a cell runs).
        **kwargs: passed to ``Magics`` (e.g. ``config``).
    """

    default_provider = Unicode(
        None, allow_none=True, help="provider when --provider is not given (default: the weave file's, else local)"
    ).tag(config=True)
    default_region = Unicode(None, allow_none=True, help="region when --region is not given").tag(config=True)
    confirm_undeploy = Bool(True, help="ask before %weave_undeploy removes anything (--force skips)").tag(config=True)
    stream = Bool(True, help="show progress live while a deploy runs").tag(config=True)
    progress = CaselessStrEnum(
        ["auto", "widgets", "html", "text"], "auto",
        help="how progress shows: widgets, an HTML display updated in place, or text lines; auto picks",
    ).tag(config=True)
    log_lines = Int(8, help="how many of the latest log lines the progress display keeps").tag(config=True)
    weave_home = Unicode(None, allow_none=True, help="state folder (default: $WEAVE_HOME or ~/.weave)").tag(config=True)

    def __init__(self, shell: Any = None, manager: Any = None, ask: Callable[[str], str] | None = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.manager = manager
        self.ask = ask
        self.last_view: Any = None

    # helpers --------------------------------------------------------------
    def _manager(self) -> Any:
        if self.manager is not None:
            return self.manager
        from ..core.manager import DeploymentManager

        return DeploymentManager(home=self.weave_home or None)

    def defaults(self) -> dict[str, Any]:
        """The magic's settings as manager defaults (weaker than flags, stronger than the weave file)."""
        values = {"provider": self.default_provider, "region": self.default_region}
        return {k: v for k, v in values.items() if v}

    def _provider(self, mgr: Any, name: str, given: str | None) -> str:
        """The provider of deployment ``name`` (``DeploymentManager.provider_of``: given, else the recorded one)."""
        with self._friendly():
            return mgr.provider_of(name, given)

    @contextmanager
    def _friendly(self) -> Iterator[None]:
        """Turn WeaveErrors into a UsageError (user mistakes) or a WeaveFailure (no traceback), by ``classify``."""
        try:
            yield
        except WeaveError as exc:
            verdict = classify(exc, undeploy="%weave_undeploy")
            message = shorten_urls(verdict.message)
            suggestion = magic_syntax(shorten_urls(verdict.suggestion)) if verdict.suggestion else None
            if verdict.user_mistake:
                raise UsageError(with_hint(message, suggestion)) from None
            raise WeaveFailure(message, suggestion) from None

    def _view(self, title: str, verbose: bool = False) -> Any:
        from .progress import make_view

        if not self.stream:
            return _Quiet()
        # a failure's message and hint are the cell's error, right below the view: the view does not repeat them
        self.last_view = make_view(self.progress, self.shell, title, self.log_lines, verbose, failure_below=True)
        return self.last_view

    def _deploy_values(self, line: str, cell: str | None, func: Callable[..., Any]) -> tuple[dict[str, Any], Any]:
        args = parse_argstring(func, line)
        with self._friendly():
            values = config_values(args)
        if not values.get("name"):
            raise UsageError("--name is required (e.g. --name demo)")
        if cell is not None and cell.strip():
            if values.get("weave_file"):
                raise UsageError("give the weave either as the cell body or with --config, not both")
            values["weave_text"] = cell
        return values, args

    def _run(self, title: str, verbose: bool, action: Callable[[Any], Any]) -> Any:
        view = self._view(title, verbose)
        try:
            with self._friendly():
                return action(view)
        except (UsageError, WeaveFailure) as exc:
            view.close(getattr(exc, "message", None) or str(exc).splitlines()[0])
            raise
        except KeyboardInterrupt as exc:
            view.close("interrupted")
            verdict = classify(exc, undeploy="%weave_undeploy")
            raise WeaveFailure(verdict.message, verdict.suggestion) from None
        finally:
            view.close("stopped")

    # magics ---------------------------------------------------------------
    @line_cell_magic
    @help_flag
    @magic_arguments("deploy")
    def weave_deploy(self, line: str = "", cell: str | None = None) -> Any:
        """Deploy a weave; in the cell form the cell body is the weave YAML.

        Returns the DeploymentInfo (or the Plan with --dry-run).
        """
        values, args = self._deploy_values(line, cell, self.weave_deploy)
        mgr = self._manager()
        if args.dry_run:
            with self._friendly():
                return mgr.plan(values, defaults=self.defaults())
        return self._run(
            f"deploy {values['name']}",
            args.verbose,
            lambda view: mgr.deploy(values, defaults=self.defaults(), sink=view),
        )

    @line_cell_magic
    @help_flag
    @magic_arguments("plan")
    def weave_plan(self, line: str = "", cell: str | None = None) -> Any:
        """Show what a deploy would do, without doing it. Returns the Plan (--estimate also prints the monthly cost)."""
        values, args = self._deploy_values(line, cell, self.weave_plan)
        with self._friendly():
            if not args.estimate:
                return self._manager().plan(values, defaults=self.defaults())
            from ..core.estimate import estimate_deployment
            from .estimate_args import estimate_kwargs

            figures = estimate_kwargs(args)
            planned = self._manager().plan(values, defaults=self.defaults())
            print(estimate_deployment({**self.defaults(), **{k: v for k, v in values.items() if v is not None}}, manager=self._manager(), **figures).text())
            return planned

    @line_cell_magic
    @help_flag
    @magic_arguments("estimate")
    def weave_estimate(self, line: str = "", cell: str | None = None) -> Any:
        """Estimate a deployment's monthly cost (no cloud calls); returns the lines as a DataFrame.

        Prints the total, what it assumes and the prices' date and source;
        the returned DataFrame is the table (``df.attrs["total_usd"]`` holds the total).
        """
        values, args = self._deploy_values(line, cell, self.weave_estimate)
        from ..core.estimate import estimate_deployment
        from .estimate_args import estimate_kwargs

        with self._friendly():
            found = estimate_deployment({**self.defaults(), **{k: v for k, v in values.items() if v is not None}},
                                        manager=self._manager(), **estimate_kwargs(args))
        print(f"{found.name} on {found.provider}" + (f" ({found.region})" if found.region else "")
              + f": {found.requests:,} requests a month, {found.duration_ms:g} ms each: {found.total_text()}")
        for assumption in found.assumptions:
            print(f"assumes: {assumption}")
        print(found.footer())
        return found.to_frame()

    @line_magic
    @help_flag
    @magic_arguments("deployments")
    def weave_deployments(self, line: str = "") -> Any:
        """Every deployment as a pandas DataFrame, newest first (``df = %weave_deployments``).

        Statuses follow the one status rule, as ``weave deployments`` and ``%weave_status`` do.
        """
        args = parse_argstring(self.weave_deployments, line)
        from .api import deployments

        with self._friendly():
            frame = deployments(args.provider, args.status, args.refresh, manager=self._manager(), all_owners=args.all_owners,
                                rebuild=args.rebuild)
        for note in frame.attrs["notes"]:
            print(f"note: {note}")
        return frame

    @line_magic
    @help_flag
    @magic_arguments("undeploy")
    def weave_undeploy(self, line: str = "") -> Any:
        """Remove every resource a deployment made (asks first unless --force)."""
        args = parse_argstring(self.weave_undeploy, line)
        mgr = self._manager()
        provider = self._provider(mgr, args.name, args.provider)
        opts = {k: True for k in ("keep_image", "purge_logs", "adopt") if getattr(args, k)}
        if args.dry_run:
            with self._friendly():
                return mgr.destroy(args.name, provider, dry_run=True, **_region(args), **opts)
        if self.confirm_undeploy and not args.force:
            try:
                answer = (self.ask or input)(f"Remove {args.name!r} and everything it made on {provider}? [y/N] ")
            except (EOFError, StdinNotImplementedError):
                raise UsageError(f"cannot ask for confirmation here; to remove {args.name!r}, add --force") from None
            if (answer or "").strip().lower() not in YES:
                print("cancelled: nothing was removed")
                return None
        return self._run(f"undeploy {args.name}", False, lambda view: mgr.destroy(args.name, provider, sink=view, **_region(args), **opts))

    @line_magic
    @help_flag
    @magic_arguments("status")
    def weave_status(self, line: str = "") -> Any:
        """The live status of one deployment (a DeploymentInfo)."""
        args = parse_argstring(self.weave_status, line)
        with self._friendly():
            return self._manager().status(args.name, args.provider, **_region(args))

    @line_magic
    @help_flag
    @magic_arguments("invoke")
    def weave_invoke(self, line: str = "") -> Any:
        """Call a deployed weave; shows its JSON answer and returns it as a dict."""
        args = parse_argstring(self.weave_invoke, line)
        from .shared import invoke_payload

        if args.input == "-":
            raise UsageError("--input - reads standard input, which a notebook cell does not have; pass the text: --input \"...\"")
        with self._friendly():
            payload = invoke_payload(_unquote(args.input), args.weave, _unquote(args.json) if args.json else None)
            result = self._manager().invoke(args.name, args.provider, payload, local=args.local, timeout=args.timeout,
                                            note=lambda text: print(f"note: {text}"), **_region(args))
        return InvokeResult(result) if isinstance(result, dict) else result

    @line_magic
    @help_flag
    @magic_arguments("logs")
    def weave_logs(self, line: str = "") -> None:
        """Print a deployment's log lines, each with its time; ``--follow`` keeps printing new ones
        into the cell until the kernel is interrupted (the stop is quiet)."""
        args = parse_argstring(self.weave_logs, line)
        from .observe import print_logs

        mgr = self._manager()
        provider = self._provider(mgr, args.name, args.provider)
        with self._friendly():
            provider, name = resolve_region(mgr, args.name, provider, args.region)  # a deployment group's member
            print_logs(mgr, name, provider, _unquote(args.since or "") or None, _unquote(args.filter or "") or None,
                       args.tail, args.follow, lambda text: print(text, flush=True), print)

    @line_magic
    @help_flag
    @magic_arguments("metrics")
    def weave_metrics(self, line: str = "") -> Any:
        """Summarise a deployment's requests since ``--since`` (default 1h): prints the summary, draws latency
        over time, a latency histogram and per-agent time, and returns the requests as a DataFrame
        (one row each; ``df = %weave_metrics NAME``)."""
        args = parse_argstring(self.weave_metrics, line)
        from ..core.log_lines import parse_since
        from ..core.records import read_requests, requests_frame, summarize, summary_text
        from ..core.estimate import price_lookup

        mgr = self._manager()
        provider = self._provider(mgr, args.name, args.provider)
        with self._friendly():
            since = parse_since(_unquote(args.since))
            provider, member = resolve_region(mgr, args.name, provider, args.region)  # a deployment group's member
            records = read_requests(mgr, member, provider, since)
        print(summary_text(args.name, provider, since, summarize(records, price_of=price_lookup())))
        frame = requests_frame(records)
        if len(frame):
            try:
                from .observe import figure_png, metrics_figure

                png = figure_png(metrics_figure(frame, f"{args.name} on {provider}"))
            except ImportError:
                print("note: install matplotlib to see the plots (pip install 'weave-nb[plots]')")
            else:
                from IPython.display import Image, display

                display(Image(data=png, format="png"))
        return frame

    @line_magic
    @help_flag
    @magic_arguments("bench")
    def weave_bench(self, line: str = "") -> Any:
        """Load-test a deployment: -n requests, -c at once, through the same call as %weave_invoke.

        Shows a progress bar, the report (throughput, errors by status, p50/p95/p99 latency by
        nearest rank) and a latency histogram; returns a DataFrame with one row per request.
        More than 1000 requests asks first (--yes skips the question).
        """
        args = parse_argstring(self.weave_bench, line)
        from ..core.bench import CONFIRM_ABOVE, needs_confirmation
        from .ops_api import bench_in_cell
        from .shared import invoke_payload

        mgr = self._manager()
        provider, args.name = resolve_region(mgr, args.name, self._provider(mgr, args.name, args.provider), args.region)
        if needs_confirmation(args.requests) and not args.yes:
            try:
                answer = (self.ask or input)(f"Send {args.requests} requests (more than {CONFIRM_ABOVE}) to {args.name!r}? [y/N] ")
            except (EOFError, StdinNotImplementedError):
                raise UsageError(f"cannot ask before sending {args.requests} requests here; add --yes") from None
            if (answer or "").strip().lower() not in YES:
                print("cancelled: nothing was sent")
                return None
        with self._friendly():
            payload = invoke_payload(_unquote(args.input), args.weave)
            return bench_in_cell(mgr, args.name, provider, args.requests, args.concurrency, payload, args.timeout,
                                 widgets=self.progress in ("auto", "widgets"))

    @line_magic
    @help_flag
    @magic_arguments("alarm")
    def weave_alarm(self, line: str = "") -> Any:
        """Create an alarm on a deployment's --error-rate PERCENT or --p95-ms MS (aws, gcp), or --list / --delete ALARM.

        Returns the deployment's alarms as a DataFrame (the Plan with --dry-run).
        """
        args = parse_argstring(self.weave_alarm, line)
        from ..core.alarms import Alarms, alarm_spec
        from .ops_api import alarms_frame

        mgr = self._manager()
        provider, args.name = resolve_region(mgr, args.name, self._provider(mgr, args.name, args.provider), args.region)
        with self._friendly():
            alarms = Alarms(mgr)
            if args.list:
                return alarms_frame(alarms.list(args.name, provider))
            if args.delete:
                result = alarms.delete(args.name, args.delete, provider, dry_run=args.dry_run)
            else:
                spec = alarm_spec(args.error_rate, args.p95_ms, _unquote(args.email) if args.email else None, args.period)
                result = alarms.create(args.name, spec, provider, dry_run=args.dry_run)
        return result if args.dry_run else alarms_frame(result)

    @line_magic
    @help_flag
    @magic_arguments("releases")
    def weave_releases(self, line: str = "") -> Any:
        """A deployment's releases as a pandas DataFrame, newest first (``df = %weave_releases NAME``)."""
        args = parse_argstring(self.weave_releases, line)
        from .frame import releases_frame

        with self._friendly():
            return releases_frame(self._manager().releases(args.name, args.provider, region=args.region))

    @line_magic
    @help_flag
    @magic_arguments("rollback")
    def weave_rollback(self, line: str = "") -> Any:
        """Make an earlier release live again without rebuilding (during a canary: end it); returns the DeploymentInfo."""
        args = parse_argstring(self.weave_rollback, line)
        mgr = self._manager()
        provider = self._provider(mgr, args.name, args.provider)
        if args.dry_run:
            with self._friendly():
                return mgr.rollback(args.name, provider, to=args.to, dry_run=True, region=args.region)
        return self._run(f"rollback {args.name}", False,
                         lambda view: mgr.rollback(args.name, provider, to=args.to, sink=view, region=args.region))

    @line_magic
    @help_flag
    @magic_arguments("promote")
    def weave_promote(self, line: str = "") -> Any:
        """Send all of the traffic to the canary release; returns the DeploymentInfo."""
        args = parse_argstring(self.weave_promote, line)
        mgr = self._manager()
        provider = self._provider(mgr, args.name, args.provider)
        if args.dry_run:
            with self._friendly():
                return mgr.promote(args.name, provider, dry_run=True, region=args.region)
        return self._run(f"promote {args.name}", False, lambda view: mgr.promote(args.name, provider, sink=view, region=args.region))

    @line_cell_magic
    @help_flag
    @magic_arguments("export")
    def weave_export(self, line: str = "", cell: str | None = None) -> Any:
        """Write the deployment as SAM, CloudFormation, Terraform, Compose or Kubernetes files (no cloud call).

        In the cell form the cell body is the weave YAML. Returns the ExportResult (its ``folder`` and ``files``).
        """
        args = parse_argstring(self.weave_export, line)
        if cell is not None and cell.strip() and args.weave_file:
            raise UsageError("give the weave either as the cell body or with --config, not both")
        from ..export.cli_export import run_export

        with self._friendly():
            return run_export(self._manager(), args, defaults=self.defaults(), weave_text=cell if cell and cell.strip() else None)


class _Quiet:
    """A view that shows nothing (``WeaveMagics.stream = False``)."""

    def __call__(self, event: Any) -> None:
        """Drop the event."""

    def close(self, message: str = "") -> None:
        """Nothing to close."""


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics and make their settings reachable from ``%config``."""
    magics = WeaveMagics(ipython, config=getattr(ipython, "config", None))
    ipython.register_magics(magics)
    if magics not in ipython.configurables:
        ipython.configurables.append(magics)
    from .sandbox_magics import register as register_sandbox

    register_sandbox(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the magics registered by :func:`load_ipython_extension`."""
    names = [n for n in dir(WeaveMagics) if n.startswith("weave_")]
    for kind in ("line", "cell"):
        table = ipython.magics_manager.magics[kind]
        for name in names:
            if isinstance(getattr(table.get(name), "__self__", None), WeaveMagics):
                del table[name]
    ipython.magics_manager.registry.pop("WeaveMagics", None)
    from .sandbox_magics import SandboxMagics
    from .sandbox_magics import unload_ipython_extension as unload_sandbox

    unload_sandbox(ipython)
    line = ipython.magics_manager.magics["line"]
    if isinstance(getattr(line.get("weave_sandbox"), "__self__", None), SandboxMagics):
        del line["weave_sandbox"]
    ipython.magics_manager.registry.pop("SandboxMagics", None)
    ipython.configurables[:] = [c for c in ipython.configurables if not isinstance(c, WeaveMagics)]


def _region(args: Any) -> dict[str, Any]:
    """``{"region": R}`` when ``--region`` picked a deployment group's region, else nothing (older managers take no region)."""
    region = getattr(args, "region", None)
    return {"region": region} if region else {}
