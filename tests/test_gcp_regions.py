"""Deployment groups on gcp: one weave in two locations, against the wire-level Cloud Functions v2 fake over HTTP."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("google.cloud.functions_v2")

from weave_nb.sandbox.emulators.gcf_fake import FakeCloudFunctions  # noqa: E402
from gcp_fixtures import point_at_fake, running_fake  # noqa: E402
from weave_nb.core.errors import ConfigError, DeploymentFailed  # noqa: E402
from weave_nb.core.manager import DeploymentManager  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HELLO = str(ROOT / "examples" / "hello.weave.yaml")
LOCATIONS = "us-central1,europe-west1"


def fn_name(location: str) -> str:
    return f"projects/demo-proj/locations/{location}/functions/demo-{location}"


@pytest.fixture
def fake():
    yield from running_fake(polls_before_done=1)


@pytest.fixture
def manager(fake, tmp_path, monkeypatch):
    point_at_fake(monkeypatch, fake, tmp_path)
    return DeploymentManager(home=tmp_path / "home", sleep=lambda s: None)


def call(url: str, fake: FakeCloudFunctions) -> dict:
    req = urllib.request.Request(url, data=json.dumps({"input": "hi"}).encode(),
                                 headers={"content-type": "application/json", "Authorization": f"Bearer {fake.identity_token(url)}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_group_in_two_locations_serves_lists_and_undeploys(manager, fake):
    info = manager.deploy({"name": "demo", "provider": "gcp", "weave_file": HELLO, "region": LOCATIONS, "public": True})
    assert info.status.value == "active"
    functions = fake.functions()
    assert set(functions) == {fn_name("us-central1"), fn_name("europe-west1")}
    for location in ("us-central1", "europe-west1"):
        labels = functions[fn_name(location)]["labels"]
        assert labels["weave-nb-name"] == f"demo-{location}" and labels["weave-nb-owner"] == manager.inventory.owner_id
        endpoint = info.details["regions"][location]["endpoint"]
        assert endpoint and call(endpoint, fake)["weave"] == "hello"
    listed = manager.list("gcp").deployments
    assert sorted((d.name, d.region) for d in listed) == [("demo", "europe-west1"), ("demo", "us-central1")]
    assert manager.invoke("demo", payload={"input": "hi"}, region="europe-west1")["weave"] == "hello"
    with pytest.raises(ConfigError, match="2 regions"):
        manager.invoke("demo", payload={"input": "hi"})
    manager.destroy("demo")
    assert fake.functions() == {} and manager.inventory.list() == []


def test_failure_in_one_location_rolls_back_only_there(manager, fake):
    # the invoker binding of europe-west1 is refused, after its function was made
    fake.inject_errors("POST", r"locations/europe-west1/services/[^/]*:setIamPolicy$", 403, count=1)
    with pytest.raises(DeploymentFailed) as err:
        manager.deploy({"name": "demo", "provider": "gcp", "weave_file": HELLO, "region": LOCATIONS, "public": True})
    assert "1 of 2 regions" in err.value.message and "europe-west1: failed" in err.value.message
    assert set(fake.functions()) == {fn_name("us-central1")}  # europe-west1's new function was deleted again
    assert manager.inventory.get("gcp", "demo-us-central1").status.value == "active"
    assert manager.inventory.get("gcp", "demo-europe-west1").status.value == "failed"
    # deploying the group again finishes europe-west1
    info = manager.deploy({"name": "demo", "provider": "gcp", "weave_file": HELLO, "region": LOCATIONS, "public": True})
    assert info.status.value == "active" and set(fake.functions()) == {fn_name("us-central1"), fn_name("europe-west1")}
    manager.destroy("demo", region="europe-west1")
    assert set(fake.functions()) == {fn_name("us-central1")}
    manager.destroy("demo")
    assert fake.functions() == {}


def test_unknown_location_fails_before_any_request(manager, fake):
    with pytest.raises(ConfigError, match="mars-central1"):
        manager.deploy({"name": "demo", "provider": "gcp", "weave_file": HELLO, "region": "us-central1,mars-central1"})
    assert sum(fake.counts.values()) == 0 and manager.inventory.list() == []
