"""The gcp provider against the wire-level Cloud Functions v2 fake (weave_nb.sandbox.emulators.gcf_fake).

The fake speaks the v2 REST contract over HTTP on 127.0.0.1 and serves each
deployed function with a real functions-framework process, so the URL a
deploy returns runs the generated source.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("google.cloud.functions_v2")

from weave_nb.sandbox.emulators.gcf_fake import FakeCloudFunctions  # noqa: E402
from gcp_fixtures import point_at_fake, running_fake  # noqa: E402
from weave_nb.core.errors import ConfigError, CredentialsError, DeploymentFailed  # noqa: E402
from weave_nb.core.manager import DeploymentManager  # noqa: E402
from weave_nb.core.procutil import free_port, http_ok, stop_process, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = str(ROOT / "examples" / "research_pipeline.weave.yaml")
HELLO = str(ROOT / "examples" / "hello.weave.yaml")
SECRET = "gcp-secret-value-7731"
FN = "projects/demo-proj/locations/us-central1/functions/demo-fn"


@pytest.fixture
def fake():
    yield from running_fake(polls_before_done=2)


@pytest.fixture
def gcp_env(fake, tmp_path, monkeypatch):
    point_at_fake(monkeypatch, fake, tmp_path)
    return fake


@pytest.fixture
def manager(gcp_env, tmp_path):
    waits: list[float] = []
    mgr = DeploymentManager(home=tmp_path / "home", sleep=waits.append)
    mgr.waits = waits  # type: ignore[attr-defined]
    return mgr


def post(url: str, payload: dict, fake: FakeCloudFunctions | None = None) -> dict:
    """POST JSON; with ``fake``, as a caller holding an identity token for ``url`` (a private function wants one)."""
    headers = {"content-type": "application/json"}
    if fake is not None:
        headers["Authorization"] = f"Bearer {fake.identity_token(url)}"
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def deploy(manager, name="demo-fn", weave=PIPELINE, **extra):
    sink = extra.pop("sink", lambda e: None)
    values = {"name": name, "provider": "gcp", "weave_file": weave, **extra}
    return manager.deploy(values, sink=sink)


def test_deploy_serves_weave_then_update_and_unchanged(manager, gcp_env):
    events = []
    info = manager.deploy({"name": "demo-fn", "provider": "gcp", "weave_file": PIPELINE}, sink=events.append)
    assert info.status.value == "active"
    assert info.endpoint.startswith("http://127.0.0.1:")
    result = post(info.endpoint, {"input": "tides"}, gcp_env)
    assert [a["name"] for a in result["agents"]] == ["researcher", "writer", "fact_checker", "editor"]
    # stages of the long-running operation arrived as log events
    assert any("build" in getattr(e, "text", "") for e in events)
    fn = gcp_env.functions()["projects/demo-proj/locations/us-central1/functions/demo-fn"]
    assert fn["labels"]["weave-nb-managed"] == "true"
    assert fn["labels"]["weave-nb-name"] == "demo-fn"
    assert fn["buildConfig"]["runtime"] == "python312"
    assert fn["buildConfig"]["entryPoint"] == "weave"
    service = fn["serviceConfig"]
    # memory_mb 1024 and timeout_seconds 300 come from the weave file's deployment section
    assert (service["availableMemory"], service["timeoutSeconds"], service["maxInstanceCount"]) == ("1Gi", 300, 10)
    upload = [c for c in gcp_env.calls if c["method"] == "PUT"]
    assert len(upload) == 1  # the one signed-URL upload (the fake refuses an Authorization header or another type)

    info2 = deploy(manager, weave=HELLO)
    assert post(info2.endpoint, {"input": "x"}, gcp_env)["weave"] == "hello"
    assert gcp_env.counts["update"] == 1

    before = dict(gcp_env.counts)
    events = []
    info3 = deploy(manager, weave=HELLO, sink=events.append)
    assert info3.message == "no changes"
    finished = [e for e in events if type(e).__name__ == "StepFinished"]
    assert finished and {e.outcome for e in finished} == {"skipped"}
    assert any(type(e).__name__ == "LogLine" and e.text.startswith("no changes") for e in events)
    assert gcp_env.counts["upload"] == before["upload"]
    assert gcp_env.counts["update"] == before["update"]
    assert gcp_env.counts["generateUploadUrl"] == before["generateUploadUrl"]


def test_settings_change_updates_without_upload(manager, gcp_env):
    deploy(manager, weave=HELLO)
    uploads = gcp_env.counts["upload"]
    info = deploy(manager, weave=HELLO, memory_mb=512)
    assert gcp_env.counts["upload"] == uploads
    assert gcp_env.counts["update"] == 1
    patch = [c for c in gcp_env.calls if c["method"] == "PATCH"]
    mask = patch[-1]["query"]["updateMask"][0].split(",")
    assert "serviceConfig.availableMemory" in mask and "buildConfig.source" not in mask  # camelCase, no new source
    fn = gcp_env.functions()["projects/demo-proj/locations/us-central1/functions/demo-fn"]
    assert fn["serviceConfig"]["availableMemory"] == "512Mi"
    assert info.status.value == "active"


def test_list_follows_page_tokens(manager, gcp_env):
    for name, region in (("fn-one", "us-central1"), ("fn-two", "europe-west1"), ("fn-three", "us-east1")):
        deploy(manager, name=name, weave=HELLO, region=region)
    provider = manager.provider("gcp")
    provider.list_page_size = 1
    listing = manager.list("gcp")
    assert sorted(d.name for d in listing.deployments) == ["fn-one", "fn-three", "fn-two"]
    assert all(d.drift is None for d in listing.deployments)
    list_calls = [c for c in gcp_env.calls if c["path"].endswith("/locations/-/functions")]
    assert len(list_calls) >= 3  # one page per function


def test_failed_build_is_recorded_and_kept_with_keep_on_failure(manager, gcp_env, tmp_path):
    gcp_env.fail_next_build("Build failed: pip could not resolve", ["Build failed: pip could not resolve", "see build log"])
    with pytest.raises(DeploymentFailed) as err:
        deploy(manager, weave=HELLO, options={"keep_on_failure": True})
    assert "pip could not resolve" in err.value.message
    assert "see build log" in err.value.message  # the build's state messages come with the server's message
    rec = manager.inventory.get("gcp", "demo-fn")
    assert rec.status.value == "failed"
    assert "pip could not resolve" in rec.message and "see build log" in rec.message
    assert manager.status("demo-fn", "gcp").status.value == "failed"
    assert gcp_env.functions()[FN]["state"] == "FAILED"  # kept, as asked
    # a re-run never says "no changes" over a FAILED function: it deploys everything again
    plan = manager.plan({"name": "demo-fn", "provider": "gcp", "weave_file": HELLO, "options": {"keep_on_failure": True}})
    step = plan.step("function")
    assert (step.action, step.detail) == ("update", "the function is in state FAILED")
    assert step.params["update_mask"][0] == "buildConfig.source" and plan.step("upload").action == "create"
    # the failed function can be torn down
    manager.destroy("demo-fn", "gcp")
    assert gcp_env.functions() == {}


def test_destroy_removes_function_and_process(manager, gcp_env):
    deploy(manager, weave=HELLO)
    assert gcp_env.processes()
    manager.destroy("demo-fn", "gcp")
    assert gcp_env.functions() == {}
    assert gcp_env.processes() == {}
    assert manager.inventory.get("gcp", "demo-fn") is None


def test_function_deleted_behind_our_back_shows_drift(manager, gcp_env):
    deploy(manager, weave=HELLO)
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import functions_v2

    client = functions_v2.FunctionServiceClient(
        transport="rest", credentials=AnonymousCredentials(), client_options=ClientOptions(api_endpoint=gcp_env.url)
    )
    op = client.delete_function(name="projects/demo-proj/locations/us-central1/functions/demo-fn")
    wait_for(lambda: op.done(), timeout=10)
    listing = manager.list("gcp")
    assert [(d.name, d.drift) for d in listing.deployments] == [("demo-fn", "missing")]


def test_transient_errors_are_retried(manager, gcp_env):
    gcp_env.inject_errors("POST", r"/functions$", 503, count=2)
    gcp_env.inject_errors("GET", r"/operations/", 429, count=1)
    info = deploy(manager, weave=HELLO)
    assert info.status.value == "active"
    assert len(manager.waits) >= 3  # backoff asked for, never waited for real


@pytest.mark.parametrize(
    "values, words",
    [
        ({"name": "Demo"}, "not a valid Cloud Functions id"),
        ({"name": "abc"}, "not a valid Cloud Functions id"),
        ({"name": "demo", "options": {"function_id": "9demo"}}, "not a valid Cloud Functions id"),
        ({"name": "demo-"}, "not a valid Cloud Functions id"),
        ({"name": "demo_fn"}, "not a valid Cloud Functions id"),
        ({"name": "demo", "options": {"function_id": "a" * 64}}, "not a valid Cloud Functions id"),
        ({"region": "us-east-1"}, "unknown Cloud Functions region"),
        ({"memory_mb": 1000}, "gen2 accepts"),
        ({"timeout_seconds": 3601}, "1 to 3600"),
    ],
)
def test_bad_input_is_rejected_before_any_call(manager, gcp_env, values, words):
    base = {"name": "demo-fn", "provider": "gcp", "weave_file": HELLO}
    base.update(values)
    with pytest.raises(ConfigError) as err:
        manager.deploy(base)
    assert words in str(err.value)
    assert gcp_env.calls == []


def test_missing_project_and_credentials(manager, gcp_env, monkeypatch):
    monkeypatch.delenv("GCP_PROJECT_ID")
    with pytest.raises(CredentialsError, match="project"):
        deploy(manager, weave=HELLO)
    monkeypatch.setenv("GCP_PROJECT_ID", "demo-proj")
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN")
    with pytest.raises(CredentialsError) as err:
        deploy(manager, weave=HELLO)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in err.value.suggestion
    assert gcp_env.calls == []


def test_service_account_key_file_gives_project(manager, gcp_env, monkeypatch, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    keyfile = tmp_path / "sa.json"
    keyfile.write_text(json.dumps({
        "type": "service_account", "project_id": "key-proj", "private_key_id": "k1", "private_key": pem.decode(),
        "client_email": "deployer@key-proj.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token",
    }))
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN")
    monkeypatch.delenv("GCP_PROJECT_ID")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(keyfile))
    provider = manager.provider("gcp")
    config, _ = manager.configure({"name": "demo-fn", "provider": "gcp", "weave_file": HELLO})
    session = provider._session(config)
    assert session.project == "key-proj"
    assert session.method == "service_account"
    assert "PRIVATE KEY" not in repr(session)


def test_secret_env_never_stored(manager, gcp_env, tmp_path):
    events = []
    manager.deploy(
        {"name": "demo-fn", "provider": "gcp", "weave_file": HELLO, "env": {"APP_TOKEN": SECRET}}, sink=events.append
    )
    dump = "\n".join(sqlite3.connect(manager.inventory.path).iterdump())
    assert SECRET not in dump
    assert SECRET not in repr(events)
    # the function itself gets it as an environment variable, where it belongs
    fn = gcp_env.functions()["projects/demo-proj/locations/us-central1/functions/demo-fn"]
    assert fn["serviceConfig"]["environmentVariables"]["APP_TOKEN"] == SECRET


def test_public_grants_invoker_to_all_users(manager, gcp_env):
    deploy(manager, weave=HELLO, public=True)
    assert gcp_env.counts["setIamPolicy"] == 1
    body = [c for c in gcp_env.calls if c["path"].endswith(":setIamPolicy")][0]["body"]
    bindings = body["policy"]["bindings"]
    assert {"role": "roles/run.invoker", "members": ["allUsers"]} in bindings


def test_source_zip_is_deterministic_and_runs_under_functions_framework(manager, gcp_env, tmp_path):
    provider = manager.provider("gcp")
    config, spec = manager.configure({"name": "demo-fn", "provider": "gcp", "weave_file": PIPELINE})
    first = provider.build_artifact(spec, config)
    second = provider.build_artifact(spec, config)
    assert first.data == second.data
    assert {"main.py", "requirements.txt", "weave.json"} <= set(first.files)
    assert first.files["requirements.txt"].decode().startswith("functions-framework")
    folder = first.extract(tmp_path / "src")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "functions_framework", "--target", "weave", "--source", str(folder / "main.py"),
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        assert wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/health"), timeout=30)
        assert post(f"http://127.0.0.1:{port}/", {"input": "x"})["weave"] == "research_pipeline"
    finally:
        stop_process(proc.pid)


def test_state_mapping_while_operations_run(manager, gcp_env):
    """DEPLOYING → deploying and DELETING → destroying, as status and listing report them mid-operation."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import functions_v2
    from google.protobuf import field_mask_pb2

    deploy(manager, weave=HELLO)
    assert manager.status("demo-fn", "gcp").status.value == "active"
    client = functions_v2.FunctionServiceClient(
        transport="rest", credentials=AnonymousCredentials(), client_options=ClientOptions(api_endpoint=gcp_env.url)
    )
    name = "projects/demo-proj/locations/us-central1/functions/demo-fn"
    update = client.update_function(
        function=functions_v2.Function(name=name, service_config=functions_v2.ServiceConfig(max_instance_count=7)),
        update_mask=field_mask_pb2.FieldMask(paths=["service_config.max_instance_count"]),
    )
    assert manager.status("demo-fn", "gcp").status.value == "deploying"
    assert [d.status.value for d in manager.list("gcp").deployments] == ["deploying"]
    wait_for(lambda: update.done(), timeout=10)
    assert manager.status("demo-fn", "gcp").status.value == "active"
    delete = client.delete_function(name=name)
    assert manager.status("demo-fn", "gcp").status.value == "destroying"
    assert [d.status.value for d in manager.list("gcp").deployments] == ["destroying"]
    wait_for(lambda: delete.done(), timeout=10)
    assert manager.status("demo-fn", "gcp").drift == "missing"


