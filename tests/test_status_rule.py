"""One status rule: ``effective_status`` over in-memory records, and listing and status agreeing on real processes.

The rule: recorded but missing live -> failed, drift ``missing``; live but
unrecorded -> drift ``unrecorded``; recorded as failed/deploying -> never
shown as ``active``; left deploying by a process that is gone -> drift
``interrupted``.
"""

from __future__ import annotations

import os
import signal

import pytest

from weave_nb.core.config import DeploymentInfo, DeploymentStatus, Resource
from weave_nb.core.listing import effective_status, merge_live
from weave_nb.core.procutil import pid_alive, wait_for

ACTIVE, FAILED, DEPLOYING, DESTROYING = (DeploymentStatus.ACTIVE, DeploymentStatus.FAILED,
                                         DeploymentStatus.DEPLOYING, DeploymentStatus.DESTROYING)


def rec(status=ACTIVE, **fields):
    return DeploymentInfo(name="demo", provider="p", status=status, endpoint="http://rec", message=fields.pop("message", None),
                          resources=[Resource(kind="function", id="f")], **fields)


def live(status=ACTIVE, **fields):
    return DeploymentInfo(name="demo", provider="p", status=status, health=fields.pop("health", "healthy"), **fields)


# ----------------------------------------------------------------------------- the pure rule
def test_recorded_and_live_takes_the_live_view_but_keeps_the_record():
    record = rec(message=None)
    info = effective_status(record, live(endpoint="http://live", version="7"))
    assert (info.status, info.drift, info.health, info.endpoint, info.version) == (ACTIVE, None, "healthy", "http://live", "7")
    assert info.created_at == record.created_at and info.resources == record.resources


@pytest.mark.parametrize("recorded", [ACTIVE, FAILED, DEPLOYING, DESTROYING])
def test_recorded_but_missing_live_is_failed_and_missing(recorded):
    info = effective_status(rec(recorded), None)
    assert info.status == FAILED and info.drift == "missing" and info.health == "gone"


def test_a_provider_report_marked_missing_counts_as_missing_and_keeps_its_health_word():
    reported = rec(FAILED, health="not running", drift="missing")
    info = effective_status(rec(ACTIVE), reported)
    assert info.status == FAILED and info.drift == "missing" and info.health == "not running"


def test_live_but_unrecorded():
    info = effective_status(None, live())
    assert info.status == ACTIVE and info.drift == "unrecorded"


@pytest.mark.parametrize("recorded", [FAILED, DEPLOYING, DESTROYING])
def test_recorded_failed_or_unfinished_is_never_shown_active(recorded):
    """A function killed right after CreateFunction, a failed rollback, a half-failed undeploy."""
    info = effective_status(rec(recorded, message="rollback failed"), live(ACTIVE), locked=True)
    assert info.status == recorded and info.health == "healthy" and info.message == "rollback failed"


def test_live_failure_wins_over_any_record():
    for recorded in (ACTIVE, DEPLOYING):
        assert effective_status(rec(recorded), live(FAILED), locked=True).status == FAILED


def test_left_deploying_by_a_dead_process_is_interrupted():
    info = effective_status(rec(DEPLOYING), live(ACTIVE), locked=False)
    assert info.status == DEPLOYING and info.drift == "interrupted"
    assert "deploy again to finish, or undeploy" in info.message
    held = effective_status(rec(DEPLOYING), live(ACTIVE), locked=True)
    assert held.drift is None
    gone = effective_status(rec(DESTROYING), None, locked=False)
    assert gone.status == FAILED and gone.drift == "missing" and "undeploy was interrupted" in gone.message


def test_a_running_operation_is_not_called_missing():
    """Deploying (or destroying) under a held lock: the resource may not exist yet (or any more)."""
    for recorded in (DEPLOYING, DESTROYING):
        info = effective_status(rec(recorded), None, locked=True)
        assert info.status == recorded and info.drift is None
    reported = rec(FAILED, health="not running", drift="missing")
    assert effective_status(rec(DEPLOYING), reported, locked=True).status == DEPLOYING


