"""A plan is data: an ordered list of steps, each one instruction with its own parameters.

A provider's planner turns (config, artifact, observed remote state) into a
:class:`Plan`. The one :class:`~weave_nb.core.executor.Executor` runs any plan
by calling, for each step that changes something, the provider's apply
function named by ``step.call`` with ``step.params``; ``weave plan`` and
``--dry-run`` show the very same object. Nothing in a plan is secret: env
values never go in ``params`` (apply functions read them from the context).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["create", "update", "replace", "delete", "adopt", "no-change"]
SYMBOLS = {"create": "+", "update": "~", "replace": "±", "delete": "-", "adopt": "&", "no-change": "="}


class PlannedStep(BaseModel):
    """One change to one resource.

    Attributes:
        key: unique within the plan; names the step in events and the journal.
        resource: what it acts on, for people ("Lambda function weave-demo").
        action: create, update, replace, delete, adopt or no-change.
        detail: why, for people ("code changed").
        call: the provider's apply function (``apply_<call>``); ``None`` only for no-change.
        params: the values the call sends (JSON-able; never a secret value).
        undo: the provider's undo function (``undo_<undo>``) run on rollback, or ``None``.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    key: str
    resource: str
    action: Action
    detail: str = ""
    call: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    undo: str | None = None

    @property
    def changes(self) -> bool:
        """True unless the step is no-change."""
        return self.action != "no-change"

    def line(self) -> str:
        """One line for the text form of a plan."""
        extra = f"  ({self.detail})" if self.detail else ""
        return f"  {SYMBOLS[self.action]} {self.action:<9} {self.resource}{extra}"


class Plan(BaseModel):
    """What an operation will do: pure data, computed without changing anything.

    Attributes:
        provider, name: the deployment.
        operation: ``deploy``, ``undeploy`` or ``alarm`` (``weave alarm``).
        steps: in the order the executor runs them.
        notes: things to know that are not steps.
        observed: a summary of the remote state the plan was made from (no secrets).
    """

    model_config = ConfigDict(defer_build=True)

    provider: str
    name: str
    operation: Literal["deploy", "undeploy", "alarm"] = "deploy"
    steps: list[PlannedStep] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    observed: dict[str, Any] = Field(default_factory=dict)

    @property
    def has_changes(self) -> bool:
        """True when any step changes something."""
        return any(s.changes for s in self.steps)

    def changing(self) -> list[PlannedStep]:
        """The steps the executor will run, in order."""
        return [s for s in self.steps if s.changes]

    def step(self, key: str) -> PlannedStep | None:
        """The step named ``key``, or ``None``."""
        return next((s for s in self.steps if s.key == key), None)

    def render(self) -> str:
        """Text form, one line per step, as shown by ``weave plan``."""
        lines = [f"{self.title}:"]
        lines.extend(s.line() for s in self.steps)
        if not self.has_changes:
            lines.append("  no changes")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.render())

    @property
    def title(self) -> str:
        """``Plan for NAME on PROVIDER`` (``Undeploy plan ...`` for an undeploy)."""
        verb = {"deploy": "Plan", "undeploy": "Undeploy plan", "alarm": "Alarm plan"}[self.operation]
        return f"{verb} for {self.name} on {self.provider}"

    def _repr_html_(self) -> str:
        from .present import plan_html

        return plan_html(self)

    def to_json(self) -> str:
        """JSON form of the plan (the steps with their calls and parameters)."""
        return json.dumps(self.model_dump(), indent=2, default=str)
