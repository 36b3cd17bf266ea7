"""The SQLite inventory: rows, resources, the per-deployment lock, and several writers at once."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from weave_nb.core.config import DeploymentStatus
from weave_nb.core.errors import DeploymentBusy
from weave_nb.core.inventory import Inventory


@pytest.fixture
def inv(tmp_path):
    return Inventory(tmp_path / "home")


def test_save_creates_then_updates_only_given_fields(inv):
    first = inv.save("local", "demo", region="here", details={"pid": 1, "port": 80})
    assert first.status == DeploymentStatus.PENDING and first.region == "here"
    second = inv.save("local", "demo", status="active", details={"pid": 2, "port": None, "log": "x"})
    assert second.status == DeploymentStatus.ACTIVE and second.region == "here"
    assert second.details == {"pid": 2, "log": "x"}
    assert second.created_at == first.created_at and second.updated_at >= first.updated_at
    with pytest.raises(TypeError):
        inv.save("local", "demo", password="nope")
    with pytest.raises(ValueError):
        inv.save("local", "demo", status="exploded")


def test_list_filters_and_orders_newest_first(inv):
    for name in ("a", "b", "c"):
        inv.save("local", name)
    inv.save("aws", "z")
    assert [d.name for d in inv.list("local")] == ["c", "b", "a"]
    assert {d.provider for d in inv.list()} == {"local", "aws"} and len(inv.list()) == 4


def test_resources_are_recorded_refreshed_and_removed(inv):
    inv.save("aws", "demo")
    inv.add_resource("aws", "demo", "role", "arn:1", policy="basic")
    inv.add_resource("aws", "demo", "function", "fn")
    inv.add_resource("aws", "demo", "role", "arn:1", policy="wider")
    res = inv.resources("aws", "demo")
    assert [(r.kind, r.id) for r in res] == [("role", "arn:1"), ("function", "fn")]
    assert res[0].attrs == {"policy": "wider"}
    inv.remove_resource("aws", "demo", "role", "arn:1")
    assert [r.kind for r in inv.get("aws", "demo").resources] == ["function"]
    inv.delete("aws", "demo")
    assert inv.get("aws", "demo") is None and inv.resources("aws", "demo") == []
    with sqlite3.connect(inv.path) as db:
        assert db.execute("SELECT count(*) FROM resources").fetchone() == (0,)


def test_lock_is_exclusive_and_reusable(inv):
    with inv.lock("local", "demo"):
        with pytest.raises(DeploymentBusy) as caught:
            with inv.lock("local", "demo"):
                pass
        assert "'demo' on local" in caught.value.message and caught.value.suggestion
        with inv.lock("local", "other"):
            pass
    with inv.lock("local", "demo"):
        pass


def test_a_busy_attempt_leaves_the_holder_on_record(inv):
    """Failing to get the lock must not wipe the holder's pid: listings use it to tell running from interrupted."""
    with inv.lock("local", "demo"):
        with pytest.raises(DeploymentBusy):
            with inv.lock("local", "demo"):
                pass
        assert inv.is_locked("local", "demo")
        with pytest.raises(DeploymentBusy) as again:
            with inv.lock("local", "demo"):
                pass
        assert f"process {os.getpid()}" in again.value.message
    assert not inv.is_locked("local", "demo")


def test_waiting_for_the_lock_uses_the_given_sleep_and_clock(inv):
    now = [100.0]
    naps = []

    def sleep(seconds):
        naps.append(seconds)
        now[0] += seconds

    with inv.lock("local", "demo"):
        with pytest.raises(DeploymentBusy):
            with inv.lock("local", "demo", wait=1.0, poll=0.25, sleep=sleep, clock=lambda: now[0]):
                pass
    assert naps == [0.25] * 4 and now[0] == 101.0


HOLD = """
import sys
from weave_nb.core.inventory import Inventory
with Inventory(sys.argv[1]).lock("local", "demo"):
    print("HELD", flush=True)
    sys.stdin.readline()
"""


def test_lock_held_by_another_process_names_it_and_can_be_waited_for(inv, subprocess_env):
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(inv.home)], env=subprocess_env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "HELD"
        with pytest.raises(DeploymentBusy) as caught:
            with inv.lock("local", "demo", wait=0.2):
                pass
        assert f"process {child.pid}" in caught.value.message
        child.stdin.write("\n")
        child.stdin.flush()
        started = time.monotonic()
        with inv.lock("local", "demo", wait=30):
            assert time.monotonic() - started < 30
    finally:
        child.kill()
        child.wait(timeout=10)


WRITE = """
import sys
from weave_nb.core.inventory import Inventory
inv = Inventory(sys.argv[1])
for i in range(60):
    inv.save("local", f"{sys.argv[2]}-{i % 10}", status="active", details={"i": i})
    inv.add_resource("local", f"{sys.argv[2]}-{i % 10}", "process", str(i))
"""


def test_several_writer_processes_keep_the_database_whole(inv, subprocess_env):
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITE, str(inv.home), f"w{n}"], env=subprocess_env,
                         stderr=subprocess.PIPE, text=True)
        for n in range(3)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    with sqlite3.connect(inv.path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM resources").fetchone() == (180,)
    rows = inv.list()
    assert len(rows) == 30
    assert {r.details["i"] for r in rows if r.name.endswith("-9")} == {59}
