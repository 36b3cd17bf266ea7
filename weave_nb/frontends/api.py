"""The Python API: ``deploy``, ``deployments``, ``undeploy`` and friends for scripts and notebooks.

Each call builds (or takes) a :class:`~weave_nb.core.manager.DeploymentManager`,
the same core the CLI, magics and widgets use.
"""

from __future__ import annotations

from typing import Any, Mapping

from . import api_args
from ..core.config import DeploymentInfo, Plan, check_name
from ..core.events import Sink
from .shared import invoke_payload


def _mgr(manager: Any) -> Any:
    if manager is not None:
        return manager
    from ..core.manager import DeploymentManager

    return DeploymentManager()


def deploy(
    name: str,
    provider: str | None = None,
    *,
    weave_file: str | None = None,
    weave_text: str | None = None,
    env: Mapping[str, str] | None = None,
    options: Mapping[str, Any] | None = None,
    sink: Sink | None = None,
    dry_run: bool = False,
    manager: Any = None,
    defaults: Mapping[str, Any] | None = None,
    **settings: Any,
) -> DeploymentInfo | Plan:
    """Deploy a weave and return the deployment (or the plan, with ``dry_run``).

    Args:
        name: deployment name.
        provider: local (default), aws, gcp, docker, or a plug-in.
        weave_file: the .weave.yaml file (default: the one in the current folder).
        weave_text: the weave YAML itself, instead of a file.
        env: environment variables for the weave (kept secret).
        options: provider-specific options (see the configuration reference).
        sink: a callback receiving progress events; default: print lines.
        dry_run: only plan.
        manager: a DeploymentManager to use instead of a new one.
        defaults: settings weaker than the arguments but stronger than the weave file's ``deployment``.
        **settings: any other DeploymentConfig field (region, memory_mb, timeout_seconds, public, port...).

    Returns:
        The DeploymentInfo, or the Plan for a dry run.

    Raises:
        WeaveError: bad input (nothing created) or a failed deploy.
    """
    api_args.deploy_args(provider, weave_file, weave_text, env, options, defaults, sink, dry_run)
    values = _values(name, provider, weave_file, weave_text, env, options, settings)
    if sink is None:
        import sys

        from .render import line_sink

        sink = line_sink(sys.stdout, skip_done=False)
    return _mgr(manager).deploy(values, defaults=api_args.mapping(defaults, "defaults", "a dict"), sink=sink, dry_run=dry_run)


def plan(
    name: str,
    provider: str | None = None,
    *,
    weave_file: str | None = None,
    weave_text: str | None = None,
    env: Mapping[str, str] | None = None,
    options: Mapping[str, Any] | None = None,
    manager: Any = None,
    defaults: Mapping[str, Any] | None = None,
    **settings: Any,
) -> Plan:
    """What :func:`deploy` with the same arguments would do, without doing it.

    Returns:
        The Plan (``print(plan.render())`` for text; notebooks show it as a table).

    Raises:
        WeaveError: bad input; nothing is created either way.
    """
    values = _values(name, provider, weave_file, weave_text, env, options, settings)
    return _mgr(manager).plan(values, defaults=api_args.mapping(defaults, "defaults", "a dict"))


def estimate(
    name: str,
    provider: str | None = None,
    *,
    requests: int,
    duration_ms: float | None = None,
    tokens_per_call: str | tuple[int, int] | None = None,
    prices: str | None = None,
    free_tier: bool = False,
    weave: str | None = None,
    weave_file: str | None = None,
    weave_text: str | None = None,
    options: Mapping[str, Any] | None = None,
    manager: Any = None,
    **settings: Any,
) -> Any:
    """The monthly cost of deploying a weave, from the dated price table (no credentials, no cloud calls).

    Args:
        name: deployment name.
        provider: aws, gcp, docker, local (compute on your machine is not priced).
        requests: requests a month.
        duration_ms: how long one request runs (default 1000).
        tokens_per_call: ``"IN,OUT"`` (or a pair) tokens of each model call; default: measured with the mock model.
        prices: a JSON/YAML price file merged over the shipped table.
        free_tier: subtract the account's monthly free tier (default: not subtracted).
        weave: which weave a request runs (default: the only one).
        weave_file, weave_text, options, **settings: as for :func:`deploy` (memory_mb, region...).

    Returns:
        An :class:`~weave_nb.core.estimate.Estimate` (``.total``, ``.text()``, ``.to_frame()``; notebooks show a table).

    Raises:
        WeaveError: bad input.
    """
    from ..core.estimate import estimate_deployment

    values = _values(name, provider, weave_file, weave_text, None, options, settings)
    return estimate_deployment(values, requests, duration_ms, tokens_per_call, prices, free_tier, weave, manager=_mgr(manager))


