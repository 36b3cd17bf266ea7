"""The request record every request writes (weave_runtime.records), on each platform.

The record's shape is a contract: ``weave_nb.core.records`` parses it for
``weave metrics``, and CloudWatch alarms use its Embedded Metric Format.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest

from weave_nb.runtime import app, records

try:
    from tests.llm_servers import OPENAI_KEY, FakeSleep, llm_server, make_bundle  # noqa: F401
except ImportError:
    from llm_servers import OPENAI_KEY, FakeSleep, llm_server, make_bundle  # noqa: F401

WEAVE = textwrap.dedent("""\
    version: "1.0"
    agents:
      researcher: {model: gpt-4, outputs: research_summary}
      writer: {model: gpt-4, inputs: researcher, outputs: draft_article}
    weaves:
      pipeline: {agents: [researcher, writer]}
    env: {OPENAI_API_KEY: "${OPENAI_API_KEY}", STYLE: concise}
    """)
KEYS = {"type", "time", "request_id", "deployment", "weave", "status", "duration_ms", "input_tokens",
        "output_tokens", "agents", "error"}
AGENT_KEYS = {"agent", "model", "backend", "duration_ms", "input_tokens", "output_tokens"}
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
STYLE = "style-secret-value-4412"


@pytest.fixture
def bundle(tmp_path):
    return make_bundle(tmp_path / "artifact", WEAVE)


def run(bundle, body: dict | bytes, environ: dict, platform="plain", path="/", method="POST", **kw):
    lines: list[str] = []
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, _, out = app.handle(method, path, raw, kw.pop("headers", {}), spec_path=str(bundle / "weave.json"),
                                environ=environ, sleep=FakeSleep(), platform=platform, record_sink=lines.append, **kw)
    return status, json.loads(out), lines


def test_a_successful_request_writes_one_plain_record(bundle):
    env = {"WEAVE_MODEL_BACKEND": "mock", "WEAVE_DEPLOYMENT": "demo"}
    status, answer, lines = run(bundle, {"input": "tides"}, env, headers={"X-Request-Id": "req-42"})
    assert status == 200 and len(lines) == 1
    rec = json.loads(lines[0])
    assert set(rec) == KEYS
    assert rec["type"] == "weave.request" and ISO_MS.match(rec["time"])
    assert (rec["request_id"], rec["deployment"], rec["weave"], rec["status"], rec["error"]) == (
        "req-42", "demo", "pipeline", 200, None)
    assert [a["agent"] for a in rec["agents"]] == ["researcher", "writer"]
    assert all(set(a) == AGENT_KEYS and a["backend"] == "mock" for a in rec["agents"])
    assert rec["input_tokens"] == answer["tokens"]["prompt"] == sum(a["input_tokens"] for a in rec["agents"])
    assert rec["output_tokens"] == answer["tokens"]["completion"] > 0
    assert isinstance(rec["duration_ms"], float) and rec["duration_ms"] >= max(a["duration_ms"] for a in rec["agents"])


def test_health_writes_no_record_and_errors_do(bundle):
    env = {"WEAVE_MODEL_BACKEND": "mock"}
    assert run(bundle, b"", env, path="/health", method="GET")[2] == []
    status, _, lines = run(bundle, b"{broken", env)
    rec = json.loads(lines[0])
    assert status == 400 and rec["status"] == 400 and rec["error"] == "RequestError" and rec["deployment"] is None
    status, _, lines = run(bundle, {"weave": "nope", "input": "x"}, env)
    assert status == 404 and json.loads(lines[0])["weave"] == "nope"
    assert len(json.loads(lines[0])["request_id"]) == 16  # a fresh id when the caller sent none


def test_a_model_failure_records_500_and_never_a_secret(bundle, llm_server):
    llm_server.fail_next(500, times=5, echo_key=True)
    env = llm_server.environ(WEAVE_MODEL_RETRIES="0", STYLE=STYLE, WEAVE_DEPLOYMENT="demo")
    for platform in ("plain", "lambda", "gcp"):
        llm_server.fail_next(500, times=5, echo_key=True)
        status, _, lines = run(bundle, {"input": "x"}, env, platform=platform)
        assert status == 500 and len(lines) == 1
        assert OPENAI_KEY not in lines[0] and STYLE not in lines[0]
        rec = json.loads(lines[0])
        assert rec["status"] == 500 and rec["error"] == "ModelError" and rec["agents"] == []


def test_lambda_lines_carry_embedded_metric_format(bundle):
    env = {"WEAVE_MODEL_BACKEND": "mock", "WEAVE_DEPLOYMENT": "demo"}
    _, _, lines = run(bundle, {"input": "x"}, env, platform="lambda", request_id="aws-req-1")
    rec = json.loads(lines[0])
    assert KEYS <= set(rec) and rec["request_id"] == "aws-req-1"
    emf = rec["_aws"]
    assert isinstance(emf["Timestamp"], int) and abs(emf["Timestamp"] / 1000 - __import__("time").time()) < 60
    assert emf["CloudWatchMetrics"] == [{
        "Namespace": "WeaveNb", "Dimensions": [["Deployment"]],
        "Metrics": [{"Name": "Requests", "Unit": "Count"}, {"Name": "Errors", "Unit": "Count"},
                    {"Name": "Latency", "Unit": "Milliseconds"}, {"Name": "InputTokens", "Unit": "Count"},
                    {"Name": "OutputTokens", "Unit": "Count"}]}]
    assert (rec["Deployment"], rec["Requests"], rec["Errors"]) == ("demo", 1, 0)
    assert (rec["Latency"], rec["InputTokens"], rec["OutputTokens"]) == (
        rec["duration_ms"], rec["input_tokens"], rec["output_tokens"])
    _, _, lines = run(bundle, b"{broken", env, platform="lambda")
    assert json.loads(lines[0])["Errors"] == 0  # a 400 is the caller's mistake, not an error of the service


def test_cloud_functions_lines_are_structured_logging(bundle):
    env = {"WEAVE_MODEL_BACKEND": "mock", "WEAVE_DEPLOYMENT": "demo"}
    _, _, lines = run(bundle, {"input": "x"}, env, platform="gcp")
    rec = json.loads(lines[0])
    assert rec["severity"] == "INFO" and rec["message"].startswith("pipeline 200 in ")
    assert KEYS <= set(rec) and "_aws" not in rec


def test_adapters_write_the_record_to_stderr_in_an_isolated_python(bundle):
    script = textwrap.dedent("""\
        import json, sys, types
        sys.path.insert(0, sys.argv[1])
        from weave_runtime.lambda_adapter import handler
        event = {"requestContext": {"http": {"method": "POST"}}, "rawPath": "/",
                 "body": json.dumps({"input": "tides"}), "isBase64Encoded": False}
        out = handler(event, types.SimpleNamespace(aws_request_id="abc-123"))
        print(json.dumps(out["statusCode"]))
        """)
    proc = subprocess.run([sys.executable, "-I", "-c", script, str(bundle)], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "WEAVE_DEPLOYMENT": "iso", "OPENAI_API_KEY": "",
                               "AWS_LAMBDA_FUNCTION_NAME": "weave-iso"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == 200
    rec = json.loads(proc.stderr.strip().splitlines()[-1])
    assert (rec["request_id"], rec["deployment"], rec["Deployment"], rec["status"]) == ("abc-123", "iso", "iso", 200)


def test_timestamped_lines_and_request_ids():
    import io

    stream = io.StringIO()
    records.write_line("hello", {"WEAVE_LOG_TIMESTAMPS": "1"}, stream)
    records.write_line("plain", {}, stream)
    first, second = stream.getvalue().splitlines()
    assert ISO_MS.match(first.split(" ", 1)[0]) and first.endswith(" hello") and second == "plain"
    assert records.iso_time(0.0) == "1970-01-01T00:00:00.000Z" and records.iso_time(1.2349) == "1970-01-01T00:00:01.234Z"
    assert records.request_id({"x-request-id": "ok-1"}) == "ok-1"
    assert records.request_id({"X-Request-Id": "bad id\n{}"}) != "bad id\n{}"


def test_requests_the_server_refuses_are_recorded_too(bundle):
    """A foreign Host or a non-JSON body never reaches the weave; the record still counts it."""
    import http.client
    import os

    proc = subprocess.Popen([sys.executable, "-E", "-s", "-m", "weave_runtime.server", "--port", "0"], cwd=str(bundle),
                            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "WEAVE_DEPLOYMENT": "srv"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline().rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/", body=b"x", headers={"Content-Type": "text/plain", "X-Request-Id": "plain-text"})
        assert conn.getresponse().status == 415
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/health", headers={"Host": "evil.example"})
        assert conn.getresponse().status == 421
        conn.close()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    found = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [(r["status"], r["error"], r["deployment"]) for r in found] == [(415, "RequestError", "srv"),
                                                                           (421, "RequestError", "srv")]
    assert found[0]["request_id"] == "plain-text"


def test_the_handler_cold_import_does_not_load_the_record_writer(bundle):
    """The request record costs nothing at cold start: records is imported on the first request, not with the handler."""
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import weave_runtime.lambda_adapter; "
              "print('weave_runtime.records' in sys.modules)")
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", script, str(bundle)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
