"""The gcp provider through the one executor, against the wire-level Cloud Functions v2 fake.

What runs is the plan (and the dry run shows that very plan); an interrupted
deploy is finished by running it again; undeploy waits for a running
operation; ``--public`` is taken back by a redeploy without it; a private
function is called with an identity token; functions this inventory did not
make are left byte-for-byte alone unless ``--adopt``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest
import requests

pytest.importorskip("google.cloud.functions_v2")

from weave_nb.core.errors import CredentialsError, DeploymentFailed, ForeignResource, WeaveError  # noqa: E402
from weave_nb.core.manager import DeploymentManager  # noqa: E402
from weave_nb.core.procutil import wait_for  # noqa: E402

from plan_checks import assert_ran_the_plan  # noqa: E402
from test_gcf_fake import FAST_POLL, client_for  # noqa: E402
from test_gcf_fake import deploy as raw_deploy  # noqa: E402
from test_gcp_provider import HELLO, PIPELINE, ROOT, SECRET, deploy, fake, gcp_env, manager, post  # noqa: E402,F401

PARENT = "projects/demo-proj/locations/us-central1"
FN = f"{PARENT}/functions/demo-fn"


def values(name="demo-fn", weave=HELLO, **extra):
    return {"name": name, "provider": "gcp", "weave_file": weave, **extra}


def invoker_members(server, fn_name=FN) -> list[str]:
    """The members holding roles/run.invoker on the function's Cloud Run service, read back over the wire."""
    service = server.functions()[fn_name]["serviceConfig"]["service"]
    policy = requests.get(f"{server.url}/v2/{service}:getIamPolicy", timeout=5).json()
    return [m for b in policy.get("bindings", []) if b["role"] == "roles/run.invoker" for m in b["members"]]


def raw_function(server, name=FN) -> bytes:
    return requests.get(f"{server.url}/v2/{name}", timeout=5).content


def napping_manager(home):
    """A manager whose waits are short real sleeps (for operations that end by time, not by polls)."""
    return DeploymentManager(home=home, sleep=lambda s: time.sleep(min(s, 0.05)))


# ---------------------------------------------------------------- the plan is what runs
def test_first_deploy_changed_redeploy_and_dry_run_run_exactly_the_plan(manager, gcp_env):
    shown = manager.plan(values(env={"APP_TOKEN": SECRET}))
    events = []
    info = manager.deploy(values(env={"APP_TOKEN": SECRET}), sink=events.append)
    plan = assert_ran_the_plan(events, shown)
    assert [(s.key, s.action, s.call) for s in plan.changing()] == [
        ("upload", "create", "upload_source"), ("function", "create", "create_function"), ("wait", "create", "wait_operation")]
    assert plan.step("function").undo == "delete_created" and plan.step("function").params["env_names"] == ["APP_TOKEN"]
    assert plan.step("public").action == "no-change"
    assert SECRET not in plan.to_json()
    assert SECRET not in "\n".join(sqlite3.connect(manager.inventory.path).iterdump())
    assert info.status.value == "active" and info.endpoint

    shown = manager.plan(values(weave=PIPELINE, env={"APP_TOKEN": SECRET}))
    events = []
    info2 = manager.deploy(values(weave=PIPELINE, env={"APP_TOKEN": SECRET}), sink=events.append)
    plan = assert_ran_the_plan(events, shown)
    assert [s.key for s in plan.changing()] == ["upload", "function", "wait"]
    step = plan.step("function")
    assert (step.action, step.call, step.undo) == ("update", "update_function", "restore_function")
    # exactly the fields that differ: new source, the weave file's memory/timeout, env (settings changed), labels
    assert step.params["update_mask"] == ["buildConfig.source", "serviceConfig.availableMemory",
                                          "serviceConfig.timeoutSeconds", "serviceConfig.environmentVariables", "labels"]
    patch = [c for c in gcp_env.calls if c["method"] == "PATCH"][-1]
    assert patch["query"]["updateMask"] == [",".join(step.params["update_mask"])]
    assert post(info2.endpoint, {"input": "x"}, gcp_env)["weave"] == "research_pipeline"
    runs = manager.inventory.journal.runs("gcp", "demo-fn")
    assert [(s["key"], s["outcome"]) for s in runs[-1]["steps"]] == [("upload", "done"), ("function", "done"), ("wait", "done")]