def test_without_a_live_view_only_the_record_speaks():
    assert effective_status(rec(ACTIVE), None, live_known=False).drift is None
    assert effective_status(rec(DEPLOYING), None, live_known=False).drift == "interrupted"


def test_merge_live_uses_the_rule_for_every_row():
    records = [rec(ACTIVE).model_copy(update={"name": n}) for n in ("kept", "vanished")]
    records.append(rec(FAILED).model_copy(update={"name": "broken"}))
    lives = [live().model_copy(update={"name": n}) for n in ("kept", "broken", "stranger")]
    merged = {d.name: (d.status.value, d.drift) for d in merge_live(records, lives)}
    assert merged == {"kept": ("active", None), "vanished": ("failed", "missing"), "broken": ("failed", None),
                      "stranger": ("active", "unrecorded")}


# ----------------------------------------------------------------------------- listing == status, real processes
def agree(manager, name="demo"):
    (listed,) = [d for d in manager.list(provider="local").deployments if d.name == name]
    status = manager.status(name, "local")
    assert (listed.status, listed.drift) == (status.status, status.drift), (listed, status)
    return listed


def test_listing_and_status_agree_on_a_killed_process(manager, mock_weave):
    info = manager.deploy({"name": "demo", "weave_file": str(mock_weave)})
    assert (agree(manager).status, agree(manager).drift) == (ACTIVE, None)
    os.kill(info.details["pid"], signal.SIGKILL)
    assert wait_for(lambda: not pid_alive(info.details["pid"]), 10)
    listed = agree(manager)
    assert listed.status == FAILED and listed.drift == "missing"


def test_listing_and_status_agree_on_a_record_left_failed(manager, mock_weave):
    """A deploy recorded as failed while its server still runs is failed everywhere, never active."""
    manager.deploy({"name": "demo", "weave_file": str(mock_weave)})
    manager.inventory.save("local", "demo", status=DeploymentStatus.FAILED, message="rollback failed")
    listed = agree(manager)
    assert listed.status == FAILED and listed.message == "rollback failed"


def test_listing_and_status_agree_on_a_deploy_left_by_a_dead_process(subprocess_env, mock_weave, manager, weave_home):
    from test_core_recovery import killed_after

    killed_after("process", subprocess_env, mock_weave, weave_home)  # the server runs, the deploying process is gone
    listed = agree(manager)
    assert listed.status == DEPLOYING and listed.drift == "interrupted"
    pid = manager.inventory.get("local", "demo").details["pid"]
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not pid_alive(pid), 10)
    listed = agree(manager)
    assert listed.status == FAILED and listed.drift == "missing" and "interrupted" in listed.message


def test_the_front_ends_show_the_rule(manager, mock_weave, weave_home, monkeypatch):
    """``weave deployments``, ``weave status`` and ``%weave_deployments`` say the same of a record left failed."""
    import io
    import json

    import weave_nb
    from weave_nb.frontends import cli

    manager.deploy({"name": "demo", "weave_file": str(mock_weave)})
    manager.inventory.save("local", "demo", status=DeploymentStatus.FAILED)
    monkeypatch.setattr(cli, "_manager", lambda: manager)
    out = io.StringIO()
    assert cli.main(["deployments", "-p", "local"], out=out, err=io.StringIO()) == 0
    assert out.getvalue().splitlines()[1].split()[2] == "failed"
    out = io.StringIO()
    assert cli.main(["status", "demo"], out=out, err=io.StringIO()) == 1
    assert json.loads(out.getvalue())["status"] == "failed"
    frame = weave_nb.deployments(provider="local", manager=manager)
    assert list(frame["status"]) == ["failed"]


