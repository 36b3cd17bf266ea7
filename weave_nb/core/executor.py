"""The one executor: runs any provider's plan, journals each step, rolls back through each step's undo.

:class:`Executor` walks ``plan.steps`` in order. A no-change step is
reported as skipped and never run. Every other step calls the provider's
apply function (``provider.apply_step``), and the moment it returns the
step is written to the inventory's journal, with the resources it made.
When a step fails, the finished steps are undone newest first through
their ``undo`` functions (unless the user asked to keep what was made); a
step whose undo fails stays recorded, so ``weave undeploy`` can still
remove it. :class:`DisplayOnlyExecutor` is the dry run: the same plan,
shown and journaled as planned, with no call made.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .events import PlanReady
from .plan import Plan, PlannedStep

if TYPE_CHECKING:
    from .artifact import Artifact
    from .config import DeploymentConfig
    from ..providers.base import DeployContext, DeploymentProvider


@dataclass
class Run:
    """One execution of one plan: what apply and undo functions read and write.

    Attributes:
        plan: the plan being run.
        ctx: the deployment's context (events, inventory, env values).
        config: the deployment settings (``None`` for an undeploy).
        artifact: the artifact being deployed (``None`` for an undeploy).
        outputs: values steps hand to later steps and to ``finish`` (e.g. a
            version number only known once published). Never secrets.
        results: each finished step's own result, by step key.
        executed: the keys of the steps that ran, in order.
        scratch: per-run objects of the provider (SDK clients); never journaled.
        id: this run's id in the journal.
        rolled_back: after a failure, True when every finished step was undone
            (what ran before this run is as it was), False when something stayed.
    """

    plan: Plan
    ctx: "DeployContext"
    config: "DeploymentConfig | None" = None
    artifact: "Artifact | None" = None
    outputs: dict[str, Any] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)
    scratch: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    rolled_back: bool | None = None


class Executor:
    """Runs a plan step by step for one provider.

    Args:
        provider: the provider whose ``apply_step``/``undo_step`` carry out the steps.
        keep_on_failure: on a failed step, keep what finished steps made instead of undoing them.
    """

    def __init__(self, provider: "DeploymentProvider", keep_on_failure: bool = False) -> None:
        self.provider = provider
        self.keep_on_failure = keep_on_failure
        self.last: Run | None = None

    def run(self, plan: Plan, ctx: "DeployContext", config: "DeploymentConfig | None" = None,
            artifact: "Artifact | None" = None) -> Run:
        """Run every step of ``plan`` in order.

        Returns:
            The finished :class:`Run` (its outputs, results and executed keys).

        Raises:
            BaseException: the failing step's error, after the rollback.
        """
        run = self.last = Run(plan=plan, ctx=ctx, config=config, artifact=artifact)
        journal = ctx.inventory.journal
        journal.begin(run.id, ctx.provider, ctx.name, plan)
        finished: list[PlannedStep] = []
        try:
            for step in plan.steps:
                if not step.changes:
                    ctx.skip(step.key, step.resource, step.detail or "no change")
                    continue
                with ctx.step(step.key, step.resource):
                    result = self.provider.apply_step(run, step) or {}
                run.results[step.key] = dict(result)
                run.outputs.update(result)
                run.executed.append(step.key)
                finished.append(step)
                journal.step(run.id, step, "done", result)
        except BaseException as exc:
            failed = next((s for s in plan.steps if s.changes and s.key not in run.results), None)
            if failed is not None:
                journal.step(run.id, failed, "failed", {"error": ctx.scrub(_short(exc))})
            if self.keep_on_failure:
                ctx.warn("keeping what this run made (keep_on_failure); the inventory lists it for undeploy")
                run.rolled_back = not finished
            else:
                run.rolled_back = self.rollback(run, finished)
            journal.end(run.id, "failed")
            raise
        journal.end(run.id, "done")
        return run

    def rollback(self, run: Run, finished: list[PlannedStep]) -> bool:
        """Undo the finished steps, newest first; an undo that fails leaves its resource recorded.

        Returns:
            True when every undo succeeded (steps without an undo change nothing that matters).
        """
        undoable = [s for s in finished if s.undo]
        if not undoable:
            return True
        complete = True
        run.ctx.log(f"rolling back: undoing {len(undoable)} step(s) this run finished")
        for step in reversed(undoable):
            try:
                self.provider.undo_step(run, step, run.results.get(step.key, {}))
            except Exception as exc:  # noqa: BLE001 - keep going; what stays is recorded for undeploy
                run.ctx.warn(f"could not undo {step.resource} ({_short(exc)}); it stays in the inventory for undeploy")
                run.ctx.inventory.journal.step(run.id, step, "undo-failed", {"error": run.ctx.scrub(_short(exc))})
                complete = False
                continue
            run.ctx.inventory.journal.step(run.id, step, "undone", {})
        return complete


class DisplayOnlyExecutor:
    """The dry run: announces the plan exactly as the executor would run it, and calls nothing."""

    def run(self, plan: Plan, ctx: "DeployContext") -> Plan:
        """Emit the plan to the context's sink and return it unchanged."""
        ctx.reporter.emit(PlanReady(plan))
        return plan


def _short(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return text.splitlines()[0][:300] if text else type(exc).__name__