def test_public_then_private_removes_the_all_users_binding(manager, gcp_env):
    info = deploy(manager, weave=HELLO, public=True)
    assert invoker_members(gcp_env) == ["allUsers"]
    assert info.details["public"] is True and "public function" in info.details["note"]
    assert manager.invoke("demo-fn", "gcp", {"input": "x"})["weave"] == "hello"  # no token needed

    shown = manager.plan(values())
    events = []
    info = manager.deploy(values(), sink=events.append)
    plan = assert_ran_the_plan(events, shown)
    step = plan.step("public")
    assert (step.action, step.call, step.params["public"], step.undo) == ("delete", "set_invoker", False, "set_invoker_back")
    assert invoker_members(gcp_env) == []  # read back from the service's IAM policy
    assert info.details["public"] is False and "private function" in info.details["note"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        post(info.endpoint, {"input": "x"})
    assert refused.value.code == 403
    # and unchanged after that: nothing to do
    assert manager.plan(values()).has_changes is False


def test_failed_update_restores_the_previous_release(manager, gcp_env):
    first = deploy(manager, weave=HELLO)
    hello_hash = gcp_env.functions()[FN]["labels"]["weave-nb-hash"]
    gcp_env.fail_next_build("Build failed: pip could not resolve")
    with pytest.raises(DeploymentFailed) as failed:
        deploy(manager, weave=PIPELINE)
    assert "rolled back" in failed.value.message and "previous release still serves" in failed.value.message
    fn = gcp_env.functions()[FN]
    assert fn["state"] == "ACTIVE" and fn["labels"]["weave-nb-hash"] == hello_hash
    assert post(fn["url"], {"input": "x"}, gcp_env)["weave"] == "hello"
    row = manager.inventory.get("gcp", "demo-fn")
    assert row.status.value == "active" and row.endpoint == first.endpoint
    steps = manager.inventory.journal.runs("gcp", "demo-fn")[-1]["steps"]
    assert ("function", "undone") in [(s["key"], s["outcome"]) for s in steps]


def test_failed_create_deletes_what_it_created(manager, gcp_env):
    gcp_env.fail_next_build("Build failed: no")
    with pytest.raises(DeploymentFailed):
        deploy(manager, weave=HELLO)
    assert gcp_env.functions() == {}
    assert manager.inventory.get("gcp", "demo-fn").status.value == "failed"


# ---------------------------------------------------------------- interrupted, then run again
CHILD = """
import sys
from weave_nb.core.manager import DeploymentManager
DeploymentManager(home=sys.argv[1]).deploy({"name": "demo-fn", "provider": "gcp", "weave_file": sys.argv[2],
                                            "options": {"poll_interval": 0.05}})
"""


@pytest.mark.parametrize("ended", ["still-running", "ended-by-time", "update-still-running"])
def test_deploy_killed_mid_operation_is_finished_by_running_it_again(manager, gcp_env, ended):
    weave, answer = HELLO, "hello"
    if ended == "update-still-running":  # the killed deploy was an update of a live function
        deploy(manager, weave=HELLO, options={"poll_interval": 0.05})
        weave, answer = PIPELINE, "research_pipeline"
    uploads = gcp_env.counts["upload"]
    gcp_env.polls_before_done = 10**6  # the child's polls never finish it
    gcp_env.operation_seconds = 60 if ended == "still-running" else 1.5
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(manager.home), weave], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: gcp_env.functions().get(FN, {}).get("state") == "DEPLOYING" or child.poll() is not None, 60)
        assert child.poll() is None, "the child deploy ended before it could be killed"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    if ended == "ended-by-time":  # nobody polls any more: the fake ends it by time, as the service does
        assert wait_for(lambda: gcp_env.functions()[FN]["state"] == "ACTIVE", 30)
    else:
        gcp_env.polls_before_done = 1
    events = []
    info = manager.deploy(values(weave=weave, options={"poll_interval": 0.05}), sink=events.append)  # what the child ran
    plan = assert_ran_the_plan(events)
    if ended != "ended-by-time":
        first = plan.steps[0]
        assert (first.key, first.action, first.call) == ("operation", "adopt", "wait_operation")
        # the adopted operation deploys this very release: no second upload, no second update
        assert plan.step("function").action == "no-change" and plan.step("upload").action == "no-change"
        assert gcp_env.counts["upload"] == uploads + 1
    else:
        assert plan.has_changes and plan.step("function").call == "read_function"
    assert info.status.value == "active" and info.endpoint and info.message != "no changes"
    row = manager.inventory.get("gcp", "demo-fn")
    assert row.status.value == "active" and row.endpoint == info.endpoint
    assert post(info.endpoint, {"input": "x"}, gcp_env)["weave"] == answer


