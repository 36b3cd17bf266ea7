"""Two real processes deploying the same name: one waits or fails clearly; the database stays whole."""

from __future__ import annotations

import sqlite3
import subprocess
import time

from weave_nb.core.artifact import build_artifact
from weave_nb.core.config import DeploymentStatus
from weave_nb.core.procutil import pid_alive, wait_for
from weave_nb.spec.model import load_weave

from conftest import MOCK_WEAVE, read_line, result_of, run_weave, server_pids, start_deploy, weave_command
from test_local_provider import get_json


def integrity(home) -> str:
    with sqlite3.connect(home / "inventory.db") as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def other_weave(tmp_path, name="other"):
    path = tmp_path / f"{name}.weave.yaml"
    path.write_text(MOCK_WEAVE.replace("chain:", f"{name}:"))
    return path


def test_second_deploy_fails_busy_while_the_first_holds_the_lock(subprocess_env, mock_weave, manager, weave_home, tmp_path):
    first = start_deploy(subprocess_env, mock_weave, "demo", pause_after="process")
    read_line(first, "PAUSED")
    second = start_deploy(subprocess_env, other_weave(tmp_path), "demo")
    busy = result_of(second)
    assert busy["ok"] is False and busy["type"] == "DeploymentBusy"
    assert f"process {first.pid}" in busy["message"]

    first.stdin.write("go\n")
    first.stdin.flush()
    done = result_of(first)
    assert done["ok"] is True
    assert integrity(weave_home) == "ok"
    row = manager.inventory.get("local", "demo")
    assert row.status == DeploymentStatus.ACTIVE and row.details["pid"] == done["pid"]
    assert row.content_hash == build_artifact(load_weave(mock_weave)).content_hash
    assert server_pids(weave_home) == [done["pid"]]


def test_second_deploy_with_lock_wait_waits_then_replaces(subprocess_env, mock_weave, manager, weave_home, tmp_path):
    first = start_deploy(subprocess_env, mock_weave, "demo", pause_after="process")
    read_line(first, "PAUSED")
    newer = other_weave(tmp_path)
    second = start_deploy(subprocess_env, newer, "demo", lock_wait=120)
    started = float(read_line(second, "STARTING").split()[1])
    released = time.time()
    first.stdin.write("go\n")
    first.stdin.flush()
    assert result_of(first)["ok"] is True
    line = read_line(second, "RESULT")
    second.wait(timeout=60)
    assert '"ok": true' in line, line
    assert started < released < float(line.rsplit(" ", 1)[1])

    assert integrity(weave_home) == "ok"
    row = manager.inventory.get("local", "demo")
    assert row.status == DeploymentStatus.ACTIVE
    assert row.content_hash == build_artifact(load_weave(newer)).content_hash
    assert get_json(row.endpoint + "/health")["weaves"] == ["other"]
    assert server_pids(weave_home) == [row.details["pid"]]


def test_simultaneous_cli_deploys_leave_one_consistent_deployment(subprocess_env, mock_weave, manager, weave_home, tmp_path):
    files = [mock_weave, other_weave(tmp_path)]
    procs = [
        subprocess.Popen([*weave_command(), "deploy", "-n", "demo", "-c", str(f)], env=subprocess_env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for f in files
    ]
    outcomes = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    for code, out, err in outcomes:
        assert code == 0 or (code == 1 and "is being changed by process" in err), (code, out, err)
    assert any(code == 0 for code, _, _ in outcomes)

    assert integrity(weave_home) == "ok"
    row = manager.inventory.get("local", "demo")
    assert row.status == DeploymentStatus.ACTIVE
    served = get_json(row.endpoint + "/health")["weaves"]
    by_hash = {build_artifact(load_weave(f)).content_hash: f for f in files}
    assert served == [by_hash[row.content_hash].name.split(".")[0]]
    assert server_pids(weave_home) == [row.details["pid"]]
    assert len(manager.inventory.list()) == 1

    gone = run_weave(["undeploy", "demo", "-f"], subprocess_env)
    assert gone.returncode == 0, gone.stderr
    assert wait_for(lambda: server_pids(weave_home) == [], 10)


def test_lock_is_released_when_the_holder_dies(subprocess_env, mock_weave, manager, weave_home):
    holder = start_deploy(subprocess_env, mock_weave, "demo", pause_after="artifact")
    read_line(holder, "PAUSED")
    holder.kill()
    holder.wait(timeout=10)
    assert not pid_alive(holder.pid)
    info = manager.deploy({"name": "demo", "weave_file": str(mock_weave)})
    assert info.status == DeploymentStatus.ACTIVE
