"""The local provider through the one executor: the plan is what runs, and a failed release keeps the old one serving.

Real server processes on 127.0.0.1 and real HTTP; the ``weave_home``
fixture undeploys whatever a test leaves behind.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from weave_nb.core.config import DeploymentStatus
from weave_nb.core.errors import DeploymentFailed
from weave_nb.core.procutil import pid_alive, wait_for

from conftest import server_pids
from plan_checks import assert_ran_the_plan, ran_and_planned
from test_local_provider import get_json, post_json


def deploy(manager, mock_weave, events=None, **extra):
    values = {"name": "demo", "weave_file": str(mock_weave), **extra}
    return manager.deploy(values, sink=(events.append if events is not None else lambda e: None))


def test_first_deploy_runs_exactly_the_planned_steps(manager, mock_weave):
    shown = manager.plan({"name": "demo", "weave_file": str(mock_weave)})
    events = []
    info = deploy(manager, mock_weave, events)
    plan = assert_ran_the_plan(events, shown)
    assert [s.key for s in plan.changing()] == ["artifact", "process", "health"]
    steps = manager.inventory.journal.runs("local", "demo")[-1]["steps"]
    assert [(s["key"], s["call"], s["outcome"]) for s in steps] == [
        ("artifact", "write_artifact", "done"), ("process", "start_process", "done"), ("health", "wait_healthy", "done")]
    assert steps[1]["result"]["pid"] == info.details["pid"]
    assert get_json(info.endpoint + "/health")["status"] == "ok"


def test_changed_redeploy_switches_over_on_the_same_port_and_runs_the_plan(manager, mock_weave):
    first = deploy(manager, mock_weave)
    mock_weave.write_text(mock_weave.read_text().replace("description:", "description: changed"))
    events = []
    second = deploy(manager, mock_weave, events)
    plan = assert_ran_the_plan(events)
    # the earlier release's folder stays for `weave rollback` (pruned only beyond the releases kept)
    assert [s.key for s in plan.changing()] == ["artifact", "process", "health", "retire"]
    assert Path(first.details["folder"]).is_dir()
    assert plan.step("process").action == "replace" and plan.step("retire").params == {"pid": first.details["pid"]}
    assert second.endpoint == first.endpoint and second.details["pid"] != first.details["pid"]
    assert wait_for(lambda: not pid_alive(first.details["pid"]), 10)
    assert server_pids(manager.home) == [second.details["pid"]]


def test_failed_redeploy_keeps_the_previous_release_answering(manager, mock_weave, tmp_path):
    first = deploy(manager, mock_weave)
    failures = []
    stop = threading.Event()

    def poll():  # calls the endpoint all through the failed redeploy
        while not stop.is_set():
            try:
                post_json(first.endpoint, {"weave": "chain", "input": "x"})
            except Exception as exc:  # noqa: BLE001 - counted
                failures.append(exc)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        broken = tmp_path / "broken-python"
        broken.write_text("#!/bin/sh\nexit 3\n")
        broken.chmod(0o755)
        with pytest.raises(DeploymentFailed) as caught:
            deploy(manager, mock_weave, option=None, options={"python": str(broken), "startup_timeout": 5})
    finally:
        stop.set()
        poller.join(10)
    assert "rolled back" in caught.value.message and "previous release still serves" in caught.value.message
    assert failures == []
    assert pid_alive(first.details["pid"]) and server_pids(manager.home) == [first.details["pid"]]
    row = manager.inventory.get("local", "demo")
    assert row.status == DeploymentStatus.ACTIVE and row.details["pid"] == first.details["pid"]
    assert get_json(first.endpoint + "/health")["status"] == "ok"
    run = manager.inventory.journal.runs("local", "demo")[-1]
    assert [(s["key"], s["outcome"]) for s in run["steps"]] == [
        ("process", "done"), ("health", "failed"), ("process", "undone")]
    # the next good deploy goes ahead as usual
    assert deploy(manager, mock_weave).status == DeploymentStatus.ACTIVE


def test_unchanged_redeploy_runs_nothing(manager, mock_weave):
    first = deploy(manager, mock_weave)
    events = []
    again = deploy(manager, mock_weave, events)
    plan, started = ran_and_planned(events)
    assert not plan.has_changes and started == [] and again.message == "no changes"
    assert again.details["pid"] == first.details["pid"]


def test_undeploy_plan_is_shown_by_dry_run_and_is_what_runs(manager, mock_weave):
    info = deploy(manager, mock_weave)
    shown = manager.destroy("demo", dry_run=True)
    assert shown.operation == "undeploy" and [s.action for s in shown.steps] == ["delete", "delete"]
    assert pid_alive(info.details["pid"])  # the dry run changed nothing
    events = []
    manager.destroy("demo", sink=events.append)
    plan, started = ran_and_planned(events)
    assert started == [s.key for s in shown.steps] == [s.key for s in plan.steps]
    assert wait_for(lambda: not pid_alive(info.details["pid"]), 10)


@pytest.mark.parametrize("host", ["not a host", "192.0.2.1", "example.com"])
def test_a_host_this_machine_cannot_listen_on_fails_before_anything_is_made(manager, mock_weave, host):
    from weave_nb.core.errors import ConfigError

    with pytest.raises(ConfigError, match="--host"):
        deploy(manager, mock_weave, host=host)
    assert manager.inventory.get("local", "demo") is None
    assert not (manager.home / "local" / "demo").exists()