def test_application_default_credentials_and_google_cloud_project(manager, gcp_env, monkeypatch, tmp_path):
    """gcloud's ADC file is found under HOME (or CLOUDSDK_CONFIG); GOOGLE_CLOUD_PROJECT beats its quota project."""
    adc = tmp_path / ".config" / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    adc.write_text(json.dumps({"type": "authorized_user", "client_id": "c", "client_secret": "adc-secret-991",
                               "refresh_token": "r", "quota_project_id": "adc-proj"}))
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN")
    monkeypatch.delenv("GCP_PROJECT_ID")
    provider = manager.provider("gcp")
    config, _ = manager.configure({"name": "demo-fn", "provider": "gcp", "weave_file": HELLO})
    session = provider._session(config)
    assert (session.method, session.project) == ("adc", "adc-proj")
    assert "adc-secret-991" not in repr(session)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-proj")
    assert provider._session(config).project == "env-proj"
    # the run endpoint follows the API endpoint unless WEAVE_GCP_RUN_ENDPOINT names its own
    assert provider._session(config).run_api_endpoint == gcp_env.url
    monkeypatch.setenv("WEAVE_GCP_RUN_ENDPOINT", "http://127.0.0.1:1")
    assert provider._session(config).run_api_endpoint == "http://127.0.0.1:1"
    # with no ADC file either, nothing is found
    adc.unlink()
    with pytest.raises(CredentialsError, match="no Google Cloud credentials"):
        provider._session(config)
