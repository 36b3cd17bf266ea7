"""``weave export``: the same deployment as SAM/CloudFormation, Terraform, Compose or Kubernetes files.

See :mod:`weave_nb.export.source` for the contract a format module follows
and :mod:`weave_nb.export.writer` for how a format is found and the folder
written. This package is also callable: ``weave_nb.export("demo", "sam")``
(or ``from weave_nb import export``) is :func:`weave_nb.frontends.api.export_deployment`.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from .source import ExportSource, source_for
from .writer import FORMATS, ExportResult, export_deployment, format_module

__all__ = ["ExportSource", "source_for", "FORMATS", "ExportResult", "export_deployment", "format_module"]


class _CallableModule(types.ModuleType):
    """The package as a function: ``weave_nb.export(name, format, ...)`` exports a deployment."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from ..frontends.api import export_deployment as api_export

        return api_export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
