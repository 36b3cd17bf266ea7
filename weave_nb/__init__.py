"""weave-nb: deploy Weave AI-agent workflows from a notebook or the command line.

``%load_ext weave_nb`` registers the magics. The Python API (``deploy``,
``deployments``, ``undeploy``, ``status``, ``invoke``) and the core classes
are re-exported here. Importing this package pulls in no cloud SDK, pandas,
or ipywidgets.
"""

from __future__ import annotations

from typing import Any

from .api import deploy, deployments, invoke, logs, plan, status, undeploy
from .auth import AuthenticationManager, CredentialProvider, EnvironmentCredentialProvider, FileCredentialProvider
from .config import AuthConfig, DeploymentConfig, DeploymentInfo, DeploymentStatus, Plan, PlannedStep
from .errors import WeaveError
from .events import Done, LogLine, PlanReady, ProgressUpdate, StepFinished, StepStarted, WarningEvent
from .manager import DeploymentManager
from .providers.base import DeployContext, DeploymentProvider

__version__ = "0.1.0"

__all__ = [
    "AuthConfig",
    "AuthenticationManager",
    "CredentialProvider",
    "DeployContext",
    "DeploymentConfig",
    "DeploymentInfo",
    "DeploymentManager",
    "DeploymentProvider",
    "DeploymentStatus",
    "Done",
    "EnvironmentCredentialProvider",
    "FileCredentialProvider",
    "LogLine",
    "Plan",
    "PlanReady",
    "PlannedStep",
    "ProgressUpdate",
    "StepFinished",
    "StepStarted",
    "WarningEvent",
    "WeaveError",
    "deploy",
    "deployments",
    "invoke",
    "load_ipython_extension",
    "logs",
    "plan",
    "status",
    "undeploy",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """Register the %weave magics (``%load_ext weave_nb``)."""
    from .magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the %weave magics (``%unload_ext weave_nb``)."""
    from .magics import unload_ipython_extension as _unload

    _unload(ipython)
