"""Shared checks that a deploy ran exactly the plan it showed (used by every provider's tests)."""

from __future__ import annotations

from weave_nb.core.events import PlanReady, StepFinished


def ran_and_planned(events):
    """The plan announced in ``events`` and the keys of the steps that really ran (not skipped), in order."""
    plans = [e.plan for e in events if isinstance(e, PlanReady)]
    assert plans, "no plan was announced"
    ran = [e.step for e in events if isinstance(e, StepFinished) and e.outcome != "skipped"]
    return plans[-1], ran


def assert_ran_the_plan(events, shown=None):
    """The steps that ran are exactly the plan's changing steps, in order; and ``shown`` (a dry run) is that plan.

    Returns:
        The plan that ran.
    """
    plan, ran = ran_and_planned(events)
    assert ran == [s.key for s in plan.changing()], f"ran {ran}, planned {[s.key for s in plan.changing()]}"
    if shown is not None:
        assert [(s.key, s.action, s.call, s.params, s.undo) for s in shown.steps] == \
            [(s.key, s.action, s.call, s.params, s.undo) for s in plan.steps]
    return plan
