"""The runtime's HTTP server as a real subprocess.

Started as ``python -E -s -m weave_runtime.server`` from the bundle directory
(``-I`` would also drop the current directory from ``sys.path``, and an
artifact relies on it; stdlib-only imports are proven in test_runtime_app).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request

import pytest

try:
    from tests.llm_servers import EXAMPLES, OPENAI_KEY, llm_server, make_bundle  # noqa: F401
except ImportError:
    from llm_servers import EXAMPLES, OPENAI_KEY, llm_server, make_bundle  # noqa: F401


class RuntimeProcess:
    """A started ``weave_runtime.server`` child; ``url`` read from its first line."""

    def __init__(self, bundle, env: dict | None = None, args: tuple = ()) -> None:
        base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        base_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-E", "-s", "-m", "weave_runtime.server", "--host", "127.0.0.1", "--port", "0", *args],
            cwd=str(bundle), env=base_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # blocks until the server has bound its port
        if not line.startswith("listening on http://"):
            self.proc.kill()
            raise AssertionError(f"unexpected first line {line!r}; stderr: {self.proc.communicate()[1]}")
        self.url = line.split("listening on ", 1)[1].strip()

    def request(self, method: str, path: str, body: bytes | None = None):
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, dict(exc.headers), json.loads(exc.read())

    def terminate(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


@pytest.fixture
def bundle(tmp_path):
    return make_bundle(tmp_path / "artifact", (EXAMPLES / "content_pipeline.weave.yaml").read_text())


@pytest.fixture
def runtime(bundle):
    started: list[RuntimeProcess] = []

    def start(env=None, args=()):
        rp = RuntimeProcess(bundle, env, args)
        started.append(rp)
        return rp

    yield start
    for rp in started:
        rp.terminate()


def test_health_and_invoke_over_http(runtime, bundle):
    rp = runtime()
    status, headers, body = rp.request("GET", "/health")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body["weaves"] == ["content_pipeline"]
    assert body["spec_hash"] == hashlib.sha256((bundle / "weave.json").read_bytes()).hexdigest()
    status, _, body = rp.request("POST", "/", json.dumps({"input": "the history of tea"}).encode())
    assert status == 200
    assert [a["name"] for a in body["agents"]] == ["researcher", "writer", "editor"]
    assert {a["backend"] for a in body["agents"]} == {"mock"}


def test_errors_over_http(runtime):
    rp = runtime()
    assert rp.request("POST", "/", b"{broken")[0] == 400
    assert rp.request("POST", "/", json.dumps({"weave": "other", "input": "x"}).encode())[0] == 404
    assert rp.request("GET", "/missing")[0] == 404
    status, headers, _ = rp.request("GET", "/invoke")
    assert status == 405 and headers["Allow"] == "POST"


def test_sigterm_shuts_down_cleanly_and_access_log_goes_to_stderr(runtime):
    rp = runtime()
    rp.request("GET", "/health")
    code, err = rp.terminate()
    assert code == 0
    assert "GET /health" in err


def test_explicit_spec_path_and_live_models(runtime, bundle, tmp_path, llm_server):
    from weave_nb.spec import parse_weave

    other = tmp_path / "other.json"
    other.write_text(json.dumps(parse_weave(textwrap.dedent("""\
        version: "1.0"
        agents: {solo: {model: gpt-4o-mini}}
        weaves: {single: [solo]}
        """)).to_runtime_dict()))
    rp = runtime(env=llm_server.environ(), args=("--spec", str(other)))
    status, _, body = rp.request("POST", "/invoke", json.dumps({"input": "hi"}).encode())
    assert status == 200
    assert body["agents"][0]["backend"] == "openai"
    assert body["output"] == "OpenAI-compatible answer from gpt-4o-mini."
    assert body["tokens"]["completion"] == 7


def test_model_failure_over_http_does_not_leak_the_key(runtime, llm_server):
    llm_server.fail_next(401, times=5)
    rp = runtime(env=llm_server.environ())
    status, _, body = rp.request("POST", "/", json.dumps({"input": "x"}).encode())
    assert status == 500 and "OPENAI_API_KEY" in body["error"]
    code, err = rp.terminate()
    assert OPENAI_KEY not in json.dumps(body) and OPENAI_KEY not in err


def test_port_in_use_exits_2(runtime, bundle):
    rp = runtime()
    port = rp.url.rsplit(":", 1)[1]
    proc = subprocess.run([sys.executable, "-E", "-s", "-m", "weave_runtime.server", "--port", port],
                          cwd=str(bundle), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "cannot listen" in proc.stderr
