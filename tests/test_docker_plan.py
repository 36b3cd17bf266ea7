"""The docker provider through the one executor, on the real engine: the plan is what runs, rollback, ownership."""

from __future__ import annotations

import io
import json
import subprocess
import threading

import pytest
from docker_fixtures import *
from docker_fixtures import hello_weave

from weave_nb.frontends import cli
from weave_nb.core.config import DeploymentStatus
from weave_nb.core.errors import DeploymentFailed, ForeignResource
from weave_nb.core.http_call import post_json
from weave_nb.core.manager import DeploymentManager

from plan_checks import assert_ran_the_plan, ran_and_planned

pytestmark = pytest.mark.docker


def _values(name, text, **extra):
    return {"name": name, "provider": "docker", "weave_text": text, **extra}


def _journal(mgr, name):
    return [(s["key"], s["outcome"]) for s in mgr.inventory.journal.runs("docker", name)[-1]["steps"]]


def test_first_changed_and_unchanged_deploys_run_exactly_the_plan(docker_api, docker_names, docker_manager):
    name = docker_names("plan")
    mgr = docker_manager()
    cname = f"weave-nb-{name}"

    shown = mgr.plan(_values(name, hello_weave()))
    assert docker_api.containers(all=True, filters={"label": [f"weave-nb.name={name}"]}) == []  # planning made nothing
    events = []
    first = mgr.deploy(_values(name, hello_weave()), sink=events.append)
    plan = assert_ran_the_plan(events, shown)
    assert [s.key for s in plan.changing()] == ["image", "holder", "container", "health"]
    assert plan.step("holder").params["port"] is None and plan.step("container").params["env"] == []
    assert _journal(mgr, name) == [("image", "done"), ("holder", "done"), ("container", "done"), ("health", "done")]
    labels = docker_api.inspect_container(cname)["Config"]["Labels"]
    owner = mgr.inventory.owner_id
    assert (labels["weave-nb.managed"], labels["weave-nb.name"], labels["weave-nb.owner"]) == ("true", name, owner)
    assert docker_api.inspect_image(first.details["image"])["Config"]["Labels"]["weave-nb.owner"] == owner
    old_id = first.details["container_id"]

    changed = _values(name, hello_weave("Greet the user in Dutch."), env={"GREETING_TOKEN": "tok-very-secret-1"})
    shown = mgr.plan(changed)
    events = []
    second = mgr.deploy(changed, sink=events.append)
    plan = assert_ran_the_plan(events, shown)
    # the earlier release's image stays for `weave rollback` (pruned only beyond the releases kept)
    assert [s.key for s in plan.changing()] == ["image", "trial", "container", "health", "switch", "old"]
    assert plan.step("switch").undo == "swap_back" and plan.step("old").params == {"id": old_id, "stop": True}
    assert plan.notes == shown.notes and not any("gap" in n for n in plan.notes)
    assert plan.step("container").params["port"] == first.details["port"]
    assert plan.step("container").params["env"] == ["GREETING_TOKEN"]
    assert "tok-very-secret-1" not in plan.to_json()
    assert "tok-very-secret-1" not in json.dumps(mgr.inventory.journal.runs("docker", name))
    assert second.endpoint == first.endpoint and second.details["container_id"] != old_id
    assert post_json(second.endpoint, {"input": "hallo"})["weave"] == "hello"
    containers = docker_api.containers(all=True, filters={"label": [f"weave-nb.name={name}"]})
    assert sorted(c["Names"][0] for c in containers) == [f"/{cname}", f"/{cname}-net"]
    assert len(docker_api.images(filters={"label": [f"weave-nb.name={name}"]})) == 2  # release 1's image is kept

    shown = mgr.plan(changed)
    events = []
    third = mgr.deploy(changed, sink=events.append)
    plan, ran = ran_and_planned(events)
    assert assert_ran_the_plan(events, shown) == plan and not plan.has_changes and ran == []
    assert third.message == "no changes" and third.details["container_id"] == second.details["container_id"]
    assert third.endpoint == second.endpoint


