"""``weave logs`` / ``weave metrics`` on the gcp provider: Cloud Logging's ``entries.list`` of the fake.

The fake serves each deployed function with a real functions-framework process
and turns every line it prints into a Cloud Logging entry (see
``gcf_fake_logging``); the provider reads them with the official
google-cloud-logging client over HTTP.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

pytest.importorskip("google.cloud.logging_v2")

from weave_nb.core.manager import DeploymentManager  # noqa: E402
from weave_nb.core.procutil import wait_for  # noqa: E402
from weave_nb.core.records import read_requests, summarize  # noqa: E402
from weave_nb.sandbox.emulators.gcf_fake import FakeCloudFunctions  # noqa: E402
from gcp_fixtures import point_at_fake, running_fake  # noqa: E402
from support import post_status, weave_cli  # noqa: E402

pytestmark = pytest.mark.gcp

HELLO = """\
version: "1.0"
agents:
  greeter: {model: mock, outputs: greeting}
weaves:
  hello: {agents: [greeter]}
env: {APP_TOKEN: "${APP_TOKEN}"}
"""
SECRET = "gcp-log-secret-5521"


@pytest.fixture
def fake():
    yield from running_fake(polls_before_done=1)


@pytest.fixture
def manager(fake, tmp_path, monkeypatch):
    point_at_fake(monkeypatch, fake, tmp_path)
    monkeypatch.setenv("APP_TOKEN", SECRET)
    return DeploymentManager(home=tmp_path / "home", sleep=lambda s: None)


def call(fake: FakeCloudFunctions, url: str, request_id: str, body: bytes | None = None) -> int:
    return post_status(url, request_id, body, {"Authorization": f"Bearer {fake.identity_token(url)}"})


weave = weave_cli  # the CLI in this process (tests/support.py)


def test_function_logs_since_filter_follow_and_metrics(manager, fake, tmp_path):
    weave_file = tmp_path / "hello.weave.yaml"
    weave_file.write_text(HELLO)
    info = manager.deploy({"name": "logs-fn", "provider": "gcp", "weave_file": str(weave_file)},
                          sink=lambda e: None)
    fn = fake.functions()["projects/demo-proj/locations/us-central1/functions/logs-fn"]
    assert fn["serviceConfig"]["environmentVariables"]["WEAVE_DEPLOYMENT"] == "logs-fn"
    assert manager.plan({"name": "logs-fn", "provider": "gcp", "weave_file": str(weave_file),
                         }).step("function").action == "no-change"

    assert call(fake, info.endpoint, "early-1") == 200
    assert wait_for(lambda: any("early-1" in e.text for e in manager.read_logs("logs-fn")), 5)
    now = datetime.now(timezone.utc)
    mark = now.replace(microsecond=now.microsecond // 1000 * 1000) + timedelta(milliseconds=1)
    assert wait_for(lambda: datetime.now(timezone.utc) > mark, 1, 0.0005)
    for i in range(4):
        assert call(fake, info.endpoint, f"late-{i}") == 200
    assert call(fake, info.endpoint, "broken", b"{nope") == 400
    assert wait_for(lambda: any("broken" in e.text for e in manager.read_logs("logs-fn", since=mark)), 5)

    code, out, err = weave("logs", "logs-fn", "--since", mark.isoformat())
    assert code == 0, err
    assert "late-0" in out and "late-3" in out and "early-1" not in out and SECRET not in out
    code, out, _ = weave("logs", "logs-fn", "--since", "10m", "--filter", "LATE-2")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 1
    payload = json.loads(lines[0].split(" ", 1)[1])
    assert payload["request_id"] == "late-2" and payload["message"].startswith("hello 200 in ")
    assert "severity" not in payload and "time" not in payload  # moved into the entry, as Cloud Logging does
    code, out, err = weave("logs", "logs-fn", "--since", "2099-01-01T00:00:00Z")
    assert code == 0 and out == "" and err.startswith("no log lines for 'logs-fn' on gcp since 2099-01-01")
    code, out, _ = weave("logs", "logs-fn", "--tail", "2")
    assert code == 0 and len(out.splitlines()) == 2

    records = read_requests(manager, "logs-fn", "gcp", since=mark)
    summary = summarize(records)
    assert [r.request_id for r in records] == [f"late-{i}" for i in range(4)] + ["broken"]
    assert (summary.requests, summary.errors, summary.statuses) == (5, 0, {200: 4, 400: 1})
    assert summary.p95_ms == max(r.duration_ms for r in records)
    assert all(r.deployment == "logs-fn" and r.time >= mark for r in records)
    code, out, _ = weave("metrics", "logs-fn", "--since", "10m")
    assert code == 0 and "requests      6" in out and "200: 5, 400: 1" in out

    seen: list[str] = []
    started = threading.Event()

    def follow() -> None:
        lines = manager.follow_logs("logs-fn", since=mark, filter="weave.request")
        for entry in lines:
            seen.append(entry.text)
            started.set()
            if "after-follow" in entry.text:
                lines.close()
                return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    assert started.wait(15) and wait_for(lambda: len(seen) == 5, 5)
    assert call(fake, info.endpoint, "after-follow") == 200
    written = time.monotonic()
    assert wait_for(lambda: any("after-follow" in text for text in seen), 2, 0.01)
    assert time.monotonic() - written < 2
    thread.join(10)
    assert len(seen) == 6
    manager.destroy("logs-fn", "gcp")


def test_entries_list_follows_the_rest_contract(fake):
    """Paging, order, the filter subset and its refusals, as the REST reference describes them."""
    store = fake.logging
    base = time.time() - 10
    for i in range(5):
        store.add_line(project="p1", location="us-central1", service="svc", revision="svc-00001-abc", stream="stdout",
                       when=base + i, text=json.dumps({"severity": "ERROR" if i == 3 else "INFO", "n": i}))
    store.add_line(project="p1", location="us-central1", service="other", revision="o-1", stream="stderr", when=base,
                   text="plain text line")
    store.add_line(project="p2", location="us-central1", service="svc", revision="x", stream="stdout", when=base, text="p2")

    def post(body: dict) -> tuple[int, dict]:
        req = urllib.request.Request(f"{fake.url}/v2/entries:list", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.loads(exc.read())

    status, page = post({"resourceNames": ["projects/p1"], "filter": 'resource.labels.service_name="svc"', "pageSize": 2})
    assert status == 200 and [e["jsonPayload"]["n"] for e in page["entries"]] == [0, 1]
    status, page2 = post({"resourceNames": ["projects/p1"], "filter": 'resource.labels.service_name="svc"', "pageSize": 2,
                          "pageToken": page["nextPageToken"]})
    assert [e["jsonPayload"]["n"] for e in page2["entries"]] == [2, 3]
    status, page = post({"resourceNames": ["projects/p1"], "filter": 'severity>=ERROR', "orderBy": "timestamp desc"})
    assert [e["jsonPayload"]["n"] for e in page["entries"]] == [3]
    entry = post({"resourceNames": ["projects/p1"], "filter": 'textPayload:"PLAIN"'})[1]["entries"][0]
    assert entry["logName"] == "projects/p1/logs/run.googleapis.com%2Fstderr" and entry["severity"] == "DEFAULT"
    assert entry["resource"] == {"type": "cloud_run_revision", "labels": {
        "project_id": "p1", "service_name": "other", "revision_name": "o-1", "location": "us-central1",
        "configuration_name": "other"}}
    assert entry["timestamp"].endswith("000Z") and len(entry["timestamp"]) == len("2026-01-01T00:00:00.000000000Z")
    assert post({"resourceNames": ["projects/p2"]})[1]["entries"][0]["textPayload"] == "p2"
    assert post({"resourceNames": ["projects/p1"], "filter": "severity=INFO OR severity=ERROR"})[0] == 400
    assert post({"filter": ""})[0] == 400
    assert post({"resourceNames": ["projects/p1"], "pageSize": 5000})[0] == 400
