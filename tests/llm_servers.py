"""Test helpers: a local fake LLM API server and runtime bundles.

:class:`FakeLLMServer` is a real ``http.server`` on 127.0.0.1 (port 0) that
speaks the OpenAI chat-completions and Anthropic messages wire formats,
checks the auth headers, answers realistic JSON with usage, and can be told
to fail: ``fail_next(429, times=2, retry_after="3")`` or
``fail_next(401, times=1)`` (whose error body echoes the key it received,
as some proxies do).

:func:`make_bundle` lays out what an artifact holds: ``weave_runtime/`` (a
copy of ``weave_nb/runtime/*.py``) next to ``weave.json``.
"""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from support import FakeSleep  # noqa: F401 - re-exported: the runtime tests import it from here

RUNTIME_SRC = Path(__file__).resolve().parent.parent / "weave_nb" / "runtime"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

OPENAI_KEY = "sk-test-openai-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-test-fedcba9876543210"


class FakeLLMServer:
    """A wire-level fake of the OpenAI and Anthropic HTTP APIs.

    Args:
        openai_key: the bearer token accepted on ``/v1/chat/completions``.
        anthropic_key: the ``x-api-key`` accepted on ``/v1/messages``.

    Attributes:
        requests: one dict per request received (path, headers with lower-case
            names, json).
        openai_base_url: value for ``OPENAI_BASE_URL``.
        anthropic_base_url: value for ``ANTHROPIC_BASE_URL``.
    """

    def __init__(self, openai_key: str = OPENAI_KEY, anthropic_key: str = ANTHROPIC_KEY) -> None:
        self.openai_key = openai_key
        self.anthropic_key = anthropic_key
        self.requests: list[dict] = []
        self._failures: list[tuple[int, str | None, bool]] = []
        self._lock = threading.Lock()
        self.hold_seconds = 0.0  # a slow model: each request waits this long (or until release())
        self.hold_until_in_flight = 0  # ...or until this many requests have been in flight at once
        self.in_flight = 0
        self.max_in_flight = 0
        self._released = threading.Event()
        self._changed = threading.Condition(self._lock)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control -----------------------------------------------------------
    def start(self) -> FakeLLMServer:
        """Bind 127.0.0.1 on a free port and serve in a thread."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                owner._handle(self)

            def log_message(self, *args) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.release()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, status: int, times: int = 1, retry_after: str | None = None,
                  echo_key: bool = False) -> None:
        """Answer the next ``times`` requests with ``status``.

        Args:
            status: e.g. 429, 500, 401 (401/403 bodies always echo the key).
            times: how many requests fail before normal answers resume.
            retry_after: a ``Retry-After`` header value to send, if any.
            echo_key: put the received key into the error message.
        """
        with self._lock:
            self._failures.extend([(status, retry_after, echo_key)] * times)

    def environ(self, **extra: str) -> dict:
        """An environment pointing both backends at this server."""
        env = {"OPENAI_API_KEY": self.openai_key, "OPENAI_BASE_URL": self.openai_base_url,
               "ANTHROPIC_API_KEY": self.anthropic_key, "ANTHROPIC_BASE_URL": self.anthropic_base_url}
        env.update(extra)
        return env

    # -- serving -----------------------------------------------------------
    def release(self) -> None:
        """Let every held request (and every later one) answer at once."""
        self._released.set()
        with self._changed:
            self._changed.notify_all()

    def _hold(self) -> None:
        """Keep the request open while the model is "thinking" (see ``hold_seconds``, ``hold_until_in_flight``)."""
        import time

        with self._changed:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._changed.notify_all()
            deadline = time.monotonic() + self.hold_seconds
            while not self._released.is_set() and time.monotonic() < deadline:
                if self.hold_until_in_flight and self.max_in_flight >= self.hold_until_in_flight:
                    break
                self._changed.wait(timeout=max(0.0, deadline - time.monotonic()))

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        if self.hold_seconds:
            self._hold()
        try:
            self._answer(h)
        finally:
            if self.hold_seconds:
                with self._changed:
                    self.in_flight -= 1

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        with self._lock:
            self.requests.append({"path": h.path, "headers": {k.lower(): v for k, v in h.headers.items()},
                                  "json": payload})
            failure = self._failures.pop(0) if self._failures else None
        if h.path == "/v1/chat/completions":
            received = (h.headers.get("Authorization") or "").removeprefix("Bearer ")
            expected, kind = self.openai_key, "openai"
        elif h.path == "/v1/messages":
            received = h.headers.get("x-api-key") or ""
            expected, kind = self.anthropic_key, "anthropic"
            if h.headers.get("anthropic-version") != "2023-06-01":
                return self._send(h, 400, {"type": "error", "error": {
                    "type": "invalid_request_error", "message": "anthropic-version header is required"}})
        else:
            return self._send(h, 404, {"error": {"message": f"no route {h.path}"}})
        if failure is not None:
            status, retry_after, echo_key = failure
            if status in (401, 403):
                return self._auth_error(h, kind, status, received)
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            message = "Rate limit reached, slow down" if status == 429 else "The server had an error"
            if echo_key:
                message += f" (request made with key {received})"
            return self._send(h, status, {"error": {"message": message, "type": "api_error"}}, headers)
        if received != expected:
            return self._auth_error(h, kind, 401, received)
        if not isinstance(payload, dict) or not payload.get("messages"):
            return self._send(h, 400, {"error": {"message": "messages is required"}})
        if kind == "openai":
            return self._send(h, 200, self._openai_answer(payload))
        if "max_tokens" not in payload:
            return self._send(h, 400, {"type": "error", "error": {"message": "max_tokens: Field required"}})
        return self._send(h, 200, self._anthropic_answer(payload))

    def _auth_error(self, h, kind: str, status: int, received: str) -> None:
        message = f"Incorrect API key provided: {received}. You can find your API key in your account."
        if kind == "openai":
            body = {"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}}
        else:
            body = {"type": "error", "error": {"type": "authentication_error", "message": message}}
        self._send(h, status, body)

    @staticmethod
    def _prompt_words(payload: dict) -> int:
        words = sum(len(str(m.get("content", "")).split()) for m in payload["messages"])
        return words + len(str(payload.get("system", "")).split())

    def _openai_answer(self, payload: dict) -> dict:
        text = f"OpenAI-compatible answer from {payload.get('model')}."
        return {
            "id": "chatcmpl-test123", "object": "chat.completion", "created": 1700000000,
            "model": payload.get("model"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 11 + self._prompt_words(payload), "completion_tokens": 7,
                      "total_tokens": 18 + self._prompt_words(payload)},
        }

    def _anthropic_answer(self, payload: dict) -> dict:
        return {
            "id": "msg_test123", "type": "message", "role": "assistant", "model": payload.get("model"),
            "content": [{"type": "text", "text": f"Anthropic answer from {payload.get('model')}."}],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 13 + self._prompt_words(payload), "output_tokens": 9},
        }

    @staticmethod
    def _send(h, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


@pytest.fixture
def llm_server():
    """A started :class:`FakeLLMServer`, stopped after the test."""
    server = FakeLLMServer().start()
    try:
        yield server
    finally:
        server.stop()


def make_bundle(directory: Path, weave_yaml: str) -> Path:
    """Lay out an artifact: ``weave_runtime/`` + ``weave.json``.

    Args:
        directory: an empty directory (e.g. ``tmp_path``).
        weave_yaml: weave-file text, compiled with ``parse_weave``.

    Returns:
        ``directory``, ready for ``sys.path`` or ``python -I``.
    """
    from weave_nb.spec.model import parse_weave

    pkg = directory / "weave_runtime"
    pkg.mkdir(parents=True)
    for src in RUNTIME_SRC.glob("*.py"):
        shutil.copy2(src, pkg / src.name)
    spec = parse_weave(weave_yaml).to_runtime_dict()
    (directory / "weave.json").write_text(json.dumps(spec, sort_keys=True, indent=2), encoding="utf-8")
    return directory
