"""Releases on the local provider: history, rollback without rebuilding, pruning, and --canary refused.

Real server processes on 127.0.0.1; a poller thread calls the endpoint over
real HTTP during the rollback's switch-over and must see no failed request.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from weave_nb.core.errors import ConfigError, NotFound
from weave_nb.core.procutil import pid_alive

from conftest import MOCK_WEAVE, server_pids


def deploy(manager, path: Path, text: str, **extra):
    path.write_text(text)
    return manager.deploy({"name": "rel", "provider": "local", "weave_file": str(path), **extra})


def spec_of(endpoint: str) -> list[str]:
    """The agents the serving release runs (its compiled weave), read over HTTP."""
    body = json.dumps({"weave": "chain", "input": "x"}).encode()
    req = urllib.request.Request(endpoint, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return sorted(a["name"] for a in json.loads(resp.read())["agents"])


CHANGED = MOCK_WEAVE.replace("summarizer: {model: mock, inputs: [drafter, fetcher], outputs: summary}",
                             "summarizer: {model: mock, inputs: [drafter, fetcher], outputs: summary}\n  critic: {model: mock, inputs: drafter, outputs: critique}"
                             ).replace("agents: [summarizer, drafter, fetcher]", "agents: [summarizer, drafter, fetcher, critic]")


class Poller:
    """Calls GET /health over and over in a thread until stopped; counts answers and failures."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint, self.ok, self.failed, self.pids = endpoint, 0, [], set()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for _ in range(100000):  # bounded; stopped long before
            if self._stop.is_set():
                return
            try:
                with urllib.request.urlopen(f"{self.endpoint}/health", timeout=5) as resp:
                    assert resp.status == 200
                    self.pids.add(resp.headers.get("X-Weave-Pid"))
                self.ok += 1
            except (urllib.error.URLError, OSError, AssertionError) as exc:
                self.failed.append(repr(exc))

    def __enter__(self) -> "Poller":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(10)


def test_rollback_makes_release_1_live_again_without_a_failed_request(manager, tmp_path):
    path = tmp_path / "chain.weave.yaml"
    first = deploy(manager, path, MOCK_WEAVE)
    assert spec_of(first.endpoint) == ["drafter", "fetcher", "summarizer"]
    second = deploy(manager, path, CHANGED)
    assert second.endpoint == first.endpoint
    assert spec_of(second.endpoint) == ["critic", "drafter", "fetcher", "summarizer"]
    rels = manager.releases("rel")
    assert [(r.number, r.state) for r in rels] == [(2, "live"), (1, "previous")]
    assert Path(rels[1].version_id).is_dir() and rels[0].version_id != rels[1].version_id
    old_pid = second.details["pid"]

    plan = manager.rollback("rel", dry_run=True)
    assert plan.operation == "rollback" and [s.key for s in plan.changing()] == ["process", "health", "retire"]
    assert pid_alive(old_pid)  # the dry run changed nothing

    with Poller(second.endpoint) as poller:
        info = manager.rollback("rel")
    assert poller.failed == [] and poller.ok > 0
    assert info.endpoint == first.endpoint and info.details["pid"] != old_pid
    assert not pid_alive(old_pid)
    assert spec_of(info.endpoint) == ["drafter", "fetcher", "summarizer"]  # release 1's weave, not rebuilt
    assert [(r.number, r.state) for r in manager.releases("rel")] == [(2, "previous"), (1, "live")]
    assert info.content_hash == rels[1].content_hash
    assert server_pids(manager.home) == [info.details["pid"]]

    # and forward again, by number
    again = manager.rollback("rel", to=2)
    assert spec_of(again.endpoint) == ["critic", "drafter", "fetcher", "summarizer"]
    assert [(r.number, r.state) for r in manager.releases("rel")] == [(2, "live"), (1, "previous")]


def test_prune_keeps_the_newest_releases_and_shows_in_the_plan(weave_home, tmp_path):
    from weave_nb.core.manager import DeploymentManager

    manager = DeploymentManager(home=weave_home, keep_releases=2)
    path = tmp_path / "chain.weave.yaml"
    texts = [MOCK_WEAVE.replace("fetch then draft", f"release {i}") for i in range(3)]
    deploy(manager, path, texts[0])
    deploy(manager, path, texts[1])
    path.write_text(texts[2])
    plan = manager.plan({"name": "rel", "provider": "local", "weave_file": str(path)})
    prune = plan.step("prune")
    first = manager.releases("rel")[-1]
    assert prune is not None and prune.params["folders"] == [first.version_id]
    deploy(manager, path, texts[2])
    rels = manager.releases("rel")
    assert [(r.number, r.state, r.pruned) for r in rels] == [(3, "live", False), (2, "previous", False), (1, "retired", True)]
    assert not Path(first.version_id).exists() and Path(rels[1].version_id).is_dir()
    with pytest.raises(ConfigError, match="pruned"):
        manager.rollback("rel", to=1)


def test_canary_is_refused_on_local_before_anything_is_made(manager, tmp_path):
    path = tmp_path / "chain.weave.yaml"
    path.write_text(MOCK_WEAVE)
    with pytest.raises(ConfigError, match="local provider has no canary") as err:
        manager.deploy({"name": "rel", "provider": "local", "weave_file": str(path), "options": {"canary": 10}})
    assert "rollback" in err.value.suggestion
    assert manager.inventory.get("local", "rel") is None and server_pids(manager.home) == []


def test_rollback_without_an_earlier_release_says_so(manager, tmp_path):
    path = tmp_path / "chain.weave.yaml"
    deploy(manager, path, MOCK_WEAVE)
    with pytest.raises(ConfigError, match="no earlier release"):
        manager.rollback("rel")
    with pytest.raises(NotFound, match="no release 7"):
        manager.rollback("rel", to=7)
    with pytest.raises(ConfigError, match="no canary to promote"):
        manager.promote("rel")
    manager.destroy("rel")
    with pytest.raises(NotFound):
        manager.releases("rel")
