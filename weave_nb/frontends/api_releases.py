"""The Python API of release history: ``releases``, ``rollback`` and ``promote`` (re-exported by ``weave_nb``)."""

from __future__ import annotations

import sys
from typing import Any, Mapping

from . import api_args
from ..core.config import DeploymentInfo, Plan, check_name
from ..core.events import Sink


def _mgr(manager: Any) -> Any:
    if manager is not None:
        return manager
    from ..core.manager import DeploymentManager

    return DeploymentManager()


def _printing(sink: Sink | None) -> Sink:
    if sink is not None:
        return sink
    from .render import line_sink

    return line_sink(sys.stdout, skip_done=False)


def releases(name: str, provider: str | None = None, manager: Any = None, as_frame: bool = True,
             region: str | None = None) -> Any:
    """A deployment's releases, newest first.

    Args:
        name: the deployment.
        provider: its provider (default: the one the inventory records it on).
        manager: a DeploymentManager to use instead of a new one.
        as_frame: a pandas DataFrame (default), or the list of :class:`~weave_nb.core.releases.Release`.
        region: for a deployment group, only this region's releases (default: every region's, ``region`` column set).

    Returns:
        One row per release: number, state, version_id, traffic, hashes, created_at, created_by, region.

    Raises:
        NotFound: nothing by that name is recorded.
    """
    check_name(name)
    found = _mgr(manager).releases(name, api_args.provider(provider), region=region)
    if not as_frame:
        return found
    from .frame import releases_frame

    return releases_frame(found)


def rollback(name: str, provider: str | None = None, *, to: int | None = None, dry_run: bool = False,
             env: Mapping[str, str] | None = None, sink: Sink | None = None, manager: Any = None,
             region: str | None = None) -> DeploymentInfo | Plan:
    """Make an earlier release live again without rebuilding (during a canary: send the canary nothing).

    Args:
        name: the deployment.
        provider: its provider (default: the recorded one).
        to: the release number (default: the previous release; during a canary, the live one).
        dry_run: only return the plan.
        env: values of the release's environment variables (local and docker restart it; values are never
            stored, so by default they are read from this process's environment).
        sink: a callback receiving progress events; default: print lines.
        manager: a DeploymentManager to use instead of a new one.
        region: for a deployment group, only this region (default: every region, one plan each; a failure in
            one region leaves the others rolled back and raises DeploymentFailed reporting each region).

    Returns:
        The DeploymentInfo, or the Plan for a dry run.

    Raises:
        NotFound, ConfigError: no such deployment or release, nothing to roll back to, or it was pruned.
        WeaveError: the provider keeps no releases, or a step failed (what it did was undone).
    """
    check_name(name)
    return _mgr(manager).rollback(name, api_args.provider(provider), to=to, dry_run=dry_run, sink=_printing(sink),
                                  env=dict(env or {}), region=region)


def promote(name: str, provider: str | None = None, *, dry_run: bool = False, sink: Sink | None = None,
            manager: Any = None, region: str | None = None) -> DeploymentInfo | Plan:
    """Send all of the traffic to the canary release (``weave deploy --canary PERCENT`` started it).

    ``region``: for a deployment group, only this region's canary (default: every region's, one plan each).

    Raises:
        ConfigError: no canary is on. WeaveError: the provider has no canary, or a step failed.
    """
    check_name(name)
    return _mgr(manager).promote(name, api_args.provider(provider), dry_run=dry_run, sink=_printing(sink), region=region)
