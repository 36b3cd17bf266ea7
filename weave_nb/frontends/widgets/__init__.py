"""Notebook widgets: :class:`DeployForm` and :class:`DeploymentsBoard` (needs ``ipywidgets``).

Each widget keeps its values and validation in a ``HasTraits`` model
(``form.model``, ``board.model``) and runs work on a worker thread
(``form.future``). Constructors never display: leave the widget as the cell's
last value, or call ``display(form)``.
"""

from __future__ import annotations

from .models import BoardModel, DeployFormModel, parse_env_text, run_in_thread
from .views import DeployForm, DeploymentsBoard

__all__ = ["BoardModel", "DeployForm", "DeployFormModel", "DeploymentsBoard", "parse_env_text", "run_in_thread"]