def _values(name: str, provider: str | None, weave_file: str | None, weave_text: str | None,
            env: Mapping[str, str] | None, options: Mapping[str, Any] | None, settings: Mapping[str, Any]) -> dict[str, Any]:
    checked = api_args.deploy_args(provider, weave_file, weave_text, env, options, None)  # ConfigError on a wrong type
    provider, weave_file, env, options = checked["provider"], checked["weave_file"], checked["env"], checked["options"]
    values: dict[str, Any] = {"name": name, "provider": provider, "weave_file": weave_file, "weave_text": weave_text}
    values.update(settings)
    if env:
        values["env"] = dict(env)
    if options:
        values["options"] = dict(options)
    return values


def deployments(provider: str | None = None, status: str | None = None, refresh: bool = True, manager: Any = None,
                all_owners: bool = False, rebuild: bool = False) -> Any:
    """Every deployment as a pandas DataFrame, newest first (see :func:`weave_nb.frontends.frame.deployments_frame`).

    Args:
        provider: only this provider (default: every provider; ones not installed are skipped with a note).
        status: only this status (active, failed, ...; any case).
        refresh: ask the providers for live state (else the inventory only).
        manager: a DeploymentManager to use instead of a new one.
        all_owners: also list what other inventories made (``drift`` says ``other owner``).
        rebuild: first record again the live deployments marked with this inventory's owner id that have no row.

    Returns:
        The DataFrame; ``frame.attrs["notes"]`` lists skipped providers.

    Raises:
        WeaveError: ``provider`` was named and cannot be listed.
        ConfigError: ``status`` is not a status name.
    """
    from .frame import deployments_frame

    provider, status, refresh = api_args.provider(provider), api_args.status_filter(status), api_args.flag(refresh, "refresh")
    listing = _mgr(manager).list(provider=provider, refresh=refresh, all_owners=all_owners,
                                 rebuild=api_args.flag(rebuild, "rebuild"))
    frame = deployments_frame(listing.only(status))
    frame.attrs["notes"] = listing.notes
    return frame


def undeploy(name: str, provider: str | None = None, *, sink: Sink | None = None, manager: Any = None, **options: Any) -> DeploymentInfo:
    """Remove every resource a deployment made (no confirmation: the caller asked).

    Args:
        name: deployment name.
        provider: its provider (default: the one it is recorded on).
        sink: a callback receiving progress events; default: print lines, as :func:`deploy` does
            (``sink=lambda event: None`` for none).
        manager: a DeploymentManager to use instead of a new one.
        **options: provider options such as ``keep_image`` or ``purge_logs``; ``region`` removes only that
            region of a deployment group (default: every region).

    Returns:
        The DeploymentInfo, status ``destroyed``.

    Raises:
        NotFound: nothing by that name; WeaveError: a resource could not be removed.
        ConfigError: no provider was given and several have a deployment by that name.
    """
    check_name(name)
    if sink is None:
        import sys

        from .render import line_sink

        sink = line_sink(sys.stdout, skip_done=False)
    return _mgr(manager).destroy(name, api_args.provider(provider), sink=sink, **options)


def status(name: str, provider: str | None = None, manager: Any = None, *, region: str | None = None) -> DeploymentInfo:
    """The live status of one deployment (provider: default the one it is recorded on; region: a group's region).

    Raises:
        NotFound: nothing by that name is recorded (or found on ``provider``).
    """
    check_name(name)
    return _mgr(manager).status(name, api_args.provider(provider), **({"region": region} if region else {}))


def invoke(name: str, input: str = "", provider: str | None = None, weave: str | None = None, manager: Any = None,
           *, data: str | Mapping[str, Any] | None = None, region: str | None = None, **kwargs: Any) -> Any:
    """Call a deployed weave and return its JSON answer (provider: default the one it is recorded on).

    Args:
        name: deployment name.
        input: the input text.
        provider: its provider (default: the one it is recorded on).
        weave: which weave of the file to run (default: the only one).
        manager: a DeploymentManager to use instead of a new one.
        data: the whole request body, a JSON object (text or mapping); ``input`` and ``weave`` override its fields.
        region: for a deployment group in several regions, which one.
        **kwargs: ``local``, ``timeout`` (see ``DeploymentManager.invoke``).

    Raises:
        NotFound: nothing by that name; ConfigError: ``data`` is not a JSON object.
    """
    check_name(name)
    provider = api_args.provider(provider)
    api_args.invoke_args(input, weave, kwargs)
    # a sandbox aws deployment runs its zip here: say so, as the CLI and the magic do
    return _mgr(manager).invoke(name, provider, invoke_payload(input, weave, data), note=lambda text: print(f"note: {text}"),
                                **({"region": region} if region else {}), **kwargs)


