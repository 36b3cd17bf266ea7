"""``weave logs`` and ``weave metrics`` on the local provider: real server processes, their real log file."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from weave_nb.core.procutil import wait_for
from weave_nb.core.records import read_requests, summarize

from conftest import run_weave, weave_command
from support import post_status, weave_cli  # noqa: E402

try:
    from tests.llm_servers import OPENAI_KEY, llm_server  # noqa: F401
except ImportError:
    from llm_servers import OPENAI_KEY, llm_server  # noqa: F401

GPT_WEAVE = """\
version: "1.0"
agents:
  writer: {model: gpt-4o-mini, outputs: draft}
  editor: {model: gpt-4o-mini, inputs: writer, outputs: final}
weaves:
  write: {agents: [writer, editor]}
env: {OPENAI_API_KEY: "${OPENAI_API_KEY}", OPENAI_BASE_URL: "${OPENAI_BASE_URL}", WEAVE_MODEL_RETRIES: "0"}
"""


def call(endpoint: str, request_id: str, payload: dict | None = None) -> int:
    return post_status(endpoint, request_id, json.dumps(payload).encode() if payload else None)


weave = weave_cli  # the CLI in this process (tests/support.py)


def next_millisecond() -> datetime:
    """A time on a whole millisecond that the clock has already passed (so later lines are stamped at or after it)."""
    now = datetime.now(timezone.utc)
    mark = now.replace(microsecond=now.microsecond // 1000 * 1000) + timedelta(milliseconds=1)
    assert wait_for(lambda: datetime.now(timezone.utc) > mark, 1, 0.0005)
    return mark


@pytest.fixture
def deployed(manager, mock_weave):
    return manager.deploy({"name": "demo", "weave_file": str(mock_weave)})


def test_lines_carry_their_time_and_since_filter_tail_select_them(deployed, manager):
    assert call(deployed.endpoint, "before-1") == 200
    mark = next_millisecond()
    assert call(deployed.endpoint, "after-1") == 200
    assert call(deployed.endpoint, "after-2") == 200
    assert wait_for(lambda: "after-2" in manager.logs("demo"), 5)

    code, out, err = weave("logs", "demo")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert all(datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")) for line in lines)
    assert any("listening on " + deployed.endpoint in line for line in lines)

    code, out, _ = weave("logs", "demo", "--since", mark.isoformat().replace("+00:00", "Z"))
    assert code == 0 and "after-1" in out and "after-2" in out and "before-1" not in out
    assert "listening on" not in out  # written before the mark

    code, out, _ = weave("logs", "demo", "--since", "10m", "--filter", "AFTER-")  # ignoring case
    assert code == 0 and [line.count("after-") for line in out.splitlines()] == [1, 1]

    code, out, _ = weave("logs", "demo", "--filter", "weave.request", "--tail", "1")
    assert code == 0 and len(out.splitlines()) == 1 and "after-2" in out

    entries = manager.read_logs("demo", since="1h", filter="before-1")
    assert len(entries) == 1 and entries[0].time <= mark and json.loads(entries[0].text)["request_id"] == "before-1"


def test_an_empty_selection_says_so(deployed):
    code, out, err = weave("logs", "demo", "--since", "2099-01-01T00:00:00Z")
    assert code == 0 and out == ""
    assert err == "no log lines for 'demo' on local since 2099-01-01T00:00:00.000Z\n"
    code, out, err = weave("logs", "demo", "--filter", "no-such-text")
    assert code == 0 and out == "" and err == "no log lines for 'demo' on local containing 'no-such-text'\n"


def test_bad_since_is_a_usage_error(deployed):
    code, out, err = weave("logs", "demo", "--since", "yesterday")
    assert code == 2 and "--since 'yesterday'" in err and "10m" in err


def test_follow_shows_a_line_written_after_it_started_within_two_seconds(deployed, manager):
    assert call(deployed.endpoint, "first") == 200
    seen: list[str] = []
    started = threading.Event()

    def follow() -> None:
        lines = manager.follow_logs("demo", filter="weave.request")
        for entry in lines:
            seen.append(entry.text)
            started.set()
            if "second" in entry.text:
                lines.close()
                return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    assert started.wait(10) and "first" in seen[0]
    assert call(deployed.endpoint, "second") == 200
    written = time.monotonic()
    assert wait_for(lambda: any("second" in text for text in seen), 2, 0.01)
    assert time.monotonic() - written < 2
    thread.join(5)
    assert not thread.is_alive() and len(seen) == 2


def test_follow_on_the_command_line_stops_quietly_on_ctrl_c(deployed, subprocess_env):
    assert call(deployed.endpoint, "first") == 200
    proc = subprocess.Popen([*weave_command(), "logs", "demo", "--follow", "--filter", "weave.request"], env=subprocess_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "first" in proc.stdout.readline()
        assert call(deployed.endpoint, "second") == 200
        assert "second" in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    assert out == "" and err == "following demo on local (Ctrl-C stops)\n"


def test_metrics_count_every_request_and_errors_without_leaking_the_key(manager, tmp_path, llm_server, subprocess_env):
    weave_file = tmp_path / "gpt.weave.yaml"
    weave_file.write_text(GPT_WEAVE)
    env = [f"OPENAI_API_KEY={OPENAI_KEY}", f"OPENAI_BASE_URL={llm_server.openai_base_url}"]
    info = manager.deploy({"name": "gpt", "weave_file": str(weave_file), "env": env})
    statuses = []
    for i in range(7):
        if i in (2, 5):
            llm_server.fail_next(500)  # the writer fails: no retries, a 500 for the caller
        statuses.append(call(info.endpoint, f"req-{i}"))
    assert statuses == [200, 200, 500, 200, 200, 500, 200]
    assert call(info.endpoint, "bad", {"nope": 1}) == 400

    assert wait_for(lambda: len(read_requests(manager, "gpt", since="5m")) == 8, 5)
    records = read_requests(manager, "gpt", since="5m")
    assert [r.request_id for r in records] == [f"req-{i}" for i in range(7)] + ["bad"]
    summary = summarize(records)
    assert (summary.requests, summary.errors, summary.statuses) == (8, 2, {200: 5, 400: 1, 500: 2})
    assert summary.error_rate == 2 / 8
    latencies = sorted(r.duration_ms for r in records)
    assert summary.p50_ms == latencies[3] and summary.p95_ms == summary.p99_ms == latencies[7]
    ok = [r for r in records if r.status == 200]
    assert all([a.agent for a in r.agents] == ["writer", "editor"] and r.output_tokens == 14 for r in ok)
    assert summary.output_tokens == 5 * 14
    failed = [r for r in records if r.status == 500]
    assert all(r.error == "ModelError" and r.agents == () for r in failed)

    code, out, err = weave("metrics", "gpt", "--since", "5m")
    assert code == 0, err
    assert "requests      8" in out and "errors        2 (25.0%" in out and "200: 5, 400: 1, 500: 2" in out
    assert f"p50 {latencies[3]:.1f} ms" in out or f"p50 {latencies[3]:.2f} ms" in out

    logged = run_weave(["logs", "gpt", "--tail", "1000"], subprocess_env).stdout
    assert "req-6" in logged and OPENAI_KEY not in logged
    assert OPENAI_KEY not in (manager.home / "local" / "gpt" / "server.log").read_text()


def test_percentile_method_is_nearest_rank():
    from weave_nb.core.records import percentile

    values = [float(v) for v in range(100, 0, -1)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50.0, 95.0, 99.0)
    assert percentile([3.0], 99) == 3.0 and percentile([], 50) is None
    ten = [float(v) for v in range(1, 11)]
    assert (percentile(ten, 50), percentile(ten, 95), percentile(ten, 99)) == (5.0, 10.0, 10.0)
    assert percentile(ten, 50) == ten[math.ceil(0.5 * 10) - 1]
