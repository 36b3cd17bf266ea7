"""Tests for the Cloud Functions v2 REST test fake, driven by the real google clients.

The clients talk plain HTTP to the fake: ``client_options={"api_endpoint": fake.url}``
where ``fake.url`` is ``"http://127.0.0.1:PORT"`` (with the scheme the rest
transport keeps http; without it, it would use https). Operations are polled with
``op.result(polling=FAST_POLL)``: the library's DEFAULT_POLLING with a 10 ms first
delay, 50 ms cap.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.api_core.future import polling
from google.auth.credentials import AnonymousCredentials
from google.cloud import functions_v2, run_v2
from google.iam.v1 import policy_pb2

from weave_nb.sandbox.emulators import FakeCloudFunctions
from weave_nb.sandbox.emulators.gcf_fake_tokens import make_token
from weave_nb.sandbox.emulators.gcf_fake_functions import FUNCTION_ENUMS, METADATA_ENUMS

pytestmark = pytest.mark.gcp

# the captures are part of the repository (tests/data/gcf-v2-wire, see its README); GCF_WIRE_DIR points elsewhere
WIRE_DIR = Path(os.environ.get("GCF_WIRE_DIR") or Path(__file__).resolve().parent / "data" / "gcf-v2-wire")
WIRES = sorted(WIRE_DIR.glob("wire*.jsonl"))
FAST_POLL = polling.DEFAULT_POLLING.with_delay(initial=0.01, maximum=0.05, multiplier=1.5).with_timeout(60)
PARENT = "projects/demo-proj/locations/us-central1"

HELLO = "import os\n\ndef handle(request):\n    return 'v1 ' + os.environ.get('GREETING', '-')\n"
HELLO_V2 = "import os\n\ndef handle(request):\n    return 'v2 ' + os.environ.get('GREETING', '-')\n"


def make_zip(main_py: str = HELLO, requirements: str | None = "functions-framework\n") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("main.py", main_py)
        if requirements is not None:
            zf.writestr("requirements.txt", requirements)
    return buf.getvalue()


@pytest.fixture
def fake():
    with FakeCloudFunctions(polls_before_done=2) as f:
        yield f


@pytest.fixture
def fake_noserve():
    with FakeCloudFunctions(polls_before_done=2, serve_functions=False) as f:
        yield f


def client_for(fake: FakeCloudFunctions) -> functions_v2.FunctionServiceClient:
    return functions_v2.FunctionServiceClient(
        transport="rest", credentials=AnonymousCredentials(), client_options={"api_endpoint": fake.url})


def upload(client, parent: str, data: bytes) -> functions_v2.StorageSource:
    resp = client.generate_upload_url(request={"parent": parent})
    put = requests.put(resp.upload_url, data=data, headers={"content-type": "application/zip"}, timeout=10)
    assert put.status_code == 200, put.text
    return resp.storage_source


def deploy(client, parent: str, fid: str, main_py: str = HELLO, env=None, entry_point="handle"):
    source = upload(client, parent, make_zip(main_py))
    fn = functions_v2.Function(
        build_config=functions_v2.BuildConfig(
            runtime="python312", entry_point=entry_point, source=functions_v2.Source(storage_source=source)),
        service_config=functions_v2.ServiceConfig(
            available_memory="256Mi", timeout_seconds=60, environment_variables=env or {}),
        labels={"weave-nb": "managed"},
    )
    return client.create_function(parent=parent, function=fn, function_id=fid)


def wait_until(condition, timeout: float) -> bool:
    from weave_nb.core.procutil import wait_for

    return wait_for(condition, timeout)


def bearer(url: str, **claims) -> dict:
    """An Authorization header with a well-formed identity token for ``url`` (what the fake's invoker check wants)."""
    token = make_token({"aud": url, "exp": int(time.time()) + 600, "iss": "https://accounts.google.com", **claims})
    return {"Authorization": f"Bearer {token}"}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def port_open(url: str) -> bool:
    host, port = urlsplit(url).netloc.split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- flow
def test_create_polls_then_serves_function(fake):
    client = client_for(fake)
    op = deploy(client, PARENT, "hello-fn", env={"GREETING": "hi"})
    assert op.metadata.stages[0].state == functions_v2.Stage.State.NOT_STARTED
    result = op.result(polling=FAST_POLL)

    assert result.state == functions_v2.Function.State.ACTIVE
    assert fake.counts["operations.get"] == 3  # polls_before_done=2, then done
    fn = client.get_function(name=f"{PARENT}/functions/hello-fn")
    assert fn.state == functions_v2.Function.State.ACTIVE
    assert fn.environment == functions_v2.Environment.GEN_2
    assert fn.url == fn.service_config.uri and fn.url.startswith("http://127.0.0.1:")
    assert fn.service_config.service == "projects/demo-proj/locations/us-central1/services/hello-fn"
    assert dict(fn.labels) == {"weave-nb": "managed"}
    assert requests.get(fn.url, headers=bearer(fn.url), timeout=10).text == "v1 hi"
    assert fake.counts["create"] == 1 and fake.counts["upload"] == 1 and fake.counts["get"] == 1


def test_stages_advance_across_polls_and_enums_follow_the_request(fake_noserve):
    client = client_for(fake_noserve)
    op = deploy(client, PARENT, "stage-fn")
    op_url = f"{fake_noserve.url}/v2/{op.operation.name}"
    seen = []
    for _ in range(3):
        body = requests.get(op_url, timeout=5).json()
        seen.append((body["done"], tuple(s["state"] for s in body["metadata"]["stages"])))
    assert seen == [(False, ("IN_PROGRESS", "NOT_STARTED")),
                    (False, ("COMPLETE", "IN_PROGRESS")),
                    (True, ("COMPLETE", "COMPLETE"))]
    assert body["metadata"]["@type"] == "type.googleapis.com/google.cloud.functions.v2.OperationMetadata"
    assert body["response"]["@type"] == "type.googleapis.com/google.cloud.functions.v2.Function"
    fn_url = f"{fake_noserve.url}/v2/{PARENT}/functions/stage-fn"
    assert requests.get(fn_url, params={"$alt": "json;enum-encoding=int"}, timeout=5).json()["state"] == 1
    plain = requests.get(fn_url, params={"alt": "json"}, timeout=5).json()
    assert plain["state"] == "ACTIVE" and plain["serviceConfig"]["ingressSettings"] == "ALLOW_ALL"
    assert plain["url"].startswith("https://")  # not served: a real-looking placeholder


def test_update_with_mask_replaces_served_code(fake):
    client = client_for(fake)
    deploy(client, PARENT, "hello-fn", env={"GREETING": "hi"}).result(polling=FAST_POLL)
    name = f"{PARENT}/functions/hello-fn"
    old_pid = fake.processes()[name]
    old = client.get_function(name=name)

    source = upload(client, PARENT, make_zip(HELLO_V2))
    patch = functions_v2.Function(
        name=name,
        build_config=functions_v2.BuildConfig(source=functions_v2.Source(storage_source=source)),
        service_config=functions_v2.ServiceConfig(environment_variables={"GREETING": "again"}))
    op = client.update_function(function=patch, update_mask={
        "paths": ["build_config.source", "service_config.environment_variables"]})
    updated = op.result(polling=FAST_POLL)

    update_call = next(c for c in fake.calls if c["method"] == "PATCH")
    assert update_call["query"]["updateMask"] == ["buildConfig.source,serviceConfig.environmentVariables"]
    assert updated.state == functions_v2.Function.State.ACTIVE
    assert requests.get(updated.url, headers=bearer(updated.url), timeout=10).text == "v2 again"
    assert updated.build_config.runtime == "python312"  # untouched by the mask
    assert updated.service_config.revision != old.service_config.revision
    assert not pid_alive(old_pid) and fake.processes()[name] != old_pid


def test_update_mask_errors_and_maskless_update(fake_noserve):
    client = client_for(fake_noserve)
    deploy(client, PARENT, "mask-fn").result(polling=FAST_POLL)
    name = f"{PARENT}/functions/mask-fn"
    with pytest.raises(gexc.BadRequest, match="update mask"):
        client.update_function(function=functions_v2.Function(name=name), update_mask={"paths": ["no_such"]})
    with pytest.raises(gexc.BadRequest, match="immutable or output only"):
        client.update_function(function=functions_v2.Function(name=name), update_mask={"paths": ["state"]})
    with pytest.raises(gexc.NotFound):
        client.update_function(function=functions_v2.Function(name=f"{PARENT}/functions/nope-fn"),
                               update_mask={"paths": ["description"]})
    # wire4 and the v2 reference: without a mask every provided field is updated
    op = client.update_function(function=functions_v2.Function(name=name, description="d2"))
    assert op.result(polling=FAST_POLL).description == "d2"
    assert client.get_function(name=name).build_config.entry_point == "handle"
    fake_noserve.require_update_mask = True
    with pytest.raises(gexc.BadRequest, match="update_mask is required"):
        client.update_function(function=functions_v2.Function(name=name, description="d3"))


def test_list_across_locations_follows_page_tokens(fake_noserve):
    client = client_for(fake_noserve)
    ops = [deploy(client, "projects/demo-proj/locations/us-central1", "a-fn"),
           deploy(client, "projects/demo-proj/locations/us-central1", "b-fn"),
           deploy(client, "projects/demo-proj/locations/europe-west1", "c-fn")]
    for op in ops:
        op.result(polling=FAST_POLL)
    names = [f.name for f in client.list_functions(
        request={"parent": "projects/demo-proj/locations/-", "page_size": 1})]
    assert sorted(names) == ["projects/demo-proj/locations/europe-west1/functions/c-fn",
                             "projects/demo-proj/locations/us-central1/functions/a-fn",
                             "projects/demo-proj/locations/us-central1/functions/b-fn"]
    assert fake_noserve.counts["list"] == 3
    tokens = [c["query"].get("pageToken") for c in fake_noserve.calls if c["path"].endswith("/-/functions")]
    assert tokens == [None, ["1"], ["2"]]
    regional = [f.name for f in client.list_functions(parent="projects/demo-proj/locations/europe-west1")]
    assert regional == ["projects/demo-proj/locations/europe-west1/functions/c-fn"]


def test_fail_next_build_fails_operation_and_function(fake):
    client = client_for(fake)
    fake.fail_next_build("Build failed: pip install exploded", ["step 1 failed", "step 2 failed"])
    op = deploy(client, PARENT, "broken-fn")
    with pytest.raises(gexc.GoogleAPICallError, match="pip install exploded") as info:
        op.result(polling=FAST_POLL)
    assert info.value.code == 400  # google.rpc code 3, INVALID_ARGUMENT
    fn = client.get_function(name=f"{PARENT}/functions/broken-fn")
    assert fn.state == functions_v2.Function.State.FAILED
    assert [m.message for m in fn.state_messages] == ["step 1 failed", "step 2 failed"]
    assert fn.state_messages[0].severity == functions_v2.StateMessage.Severity.ERROR
    assert fake.processes() == {}
    # only the next build fails
    deploy(client, PARENT, "good-fn").result(polling=FAST_POLL)


def test_process_start_failure_reports_stderr_tail(fake):
    client = client_for(fake)
    op = deploy(client, PARENT, "noentry-fn", entry_point="missing")
    with pytest.raises(gexc.GoogleAPICallError, match=r"functions-framework exited rc=\d+") as info:
        op.result(polling=FAST_POLL)
    assert "missing" in info.value.message  # functions-framework names the absent target
    fn = client.get_function(name=f"{PARENT}/functions/noentry-fn")
    assert fn.state == functions_v2.Function.State.FAILED and fn.state_messages


def test_delete_removes_function_and_stops_process(fake):
    client = client_for(fake)
    fn = deploy(client, PARENT, "hello-fn").result(polling=FAST_POLL)
    pid = fake.processes()[fn.name]
    assert pid_alive(pid) and requests.get(fn.url, headers=bearer(fn.url), timeout=10).status_code == 200
    client.delete_function(name=fn.name).result(polling=FAST_POLL)
    with pytest.raises(gexc.NotFound):
        client.get_function(name=fn.name)
    assert fn.name not in fake.functions() and fake.processes() == {}
    assert not pid_alive(pid) and requests.get(fn.url, headers=bearer(fn.url), timeout=10).status_code == 404
    with pytest.raises(gexc.NotFound):
        client.delete_function(name=fn.name)


def test_stop_ends_every_function_process():
    fake = FakeCloudFunctions(polls_before_done=0).start()
    try:
        client = client_for(fake)
        urls = [deploy(client, PARENT, fid).result(polling=FAST_POLL).url for fid in ("one-fn", "two-fn")]
        pids = list(fake.processes().values())
        assert all(pid_alive(p) for p in pids)
    finally:
        fake.stop()
    assert not any(pid_alive(p) for p in pids)
    assert not any(port_open(u) for u in urls)


def test_create_errors(fake_noserve):
    client = client_for(fake_noserve)
    with pytest.raises(gexc.BadRequest, match="Invalid function id 'Bad_ID'"):
        client.create_function(parent=PARENT, function=functions_v2.Function(), function_id="Bad_ID")
    for bad in ("abc", "1abc", "abc-", "a" * 64, "has_underscore"):
        with pytest.raises(gexc.BadRequest):
            client.create_function(parent=PARENT, function=functions_v2.Function(), function_id=bad)
    not_uploaded = functions_v2.Function(build_config=functions_v2.BuildConfig(
        runtime="python312", entry_point="h",
        source=functions_v2.Source(storage_source=functions_v2.StorageSource(bucket="b", object_="o.zip"))))
    with pytest.raises(gexc.BadRequest, match="source not uploaded"):
        client.create_function(parent=PARENT, function=not_uploaded, function_id="x-fn")
    deploy(client, PARENT, "dup-fn").result(polling=FAST_POLL)
    with pytest.raises(gexc.Conflict, match="already exists"):
        deploy(client, PARENT, "dup-fn")
    with pytest.raises(gexc.BadRequest, match="timeoutSeconds"):
        src = upload(client, PARENT, make_zip())
        client.create_function(parent=PARENT, function_id="slow-fn", function=functions_v2.Function(
            build_config=functions_v2.BuildConfig(runtime="python312", entry_point="handle",
                                                  source=functions_v2.Source(storage_source=src)),
            service_config=functions_v2.ServiceConfig(timeout_seconds=4000)))


def test_upload_url_rules(fake_noserve):
    client = client_for(fake_noserve)
    url = client.generate_upload_url(request={"parent": PARENT}).upload_url
    assert url.startswith(fake_noserve.url + "/upload/")
    zip_headers = {"content-type": "application/zip"}
    auth = requests.put(url, data=make_zip(), headers={**zip_headers, "Authorization": "Bearer x"}, timeout=5)
    assert auth.status_code == 400
    assert requests.put(url, data=b"not a zip", headers=zip_headers, timeout=5).status_code == 400
    no_reqs = requests.put(url, data=make_zip(requirements=None), headers=zip_headers, timeout=5)
    assert no_reqs.status_code == 400 and "requirements.txt" in no_reqs.text
    assert requests.put(url, data=make_zip(), timeout=5).status_code == 403  # content-type is signed
    unknown = re.sub(r"/[0-9a-f-]+\.zip", "/not-issued.zip", url)
    assert requests.put(unknown, data=make_zip(), headers=zip_headers, timeout=5).status_code == 403
    assert requests.put(url, data=make_zip(), headers=zip_headers, timeout=5).status_code == 200
    assert fake_noserve.counts["upload"] == 6


def test_injected_503_then_client_retry_succeeds(fake_noserve):
    client = client_for(fake_noserve)
    deploy(client, PARENT, "retry-fn").result(polling=FAST_POLL)
    name = f"{PARENT}/functions/retry-fn"
    fake_noserve.inject_errors("GET", r"/functions/retry-fn$", 503, count=2)
    retry = gretry.Retry(predicate=gretry.if_exception_type(gexc.ServiceUnavailable),
                         initial=0.01, maximum=0.02, multiplier=1.0, timeout=10)
    assert client.get_function(name=name, retry=retry).name == name
    assert fake_noserve.counts["get"] == 3
    assert [c["status"] for c in fake_noserve.calls if c["method"] == "GET"
            and c["path"].endswith("retry-fn")] == [503, 503, 200]

    fake_noserve.inject_errors("POST", r"functions:generateUploadUrl$", 429)
    with pytest.raises(gexc.TooManyRequests) as info:
        client.generate_upload_url(request={"parent": PARENT}, retry=None)
    assert "Injected error 429" in info.value.message
    assert client.generate_upload_url(request={"parent": PARENT}).upload_url  # manual retry


def test_cloud_run_and_functions_iam_policies(fake_noserve):
    fclient = client_for(fake_noserve)
    fn = deploy(fclient, PARENT, "iam-fn").result(polling=FAST_POLL)
    run = run_v2.ServicesClient(transport="rest", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": fake_noserve.url})
    service = fn.service_config.service
    policy = run.get_iam_policy(request={"resource": service})
    assert policy.etag == base64.b64decode("ACAB") and not policy.bindings  # the wire value
    policy.bindings.append(policy_pb2.Binding(role="roles/run.invoker", members=["allUsers"]))
    new = run.set_iam_policy(request={"resource": service, "policy": policy})
    assert new.etag != policy.etag and [b.role for b in new.bindings] == ["roles/run.invoker"]
    got = run.get_iam_policy(request={"resource": service})
    assert got.etag == new.etag and list(got.bindings[0].members) == ["allUsers"]
    with pytest.raises(gexc.Conflict):  # stale etag: 409 ABORTED
        run.set_iam_policy(request={"resource": service, "policy": policy})
    with pytest.raises(gexc.NotFound):
        run.get_iam_policy(request={"resource": f"{PARENT}/services/nope-svc"})

    fpolicy = fclient.set_iam_policy(request={"resource": fn.name, "policy": {
        "bindings": [{"role": "roles/cloudfunctions.invoker", "members": ["allUsers"]}]}})
    assert fpolicy.bindings[0].role == "roles/cloudfunctions.invoker"
    assert fclient.get_iam_policy(request={"resource": fn.name}).etag == fpolicy.etag
    assert fake_noserve.counts["setIamPolicy"] == 3 and fake_noserve.counts["getIamPolicy"] == 4


def test_environment_values_stay_where_the_api_returns_them(fake):
    client = client_for(fake)
    secret = "s3cr3t-value-xyz"
    fn = deploy(client, PARENT, "env-fn", env={"API_TOKEN": secret}).result(polling=FAST_POLL)
    assert fn.service_config.environment_variables["API_TOKEN"] == secret  # the API returns it here
    cmdline = Path(f"/proc/{fake.processes()[fn.name]}/cmdline").read_bytes()
    assert secret.encode() not in cmdline  # passed by environment, not argv
    with pytest.raises(gexc.BadRequest) as info:
        client.update_function(function=functions_v2.Function(
            name=fn.name, service_config=functions_v2.ServiceConfig(environment_variables={"PORT": secret})),
            update_mask={"paths": ["service_config.environment_variables"]})
    assert "PORT" in info.value.message and secret not in info.value.message


def test_gcloud_style_string_enums_accepted(fake_noserve):
    up = requests.post(f"{fake_noserve.url}/v2/{PARENT}/functions:generateUploadUrl?alt=json", json={}).json()
    assert requests.put(up["uploadUrl"], data=make_zip(), headers={"content-type": "application/zip"}).ok
    body = {"name": f"{PARENT}/functions/hello-fn",
            "buildConfig": {"entryPoint": "handle", "runtime": "python312",
                            "source": {"storageSource": up["storageSource"]}},
            "serviceConfig": {"ingressSettings": "ALLOW_INTERNAL_ONLY", "timeoutSeconds": "30"}}
    resp = requests.post(f"{fake_noserve.url}/v2/{PARENT}/functions",
                         params={"alt": "json", "functionId": "hello-fn"}, json=body)
    assert resp.status_code == 200 and resp.json()["metadata"]["verb"] == "create"
    assert resp.json()["metadata"]["requestResource"]["serviceConfig"]["ingressSettings"] == "ALLOW_INTERNAL_ONLY"
    stored = fake_noserve.functions()[f"{PARENT}/functions/hello-fn"]
    assert stored["serviceConfig"]["timeoutSeconds"] == 30
    bad = requests.post(f"{fake_noserve.url}/v2/{PARENT}/functions", params={"functionId": "other-fn"},
                        json={**body, "name": None, "serviceConfig": {"ingressSettings": "NOPE"}})
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_enum_tables_match_the_client_library():
    from google.cloud.functions_v2 import types as t

    def names(enum):
        return [e.name for e in sorted(enum, key=lambda e: e.value)]

    assert FUNCTION_ENUMS[("state",)] == names(t.Function.State)
    assert FUNCTION_ENUMS[("environment",)] == names(t.Environment)
    assert FUNCTION_ENUMS[("serviceConfig", "ingressSettings")] == names(t.ServiceConfig.IngressSettings)
    assert FUNCTION_ENUMS[("stateMessages", "*", "severity")] == names(t.StateMessage.Severity)
    assert METADATA_ENUMS[("stages", "*", "name")] == names(t.Stage.Name)
    assert METADATA_ENUMS[("stages", "*", "state")] == names(t.Stage.State)
    assert METADATA_ENUMS[("operationType",)] == names(t.OperationType)


def test_fake_never_imports_google_client_libraries():
    code = ("import sys, weave_nb.sandbox.emulators.gcf_fake, weave_nb.sandbox.emulators.gcf_fake_cli\n"
            "print([m for m in sys.modules if m.startswith('google.') and m != 'google.cloud'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert out.stdout.strip() == "[]"  # 'google' / 'google.cloud' are namespace stubs from .pth files


def test_stop_closes_keep_alive_connections(fake_noserve):
    with requests.Session() as session:
        assert session.get(f"{fake_noserve.url}/v2/{PARENT}/functions", timeout=5).json() == {"functions": []}
        assert fake_noserve._connections
        fake_noserve.stop()
        assert not fake_noserve._connections
        with pytest.raises(requests.ConnectionError):
            session.get(f"{fake_noserve.url}/v2/{PARENT}/functions", timeout=5)


def test_standalone_module_serves_and_stops_functions_on_sigterm(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "weave_nb.sandbox.emulators.gcf_fake", "--port", "0",
                             "--polls-before-done", "0"], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:")
        base = line.split()[-1]
        up = requests.post(f"{base}/v2/{PARENT}/functions:generateUploadUrl", json={}, timeout=10).json()
        requests.put(up["uploadUrl"], data=make_zip(), headers={"content-type": "application/zip"}, timeout=10)
        op = requests.post(f"{base}/v2/{PARENT}/functions", params={"functionId": "cli-fn"}, timeout=10, json={
            "buildConfig": {"runtime": "python312", "entryPoint": "handle",
                            "source": {"storageSource": up["storageSource"]}}}).json()
        done = requests.get(f"{base}/v2/{op['name']}", timeout=30).json()
        assert done["done"] and "error" not in done, done
        fn_url = done["response"]["url"]
        assert requests.get(fn_url, headers=bearer(fn_url), timeout=10).text == "v1 -"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not port_open(fn_url) and not port_open(base)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------ capture conformance
# wire3 starts with credential discovery (metadata server ping, project id, token
# endpoints). That is google-auth traffic, not the Cloud Functions API, and the fake
# does not serve it; those request lines are the only ones the replay skips.
NOT_FUNCTIONS_API = re.compile(r"^/$|^/computeMetadata/|^/token$")
OP_ID = re.compile(r"operation-\d+-[0-9a-f]+")


def capture_exchanges(path: Path) -> list[tuple[dict, dict]]:
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    events = [e for e in events if e["event"] in ("request", "response")]
    pairs = list(zip(events[0::2], events[1::2], strict=True))
    assert all(q["event"] == "request" and r["event"] == "response" for q, r in pairs)
    return pairs


def _substitute(text: str, subs: dict[str, str]) -> str:
    for old, new in subs.items():
        text = text.replace(old, new)
    return text


def test_the_wire_captures_are_there():
    """The replay below must never pass by replaying nothing."""
    assert [p.name for p in WIRES] == [f"wire{i}.jsonl" for i in range(1, 6)], WIRE_DIR


@pytest.mark.parametrize("wire", WIRES, ids=lambda p: p.name)
def test_capture_replay_gets_the_recorded_status_class(wire):
    """Replay every captured request line (method, path, query; body and headers as
    recorded, ids mapped to the fake's) and compare the status class; for operation
    polls also compare ``done`` and error-vs-response."""
    subs: dict[str, str] = {}
    skipped = 0
    with FakeCloudFunctions(polls_before_done=1) as fake, requests.Session() as session:
        for req, resp in capture_exchanges(wire):
            if NOT_FUNCTIONS_API.match(req["path"]):
                skipped += 1
                continue
            method, target, _ = req["requestline"].split(" ")
            headers = {k: v for k, v in req["headers"].items()
                       if k.lower() not in ("host", "content-length", "connection", "accept-encoding")}
            if method == "PUT":
                data = make_zip(HELLO)
            elif "json" in req:
                data = _substitute(json.dumps(req["json"]), subs).encode()
            else:
                data = None
            got = session.request(method, fake.url + _substitute(target, subs), data=data,
                                  headers=headers, timeout=30)
            line = f"{wire.name}: {req['requestline']}"
            assert got.status_code // 100 == resp["status"] // 100, (line, got.status_code, got.text[:300])
            recorded = resp["body"] if isinstance(resp["body"], dict) else {}
            if not got.headers.get("Content-Type", "").startswith("application/json"):
                continue
            body = got.json()
            if "storageSource" in recorded:
                subs[recorded["storageSource"]["object"]] = body["storageSource"]["object"]
            if OP_ID.search(recorded.get("name", "")):
                subs[OP_ID.search(recorded["name"]).group()] = OP_ID.search(body["name"]).group()
            if "/operations/" in req["path"]:
                assert body["done"] == recorded["done"], line
                assert ("error" in body) == ("error" in recorded), (line, body.get("error"))
    assert skipped == (5 if wire.name == "wire3.jsonl" else 0)


# ------------------------------------------------------------ time, running operations, invoker check
def test_operation_ends_on_its_own_in_time_without_any_poll():
    with FakeCloudFunctions(polls_before_done=10**6, serve_functions=False, operation_seconds=0.3) as fake:
        client = client_for(fake)
        op = deploy(client, PARENT, "timed-fn")
        name = f"{PARENT}/functions/timed-fn"
        assert fake.functions()[name]["state"] == "DEPLOYING"
        assert fake.counts["operations.get"] == 0
        assert wait_until(lambda: fake.functions()[name]["state"] == "ACTIVE", 10)
        assert fake.counts["operations.get"] == 0  # nobody polled: the operation finished by time
        assert op.result(polling=FAST_POLL).state == functions_v2.Function.State.ACTIVE


def test_running_operation_is_listed_and_blocks_other_changes(fake_noserve):
    fake_noserve.polls_before_done = 10**6
    client = client_for(fake_noserve)
    deploy(client, PARENT, "busy-fn")
    name = f"{PARENT}/functions/busy-fn"
    running = requests.get(f"{fake_noserve.url}/v2/{PARENT}/operations", params={"filter": "done=false"}, timeout=5).json()
    [op] = running["operations"]
    assert op["done"] is False and op["metadata"]["target"] == name and op["metadata"]["verb"] == "create"
    assert client.get_function(name=name).state == functions_v2.Function.State.DEPLOYING
    with pytest.raises(gexc.Conflict):
        client.delete_function(name=name)
    # the google client lists them too (the Locations/Operations mixin)
    from google.longrunning import operations_pb2

    listed = client.list_operations(operations_pb2.ListOperationsRequest(name=PARENT, filter="done=false"))
    assert [o.name for o in listed.operations] == [op["name"]]


def test_private_function_wants_an_identity_token_for_its_url(fake):
    client = client_for(fake)
    fn = deploy(client, PARENT, "private-fn").result(polling=FAST_POLL)
    assert requests.get(fn.url, timeout=10).status_code == 403  # no token
    assert requests.get(fn.url, headers={"Authorization": "Bearer not-a-jwt"}, timeout=10).status_code == 401
    assert requests.get(fn.url, headers=bearer("https://elsewhere.example"), timeout=10).status_code == 401
    assert requests.get(fn.url, headers=bearer(fn.url, exp=int(time.time()) - 5), timeout=10).status_code == 401
    assert requests.get(fn.url, headers=bearer(fn.url), timeout=10).text == "v1 -"
    # public: allUsers may invoke through the Cloud Run service's policy
    run = run_v2.ServicesClient(transport="rest", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": fake.url})
    service = fn.service_config.service
    policy = run.get_iam_policy(request={"resource": service})
    policy.bindings.append(policy_pb2.Binding(role="roles/run.invoker", members=["allUsers"]))
    run.set_iam_policy(request={"resource": service, "policy": policy})
    assert requests.get(fn.url, timeout=10).text == "v1 -"


def test_token_endpoint_gives_identity_tokens_for_service_account_assertions(fake_noserve):
    assertion = make_token({"iss": "sa@demo-proj.iam.gserviceaccount.com", "target_audience": "https://f.example"})
    got = requests.post(f"{fake_noserve.url}/token", timeout=5, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}).json()
    header, payload, _ = got["id_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["aud"] == "https://f.example" and claims["email"] == "sa@demo-proj.iam.gserviceaccount.com"
    access = requests.post(f"{fake_noserve.url}/token", timeout=5, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": make_token({"iss": "x"})}).json()
    assert access["access_token"].startswith("ya29.") and access["token_type"] == "Bearer"