def provider_options(provider: str | None = None) -> str:
    """Every provider's ``--option`` keys (or only ``provider``'s), read from each options model, as text.

    The same list ``weave deploy --help`` ends with; plug-in providers are included.

    Raises:
        ProviderUnavailable: ``provider`` is not a known provider.
    """
    from .shared import provider_options_help

    if not provider:
        return provider_options_help()
    from ..core.registry import load_provider_class, provider_names

    name = provider.strip().lower()
    if name not in provider_names():
        load_provider_class(name)  # raises ProviderUnavailable naming the known providers
    return provider_options_help([name])


def logs(name: str, provider: str | None = None, tail: int = 100, manager: Any = None, *, region: str | None = None) -> str:
    """Recent log output of a deployment, the last ``tail`` lines (provider: default the one it is recorded on)."""
    check_name(name)
    provider, tail = api_args.provider(provider), api_args.tail(tail)
    return _mgr(manager).logs(name, provider, tail=tail, **({"region": region} if region else {}))


def export_deployment(name: str, format: str, provider: str | None = None, *, output: str | None = None, force: bool = False,
                      weave_file: str | None = None, weave_text: str | None = None, env: Mapping[str, str] | None = None,
                      options: Mapping[str, Any] | None = None, manager: Any = None,
                      defaults: Mapping[str, Any] | None = None, **settings: Any) -> Any:
    """Write deployment ``name`` as ``format`` files (``weave export``); also ``weave_nb.export(...)``.

    Args:
        name: deployment name (it names the resources, as in a deploy).
        format: ``sam``, ``cloudformation``, ``terraform``, ``compose`` or ``kubernetes``.
        provider: whose settings to export (default: the format's first, e.g. aws for terraform).
        output: the folder (default ``./weave-export/NAME-FORMAT``).
        force: write into a non-empty folder that is not an earlier export of this deployment.
        weave_file, weave_text, env, options, defaults, **settings: as for :func:`deploy`; env values are
            never written, only their names.
        manager: a DeploymentManager to use instead of a new one.

    Returns:
        The :class:`~weave_nb.export.writer.ExportResult` (``folder``, ``files``, ``content_hash``).

    Raises:
        ConfigError: unknown format, a provider the format cannot express, a folder that is not ours, or
            invalid settings; nothing is written then.
    """
    from ..export.writer import export_deployment as write_export

    values = _values(name, provider, weave_file, weave_text, env, options, settings)
    return write_export(_mgr(manager), values, format, output, force, defaults=api_args.mapping(defaults, "defaults", "a dict"))


def read_logs(name: str, provider: str | None = None, *, since: Any = None, filter: str | None = None,
              tail: int | None = None, manager: Any = None, region: str | None = None) -> list[Any]:
    """A deployment's log lines as :class:`~weave_nb.core.log_lines.LogEntry` items (``time``, ``text``, ``stream``).

    Args:
        name: deployment name.
        provider: its provider (default: the one it is recorded on).
        since: ``"10m"``, ``"2h"``, an ISO time or a datetime.
        filter: keep lines containing this text (ignoring case).
        tail: keep the newest ``tail`` lines.
        manager: a DeploymentManager to use instead of a new one.
        region: for a deployment group in several regions, which one.

    Raises:
        NotFound: nothing by that name; ConfigError: a bad ``since`` or ``tail``.
    """
    check_name(name)
    provider = api_args.provider(provider)
    if tail is not None:
        tail = api_args.tail(tail)
    return _mgr(manager).read_logs(name, provider, since=since, filter=filter, tail=tail,
                                   **({"region": region} if region else {}))


def metrics(name: str, provider: str | None = None, *, since: Any = "1h", summary: bool = False,
            manager: Any = None, region: str | None = None) -> Any:
    """The requests a deployment answered since ``since``, parsed from its logs.

    Args:
        name: deployment name.
        provider: its provider (default: the one it is recorded on).
        since: ``"1h"`` (default), ``"30m"``, ``"1d"``, an ISO time or a datetime.
        summary: return the :class:`~weave_nb.core.records.Summary` (counts, error rate,
            nearest-rank p50/p95/p99, tokens) instead of the DataFrame.
        manager: a DeploymentManager to use instead of a new one.
        region: for a deployment group in several regions, which one.

    Returns:
        A pandas DataFrame, one row per request (``time`` datetime64[ns, UTC], ``status`` int64,
        ``duration_ms`` float64, ``input_tokens``/``output_tokens`` int64, ``agent:NAME`` float64 ms...),
        or the Summary.

    Raises:
        NotFound: nothing by that name; ConfigError: a bad ``since``.
    """
    from ..core.records import read_requests, requests_frame, summarize
    from ..core.estimate import price_lookup

    check_name(name)
    provider = api_args.provider(provider)
    mgr = _mgr(manager)
    if region:  # a deployment group's member
        from ..core.regions import resolve

        provider, name = resolve(mgr, name, provider, region)
    records = read_requests(mgr, name, provider, since)
    return summarize(records, price_of=price_lookup()) if summary else requests_frame(records)