def test_undeploy_during_a_running_operation_waits_then_deletes(gcp_env, tmp_path):
    mgr = napping_manager(tmp_path / "home")
    deploy(mgr, weave=HELLO)
    gcp_env.polls_before_done, gcp_env.operation_seconds = 10**6, 1.0  # ends by time only
    requests.patch(f"{gcp_env.url}/v2/{FN}", params={"updateMask": "serviceConfig.maxInstanceCount"},
                   json={"serviceConfig": {"maxInstanceCount": 7}}, timeout=5).raise_for_status()
    assert gcp_env.functions()[FN]["state"] == "DEPLOYING"
    shown = mgr.destroy("demo-fn", "gcp", dry_run=True)
    assert [(s.key, s.action, s.call) for s in shown.steps] == [
        ("operation-demo-fn", "adopt", "wait_operation"), ("delete-demo-fn", "delete", "delete_function")]
    events = []
    mgr.destroy("demo-fn", "gcp", sink=events.append)
    assert_ran_the_plan(events, shown)
    assert gcp_env.functions() == {} and gcp_env.processes() == {}
    assert mgr.inventory.get("gcp", "demo-fn") is None


# ---------------------------------------------------------------- identity tokens
def test_invoke_private_function_with_service_account_identity_token(manager, gcp_env, monkeypatch, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    keyfile = tmp_path / "sa.json"
    keyfile.write_text(json.dumps({
        "type": "service_account", "project_id": "demo-proj", "private_key_id": "k1", "private_key": pem.decode(),
        "client_email": "deployer@demo-proj.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": f"{gcp_env.url}/token",
    }))
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(keyfile))
    info = deploy(manager, weave=HELLO)
    assert info.details["public"] is False
    with pytest.raises(WeaveError, match="403"):  # the fake refuses a call without a token
        from weave_nb.core.http_call import post_json

        post_json(info.endpoint, {"input": "x"})
    before = gcp_env.counts["token"]
    assert manager.invoke("demo-fn", "gcp", {"input": "x"})["weave"] == "hello"
    assert gcp_env.counts["token"] == before + 1  # one identity token fetched for the function URL


def test_invoke_private_function_without_a_way_to_an_identity_token_says_so(manager, gcp_env, monkeypatch):
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")  # no metadata server here
    deploy(manager, weave=HELLO)
    with pytest.raises(CredentialsError) as err:
        manager.invoke("demo-fn", "gcp", {"input": "x"})
    assert "identity token" in err.value.message and "--public" in err.value.suggestion


