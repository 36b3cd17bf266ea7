"""Deploys interrupted half-way: the next deploy finishes the job, or undeploy removes everything."""

from __future__ import annotations

import pytest

from weave_nb.core.config import DeploymentStatus
from weave_nb.core.events import StepFinished
from weave_nb.core.procutil import pid_alive, stop_process, wait_for

from conftest import read_line, server_pids, start_deploy
from test_local_provider import get_json


def killed_after(step, env, weave_file, home):
    """Start a deploy in a child and kill -9 it right after ``step`` finished."""
    child = start_deploy(env, weave_file, "demo", pause_after=step)
    read_line(child, "PAUSED")
    child.kill()
    child.wait(timeout=10)


def test_killed_after_process_step_next_deploy_finishes(subprocess_env, mock_weave, manager, weave_home):
    killed_after("process", subprocess_env, mock_weave, weave_home)
    row = manager.inventory.get("local", "demo")
    assert row.status == DeploymentStatus.DEPLOYING
    (orphan,) = [int(r.id) for r in row.resources if r.kind == "process"]
    assert pid_alive(orphan) and server_pids(weave_home) == [orphan]
    plan = manager.plan({"name": "demo", "weave_file": str(mock_weave)})
    assert plan.step("retire").params == {"pid": orphan}  # replaced once a new process is healthy

    info = manager.deploy({"name": "demo", "weave_file": str(mock_weave)})
    assert info.status == DeploymentStatus.ACTIVE and info.message != "no changes"
    assert wait_for(lambda: server_pids(weave_home) == [info.details["pid"]], 10)
    assert get_json(info.endpoint + "/health")["weaves"] == ["chain"]
    processes = [r.id for r in manager.inventory.get("local", "demo").resources if r.kind == "process"]
    assert processes == [str(info.details["pid"])]


def test_killed_after_process_step_undeploy_removes_everything(subprocess_env, mock_weave, manager, weave_home):
    killed_after("process", subprocess_env, mock_weave, weave_home)
    (orphan,) = [int(r.id) for r in manager.inventory.get("local", "demo").resources if r.kind == "process"]
    assert pid_alive(orphan)
    manager.destroy("demo")
    assert wait_for(lambda: not pid_alive(orphan), 10)
    assert server_pids(weave_home) == []
    assert not (weave_home / "local" / "demo").exists()
    assert manager.inventory.get("local", "demo") is None


def test_killed_after_artifact_step_next_deploy_finishes(subprocess_env, mock_weave, manager, weave_home):
    killed_after("artifact", subprocess_env, mock_weave, weave_home)
    row = manager.inventory.get("local", "demo")
    assert row.status == DeploymentStatus.DEPLOYING and [r.kind for r in row.resources] == ["folder"]
    assert server_pids(weave_home) == []
    info = manager.deploy({"name": "demo", "weave_file": str(mock_weave)})
    assert info.status == DeploymentStatus.ACTIVE and server_pids(weave_home) == [info.details["pid"]]


def test_interrupt_in_the_deploying_process_is_recorded_and_undeployable(manager, mock_weave, weave_home):
    def sink(event):
        if isinstance(event, StepFinished) and event.step == "process":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        manager.deploy({"name": "demo", "weave_file": str(mock_weave)}, sink=sink)
    row = manager.inventory.get("local", "demo")
    assert row.status == DeploymentStatus.FAILED
    (pid,) = [int(r.id) for r in row.resources if r.kind == "process"]
    assert pid_alive(pid), "the server was started and recorded before the interrupt"
    manager.destroy("demo")
    assert wait_for(lambda: server_pids(weave_home) == [], 10)
    assert manager.inventory.get("local", "demo") is None


def test_interrupted_deploy_is_marked_in_listings(subprocess_env, mock_weave, manager, weave_home):
    from weave_nb.core.inventory import Inventory

    killed_after("process", subprocess_env, mock_weave, weave_home)
    (row,) = manager.list(provider="local").deployments
    assert row.status == DeploymentStatus.DEPLOYING and row.drift == "interrupted"
    assert "deploy again to finish, or undeploy" in row.message
    with Inventory(weave_home).lock("local", "demo"):
        assert manager.inventory.is_locked("local", "demo")
        assert manager.list(provider="local").deployments[0].drift is None
    assert not manager.inventory.is_locked("local", "demo")
    manager.deploy({"name": "demo", "weave_file": str(mock_weave)})
    assert manager.list(provider="local").deployments[0].drift is None


def test_interrupted_deploy_shows_in_the_cli(subprocess_env, mock_weave, weave_home):
    from conftest import run_weave

    killed_after("process", subprocess_env, mock_weave, weave_home)
    listed = run_weave(["deployments", "-p", "local"], subprocess_env)
    row = listed.stdout.strip().splitlines()[1].split()
    assert row[:3] == ["demo", "local", "deploying"] and row[-1] == "interrupted"


def test_undeploy_stops_a_server_that_was_never_recorded(manager, mock_weave, weave_home, tmp_path):
    """A deploy killed between starting the server and recording it: undeploy still finds the process."""
    import subprocess

    info = manager.deploy({"name": "demo", "weave_file": str(mock_weave)})
    pid = info.details["pid"]
    manager.inventory.remove_resource("local", "demo", "process", str(pid))
    # a bystander that merely names a file in the deployment folder is left alone
    bystander = subprocess.Popen(["tail", "-f", str(weave_home / "local" / "demo" / "server.log")])
    try:
        manager.destroy("demo")
        assert wait_for(lambda: not pid_alive(pid), 10)
        assert server_pids(weave_home) == []
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait(timeout=10)
        stop_process(pid)  # the row is gone, so the home clean-up could not find it


def test_redeploy_stops_a_server_that_was_never_recorded(manager, mock_weave, weave_home):
    info = manager.deploy({"name": "demo", "weave_file": str(mock_weave)})
    pid = info.details["pid"]
    manager.inventory.remove_resource("local", "demo", "process", str(pid))
    manager.inventory.save("local", "demo", status="deploying", details={"pid": None})
    try:
        again = manager.deploy({"name": "demo", "weave_file": str(mock_weave)})
        assert again.details["pid"] != pid
        assert wait_for(lambda: server_pids(weave_home) == [again.details["pid"]], 10)
    finally:
        stop_process(pid)