# ----------------------------------------------------------------------------- listing == status, a cloud-like plug-in
class CloudLike:
    """Builds a plug-in whose live state lives apart from the inventory, as a cloud's does."""

    @staticmethod
    def make():
        from frontend_fakes import make_provider

        from weave_nb.core.plan import Plan, PlannedStep
        from weave_nb.core.errors import DeploymentFailed, NotFound

        class Cloud(make_provider()):
            live: dict = {}
            fail_deploy = fail_destroy = False

            def plan(self, config, artifact, ctx):
                return Plan(provider=self.name, name=config.name, steps=[
                    PlannedStep(key="function", resource="function", action="create", call="function")])

            def apply_function(self, run, step):
                config = run.config
                info = DeploymentInfo(name=config.name, provider=self.name, status=ACTIVE, endpoint="https://fn")
                self.live[config.name] = info  # the function exists from here on
                if self.fail_deploy:  # no undo: the function stays, as after a failed rollback
                    raise DeploymentFailed("the alias failed, and so did the rollback", "undeploy to remove it")

            def finish(self, run):
                return self.live[run.config.name]

            def plan_destroy(self, ctx, **options):
                return Plan(provider=self.name, name=ctx.name, operation="undeploy", steps=[
                    PlannedStep(key="function", resource="function", action="delete", call="delete")])

            def apply_delete(self, run, step):
                if self.fail_destroy:
                    raise DeploymentFailed("could not delete the role")
                self.live.pop(run.ctx.name, None)

            def status(self, ctx):
                if ctx.name not in self.live:
                    raise NotFound(f"no function {ctx.name}")
                return self.live[ctx.name].model_copy(update={"health": "Active"})

            def list_deployments(self, records):
                return [d.model_copy(update={"health": "Active"}) for d in self.live.values()]

        Cloud.live = {}
        return Cloud


@pytest.fixture
def cloud(weave_home):
    from weave_nb.core.manager import DeploymentManager

    provider = CloudLike.make()
    return DeploymentManager(home=weave_home, providers={"cloud": provider}), provider


def agree_on(mgr, name):
    (listed,) = [d for d in mgr.list(provider="cloud").deployments if d.name == name]
    status = mgr.status(name, "cloud")
    assert (listed.status, listed.drift, listed.message) == (status.status, status.drift, status.message), (listed, status)
    return listed


def test_cloud_failed_rollback_is_failed_in_listing_and_status(cloud):
    from frontend_fakes import HELLO

    from weave_nb.core.errors import DeploymentFailed

    mgr, provider = cloud
    provider.fail_deploy = True
    with pytest.raises(DeploymentFailed):
        mgr.deploy({"name": "fn", "provider": "cloud", "weave_text": HELLO})
    listed = agree_on(mgr, "fn")
    assert listed.status == FAILED and listed.health == "Active" and "rollback" in listed.message


def test_cloud_half_failed_undeploy_is_failed_in_listing_and_status(cloud):
    from frontend_fakes import HELLO

    from weave_nb.core.errors import DeploymentFailed

    mgr, provider = cloud
    mgr.deploy({"name": "fn", "provider": "cloud", "weave_text": HELLO})
    assert agree_on(mgr, "fn").status == ACTIVE
    provider.fail_destroy = True
    with pytest.raises(DeploymentFailed):
        mgr.destroy("fn")
    listed = agree_on(mgr, "fn")
    assert listed.status == FAILED and "undeploy failed" in listed.message


def test_cloud_function_left_by_a_killed_deploy_is_not_active(cloud):
    """Killed right after CreateFunction: the row says deploying, nobody holds the lock, the function is live."""
    mgr, provider = cloud
    provider.live["fn"] = DeploymentInfo(name="fn", provider="cloud", status=ACTIVE)
    mgr.inventory.save("cloud", "fn", status=DEPLOYING)
    listed = agree_on(mgr, "fn")
    assert listed.status == DEPLOYING and listed.drift == "interrupted"
    del provider.live["fn"]
    listed = agree_on(mgr, "fn")
    assert listed.status == FAILED and listed.drift == "missing"
