"""Managed secrets on GCP, against the Cloud Functions fake with its Secret Manager v1 (real client, REST, over HTTP).

The function's process is a real functions-framework process started by the
fake; its environment is read from ``/proc/PID/environ`` to check it got the
secret value from ``secretEnvironmentVariables``, as Cloud Functions does.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

pytest.importorskip("google.cloud.secretmanager_v1")

from google.api_core import exceptions as gexc  # noqa: E402
from google.api_core.client_options import ClientOptions  # noqa: E402
from google.auth.credentials import AnonymousCredentials  # noqa: E402
from google.cloud import secretmanager_v1  # noqa: E402

from weave_nb.core.errors import ForeignResource  # noqa: E402
from weave_nb.core.manager import DeploymentManager  # noqa: E402
from gcp_fixtures import point_at_fake, running_fake  # noqa: E402
from weave_nb.sandbox.emulators.gcf_fake_secrets import crc32c  # noqa: E402

pytestmark = pytest.mark.gcp

ROOT = Path(__file__).resolve().parents[1]
HELLO = str(ROOT / "examples" / "hello.weave.yaml")
VALUE = "gcp-fake-secret-4Rt7Yu1Io9"
FN = "projects/demo-proj/locations/us-central1/functions/demo-fn"
SECRET = "projects/demo-proj/secrets/weave-demo-fn-SERVICE_TOKEN"


@pytest.fixture
def fake():
    yield from running_fake(polls_before_done=1)


@pytest.fixture
def manager(fake, tmp_path, monkeypatch):
    point_at_fake(monkeypatch, fake, tmp_path)
    monkeypatch.setenv("SERVICE_TOKEN", VALUE)
    return DeploymentManager(home=tmp_path / "home", sleep=lambda s: None)


def client(fake):
    return secretmanager_v1.SecretManagerServiceClient(transport="rest", credentials=AnonymousCredentials(),
                                                       client_options=ClientOptions(api_endpoint=fake.url))


def process_env(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def deploy(manager, **extra):
    return manager.deploy({"name": "demo-fn", "provider": "gcp", "weave_file": HELLO, **extra})


def test_a_secret_goes_to_secret_manager_and_reaches_the_process_by_reference(manager, fake):
    events = []
    info = manager.deploy({"name": "demo-fn", "provider": "gcp", "weave_file": HELLO, "secrets": ["SERVICE_TOKEN"]},
                          sink=events.append)
    assert info.status.value == "active"
    sm = client(fake)
    secret = sm.get_secret(name=SECRET)
    assert secret.labels["weave-nb-managed"] == "true" and secret.labels["weave-nb-name"] == "demo-fn"
    assert sm.access_secret_version(name=f"{SECRET}/versions/latest").payload.data.decode() == VALUE

    service = fake.functions()[FN]["serviceConfig"]
    assert "SERVICE_TOKEN" not in (service.get("environmentVariables") or {})
    assert VALUE not in repr(fake.functions()[FN])
    assert [(r["key"], r["secret"], r["version"]) for r in service["secretEnvironmentVariables"]] == [
        ("SERVICE_TOKEN", "weave-demo-fn-SERVICE_TOKEN", "latest")]
    assert process_env(fake.processes()[FN])["SERVICE_TOKEN"] == VALUE  # given to the process, as the real service does

    assert VALUE not in repr(events)
    dump = "\n".join(sqlite3.connect(manager.inventory.path).iterdump())
    assert VALUE not in dump
    assert all(VALUE.encode() not in p.read_bytes() for p in Path(manager.home).rglob("*") if p.is_file())

    # unchanged: no secret step changes anything; a new value: a new version and a new revision that reads it
    plan = manager.plan({"name": "demo-fn", "provider": "gcp", "weave_file": HELLO, "secrets": ["SERVICE_TOKEN"]})
    assert next(s for s in plan.steps if s.key == "secret-SERVICE_TOKEN").action == "no-change"
    assert VALUE not in plan.render()
    info = deploy(manager, secrets=["SERVICE_TOKEN"], env={"SERVICE_TOKEN": "second-value-8Kx"})
    assert sm.access_secret_version(name=f"{SECRET}/versions/latest").name.endswith("/versions/2")
    assert process_env(fake.processes()[FN])["SERVICE_TOKEN"] == "second-value-8Kx"

    manager.destroy("demo-fn", "gcp")
    with pytest.raises(gexc.NotFound):
        sm.get_secret(name=SECRET)


def test_undeploy_leaves_a_secret_it_does_not_own_and_a_foreign_one_stops_the_deploy(manager, fake):
    sm = client(fake)
    sm.create_secret(request={"parent": "projects/demo-proj", "secret_id": "weave-demo-fn-SERVICE_TOKEN",
                              "secret": {"replication": {"automatic": {}}}})
    sm.add_secret_version(request={"parent": SECRET, "payload": {"data": b"theirs", "data_crc32c": crc32c(b"theirs")}})
    with pytest.raises(ForeignResource):
        deploy(manager, secrets=["SERVICE_TOKEN"])
    assert sm.access_secret_version(name=f"{SECRET}/versions/latest").payload.data == b"theirs"
    deploy(manager)  # without the secret: fine
    manager.destroy("demo-fn", "gcp")
    assert sm.get_secret(name=SECRET).name.endswith("weave-demo-fn-SERVICE_TOKEN")


def test_dropping_the_secret_deletes_it_and_its_reference(manager, fake):
    deploy(manager, secrets=["SERVICE_TOKEN"])
    deploy(manager)
    with pytest.raises(gexc.NotFound):
        client(fake).get_secret(name=SECRET)
    assert not fake.functions()[FN]["serviceConfig"].get("secretEnvironmentVariables")
    assert "SERVICE_TOKEN" not in process_env(fake.processes()[FN])
    manager.destroy("demo-fn", "gcp")


def test_the_fake_fails_a_deploy_that_names_a_missing_secret(fake):
    """The fake follows the service: a function whose secret does not exist does not start."""
    from google.cloud import functions_v2

    assert "SERVICE_TOKEN" not in fake.secret_env([])
    with pytest.raises(Exception, match="not found"):
        fake.secret_env([{"key": "X", "secret": "nope", "version": "latest"}])
    assert functions_v2.SecretEnvVar(key="X", secret="s", version="latest").key == "X"
