"""``weave export``: the same deployment as SAM/CloudFormation, Terraform, Compose or Kubernetes files.

See :mod:`weave_nb.export.source` for the contract a format module follows.
"""

from __future__ import annotations

from .source import ExportSource, source_for

__all__ = ["ExportSource", "source_for"]