def test_failed_changed_redeploy_keeps_the_old_endpoint_answering(docker_api, docker_names, docker_manager, events):
    name = docker_names("rollback")
    mgr = docker_manager()
    first = mgr.deploy(_values(name, hello_weave()))
    before = docker_api.inspect_container(f"weave-nb-{name}")
    failures, answered = [], []
    stop = threading.Event()

    def poll():  # calls the endpoint all through the failed redeploy
        while not stop.is_set():
            try:
                answered.append(post_json(first.endpoint, {"input": "still here"}, timeout=5)["weave"])
            except Exception as exc:  # noqa: BLE001 - counted
                failures.append(exc)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        # the new release's server answers /health with 500: it never gets healthy
        with pytest.raises(DeploymentFailed) as err:
            mgr.deploy(_values(name, hello_weave("Changed."), env={"WEAVE_SPEC_PATH": "/nonexistent/weave.json"},
                               options={"health_timeout": 3}), sink=events.append)
    finally:
        stop.set()
        poller.join(10)
    text = str(err.value)
    assert "the new release failed and was rolled back; the previous release still serves" in text
    assert "never became healthy" in text and "last probe exit" in text
    assert failures == [] and answered and set(answered) == {"hello"}
    assert _journal(mgr, name) == [("image", "done"), ("trial", "failed"), ("image", "undone")]
    after = docker_api.inspect_container(f"weave-nb-{name}")
    assert after["Id"] == before["Id"] and after["State"]["Health"]["Status"] == "healthy"
    label = {"label": [f"weave-nb.name={name}"]}
    assert len(docker_api.containers(all=True, filters=label)) == 2 and len(docker_api.images(filters=label)) == 1  # + holder
    row = mgr.inventory.get("docker", name)
    assert row.status == DeploymentStatus.ACTIVE and mgr.status(name, "docker").health == "healthy"


def test_stopped_old_container_is_set_aside_and_put_back_when_the_new_one_fails(docker_api, docker_names, docker_manager):
    name = docker_names("putback")
    mgr = docker_manager()
    cname = f"weave-nb-{name}"
    mgr.deploy(_values(name, hello_weave()))
    docker_api.stop(cname, timeout=2)
    old = docker_api.inspect_container(cname)
    broken = _values(name, hello_weave("Changed."), env={"WEAVE_SPEC_PATH": "/nonexistent/weave.json"},
                     options={"health_timeout": 3})
    plan = mgr.plan(broken)
    assert [s.key for s in plan.changing()] == ["image", "retire", "container", "health", "old"]  # no trial: it serves nothing
    assert plan.step("retire").params["was_running"] is False
    with pytest.raises(DeploymentFailed, match="never became healthy"):
        mgr.deploy(broken)
    assert _journal(mgr, name) == [("image", "done"), ("retire", "done"), ("container", "done"), ("health", "failed"),
                                   ("container", "undone"), ("retire", "undone"), ("image", "undone")]
    now = docker_api.inspect_container(cname)
    assert now["Id"] == old["Id"] and now["State"]["Status"] == "exited" and now["Name"] == f"/{cname}"
    assert len(docker_api.containers(all=True, filters={"label": [f"weave-nb.name={name}"]})) == 2  # and its port holder


@pytest.fixture
def foreign_container(docker_api, docker_names):
    """A container named like a deployment's, made with plain `docker run` (no labels); removed afterwards."""
    name = docker_names("team")
    cname = f"weave-nb-{name}"
    subprocess.run(["docker", "run", "-d", "--init", "--name", cname, "python:3.12-slim", "sleep", "600"],
                   check=True, capture_output=True)
    try:
        yield name, cname
    finally:
        subprocess.run(["docker", "rm", "-f", cname], capture_output=True)


def test_foreign_container_is_never_touched(docker_api, docker_manager, foreign_container, tmp_path):
    name, cname = foreign_container
    mgr = docker_manager()
    before = docker_api.inspect_container(cname)
    weave = tmp_path / "hello.weave.yaml"
    weave.write_text(hello_weave())
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["deploy", "--name", name, "--provider", "docker", "--config", str(weave)], out=out, err=err) == 2
    assert f"container {cname} exists" in err.getvalue() and "no weave-nb managed mark" in err.getvalue()
    assert mgr.inventory.owner_id in err.getvalue() and "--adopt" in err.getvalue()
    err = io.StringIO()
    assert cli.main(["undeploy", name, "--provider", "docker", "--force"], out=io.StringIO(), err=err) == 2
    assert f"container {cname} exists" in err.getvalue()
    assert docker_api.inspect_container(cname) == before  # same id, labels, state: byte for byte
    assert docker_api.images(filters={"label": [f"weave-nb.name={name}"]}) == []
    assert mgr.inventory.get("docker", name) is None

    out = io.StringIO()
    assert cli.main(["plan", "--name", name, "--provider", "docker", "--config", str(weave), "--adopt"], out=out) == 0
    assert f"& adopt     container {cname}" in out.getvalue()
    shown = mgr.destroy(name, "docker", dry_run=True, adopt=True)
    assert [s.action for s in shown.steps] == ["adopt", "delete"]
    assert docker_api.inspect_container(cname) == before

    # taken over on purpose: the plan shows it, and the deploy replaces it
    events = []
    info = mgr.deploy({"name": name, "provider": "docker", "weave_file": str(weave), "adopt": True}, sink=events.append)
    plan = assert_ran_the_plan(events)
    assert [s.key for s in plan.changing()][:3] == ["adopt-container", "image", "retire"]
    assert plan.step("container").detail == "adopted"
    assert post_json(info.endpoint, {"input": "adopted"})["weave"] == "hello"
    now = docker_api.inspect_container(cname)
    assert now["Id"] != before["Id"] and now["Config"]["Labels"]["weave-nb.owner"] == mgr.inventory.owner_id


