"""``weave logs`` / ``weave metrics`` on the aws provider: CloudWatch Logs of moto_server over HTTP.

The runtime does not run on moto, so the tests write the log group as Lambda
would: Lambda's START/END/REPORT lines around the request records, each
record made by the runtime's own code for the Lambda platform (EMF included),
with known durations and statuses.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from weave_nb.core.procutil import wait_for
from weave_nb.core.records import read_requests, summarize
from weave_nb.runtime import records
from support import weave_cli  # noqa: E402

try:
    from tests.aws_servers import EXAMPLES, aws, moto_server  # noqa: F401
except ImportError:
    from aws_servers import EXAMPLES, aws, moto_server  # noqa: F401

pytestmark = pytest.mark.aws
GROUP = "/aws/lambda/weave-demo"


def lambda_lines(started: float, duration_ms: float, status: int, rid: str) -> list[tuple[int, str]]:
    """What one invocation leaves in the log group, as ``(timestamp ms, message)``."""
    agents = [{"name": "greeter", "model": "mock", "backend": "mock", "duration_ms": duration_ms * 0.8,
               "tokens": {"prompt": 6, "completion": 13}}] if status == 200 else []
    rec = records.build(started=started, duration_ms=duration_ms, rid=rid, weave="hello", status=status, agents=agents,
                        error=None if status == 200 else "ModelError", environ={"WEAVE_DEPLOYMENT": "demo"})
    line = records.emit(rec, "lambda", environ={}, started=started, sink=lambda text: None)
    ms = int(started * 1000)
    return [(ms, f"START RequestId: {rid} Version: 1"), (ms + 1, line), (ms + 2, f"END RequestId: {rid}"),
            (ms + 2, f"REPORT RequestId: {rid}\tDuration: {duration_ms:.2f} ms\tBilled Duration: 1 ms")]


def put(logs, events: list[tuple[int, str]], stream: str = "2026/01/01/[1]abc") -> None:
    try:
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.put_log_events(logGroupName=GROUP, logStreamName=stream,
                        logEvents=[{"timestamp": t, "message": m} for t, m in sorted(events)])


weave = weave_cli  # the CLI in this process (tests/support.py)


@pytest.fixture
def deployed(aws):
    mgr = aws.manager()
    mgr.deploy({"name": "demo", "provider": "aws", "weave_text": (EXAMPLES / "hello.weave.yaml").read_text()})
    return mgr


def test_a_log_group_lambda_has_not_made_yet_is_an_empty_log(deployed):
    code, out, err = weave("logs", "demo", "--provider", "aws")
    assert code == 0 and out == "" and err == "no log lines for 'demo' on aws\n"


def test_since_filter_tail_and_metrics_from_a_known_set_of_requests(deployed, aws):
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=GROUP)
    now = time.time()
    events = lambda_lines(now - 2 * 3600, 5000.0, 200, "old-request")  # outside the default hour
    failing = {4, 11, 17}
    for i in range(1, 21):  # durations 1..20 ms, in shuffled order over the last ten minutes
        duration = float((i * 7) % 20 + 1)
        events += lambda_lines(now - 600 + i * 20, duration, 500 if i in failing else 200, f"req-{i:02d}")
    put(logs, events)

    code, out, _ = weave("logs", "demo", "--provider", "aws", "--since", "30m", "--filter", "report requestid")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 20 and all("\tDuration: " in line for line in lines)
    assert "old-request" not in out
    code, out, _ = weave("logs", "demo", "--provider", "aws", "--since", "3h", "--tail", "4")
    texts = [line.split(" ", 1)[1] for line in out.splitlines()]
    assert code == 0 and len(texts) == 4
    assert texts[0].startswith("START RequestId: req-20") and texts[2] == "END RequestId: req-20"
    assert texts[3].startswith("REPORT RequestId: req-20")
    emf = json.loads(texts[1])
    assert (emf["request_id"], emf["Deployment"], emf["Latency"], emf["Errors"]) == ("req-20", "demo", 1.0, 0)
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "WeaveNb"

    found = read_requests(deployed, "demo", "aws", since="1h")
    summary = summarize(found)
    assert sorted(r.request_id for r in found) == [f"req-{i:02d}" for i in range(1, 21)]
    assert (summary.requests, summary.errors, summary.error_rate) == (20, 3, 0.15)
    assert (summary.p50_ms, summary.p95_ms, summary.p99_ms) == (10.0, 19.0, 20.0)  # nearest rank of 1..20
    assert (summary.input_tokens, summary.output_tokens) == (17 * 6, 17 * 13)
    assert len(read_requests(deployed, "demo", "aws", since="3h")) == 21

    code, out, err = weave("metrics", "demo", "--provider", "aws")
    assert code == 0, err
    assert "requests      20" in out and "errors        3 (15.0%" in out
    assert "p50 10.0 ms, p95 19.0 ms, p99 20.0 ms (nearest rank)" in out
    assert "tokens        102 in, 221 out" in out


def test_follow_shows_an_event_put_after_it_started_within_two_seconds(deployed, aws):
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=GROUP)
    put(logs, [(int(time.time() * 1000) - 500, "before follow")])
    seen: list[str] = []
    started = threading.Event()

    def follow() -> None:
        lines = deployed.follow_logs("demo", "aws", since="5m")
        for entry in lines:
            seen.append(entry.text)
            started.set()
            if entry.text == "after follow":
                lines.close()
                return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    assert started.wait(15) and seen == ["before follow"]
    put(logs, [(int(time.time() * 1000), "after follow")], stream=f"s-{uuid.uuid4().hex[:6]}")
    assert wait_for(lambda: "after follow" in seen, 2, 0.01)
    thread.join(5)
    assert seen == ["before follow", "after follow"]


def test_the_function_gets_its_deployment_name(deployed, aws):
    conf = aws.client("lambda").get_function(FunctionName="weave-demo")["Configuration"]
    assert conf["Environment"]["Variables"]["WEAVE_DEPLOYMENT"] == "demo"
    info = deployed.deploy({"name": "demo", "provider": "aws", "weave_text": (EXAMPLES / "hello.weave.yaml").read_text()})
    assert info.message == "no changes"  # the variable it set is the one it wants: no endless update
    assert json.dumps(conf["Environment"]["Variables"]).count("WEAVE_DEPLOYMENT") == 1
