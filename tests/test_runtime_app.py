"""The HTTP contract (app.handle) and the Lambda / Cloud Functions adapters.

Adapter tests import the runtime from a bundle directory (``weave_runtime/``
copied next to ``weave.json``), the way an artifact holds it.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import subprocess
import sys
import textwrap

import pytest

from weave_nb.runtime import app

try:
    from tests.llm_servers import OPENAI_KEY, FakeSleep, llm_server, make_bundle  # noqa: F401
except ImportError:
    from llm_servers import OPENAI_KEY, FakeSleep, llm_server, make_bundle  # noqa: F401

SECRET_STYLE = "style-value-that-must-stay-private"

TWO_WEAVES = textwrap.dedent("""\
    version: "1.0"
    agents:
      researcher: {model: gpt-4, outputs: research_summary}
      writer: {model: gpt-4, inputs: researcher, outputs: draft_article}
      greeter: {model: mock}
    weaves:
      content_pipeline: {agents: [researcher, writer]}
      hello: {agents: [greeter]}
    env: {OPENAI_API_KEY: "${OPENAI_API_KEY}", STYLE: concise}
    """)


@pytest.fixture
def bundle(tmp_path):
    return make_bundle(tmp_path / "artifact", TWO_WEAVES)


@pytest.fixture
def call(bundle):
    spec_path = str(bundle / "weave.json")

    def call(method, path, body=b"", environ=None):
        env = {"WEAVE_MODEL_BACKEND": "mock"} if environ is None else environ
        status, headers, raw = app.handle(method, path, body, {}, spec_path=spec_path, environ=env,
                                          sleep=FakeSleep())
        assert headers["Content-Type"] == "application/json"
        return status, headers, json.loads(raw)

    return call


def post(data) -> bytes:
    return json.dumps(data).encode()


def test_health_lists_weaves_and_hashes_the_spec(call, bundle):
    status, _, body = call("GET", "/health")
    assert status == 200
    assert body == {"status": "ok", "weaves": ["content_pipeline", "hello"],
                    "spec_hash": hashlib.sha256((bundle / "weave.json").read_bytes()).hexdigest()}


@pytest.mark.parametrize("path", ["/", "/invoke", "/invoke/", "/?debug=1"])
def test_post_runs_the_weave(call, path):
    status, _, body = call("POST", path, post({"weave": "content_pipeline", "input": "tides"}))
    assert status == 200
    assert [a["name"] for a in body["agents"]] == ["researcher", "writer"]
    assert body["output"] == body["agents"][-1]["output"]


@pytest.mark.parametrize("raw, fragment", [
    (b"", "empty"),
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (post(["input", "x"]), "JSON object"),
    (post({"weave": "hello"}), "Missing \\\"input\\\""),
    (post({"weave": "hello", "input": 5}), "must be a string"),
    (post({"weave": ["hello"], "input": "x"}), "\\\"weave\\\" must be a string"),
    (post({"input": "x"}), "several weaves"),
])
def test_bad_requests_are_400(call, raw, fragment):
    status, _, body = call("POST", "/", raw)
    assert status == 400
    assert fragment.replace("\\", "") in body["error"]


def test_several_weaves_error_lists_names(call):
    _, _, body = call("POST", "/", post({"input": "x"}))
    assert "content_pipeline" in body["error"] and "hello" in body["error"]


def test_unknown_weave_and_path_are_404(call):
    status, _, body = call("POST", "/", post({"weave": "nope", "input": "x"}))
    assert status == 404 and "nope" in body["error"]
    status, _, body = call("GET", "/nowhere")
    assert status == 404 and "/nowhere" in body["error"]


@pytest.mark.parametrize("method, path, allow", [("GET", "/", "POST"), ("DELETE", "/invoke", "POST"),
                                                 ("POST", "/health", "GET"), ("put", "/health", "GET")])
def test_wrong_method_is_405_with_allow(call, method, path, allow):
    status, headers, body = call(method, path, post({"input": "x"}))
    assert status == 405 and headers["Allow"] == allow and "not allowed" in body["error"]


def test_oversized_body_is_413(call):
    status, _, body = call("POST", "/", b" " * (app.MAX_BODY_BYTES + 1) + b"{}")
    assert status == 413


def test_model_failure_is_500_without_keys_or_env_values(call, llm_server):
    llm_server.fail_next(401)
    env = llm_server.environ(STYLE=SECRET_STYLE)
    status, _, body = call("POST", "/", post({"weave": "content_pipeline", "input": "x"}), env)
    assert status == 500
    assert "rejected" in body["error"] and "OPENAI_API_KEY" in body["error"]
    assert OPENAI_KEY not in json.dumps(body)


def test_env_values_echoed_by_a_server_are_scrubbed(call, llm_server):
    llm_server.fail_next(500, times=5, echo_key=True)
    env = llm_server.environ(WEAVE_MODEL_RETRIES="0")
    status, _, body = call("POST", "/", post({"weave": "content_pipeline", "input": "x"}), env)
    assert status == 500 and "HTTP 500" in body["error"]
    assert OPENAI_KEY not in body["error"] and "***" in body["error"]


def test_missing_spec_is_500_with_a_plain_message(tmp_path):
    status, _, raw = app.handle("GET", "/health", b"", spec_path=str(tmp_path / "none.json"))
    assert status == 500 and "weave.json" in json.loads(raw)["error"]


# ----------------------------------------------------------------- adapters from a bundle


@pytest.fixture
def bundled(bundle, monkeypatch):
    """Import ``weave_runtime`` from the bundle, as Lambda / GCF would."""
    monkeypatch.syspath_prepend(str(bundle))
    monkeypatch.delenv("WEAVE_SPEC_PATH", raising=False)
    monkeypatch.setenv("WEAVE_MODEL_BACKEND", "mock")
    for name in [m for m in sys.modules if m == "weave_runtime" or m.startswith("weave_runtime.")]:
        monkeypatch.delitem(sys.modules, name)
    yield lambda module: importlib.import_module(f"weave_runtime.{module}")
    for name in [m for m in sys.modules if m == "weave_runtime" or m.startswith("weave_runtime.")]:
        del sys.modules[name]


def lambda_event(method, path, body=None, b64=False):
    event = {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
             "headers": {"content-type": "application/json"},
             "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1"}},
             "isBase64Encoded": b64}
    if body is not None:
        event["body"] = base64.b64encode(body).decode() if b64 else body.decode()
    return event


def test_lambda_health_and_invoke(bundled, bundle):
    lam = bundled("lambda_adapter")
    assert lam.__file__.startswith(str(bundle))
    out = lam.handler(lambda_event("GET", "/health"), None)
    assert out["statusCode"] == 200 and out["isBase64Encoded"] is False
    assert out["headers"]["Content-Type"] == "application/json"
    assert json.loads(out["body"])["spec_hash"] == hashlib.sha256((bundle / "weave.json").read_bytes()).hexdigest()
    out = lam.handler(lambda_event("POST", "/", post({"weave": "hello", "input": "hi"})), None)
    assert out["statusCode"] == 200 and json.loads(out["body"])["agents"][0]["name"] == "greeter"


def test_lambda_base64_body(bundled):
    lam = bundled("lambda_adapter")
    plain = lam.handler(lambda_event("POST", "/", post({"weave": "hello", "input": "héllo"})), None)
    encoded = lam.handler(lambda_event("POST", "/", post({"weave": "hello", "input": "héllo"}), b64=True), None)
    assert encoded["statusCode"] == 200
    assert json.loads(encoded["body"])["output"] == json.loads(plain["body"])["output"]
    assert json.loads(encoded["body"])["input"] == "héllo"


def test_lambda_errors(bundled):
    lam = bundled("lambda_adapter")
    bad = lambda_event("POST", "/", b"x", b64=True)
    bad["body"] = "!!!not base64!!!"
    assert lam.handler(bad, None)["statusCode"] == 400
    assert lam.handler(lambda_event("POST", "/", b"{oops"), None)["statusCode"] == 400
    assert lam.handler(lambda_event("GET", "/"), None)["statusCode"] == 405
    v1 = {"httpMethod": "GET", "path": "/health", "body": None, "isBase64Encoded": False}
    assert lam.handler(v1, None)["statusCode"] == 200


class FakeFlaskRequest:
    """Just the attributes gcf_adapter may use."""

    def __init__(self, method, path, data=b""):
        self.method, self.path, self._data = method, path, data
        self.headers = {"Content-Type": "application/json"}

    def get_data(self):
        return self._data


def test_gcf_adapter(bundled):
    gcf = bundled("gcf_adapter")
    body, status, headers = gcf.handle(FakeFlaskRequest("POST", "/", post({"weave": "hello", "input": "hi"})))
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["weave"] == "hello"
    body, status, _ = gcf.handle(FakeFlaskRequest("GET", "/health"))
    assert status == 200 and json.loads(body)["status"] == "ok"
    _, status, _ = gcf.handle(FakeFlaskRequest("PATCH", "/"))
    assert status == 405


# ----------------------------------------------------------------- stdlib only, isolated interpreter

PROBE = textwrap.dedent("""\
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import weave_runtime.{module} as m
    bad = sorted(n for n in sys.modules if n.split(".")[0] in
                 ("yaml", "pydantic", "weave_nb", "flask", "requests", "asyncio", "http", "email", "ssl"))
    print(json.dumps({{"file": m.__file__, "bad": bad}}))
    """)


@pytest.mark.parametrize("module", ["lambda_adapter", "gcf_adapter", "engine", "models", "app"])
def test_runtime_imports_with_stdlib_only_in_isolated_python(bundle, module):
    out = subprocess.run([sys.executable, "-I", "-c", PROBE.format(module=module), str(bundle)],
                         capture_output=True, text=True, timeout=60, cwd=str(bundle))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["file"].startswith(str(bundle))
    assert report["bad"] == []


def test_lambda_invocation_in_isolated_python(bundle):
    script = textwrap.dedent("""\
        import json, sys
        sys.path.insert(0, sys.argv[1])
        from weave_runtime.lambda_adapter import handler
        event = {"requestContext": {"http": {"method": "POST"}}, "rawPath": "/",
                 "body": json.dumps({"weave": "content_pipeline", "input": "tides"}), "isBase64Encoded": False}
        out = handler(event, None)
        bad = sorted(n for n in sys.modules if n.split(".")[0] in ("yaml", "pydantic", "weave_nb"))
        print(json.dumps({"out": out, "bad": bad}))
        """)
    proc = subprocess.run([sys.executable, "-I", "-c", script, str(bundle)], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["bad"] == []
    assert report["out"]["statusCode"] == 200
    result = json.loads(report["out"]["body"])
    assert [a["backend"] for a in result["agents"]] == ["mock", "mock"]  # no keys -> mock


def test_runtime_sources_use_relative_imports_only():
    import ast
    from pathlib import Path

    allowed = set(sys.stdlib_module_names)
    for src in (Path(app.__file__).parent).glob("*.py"):
        tree = ast.parse(src.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                roots = [] if node.level else [node.module.split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in allowed or root == "__future__", f"{src.name} imports {root}"
