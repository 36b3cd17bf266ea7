"""The Python API: ``deploy``, ``deployments``, ``undeploy`` and friends for scripts and notebooks.

Each call builds (or takes) a :class:`~weave_nb.manager.DeploymentManager`,
the same core the CLI, magics and widgets use.
"""

from __future__ import annotations

from typing import Any, Mapping

from .config import DeploymentInfo, Plan
from .events import Sink, null_sink


def _mgr(manager: Any) -> Any:
    if manager is not None:
        return manager
    from .manager import DeploymentManager

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
        **settings: any other DeploymentConfig field (region, memory_mb, timeout_seconds, public, port...).

    Returns:
        The DeploymentInfo, or the Plan for a dry run.

    Raises:
        WeaveError: bad input (nothing created) or a failed deploy.
    """
    values: dict[str, Any] = {"name": name, "provider": provider, "weave_file": weave_file, "weave_text": weave_text}
    values.update(settings)
    if env:
        values["env"] = dict(env)
    if options:
        values["options"] = dict(options)
    if sink is None:
        import sys

        from .render import line_sink

        sink = line_sink(sys.stdout, skip_done=False)
    return _mgr(manager).deploy(values, sink=sink or null_sink, dry_run=dry_run)


def deployments(provider: str | None = None, status: str | None = None, refresh: bool = True, manager: Any = None) -> Any:
    """Every deployment as a pandas DataFrame (see :func:`weave_nb.frame.deployments_frame`)."""
    from .frame import deployments_frame

    listing = _mgr(manager).list(provider=provider, refresh=refresh)
    rows = [d for d in listing.deployments if not status or d.status.value == status]
    frame = deployments_frame(rows)
    frame.attrs["notes"] = listing.notes
    return frame


def undeploy(name: str, provider: str = "local", *, sink: Sink = null_sink, manager: Any = None, **options: Any) -> DeploymentInfo:
    """Remove every resource a deployment made (no confirmation: the caller asked)."""
    return _mgr(manager).destroy(name, provider, sink=sink, **options)


def status(name: str, provider: str = "local", manager: Any = None) -> DeploymentInfo:
    """The live status of one deployment."""
    return _mgr(manager).status(name, provider)


def invoke(name: str, input: str = "", provider: str = "local", weave: str | None = None, manager: Any = None, **kwargs: Any) -> Any:
    """Call a deployed weave and return its JSON answer."""
    payload: dict[str, Any] = {"input": input}
    if weave:
        payload["weave"] = weave
    return _mgr(manager).invoke(name, provider, payload, **kwargs)
