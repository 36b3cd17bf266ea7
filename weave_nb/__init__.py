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

from .errors import (
    ConfigError,
    CredentialsError,
    DeploymentBusy,
    DeploymentFailed,
    NotFound,
    ProviderUnavailable,
    WeaveError,
    WeaveSpecError,
)

__version__ = "0.1.0"

# name -> the private module that defines it (imported on first access)
_LAZY = {
    "deploy": "api", "deployments": "api", "invoke": "api", "logs": "api", "plan": "api", "provider_options": "api",
    "status": "api", "undeploy": "api",
    "AuthenticationManager": "auth", "CredentialProvider": "auth", "EnvironmentCredentialProvider": "auth",
    "FileCredentialProvider": "auth",
    "AuthConfig": "config", "DeploymentConfig": "config", "DeploymentInfo": "config", "DeploymentStatus": "config",
    "Plan": "config", "PlannedStep": "config",
    "Done": "events", "LogLine": "events", "PlanReady": "events", "ProgressUpdate": "events", "StepFinished": "events",
    "StepStarted": "events", "WarningEvent": "events",
    "Listing": "listing", "effective_status": "listing",
    "DeploymentManager": "manager",
    "DeployContext": "providers.base", "DeploymentProvider": "providers.base",
    "Sandbox": "sandbox", "SandboxStatus": "sandbox",
    "WeaveSpec": "spec", "load_weave": "spec", "parse_weave": "spec",
}

__all__ = sorted([
    *_LAZY,
    "ConfigError",
    "CredentialsError",
    "DeploymentBusy",
    "DeploymentFailed",
    "NotFound",
    "ProviderUnavailable",
    "WeaveError",
    "WeaveSpecError",
    "load_ipython_extension",
    "unload_ipython_extension",
])

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .api import deploy, deployments, invoke, logs, plan, provider_options, status, undeploy
    from .auth import AuthenticationManager, CredentialProvider, EnvironmentCredentialProvider, FileCredentialProvider
    from .config import AuthConfig, DeploymentConfig, DeploymentInfo, DeploymentStatus, Plan, PlannedStep
    from .events import Done, LogLine, PlanReady, ProgressUpdate, StepFinished, StepStarted, WarningEvent
    from .listing import Listing, effective_status
    from .manager import DeploymentManager
    from .providers.base import DeployContext, DeploymentProvider
    from .sandbox import Sandbox, SandboxStatus
    from .spec import WeaveSpec, load_weave, parse_weave


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use and cache the name here."""
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
    from .magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the %weave magics (``%unload_ext weave_nb``)."""
    from .magics import unload_ipython_extension as _unload

    _unload(ipython)
