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
    from weave_nb.spec.model import parse_weave

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


# -- browser safety: CSRF and DNS rebinding (issue 11) -------------------------------------------

def _raw(url: str, method: str, path: str, headers: dict, body: bytes | None = None):
    """One request with exactly ``headers`` (a Host given here replaces the real one)."""
    import http.client
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, dict(resp.headers), json.loads(data) if data else None
    finally:
        conn.close()


_INVOKE = json.dumps({"input": "the history of tea"}).encode()


@pytest.mark.parametrize("ctype", ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", None, "application/jsonx"])
def test_post_needs_a_json_content_type(runtime, ctype):
    rp = runtime()
    headers = {} if ctype is None else {"Content-Type": ctype}
    status, _, body = _raw(rp.url, "POST", "/", headers, _INVOKE)
    assert status == 415
    assert "Content-Type: application/json" in body["error"]
    status, _, body = _raw(rp.url, "POST", "/", {"Content-Type": "application/json; charset=utf-8"}, _INVOKE)
    assert status == 200 and body["agents"]


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:1"])
def test_browser_origins_are_refused_unless_configured(runtime, origin):
    rp = runtime()
    json_headers = {"Content-Type": "application/json", "Origin": origin}
    status, headers, body = _raw(rp.url, "POST", "/", json_headers, _INVOKE)
    assert status == 403 and "WEAVE_ALLOWED_ORIGINS" in body["error"]
    assert "Access-Control-Allow-Origin" not in headers
    assert _raw(rp.url, "OPTIONS", "/", {"Origin": origin, "Access-Control-Request-Method": "POST"})[0] == 403
    # a simple (no-preflight) cross-site form post is refused too
    assert _raw(rp.url, "POST", "/", {"Content-Type": "text/plain", "Origin": origin}, _INVOKE)[0] == 403


def test_a_configured_origin_gets_cors(runtime):
    rp = runtime(env={"WEAVE_ALLOWED_ORIGINS": "http://localhost:3000, https://app.example/"})
    pre = _raw(rp.url, "OPTIONS", "/", {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert pre[0] == 204 and pre[1]["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Content-Type" in pre[1]["Access-Control-Allow-Headers"]
    status, headers, body = _raw(rp.url, "POST", "/", {"Content-Type": "application/json",
                                                       "Origin": "http://localhost:3000"}, _INVOKE)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert _raw(rp.url, "POST", "/", {"Content-Type": "application/json", "Origin": "http://localhost:3001"},
                _INVOKE)[0] == 403


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.nip.io:{port}",
                                  "127.0.0.1:{other}", "localhost:{other}", "", "127.0.0.1@evil.example:{port}",
                                  "localhost", "0.0.0.0:{port}"])
def test_loopback_server_refuses_foreign_host_headers(runtime, host):
    rp = runtime()
    port = int(rp.url.rsplit(":", 1)[1])
    host = host.format(port=port, other=port + 1 if port < 65535 else port - 1)
    status, _, body = _raw(rp.url, "GET", "/health", {"Host": host})
    assert status == 421 and "WEAVE_ALLOWED_HOSTS" in body["error"]
    status, _, body = _raw(rp.url, "POST", "/", {"Host": host, "Content-Type": "application/json"}, _INVOKE)
    assert status == 421 and "agents" not in body


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "[::1]:{port}"])
def test_loopback_server_answers_its_own_names(runtime, host):
    rp = runtime()
    port = int(rp.url.rsplit(":", 1)[1])
    status, _, body = _raw(rp.url, "POST", "/", {"Host": host.format(port=port), "Content-Type": "application/json"},
                           _INVOKE)
    assert status == 200 and body["agents"]


def test_non_loopback_bind_accepts_any_host_unless_a_list_is_set(runtime):
    rp = runtime(args=("--host", "0.0.0.0"))
    port = rp.url.rsplit(":", 1)[1]
    local = f"http://127.0.0.1:{port}"
    assert _raw(local, "GET", "/health", {"Host": "weave.lan:8080"})[0] == 200
    # ... still no cross-site POSTs
    assert _raw(local, "POST", "/", {"Host": "weave.lan", "Content-Type": "text/plain"}, _INVOKE)[0] == 415
    # the Docker provider's rule: loopback names on any port (the published port is not the container's)
    rp = runtime(env={"WEAVE_ALLOWED_HOSTS": "127.0.0.1,localhost,[::1]"}, args=("--host", "0.0.0.0"))
    local = "http://127.0.0.1:" + rp.url.rsplit(":", 1)[1]
    assert _raw(local, "GET", "/health", {"Host": "127.0.0.1:49999"})[0] == 200
    assert _raw(local, "GET", "/health", {"Host": "localhost:8080"})[0] == 200
    assert _raw(local, "GET", "/health", {"Host": "evil.example:49999"})[0] == 421


def test_duplicate_host_headers_are_refused(runtime):
    import socket

    rp = runtime()
    port = int(rp.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\n\r\n".encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 400")


def test_weave_invoke_client_and_health_probe_still_work(runtime):
    from weave_nb.core.http_call import post_json
    from weave_nb.core.procutil import http_ok

    rp = runtime()
    assert http_ok(rp.url + "/health")
    assert post_json(rp.url + "/", {"input": "hi"})["agents"]
    localhost = rp.url.replace("127.0.0.1", "localhost")
    assert post_json(localhost + "/invoke", {"input": "hi"})["agents"]


def test_docker_containers_answer_loopback_names_on_the_published_port(runtime):
    """The container binds 0.0.0.0; the provider's env makes it refuse rebinding names (no engine needed)."""
    from weave_nb.core.config import DeploymentConfig
    from weave_nb.providers.docker.state import server_env

    env = server_env(DeploymentConfig(name="d", provider="docker"))
    assert server_env(DeploymentConfig(name="d", provider="docker", public=True)) == {}
    rp = runtime(env=env, args=("--host", "0.0.0.0"))
    local = "http://127.0.0.1:" + rp.url.rsplit(":", 1)[1]
    published = 49153
    assert _raw(local, "GET", "/health", {"Host": f"127.0.0.1:{published}"})[0] == 200  # the provider's probe
    assert _raw(local, "GET", "/health", {"Host": "127.0.0.1:8080"})[0] == 200  # the image's HEALTHCHECK
    assert _raw(local, "POST", "/", {"Host": f"127.0.0.1:{published}", "Content-Type": "application/json"},
                _INVOKE)[0] == 200
    assert _raw(local, "GET", "/health", {"Host": f"rebind.evil.example:{published}"})[0] == 421
