"""The docker provider against the real engine: deploy, invoke, redeploy, rollback, secrets, undeploy."""

from __future__ import annotations

import io
import json

import pytest
from docker_fixtures import *
from docker_fixtures import hello_weave, log_lines

from weave_nb.frontends import cli
from weave_nb.core.config import DeploymentStatus
from weave_nb.core.errors import DeploymentFailed
from weave_nb.core.events import StepFinished
from weave_nb.core.http_call import post_json

pytestmark = pytest.mark.docker


def _deploy(mgr, name, text, sink=None, **values):
    values = {"name": name, "provider": "docker", "weave_text": text, **values}
    return mgr.deploy(values, sink=sink or (lambda e: None))


def _labelled(api, name):
    label = {"label": [f"weave-nb.name={name}"]}
    return api.containers(all=True, filters=label), api.images(filters=label)


def test_deploy_invoke_redeploy_undeploy(docker_api, docker_names, docker_manager, events):
    name = docker_names("life")
    mgr = docker_manager()
    info = _deploy(mgr, name, hello_weave(), events.append)
    assert info.status == DeploymentStatus.ACTIVE
    assert info.endpoint.startswith("http://127.0.0.1:")
    build_log = log_lines(events, "image")
    assert any(line.startswith("Step 1/") for line in build_log), "the build did not stream its log"

    answer = post_json(info.endpoint, {"weave": "hello", "input": "hi there"})
    assert answer["weave"] == "hello" and answer["agents"][0]["backend"] == "mock"

    status = mgr.status(name, "docker")
    assert status.status == DeploymentStatus.ACTIVE and status.health == "healthy"
    cont = docker_api.inspect_container(f"weave-nb-{name}")
    assert cont["HostConfig"]["Init"] is True
    assert cont["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert cont["HostConfig"]["PortBindings"] is None  # the port holder publishes the port; the release joins its namespace
    holder = docker_api.inspect_container(f"weave-nb-{name}-net")
    assert cont["HostConfig"]["NetworkMode"] == f"container:{holder['Id']}"
    assert holder["HostConfig"]["PortBindings"]["8080/tcp"][0] == {"HostIp": "127.0.0.1", "HostPort": str(info.details["port"])}
    assert holder["Config"]["Labels"]["weave-nb.owner"] == mgr.inventory.owner_id
    assert cont["Config"]["User"] not in ("", "0", "root")
    labels = cont["Config"]["Labels"]
    assert labels["weave-nb.managed"] == "true" and labels["weave-nb.name"] == name and len(labels["weave-nb.hash"]) == 64
    old_image = docker_api.inspect_image(info.details["image"])

    # unchanged: nothing rebuilt or restarted
    events.clear()
    same = _deploy(mgr, name, hello_weave(), events.append)
    assert same.message == "no changes"
    assert {e.outcome for e in events if isinstance(e, StepFinished)} == {"skipped"}
    assert docker_api.inspect_container(f"weave-nb-{name}")["Id"] == cont["Id"]

    # changed weave: only the last layer is rebuilt, the container is replaced
    events.clear()
    changed = _deploy(mgr, name, hello_weave("Greet the user in French."), events.append)
    build_log = log_lines(events, "image")
    cached = sum("Using cache" in line for line in build_log)
    copy_at = next(i for i, line in enumerate(build_log) if "COPY weave.json" in line)
    assert cached >= 7, build_log
    assert not any("Using cache" in line for line in build_log[copy_at:]), "weave.json layer came from the cache"
    new_image = docker_api.inspect_image(changed.details["image"])
    old_layers, new_layers = old_image["RootFS"]["Layers"], new_image["RootFS"]["Layers"]
    assert new_layers[:-1] == old_layers[:-1] and new_layers[-1] != old_layers[-1]
    new_cont = docker_api.inspect_container(f"weave-nb-{name}")
    assert new_cont["Id"] != cont["Id"] and changed.endpoint == info.endpoint
    assert post_json(changed.endpoint, {"input": "bonjour"})["weave"] == "hello"
    containers, images = _labelled(docker_api, name)
    # the previous container is gone; the previous release's image stays for `weave rollback`
    assert len(containers) == 2, "the previous container was left behind"  # the release and its port holder
    assert {t for i in images for t in i["RepoTags"]} == {info.details["image"], changed.details["image"]}

    mgr.destroy(name, "docker")
    assert _labelled(docker_api, name) == ([], [])
    assert mgr.inventory.get("docker", name) is None


def test_secret_env_stays_out_of_image_and_build_log(docker_api, docker_names, docker_manager, events):
    name = docker_names("secret")
    secret = "s3cr3t-" + name[-6:] + "-value"
    mgr = docker_manager()
    info = _deploy(mgr, name, hello_weave(), events.append, env={"SERVICE_TOKEN": secret})
    image = info.details["image"]
    history = json.dumps(docker_api.history(image))
    config = json.dumps(docker_api.inspect_image(image))
    assert secret not in history and secret not in config
    assert all(secret not in str(e) for e in events)
    assert secret not in json.dumps(mgr.inventory.get("docker", name).model_dump(mode="json"))
    # it is given to the container at run time
    env = docker_api.inspect_container(f"weave-nb-{name}")["Config"]["Env"]
    assert f"SERVICE_TOKEN={secret}" in env


def test_crashing_first_deploy_leaves_nothing(docker_api, docker_names, docker_manager, tmp_path):
    name = docker_names("crash")
    mgr = docker_manager()
    empty = tmp_path / "empty"
    empty.mkdir()
    # an empty folder over the runtime package: the server cannot even start
    with pytest.raises(DeploymentFailed) as err:
        _deploy(mgr, name, hello_weave(), options={"volumes": [f"{empty}:/app/weave_runtime:ro"]})
    assert "No module named" in str(err.value)
    assert _labelled(docker_api, name) == ([], [])
    assert mgr.inventory.get("docker", name).resources == []


def test_volume_is_mounted_and_list_logs_keep_image(docker_api, docker_names, docker_manager, tmp_path):
    name = docker_names("vol")
    mgr = docker_manager()
    weave_file = tmp_path / "app" / "hello.weave.yaml"
    weave_file.parent.mkdir()
    weave_file.write_text(hello_weave())
    info = mgr.deploy({"name": name, "provider": "docker", "weave_file": str(weave_file), "options": {"volumes": ["./data:/app/data"]}})
    mounts = docker_api.inspect_container(f"weave-nb-{name}")["Mounts"]
    assert [(m["Source"], m["Destination"]) for m in mounts] == [(str(tmp_path / "app" / "data"), "/app/data")]

    post_json(info.endpoint, {"input": "log me"})
    out = io.StringIO()
    assert cli.main(["logs", name, "--provider", "docker"], out=out) == 0
    assert '"POST / HTTP/1.1" 200' in out.getvalue() and "GET /health" not in out.getvalue()
    listed = {d.name: d for d in mgr.list("docker").deployments}
    assert listed[name].status == DeploymentStatus.ACTIVE and listed[name].drift is None

    docker_api.stop(f"weave-nb-{name}", timeout=2)
    assert mgr.status(name, "docker").status == DeploymentStatus.FAILED
    listed = {d.name: d for d in mgr.list("docker").deployments}
    assert listed[name].status == DeploymentStatus.FAILED, "list shows stopped containers too"

    # a container the inventory forgot is still listed, marked unrecorded
    mgr.inventory.delete("docker", name)
    listed = {d.name: d for d in mgr.list("docker").deployments}
    assert listed[name].drift == "unrecorded"

    mgr.destroy(name, "docker", keep_image=True)
    containers, images = _labelled(docker_api, name)
    assert containers == [] and len(images) == 1


def test_redeploy_finishes_an_interrupted_replacement(docker_api, docker_names, docker_manager, events):
    name = docker_names("resume")
    mgr = docker_manager()
    first = _deploy(mgr, name, hello_weave())
    cname = f"weave-nb-{name}"
    old_id = docker_api.inspect_container(cname)["Id"]
    # as if a redeploy died after putting the old container aside
    docker_api.stop(cname, timeout=2)
    docker_api.rename(cname, cname + "-previous")
    assert mgr.status(name, "docker").health == "no container"
    info = _deploy(mgr, name, hello_weave("Changed after a crash."), events.append)
    assert info.endpoint == first.endpoint
    assert any(" KB over python:3.12-slim" in line for line in log_lines(events, "image"))
    containers, images = _labelled(docker_api, name)
    serving = [c for c in containers if c["Names"] == [f"/{cname}"]]
    assert sorted(c["Names"][0] for c in containers) == [f"/{cname}", f"/{cname}-net"] and serving[0]["Id"] != old_id
    assert len(images) == 2  # the first release's image is kept for `weave rollback`