def test_second_inventory_is_refused_and_lists_the_first_as_other_owner(docker_api, docker_names, docker_manager,
                                                                        tmp_path, monkeypatch):
    name = docker_names("team")
    first = docker_manager()
    info = first.deploy(_values(name, hello_weave()))
    home2 = tmp_path / "home2"
    home2.mkdir()
    second = DeploymentManager(home=home2, auth=first.auth)
    assert second.inventory.owner_id != first.inventory.owner_id
    before = docker_api.inspect_container(f"weave-nb-{name}")
    with pytest.raises(ForeignResource) as err:
        second.deploy(_values(name, hello_weave("Mine now.")))
    assert f"owner mark {first.inventory.owner_id!r}" in str(err.value)
    with pytest.raises(ForeignResource):
        second.destroy(name, "docker")
    assert docker_api.inspect_container(f"weave-nb-{name}") == before

    monkeypatch.setenv("WEAVE_HOME", str(home2))
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["deployments", "--provider", "docker"], out=out, err=err) == 0
    assert name not in out.getvalue() and "--all-owners" in err.getvalue()
    out = io.StringIO()
    assert cli.main(["deployments", "--provider", "docker", "--all-owners"], out=out, err=io.StringIO()) == 0
    row = next(line for line in out.getvalue().splitlines() if name in line)
    assert "other owner" in row
    assert post_json(info.endpoint, {"input": "still mine"})["weave"] == "hello"


def test_undeploy_runs_the_plan_the_dry_run_showed(docker_api, docker_names, docker_manager):
    name = docker_names("gone")
    mgr = docker_manager()
    mgr.deploy(_values(name, hello_weave()))
    shown = mgr.destroy(name, "docker", dry_run=True)
    assert shown.operation == "undeploy" and [s.action for s in shown.steps] == ["delete", "delete", "delete"]
    assert [s.call for s in shown.steps] == ["remove_container", "remove_container", "remove_images"]
    assert shown.steps[1].resource.startswith(f"container weave-nb-{name}-net ")  # the port holder goes last
    assert docker_api.inspect_container(f"weave-nb-{name}")["State"]["Running"]  # the dry run changed nothing
    kept = mgr.destroy(name, "docker", dry_run=True, keep_image=True)
    assert [s.call for s in kept.steps] == ["remove_container", "remove_container"] and "keeping the image" in kept.notes[0]
    events = []
    mgr.destroy(name, "docker", sink=events.append)
    plan, ran = ran_and_planned(events)
    assert ran == [s.key for s in shown.steps] == [s.key for s in plan.steps]
    label = {"label": [f"weave-nb.name={name}"]}
    assert docker_api.containers(all=True, filters=label) == [] and docker_api.images(filters=label) == []
    assert mgr.inventory.get("docker", name) is None


def test_a_trial_container_left_by_an_interrupted_deploy_is_removed_first(docker_api, docker_names, docker_manager):
    name = docker_names("left")
    mgr = docker_manager()
    first = mgr.deploy(_values(name, hello_weave()))
    cname = f"weave-nb-{name}"
    docker_api.stop(cname, timeout=2)
    docker_api.rename(cname, cname + "-next")  # as if a deploy died during its trial, with nothing else left
    events = []
    info = mgr.deploy(_values(name, hello_weave()), sink=events.append)
    plan = assert_ran_the_plan(events)
    assert [s.key for s in plan.changing()] == ["stale-next", "container", "health"]
    assert plan.step("stale-next").params == {"id": first.details["container_id"], "stop": False}
    containers = docker_api.containers(all=True, filters={"label": [f"weave-nb.name={name}"]})
    assert sorted(c["Names"][0] for c in containers) == [f"/{cname}", f"/{cname}-net"]
    assert info.details["container_id"] != first.details["container_id"]
    assert post_json(info.endpoint, {"input": "back"})["weave"] == "hello"
