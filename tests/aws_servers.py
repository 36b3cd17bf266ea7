"""Test servers for the AWS provider: one moto_server per session and a fault-injecting proxy.

``moto_server`` is the real AWS API over HTTP (Lambda, IAM, API Gateway v2,
STS, Resource Groups Tagging, CloudWatch Logs). It is started once per
session on a free 127.0.0.1 port with ``MOTO_IAM_LOAD_MANAGED_POLICIES=true``
(or taken from ``WEAVE_TEST_MOTO_URL``), kept on ``config.stash`` so every
test module shares it, stopped at session end, and reset before each test.

:class:`FaultProxy` sits between the provider and moto. It forwards every
request, records ``(method, path, operation)`` for each (the operation comes
from ``X-Amz-Target`` or a query-protocol ``Action=``), and applies
:class:`Rule` s: answer a status (429, 500, or a custom AWS error) or drop
the connection, for the first ``count`` matching requests.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support import FakeSleep, free_port, http_answers  # noqa: F401 - FakeSleep is re-exported for the benchmarks

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
READ_PREFIXES = ("Get", "List", "Describe")
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
_MOTO_KEY = pytest.StashKey[Any]()


class MotoServer:
    """A ``moto_server`` subprocess on 127.0.0.1 (or an existing one at ``url``)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url
        self.proc: subprocess.Popen | None = None

    def start(self) -> MotoServer:
        if self.url is None:
            port = free_port()
            env = dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true")
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
            )
            self.url = f"http://127.0.0.1:{port}"
        if not http_answers(f"{self.url}/moto-api/", 60):
            self.stop()
            raise RuntimeError("moto_server did not start within 60 s")
        return self

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        urllib.request.urlopen(req, timeout=30).read()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@dataclass
class Rule:
    """A fault: requests matching ``method`` and ``path`` (a regex) and, if given, ``operation``.

    ``status`` 0 means drop the connection without an answer; ``forward``
    first forwards the request to moto (so the change happens) and then
    answers the fault. ``count`` is how many matching requests fail.
    """

    method: str
    path: str
    status: int = 500
    count: int = 1
    operation: str | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    forward: bool = False
    hits: int = 0

    def matches(self, method: str, path: str, operation: str | None) -> bool:
        if self.count <= 0 or method != self.method or not re.search(self.path, path):
            return False
        return self.operation is None or self.operation == operation


