"""The local provider end to end, with real server processes and real HTTP.

Every deployment here is a real detached Python process serving the weave on
127.0.0.1; the ``weave_home`` fixture undeploys whatever a test leaves behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from weave_nb.core.config import DeploymentStatus
from weave_nb.core.errors import ConfigError, DeploymentFailed, NotFound
from weave_nb.core.events import Done, StepFinished
from weave_nb.core.procutil import pid_alive, port_in_use, wait_for

from conftest import MOCK_WEAVE


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def post_json(url: str, payload: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def assert_dependency_order(result: dict, weave_text: str = MOCK_WEAVE, weave: str = "chain") -> list[str]:
    """The answer lists every agent of the weave once, each after the agents it reads."""
    import yaml

    doc = yaml.safe_load(weave_text)
    members = doc["weaves"][weave]["agents"]
    names = [a["name"] for a in result["agents"]]
    assert sorted(names) == sorted(members)
    for agent in members:
        inputs = doc["agents"][agent].get("inputs") or []
        inputs = [inputs] if isinstance(inputs, str) else inputs
        for dep in inputs:
            assert names.index(dep) < names.index(agent), f"{dep} must run before {agent}: {names}"
    return names


def assert_gone(info, home: Path) -> None:
    """Nothing of a local deployment is left: no process, no listener, no files, no row."""
    pid, port = info.details["pid"], info.details["port"]
    assert wait_for(lambda: not pid_alive(pid), 10), f"process {pid} still running"
    assert not port_in_use(port), f"port {port} still answers"
    assert not (home / "local" / info.name).exists()


def test_deploy_invoke_undeploy_leaves_nothing(manager, mock_weave, weave_home):
    events = []
    info = manager.deploy({"name": "demo", "weave_file": str(mock_weave)}, sink=events.append)
    assert info.status == DeploymentStatus.ACTIVE
    assert info.endpoint.startswith("http://127.0.0.1:")
    assert pid_alive(info.details["pid"])
    assert [e.step for e in events if isinstance(e, StepFinished)] == ["artifact", "process", "health"]
    assert isinstance(events[-1], Done) and events[-1].ok

    health = get_json(info.endpoint + "/health")
    assert health["weaves"] == ["chain"]
    result = post_json(info.endpoint, {"weave": "chain", "input": "tides"})
    assert_dependency_order(result)
    again = manager.invoke("demo", payload={"input": "tides"})
    assert [a["output"] for a in again["agents"]] == [a["output"] for a in result["agents"]]

    row = manager.inventory.get("local", "demo")
    assert row.content_hash == info.content_hash and row.status == DeploymentStatus.ACTIVE
    assert {r.kind for r in row.resources} == {"folder", "process"}

    gone = manager.destroy("demo")
    assert gone.status == DeploymentStatus.DESTROYED
    assert_gone(info, weave_home)
    assert manager.inventory.get("local", "demo") is None
    with pytest.raises(NotFound):
        manager.status("demo")


def test_python_api_functions(manager, mock_weave, weave_home):
    import weave_nb

    info = weave_nb.deploy("api-demo", weave_file=str(mock_weave), sink=lambda e: None, manager=manager)
    assert weave_nb.status("api-demo", manager=manager).health == "healthy"
    assert_dependency_order(weave_nb.invoke("api-demo", "hello", manager=manager))
    frame = weave_nb.deployments(provider="local", manager=manager)
    assert list(frame["name"]) == ["api-demo"]
    weave_nb.undeploy("api-demo", manager=manager)
    assert_gone(info, weave_home)


def test_server_survives_the_deploying_process(subprocess_env, mock_weave, manager, weave_home):
    script = textwrap.dedent(
        f"""
        from weave_nb.core.manager import DeploymentManager
        info = DeploymentManager().deploy({{"name": "orphan", "weave_file": {str(mock_weave)!r}}})
        print(info.details["pid"])
        """
    )
    done = subprocess.run([sys.executable, "-c", script], env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.strip())
    assert pid_alive(pid)
    listing = manager.list(provider="local")
    (info,) = listing.deployments
    assert info.name == "orphan" and info.drift is None and info.details["pid"] == pid
    assert_dependency_order(manager.invoke("orphan", payload={"input": "x"}))
    manager.destroy("orphan")
    assert_gone(info, weave_home)


def test_changed_redeploy_replaces_and_unchanged_does_nothing(manager, mock_weave, tmp_path):
    first = manager.deploy({"name": "demo", "weave_file": str(mock_weave)})

    events = []
    same = manager.deploy({"name": "demo", "weave_file": str(mock_weave)}, sink=events.append)
    assert same.message == "no changes"
    assert same.details["pid"] == first.details["pid"] and same.content_hash == first.content_hash
    assert {e.outcome for e in events if isinstance(e, StepFinished)} == {"skipped"}

    changed = tmp_path / "changed.weave.yaml"
    changed.write_text(MOCK_WEAVE.replace("chain:", "renamed:"))
    second = manager.deploy({"name": "demo", "weave_file": str(changed)})
    assert second.content_hash != first.content_hash
    assert second.details["pid"] != first.details["pid"]
    assert wait_for(lambda: not pid_alive(first.details["pid"]), 10)
    assert get_json(second.endpoint + "/health")["weaves"] == ["renamed"]
    assert_dependency_order(post_json(second.endpoint, {"input": "x"}), MOCK_WEAVE.replace("chain:", "renamed:"), "renamed")
    # the current artifact folder and the earlier release's (for `weave rollback`) are kept
    folders = sorted(p.name for p in (manager.home / "local" / "demo").iterdir() if p.is_dir())
    assert folders == sorted([first.content_hash[:16], second.content_hash[:16]])


def test_changed_env_replaces_the_process(manager, mock_weave):
    first = manager.deploy({"name": "demo", "weave_file": str(mock_weave), "env": {"MODE": "one"}})
    second = manager.deploy({"name": "demo", "weave_file": str(mock_weave), "env": {"MODE": "two"}})
    assert second.content_hash == first.content_hash
    assert second.settings_hash != first.settings_hash
    assert second.details["pid"] != first.details["pid"]


def test_port_is_honoured_and_kept_on_redeploy(manager, mock_weave, tmp_path):
    from weave_nb.core.procutil import free_port

    port = free_port()
    info = manager.deploy({"name": "demo", "weave_file": str(mock_weave), "port": port})
    assert info.endpoint == f"http://127.0.0.1:{port}" and info.details["port"] == port
    changed = tmp_path / "changed.weave.yaml"
    changed.write_text(MOCK_WEAVE.replace("chain:", "other:"))
    again = manager.deploy({"name": "demo", "weave_file": str(changed), "port": port})
    assert again.details["port"] == port and again.details["pid"] != info.details["pid"]
    assert get_json(f"http://127.0.0.1:{port}/health")["weaves"] == ["other"]


def test_port_taken_by_someone_else_fails_before_anything_is_created(manager, mock_weave, weave_home):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ConfigError) as caught:
            manager.deploy({"name": "demo", "weave_file": str(mock_weave), "port": port})
    assert f"port {port}" in caught.value.message and "already in use" in caught.value.message
    assert caught.value.suggestion
    assert manager.inventory.get("local", "demo") is None
    assert not (weave_home / "local" / "demo").exists()


def test_killed_server_shows_drift_missing_and_undeploy_still_cleans(manager, mock_weave, weave_home):
    info = manager.deploy({"name": "demo", "weave_file": str(mock_weave)})
    os.kill(info.details["pid"], signal.SIGKILL)
    assert wait_for(lambda: not pid_alive(info.details["pid"]), 10)

    (listed,) = manager.list(provider="local").deployments
    assert listed.drift == "missing"
    assert manager.status("demo").health == "not running"
    manager.destroy("demo")
    assert_gone(info, weave_home)


def test_server_that_never_gets_healthy_fails_then_undeploys(manager, mock_weave, tmp_path, weave_home):
    fake_python = tmp_path / "broken-python"
    fake_python.write_text("#!/bin/sh\necho 'the interpreter fell over' >&2\nexit 3\n")
    fake_python.chmod(0o755)
    with pytest.raises(DeploymentFailed) as caught:
        manager.deploy({"name": "demo", "weave_file": str(mock_weave), "options": {"python": str(fake_python)}})
    assert "did not become healthy" in caught.value.message
    assert "the interpreter fell over" in caught.value.message  # the log tail says why
    row = manager.inventory.get("local", "demo")
    assert row.status == DeploymentStatus.FAILED
    assert [r.kind for r in row.resources] == ["folder"]
    # the next deploy finishes the job
    info = manager.deploy({"name": "demo", "weave_file": str(mock_weave)})
    assert info.status == DeploymentStatus.ACTIVE and info.message is None
    manager.destroy("demo")
    assert_gone(info, weave_home)


def test_logs_show_the_requests(manager, mock_weave):
    info = manager.deploy({"name": "demo", "weave_file": str(mock_weave)})
    get_json(info.endpoint + "/health")
    assert wait_for(lambda: "GET /health" in manager.logs("demo"), 5)
    assert "listening on " + info.endpoint in manager.logs("demo")


def test_invalid_local_options_are_config_errors(manager, mock_weave):
    with pytest.raises(ConfigError) as caught:
        manager.deploy({"name": "demo", "weave_file": str(mock_weave), "options": {"pyton": "x"}})
    assert "pyton" in caught.value.message
    with pytest.raises(ConfigError) as caught:
        manager.deploy({"name": "demo", "weave_file": str(mock_weave), "options": {"python": "/no/such/python"}})
    assert "not found" in caught.value.message
    assert manager.inventory.list() == []


def test_port_check_uses_the_managers_own_home(weave_home, mock_weave, tmp_path):
    """A manager on another home (not $WEAVE_HOME) still recognises its own server on --port."""
    from conftest import undeploy_all_local
    from weave_nb.core.manager import DeploymentManager
    from weave_nb.core.procutil import free_port

    other = DeploymentManager(home=tmp_path / "other-home")
    port = free_port()
    try:
        first = other.deploy({"name": "demo", "weave_file": str(mock_weave), "port": port})
        changed = tmp_path / "changed.weave.yaml"
        changed.write_text(MOCK_WEAVE.replace("chain:", "other:"))
        second = other.deploy({"name": "demo", "weave_file": str(changed), "port": port})
        assert second.details["port"] == port and second.details["pid"] != first.details["pid"]
    finally:
        undeploy_all_local(tmp_path / "other-home")
    assert not (weave_home / "inventory.db").exists()


def test_relative_weave_home_works(tmp_path, monkeypatch, mock_weave):
    """A relative $WEAVE_HOME is taken from the current folder; the server still finds its files."""
    from conftest import undeploy_all_local
    from weave_nb.core.manager import DeploymentManager

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WEAVE_HOME", "relative-home")
    mgr = DeploymentManager()
    assert mgr.home == tmp_path / "relative-home"
    try:
        info = mgr.deploy({"name": "demo", "weave_file": str(mock_weave)})
        assert get_json(info.endpoint + "/health")["weaves"] == ["chain"]
        assert info.details["folder"].startswith(str(tmp_path))
    finally:
        undeploy_all_local(tmp_path / "relative-home")