# ---------------------------------------------------------------- ownership
def test_a_function_this_inventory_did_not_make_is_left_alone(manager, gcp_env):
    client = client_for(gcp_env)
    raw_deploy(client, PARENT, "demo-fn").result(polling=FAST_POLL)
    before = raw_function(gcp_env)
    counts = dict(gcp_env.counts)
    with pytest.raises(ForeignResource) as err:
        deploy(manager, weave=HELLO)
    assert "--adopt" in err.value.suggestion
    with pytest.raises(ForeignResource):
        manager.destroy("demo-fn", "gcp")
    with pytest.raises(ForeignResource):
        manager.plan(values())
    assert raw_function(gcp_env) == before  # byte for byte
    assert all(gcp_env.counts[k] == counts.get(k, 0) for k in ("update", "delete", "create", "setIamPolicy", "upload"))

    plan = manager.plan(values(adopt=True))
    assert plan.steps[0].key == "adopt" and plan.steps[0].action == "adopt"
    assert plan.step("function").params["update_mask"][0] == "buildConfig.source"
    info = deploy(manager, weave=HELLO, adopt=True)
    labels = gcp_env.functions()[FN]["labels"]
    assert labels["weave-nb-owner"] == manager.inventory.owner_id and labels["weave-nb-managed"] == "true"
    assert labels["weave-nb"] == "managed"  # a label that was not ours is kept
    assert [d.details["owner"] for d in manager.provider("gcp").list_deployments([])] == [manager.inventory.owner_id]
    assert info.status.value == "active"


def test_another_inventorys_function_is_refused_and_listed_with_its_owner(manager, gcp_env, tmp_path):
    other = DeploymentManager(home=tmp_path / "other-home", sleep=lambda s: None)
    deploy(other, weave=HELLO)
    before = raw_function(gcp_env)
    with pytest.raises(ForeignResource, match="another weave-nb inventory"):
        deploy(manager, weave=PIPELINE)
    with pytest.raises(ForeignResource):
        manager.destroy("demo-fn", "gcp", adopt=False)
    assert raw_function(gcp_env) == before
    owners = [d.details.get("owner") for d in manager.provider("gcp").list_deployments([])]
    assert owners == [other.inventory.owner_id]


def test_type_cloud_function_of_the_examples_is_accepted(manager, gcp_env):
    plan = manager.plan({"name": "triage-fn", "provider": "gcp", "weave_file": str(ROOT / "examples" / "support_triage.weave.yaml")})
    assert plan.step("function").action == "create"
    for kind in ("cloud_function", "cloud-function", "function"):
        manager.provider("gcp").validate_config(manager.configure(values(type=kind))[0])


def test_invoke_private_function_with_a_metadata_server_identity_token(manager, gcp_env, monkeypatch):
    """On Google Cloud (no key file): ``fetch_id_token`` asks the metadata server, here the fake's stand-in."""
    host = gcp_env.url.split("//", 1)[1]
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN")
    monkeypatch.setenv("GCE_METADATA_HOST", host)
    monkeypatch.setenv("GCE_METADATA_IP", host)
    from google.auth.compute_engine import _metadata

    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", host)  # google-auth reads GCE_METADATA_HOST once, at import
    info = deploy(manager, weave=HELLO)  # the API calls use the metadata server's access token too
    assert info.details["public"] is False
    before = gcp_env.counts["metadata.identity"]
    assert manager.invoke("demo-fn", "gcp", {"input": "x"})["weave"] == "hello"
    assert gcp_env.counts["metadata.identity"] == before + 1
    got = [c for c in gcp_env.calls if c["path"].endswith("/identity")][-1]
    assert got["query"]["audience"] == [info.endpoint]


def test_cli_undeploy_force_and_deploy_of_a_foreign_function_exit_2_and_change_nothing(manager, gcp_env):
    import io

    from weave_nb.frontends.cli import main

    raw_deploy(client_for(gcp_env), PARENT, "demo-fn").result(polling=FAST_POLL)
    before = raw_function(gcp_env)
    err = io.StringIO()
    assert main(["undeploy", "demo-fn", "--provider", "gcp", "--force"], out=io.StringIO(), err=err) == 2
    assert "--adopt" in err.getvalue()
    err = io.StringIO()
    assert main(["deploy", "--name", "demo-fn", "--provider", "gcp", "--config", HELLO], out=io.StringIO(), err=err) == 2
    assert "--adopt" in err.getvalue() and "no weave-nb managed mark" in err.getvalue()
    assert raw_function(gcp_env) == before
    assert main(["undeploy", "demo-fn", "--provider", "gcp", "--force", "--adopt"], out=io.StringIO(), err=io.StringIO()) == 0
    assert gcp_env.functions() == {}