@dataclass(frozen=True)
class Call:
    """One request seen by the proxy."""

    method: str
    path: str
    operation: str | None
    body: bytes = field(default=b"", compare=False, repr=False)
    query: str = field(default="", compare=False, repr=False)
    headers: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def mutating(self) -> bool:
        """True unless the call only reads (GET on REST APIs, Get*/List*/Describe* otherwise)."""
        if self.operation:
            return not self.operation.startswith(READ_PREFIXES)
        return self.method not in ("GET", "HEAD")


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of ``upstream`` that counts calls and injects faults."""

    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlparse(upstream)
        self.upstream = (parsed.hostname, parsed.port)
        self.rules: list[Rule] = []
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self.url = ""

    def add(self, rule: Rule) -> Rule:
        """Add a fault rule and return it (its ``hits`` counts what it answered)."""
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Forget rules and counted calls."""
        with self._lock:
            self.rules.clear()
            self.calls.clear()

    def mutating(self) -> list[Call]:
        """The mutating calls counted so far."""
        with self._lock:
            return [c for c in self.calls if c.mutating]

    def count(self, method: str, path_regex: str) -> int:
        """How many calls matched ``method`` and ``path_regex``."""
        with self._lock:
            return sum(1 for c in self.calls if c.method == method and re.search(path_regex, c.path))

    def start(self) -> FaultProxy:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once: no delayed-ACK stalls

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                operation = owner._operation(self.headers, body)
                path, _, query = self.path.partition("?")
                with owner._lock:
                    owner.calls.append(Call(self.command, urllib.parse.unquote(path), operation, body, urllib.parse.unquote(query),
                                            {k.lower(): v for k, v in self.headers.items()}))
                    rule = next((r for r in owner.rules if r.matches(self.command, urllib.parse.unquote(path), operation)), None)
                    if rule is not None:
                        rule.count -= 1
                        rule.hits += 1
                if rule is not None and rule.forward:
                    owner._forward(self.command, self.path, self.headers, body)
                if rule is not None:
                    if rule.status == 0:
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self._answer(rule.status, rule.body or owner._error_body(rule.status), rule.headers)
                    return
                status, headers, data = owner._forward(self.command, self.path, self.headers, body)
                self._answer(status, data, headers)

            def _answer(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, val in headers.items():
                    if key.lower() not in HOP_HEADERS and key.lower() != "content-length":
                        self.send_header(key, val)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @staticmethod
    def _operation(headers: Any, body: bytes) -> str | None:
        target = headers.get("X-Amz-Target")
        if target:
            return target.rsplit(".", 1)[-1]
        if body.startswith(b"Action=") or b"&Action=" in body:
            return urllib.parse.parse_qs(body.decode(errors="replace")).get("Action", [None])[0]
        return None

    @staticmethod
    def _error_body(status: int) -> bytes:
        code = "TooManyRequestsException" if status == 429 else "ServiceException"
        return json.dumps({"__type": code, "Type": "Service", "message": f"injected {status}"}).encode()

    def _forward(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            fwd = {k: v for k, v in headers.items() if k.lower() not in HOP_HEADERS}
            conn.request(method, path, body=body or None, headers=fwd)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()


def role_not_ready_rule(count: int = 2) -> Rule:
    """Lambda's answer while a new role has not propagated: 400 InvalidParameterValueException."""
    return Rule(
        "POST", r"^/2015-03-31/functions/?$", status=400, count=count,
        body=json.dumps({"Type": "User", "message": "The role defined for the function cannot be assumed by Lambda."}).encode(),
        headers={"x-amzn-ErrorType": "InvalidParameterValueException", "Content-Type": "application/json"},
    )


@dataclass
class AwsWorld:
    """What an AWS test gets: moto, the proxy in front of it, a WEAVE_HOME and direct boto3 clients."""

    moto: MotoServer
    proxy: FaultProxy
    home: Path
    sleep: FakeSleep
    region: str = "us-east-1"

    def client(self, service: str) -> Any:
        """A boto3 client straight to moto (bypassing the proxy) for checking what exists."""
        import boto3

        return boto3.client(service, endpoint_url=self.moto.url, region_name=self.region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def manager(self, **kwargs: Any) -> Any:
        """A DeploymentManager on this home with the fake sleep and a jitter-free retry policy."""
        from weave_nb.core.auth import AuthenticationManager
        from weave_nb.core.manager import DeploymentManager
        from weave_nb.providers.aws.client import RetryPolicy
        from weave_nb.providers.aws.provider import AwsProvider

        auth = AuthenticationManager()
        provider = AwsProvider(auth, policy=RetryPolicy(attempts=4, base=0.5, rand=lambda: 1.0))
        return DeploymentManager(home=self.home, auth=auth, providers={"aws": provider}, sleep=self.sleep, **kwargs)

    def counts(self) -> dict[str, int]:
        """How many weave-nb resources exist in moto, by kind."""
        lam, iam, api = self.client("lambda"), self.client("iam"), self.client("apigatewayv2")
        roles = [r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("weave-nb-")]
        return {
            "functions": len(lam.list_functions()["Functions"]),
            "roles": len(roles),
            "apis": len(api.get_apis()["Items"]),
        }


@pytest.fixture(scope="session")
def moto_server(request: pytest.FixtureRequest) -> MotoServer:
    """The session's moto_server (shared by every module through ``config.stash``)."""
    stash = request.config.stash
    if _MOTO_KEY not in stash:
        server = MotoServer(os.environ.get("WEAVE_TEST_MOTO_URL") or None).start()
        stash[_MOTO_KEY] = server
        request.config.add_cleanup(server.stop)
    return stash[_MOTO_KEY]


def _fake_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str) -> Path:
    """Fake credentials and a region in the environment, every AWS call sent to ``endpoint``; returns WEAVE_HOME."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ROLE_ARN",
                "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    home = tmp_path / "weave-home"
    monkeypatch.setenv("WEAVE_HOME", str(home))
    return home


@pytest.fixture
def aws(moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A reset moto behind a fresh fault proxy, fake credentials in env, and a temporary WEAVE_HOME."""
    moto_server.reset()
    proxy = FaultProxy(moto_server.url).start()
    home = _fake_aws_env(monkeypatch, tmp_path, proxy.url)
    try:
        yield AwsWorld(moto=moto_server, proxy=proxy, home=home, sleep=FakeSleep())
    finally:
        proxy.stop()


@pytest.fixture
def aws_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """For checks that must fail before any remote call: the recording proxy in front of nothing.

    No moto is reset or scanned: ``proxy.calls == []`` is the whole proof that
    nothing was sent (a call that slipped through would be recorded, then fail).
    """
    proxy = FaultProxy(f"http://127.0.0.1:{free_port()}").start()  # nothing listens upstream
    home = _fake_aws_env(monkeypatch, tmp_path, proxy.url)
    try:
        yield AwsWorld(moto=None, proxy=proxy, home=home, sleep=FakeSleep())  # type: ignore[arg-type]
    finally:
        proxy.stop()
