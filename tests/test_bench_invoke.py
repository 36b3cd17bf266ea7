"""``weave invoke`` waits and ``weave bench`` against real local deployments (real processes, real HTTP).

The slow or failing model is the fake OpenAI-compatible server of ``llm_servers`` (a real HTTP server on
127.0.0.1): held requests make a weave slow, ``fail_next`` makes the runtime answer 500 for chosen requests.
"""

from __future__ import annotations

import io
import time

import pytest

from weave_nb.core.bench import BenchReport, Request, nearest_rank
from weave_nb.core.errors import ConfigError, InvokeTimeout, NotFound
from weave_nb.core.invoke_wait import MARGIN, NO_LIMIT_WAIT, invoke_wait
from weave_nb.frontends.cli import main

from llm_servers import OPENAI_KEY, FakeLLMServer

ONE_AGENT = """\
version: "1.0"
agents:
  answerer: {model: gpt-4o-mini, outputs: answer}
weaves:
  ask: {agents: [answerer]}
  other: {agents: [answerer]}
"""


@pytest.fixture
def llm():
    server = FakeLLMServer().start()
    yield server
    server.stop()


def deploy_on(manager, llm, tmp_path, name="slow", **values):
    weave = tmp_path / f"{name}.weave.yaml"
    weave.write_text(ONE_AGENT)
    env = {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": llm.openai_base_url, "WEAVE_MODEL_RETRIES": "0"}
    return manager.deploy({"name": name, "weave_file": str(weave), "env": env, **values})


def run_cli(argv, stdin=""):
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out=out, err=err, stdin=io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


# -- invoke ------------------------------------------------------------------------------------
def test_invoke_timeout_says_no_answer_within_the_given_seconds(manager, llm, tmp_path):
    deploy_on(manager, llm, tmp_path)
    llm.hold_seconds = 30  # the model "thinks" far longer than the caller waits
    started = time.monotonic()
    code, out, err = run_cli(["invoke", "slow", "--weave", "ask", "--input", "hi", "--timeout", "1"])
    elapsed = time.monotonic() - started
    assert code == 1 and out == ""
    assert "error: no answer within 1 s from http://127.0.0.1:" in err
    assert "could not reach" not in err and "--timeout SECONDS" in err
    assert elapsed < 10  # it gave up after about a second, not after the model's 30
    llm.release()
    with pytest.raises(InvokeTimeout) as caught:
        llm._released.clear()
        manager.invoke("slow", payload={"input": "x", "weave": "ask"}, timeout=0.5)
    assert caught.value.seconds == 0.5 and "no answer within 0.5 s" in caught.value.message


def test_input_dash_reads_stdin_and_a_weave_name_error_speaks_the_cli(manager, llm, tmp_path):
    deploy_on(manager, llm, tmp_path)
    code, out, err = run_cli(["invoke", "slow", "--weave", "ask", "--input", "-"], stdin="tides and moons\n")
    assert code == 0, err
    sent = llm.requests[-1]["json"]["messages"][-1]["content"]
    assert "tides and moons" in sent and not sent.endswith("\n")
    code, out, err = run_cli(["invoke", "slow", "--weave", "nosuch", "--input", "x"])
    assert code == 1 and "Unknown weave 'nosuch'" in err
    assert "hint: name the weave with --weave NAME" in err and "GET /health" not in err
    code, out, err = run_cli(["invoke", "slow", "--input", "x"])  # two weaves, none named
    assert code == 1 and "hint: name the weave with --weave NAME" in err


def test_the_wait_is_the_deployments_own_timeout_plus_a_margin(manager, llm, tmp_path):
    info = deploy_on(manager, llm, tmp_path, timeout_seconds=7)
    local = manager.provider("local")
    assert info.details["timeout_seconds"] == 7
    assert invoke_wait(manager.inventory.get("local", "slow"), local) == 7 + MARGIN
    assert invoke_wait(manager.inventory.get("local", "slow"), local, given=2.5) == 2.5
    again = deploy_on(manager, llm, tmp_path)  # redeployed without one: the recorded value is cleared
    assert "timeout_seconds" not in again.details
    assert invoke_wait(manager.inventory.get("local", "slow"), local) == NO_LIMIT_WAIT
    assert invoke_wait(None, manager.provider("aws")) == 60 + MARGIN  # Lambda as weave-nb deploys it
    assert invoke_wait(None, manager.provider("gcp")) == 60 + MARGIN
    with pytest.raises(ConfigError):
        invoke_wait(None, local, given=0)
    code, _, err = run_cli(["invoke", "slow", "--timeout", "-3"])
    assert code == 2 and "must be more than 0 seconds" in err


# -- bench -------------------------------------------------------------------------------------
def test_bench_reports_exactly_n_requests_and_the_failed_ones_by_status(manager, llm, tmp_path):
    deploy_on(manager, llm, tmp_path)
    llm.fail_next(500, times=5)  # the model fails for 5 requests: the runtime answers those with 500
    code, out, err = run_cli(["bench", "slow", "-n", "20", "-c", "4", "--weave", "ask", "--input", "hello"])
    assert code == 1  # some failed
    assert "slow on local: 20 requests, 4 concurrent" in out
    assert "errors       5 of 20 (25.0%)" in out
    assert "by status    200: 15, 500: 5" in out
    assert "latency ms   p50 " in out and "(nearest rank, 20 answered)" in out
    assert len([r for r in llm.requests if r["path"] == "/v1/chat/completions"]) == 20
    assert "20/20 100%" in err  # the progress bar reached the end
    code, out, _ = run_cli(["bench", "slow", "-n", "6", "-c", "2", "--weave", "nosuch"])
    assert code == 1 and "by status    404: 6" in out


def test_bench_really_sends_c_requests_at_once(manager, llm, tmp_path):
    deploy_on(manager, llm, tmp_path)
    llm.hold_seconds = 20
    llm.hold_until_in_flight = 4  # every model call waits until 4 have been open at once (or 20 s)
    report = __import__("weave_nb").bench("slow", requests=8, concurrency=4, weave="ask", manager=manager)
    assert report.count == 8 and report.errors == 0
    assert llm.max_in_flight == 4 and report.peak_in_flight == 4
    assert report.seconds < 15  # released by concurrency, never by the 20 s hold
    frame = report.frame()
    assert list(frame["request"]) == list(range(8)) and str(frame["status"].dtype) == "Int64"
    assert (frame["status"] == 200).all() and str(frame["latency_ms"].dtype) == "float64"


def test_bench_refuses_what_the_inventory_does_not_hold_and_asks_before_more_than_1000(manager, llm, tmp_path):
    code, out, err = run_cli(["bench", "ghost", "-n", "3"])
    assert code == 1 and "no deployment named 'ghost' in the inventory" in err
    with pytest.raises(NotFound):
        __import__("weave_nb").bench("ghost", requests=2, provider="local", manager=manager)
    deploy_on(manager, llm, tmp_path)
    before = len(llm.requests)
    code, out, err = run_cli(["bench", "slow", "-n", "1001"])  # no terminal to ask
    assert code == 2 and "refusing to send 1001 requests" in err and "--yes" in err
    with pytest.raises(ConfigError, match="yes=True"):
        __import__("weave_nb").bench("slow", requests=1001, manager=manager)
    assert len(llm.requests) == before  # nothing was sent
    code, out, err = run_cli_tty(["bench", "slow", "-n", "1001"], "n\n")  # at a terminal it asks; "n" sends nothing
    assert code == 1 and "Send 1001 requests to 'slow' on local? [y/N]" in out and "cancelled: nothing was sent" in out
    assert len(llm.requests) == before


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_cli_tty(argv, answer):
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out=out, err=err, stdin=_Terminal(answer))
    return code, out.getvalue(), err.getvalue()


def test_nearest_rank_percentiles_and_counts_from_known_latencies():
    values = [float(v) for v in range(1, 101)]  # 1..100 ms
    assert [nearest_rank(values, p) for p in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]
    assert nearest_rank([7.0], 95) == 7.0 and nearest_rank([], 50) is None
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 50) == 2.0 and nearest_rank([1.0, 2.0, 3.0, 4.0], 51) == 3.0
    report = BenchReport("d", "local", [Request(i, 0.0, float(i + 1), 200 if i % 4 else 500, "ok" if i % 4 else "error")
                                        for i in range(8)] + [Request(8, 0.0, 999.0, None, "timeout")], concurrency=2, seconds=3.0)
    assert report.by_status() == {"200": 6, "500": 2, "timeout": 1}
    assert report.errors == 3 and report.throughput == 3.0
    assert report.percentiles() == {"p50": 4.0, "p95": 8.0, "p99": 8.0}  # the timeout has no latency to rank
