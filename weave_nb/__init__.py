"""weave-nb: deploy Weave AI-agent workflows from a notebook or the command line.

``%load_ext weave_nb`` registers the magics. The Python API (``deploy``,
``deployments``, ``undeploy``, ``status``, ``invoke``), the core classes, the
weave file model (``WeaveSpec``, ``load_weave``), the ``Sandbox`` and the
error hierarchy (``except weave_nb.NotFound:``) are re-exported here.

Only the error classes are imported eagerly; every other name is imported
on first use (module ``__getattr__``), so ``import weave_nb`` pulls in no
pydantic, cloud SDK, pandas, IPython or ipywidgets.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .core.errors import (
    ConfigError,
    CredentialsError,
    DeploymentBusy,
    DeploymentFailed,
    EndpointError,
    ForeignResource,
    InventoryError,
    InvokeTimeout,
    NotFound,
    ProviderUnavailable,
    WeaveError,
    WeaveSpecError,
)

__version__ = "0.1.0"

# name -> the private module that defines it (imported on first access)
_LAZY = {
    "deploy": "frontends.api", "deployments": "frontends.api", "invoke": "frontends.api", "logs": "frontends.api", "plan": "frontends.api", "provider_options": "frontends.api",
    "metrics": "frontends.api", "read_logs": "frontends.api", "LogEntry": "core.log_lines",
    "status": "frontends.api", "undeploy": "frontends.api", "export_deployment": "frontends.api",
    "releases": "frontends.api_releases", "rollback": "frontends.api_releases", "promote": "frontends.api_releases",
    "Release": "core.releases",
    "bench": "frontends.ops_api", "alarm": "frontends.ops_api", "alarms": "frontends.ops_api", "remove_alarm": "frontends.ops_api",
    "estimate": "frontends.api", "Estimate": "core.estimate",
    "AuthenticationManager": "core.auth", "CredentialProvider": "core.auth", "EnvironmentCredentialProvider": "core.auth",
    "FileCredentialProvider": "core.auth",
    "AuthConfig": "core.config", "DeploymentConfig": "core.config", "DeploymentInfo": "core.config", "DeploymentStatus": "core.config",
    "Plan": "core.plan", "PlannedStep": "core.plan",
    "Done": "core.events", "LogLine": "core.events", "PlanReady": "core.events", "ProgressUpdate": "core.events", "StepFinished": "core.events",
    "StepStarted": "core.events", "WarningEvent": "core.events",
    "Listing": "core.listing", "effective_status": "core.listing",
    "DeploymentManager": "core.manager",
    "DeployContext": "providers.base", "DeploymentProvider": "providers.base",
    "Sandbox": "sandbox", "SandboxStatus": "sandbox",
    "DeployForm": "frontends.widgets", "DeploymentsBoard": "frontends.widgets",
    "WeaveSpec": "spec", "load_weave": "spec", "parse_weave": "spec",
}

__all__ = sorted([
    *_LAZY,
    "export",
    "ConfigError",
    "CredentialsError",
    "DeploymentBusy",
    "DeploymentFailed",
    "EndpointError",
    "ForeignResource",
    "InventoryError",
    "InvokeTimeout",
    "NotFound",
    "ProviderUnavailable",
    "WeaveError",
    "WeaveSpecError",
    "load_ipython_extension",
    "unload_ipython_extension",
])

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .frontends.api import deploy, deployments, export_deployment, invoke, logs, plan, provider_options, status, undeploy
    from .frontends.api_releases import promote, releases, rollback
    from .core.releases import Release
    from .frontends.api import metrics, read_logs
    from .core.log_lines import LogEntry
    from .frontends.ops_api import alarm, alarms, bench, remove_alarm
    from .frontends.api import estimate
    from .core.estimate import Estimate
    from . import export
    from .core.auth import AuthenticationManager, CredentialProvider, EnvironmentCredentialProvider, FileCredentialProvider
    from .core.config import AuthConfig, DeploymentConfig, DeploymentInfo, DeploymentStatus
    from .core.events import Done, LogLine, PlanReady, ProgressUpdate, StepFinished, StepStarted, WarningEvent
    from .core.listing import Listing, effective_status
    from .core.manager import DeploymentManager
    from .providers.base import DeployContext, DeploymentProvider
    from .core.plan import Plan, PlannedStep
    from .frontends.widgets import DeployForm, DeploymentsBoard
    from .sandbox import Sandbox, SandboxStatus
    from .spec import WeaveSpec, load_weave, parse_weave


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use and cache the name here."""
    if name == "export":  # the package weave_nb.export is callable: weave_nb.export(NAME, FORMAT, ...)
        return importlib.import_module(".export", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: Any) -> None:
    """Register the %weave magics (``%load_ext weave_nb``)."""
    from .frontends.magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the %weave magics (``%unload_ext weave_nb``)."""
    from .frontends.magics import unload_ipython_extension as _unload

    _unload(ipython)
