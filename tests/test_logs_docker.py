"""``weave logs`` / ``weave metrics`` on the docker provider: the real engine's container output, with its timestamps."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from docker_fixtures import *
from docker_fixtures import hello_weave

from weave_nb.core.procutil import wait_for
from weave_nb.core.records import read_requests, summarize
from support import post_status, weave_cli  # noqa: E402

pytestmark = pytest.mark.docker


call = post_status  # (url, request_id, body=None)


weave = weave_cli  # the CLI in this process (tests/support.py)


def test_container_logs_since_filter_follow_and_metrics(docker_api, docker_names, docker_manager):
    name = docker_names("logs")
    mgr = docker_manager()
    info = mgr.deploy({"name": name, "provider": "docker", "weave_text": hello_weave()})
    env = docker_api.inspect_container(f"weave-nb-{name}")["Config"]["Env"]
    assert f"WEAVE_DEPLOYMENT={name}" in env

    assert call(info.endpoint, "early-1") == 200
    assert wait_for(lambda: any("early-1" in e.text for e in mgr.read_logs(name)), 5)
    now = datetime.now(timezone.utc)
    mark = now.replace(microsecond=now.microsecond // 1000 * 1000) + timedelta(milliseconds=1)
    assert wait_for(lambda: datetime.now(timezone.utc) > mark, 1, 0.0005)
    for i in range(5):
        assert call(info.endpoint, f"late-{i}") == 200
    assert call(info.endpoint, "broken", b"{not json") == 400
    assert wait_for(lambda: any("broken" in e.text for e in mgr.read_logs(name)), 5)

    code, out, err = weave("logs", name, "--provider", "docker", "--since", mark.isoformat())
    assert code == 0, err
    assert "late-0" in out and "late-4" in out and "early-1" not in out and "GET /health" not in out
    stamp = out.splitlines()[0].split(" ", 1)[0]
    assert datetime.fromisoformat(stamp.replace("Z", "+00:00")) >= mark
    code, out, _ = weave("logs", name, "--provider", "docker", "--filter", "LATE-3")
    assert code == 0 and len(out.splitlines()) == 1 and '"request_id":"late-3"' in out
    code, out, err = weave("logs", name, "--provider", "docker", "--filter", "nothing-like-this")
    assert code == 0 and out == "" and "no log lines for" in err

    records = read_requests(mgr, name, "docker", since=mark)
    summary = summarize(records)
    assert [r.request_id for r in records] == [f"late-{i}" for i in range(5)] + ["broken"]
    assert (summary.requests, summary.errors, summary.statuses) == (6, 0, {200: 5, 400: 1})
    assert summary.p50_ms == sorted(r.duration_ms for r in records)[2]
    assert all(r.deployment == name for r in records)

    seen: list[str] = []
    started = threading.Event()

    def follow() -> None:
        lines = mgr.follow_logs(name, "docker", since=mark, filter="weave.request")
        for entry in lines:
            seen.append(entry.text)
            started.set()
            if "after-follow" in entry.text:
                lines.close()
                return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    assert started.wait(15)
    assert wait_for(lambda: len(seen) == 6, 5)  # the backlog first
    assert call(info.endpoint, "after-follow") == 200
    written = time.monotonic()
    assert wait_for(lambda: any("after-follow" in text for text in seen), 2, 0.01)
    assert time.monotonic() - written < 2
    thread.join(10)
    assert len(seen) == 7 and not thread.is_alive()
    mgr.destroy(name, "docker")
