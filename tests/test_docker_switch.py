"""Zero-downtime switch-overs on the docker provider, with a real engine and a client polling all through.

Each deployment has a port holder (``weave-nb-NAME-net``) that publishes the
port; release containers join its network namespace and share the port
(SO_REUSEPORT). A poller thread opens a fresh connection per request while
the deploy runs and records which container answered (``X-Weave-Instance``).
"""

from __future__ import annotations

import time

import pytest
from docker_fixtures import *  # noqa: F401,F403
from docker_fixtures import EndpointPoller, hello_weave

from weave_nb.core.errors import DeploymentFailed
from weave_nb.core.http_call import post_json

pytestmark = pytest.mark.docker


def _values(name, text, **extra):
    return {"name": name, "provider": "docker", "weave_text": text, **extra}


def _names(api, name):
    return sorted(c["Names"][0] for c in api.containers(all=True, filters={"label": [f"weave-nb.name={name}"]}))


def _journal(mgr, name):
    return [(s["key"], s["outcome"]) for s in mgr.inventory.journal.runs("docker", name)[-1]["steps"]]


def test_changed_redeploy_switches_with_no_failed_request(docker_api, docker_names, docker_manager):
    name = docker_names("zd")
    cname = f"weave-nb-{name}"
    mgr = docker_manager()
    first = mgr.deploy(_values(name, hello_weave("Say hi.")))
    holder = docker_api.inspect_container(f"{cname}-net")
    assert _names(docker_api, name) == [f"/{cname}", f"/{cname}-net"]
    assert mgr.status(name, "docker").endpoint == first.endpoint
    assert any(d.name == name and d.endpoint == first.endpoint for d in mgr.provider("docker").list_deployments())

    poller = EndpointPoller(f"{first.endpoint}/health")
    with poller:
        second = mgr.deploy(_values(name, hello_weave("Say hello.")))
    print(f"redeploy switch: {len(poller.answers)} answers from {len(poller.instances())} containers, "
          f"{len(poller.failures)} failed")
    assert poller.failures == [] and len(poller.answers) > 20 and {s for s, _ in poller.answers} == {200}
    assert len(poller.instances()) == 2  # the old container answered, then the new one: never nobody
    assert _journal(mgr, name) == [("image", "done"), ("trial", "done"), ("container", "done"), ("health", "done"),
                                   ("switch", "done"), ("old", "done")]
    assert second.endpoint == first.endpoint and second.details["container_id"] != first.details["container_id"]
    assert docker_api.inspect_container(f"{cname}-net")["Id"] == holder["Id"]  # the holder stayed: so did the port
    assert docker_api.inspect_container(cname)["Id"] == second.details["container_id"]
    assert _names(docker_api, name) == [f"/{cname}", f"/{cname}-net"]
    assert post_json(second.endpoint, {"input": "x"})["weave"] == "hello"
    logs = mgr.logs(name, "docker", tail=100_000)  # read from the serving release container, not the (silent) holder
    own = docker_api.logs(second.details["container_id"]).decode()
    assert "listening on http://0.0.0.0:8080" in logs and "listening on http://0.0.0.0:8080" in own
    assert docker_api.logs(f"{cname}-net") == b""

    mgr.destroy(name, "docker")
    assert docker_api.containers(all=True, filters={"label": [f"weave-nb.name={name}"]}) == []
    assert docker_api.containers(all=True, filters={"name": [cname]}) == []
    assert docker_api.networks(names=[f"{cname}-net", cname]) == []


def test_redeploy_whose_server_cannot_start_keeps_the_old_one_serving(docker_api, docker_names, docker_manager, tmp_path):
    name = docker_names("zdfail")
    cname = f"weave-nb-{name}"
    mgr = docker_manager()
    first = mgr.deploy(_values(name, hello_weave()))
    before = docker_api.inspect_container(cname)["Id"]
    empty = tmp_path / "empty-app"
    empty.mkdir()
    broken = _values(name, hello_weave("Changed."), options={"health_timeout": 5, "volumes": [f"{empty}:/app:ro"]})
    poller = EndpointPoller(f"{first.endpoint}/health")
    with poller, pytest.raises(DeploymentFailed) as err:
        mgr.deploy(broken)  # /app is hidden by an empty folder: the runtime server cannot even start
    assert "the server exited" in str(err.value) and "weave_runtime" in str(err.value)
    assert poller.failures == [] and len(poller.answers) > 5 and len(poller.instances()) == 1
    assert docker_api.inspect_container(cname)["Id"] == before
    assert _names(docker_api, name) == [f"/{cname}", f"/{cname}-net"]
    assert mgr.status(name, "docker").health == "healthy"


def _old_style(docker_api, name: str) -> dict:
    """Turn a deployment into what earlier versions made: one container publishing the port itself, no holder."""
    cname = f"weave-nb-{name}"
    cur = docker_api.inspect_container(cname)
    holder = docker_api.inspect_container(f"{cname}-net")
    port = int(holder["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostPort"])
    docker_api.remove_container(cur["Id"], force=True)
    docker_api.remove_container(holder["Id"], force=True)
    env = [e for e in cur["Config"]["Env"] if not e.startswith("WEAVE_INSTANCE=")]
    made = docker_api.create_container(
        cur["Config"]["Image"], name=cname, detach=True, ports=[8080], environment=env, labels=cur["Config"]["Labels"],
        user=cur["Config"]["User"], stop_timeout=2,
        host_config=docker_api.create_host_config(port_bindings={8080: ("127.0.0.1", port)}, init=True,
                                                  restart_policy={"Name": "unless-stopped"}))
    docker_api.start(made["Id"])
    deadline = time.monotonic() + 60
    while docker_api.inspect_container(made["Id"])["State"].get("Health", {}).get("Status") != "healthy":
        assert time.monotonic() < deadline, "the old-style container never became healthy"
        time.sleep(0.1)  # polling Docker's health status, with the deadline above
    return {"id": made["Id"], "port": port}


def test_an_old_style_container_is_migrated_behind_a_holder_then_undeployed(docker_api, docker_names, docker_manager):
    name = docker_names("zdmig")
    cname = f"weave-nb-{name}"
    mgr = docker_manager()
    first = mgr.deploy(_values(name, hello_weave()))
    old = _old_style(docker_api, name)
    assert post_json(first.endpoint, {"input": "x"}, timeout=30)["weave"] == "hello"  # the old style serves

    plan = mgr.plan(_values(name, hello_weave()))  # same weave: the move behind a holder is the change
    assert [s.key for s in plan.changing()] == ["trial", "retire", "holder", "container", "health", "old"]
    assert plan.step("container").detail == "moves behind a port holder"
    assert plan.step("holder").params["port"] == old["port"]
    assert any("one-time gap" in n and "publishes the port itself" in n for n in plan.notes)

    info = mgr.deploy(_values(name, hello_weave()))
    assert info.endpoint == first.endpoint and post_json(info.endpoint, {"input": "x"})["weave"] == "hello"
    assert _names(docker_api, name) == [f"/{cname}", f"/{cname}-net"]
    assert docker_api.inspect_container(cname)["HostConfig"]["NetworkMode"].startswith("container:")

    # from now on a switch has no gap
    poller = EndpointPoller(f"{info.endpoint}/health")
    with poller:
        mgr.deploy(_values(name, hello_weave("Now changed.")))
    assert poller.failures == [] and len(poller.instances()) == 2

    # and an old-style deployment is still undeployed whole
    _old_style(docker_api, name)
    mgr.destroy(name, "docker")
    assert docker_api.containers(all=True, filters={"label": [f"weave-nb.name={name}"]}) == []


def test_a_failed_port_change_puts_the_old_holder_and_container_back(docker_api, docker_names, docker_manager, tmp_path):
    from docker_fixtures import free_tcp_port

    name = docker_names("zdport")
    cname = f"weave-nb-{name}"
    mgr = docker_manager()
    first = mgr.deploy(_values(name, hello_weave()))
    holder = docker_api.inspect_container(f"{cname}-net")["Id"]
    serving = docker_api.inspect_container(cname)["Id"]
    empty = tmp_path / "empty-app"
    empty.mkdir()
    moved = _values(name, hello_weave("Changed."), port=free_tcp_port(), options={"health_timeout": 5})
    plan = mgr.plan(moved)
    assert [s.key for s in plan.changing()] == ["image", "trial", "retire", "retire-net", "holder", "container",
                                                "health", "old", "old-net"]
    assert any("one-time gap: the port holder changes" in n for n in plan.notes)

    # the serving container is stopped (so no trial) and the new release cannot start: everything is put back
    docker_api.stop(serving, timeout=2)
    broken = {**moved, "options": {"health_timeout": 5, "volumes": [f"{empty}:/app:ro"]}}
    with pytest.raises(DeploymentFailed, match="the server exited"):
        mgr.deploy(broken)
    undone = [k for k, outcome in _journal(mgr, name) if outcome == "undone"]
    assert undone == ["container", "holder", "retire-net", "retire", "image"]
    assert _names(docker_api, name) == [f"/{cname}", f"/{cname}-net"]
    assert docker_api.inspect_container(f"{cname}-net")["Id"] == holder
    assert docker_api.inspect_container(f"{cname}-net")["State"]["Running"]
    assert docker_api.inspect_container(cname)["Id"] == serving
    docker_api.start(serving)  # it still joins its (put back) holder's network and serves on the old port
    deadline = time.monotonic() + 60
    while docker_api.inspect_container(serving)["State"].get("Health", {}).get("Status") != "healthy":
        assert time.monotonic() < deadline, "the put-back container never became healthy"
        time.sleep(0.1)  # polling Docker's health status, with the deadline above
    assert post_json(first.endpoint, {"input": "x"})["weave"] == "hello"

    info = mgr.deploy(moved)
    assert info.endpoint != first.endpoint and post_json(info.endpoint, {"input": "x"})["weave"] == "hello"
    assert _names(docker_api, name) == [f"/{cname}", f"/{cname}-net"]
    assert docker_api.inspect_container(f"{cname}-net")["Id"] != holder
    assert docker_api.inspect_container(cname)["Id"] != serving


def test_an_old_container_that_cannot_be_removed_leaves_the_new_one_serving(docker_api, docker_names, docker_manager,
                                                                            monkeypatch):
    """Removing the replaced container is the switch's last step; if the engine refuses it (here an injected engine
    error: a unit test of the error path) the deploy still succeeds with a warning, and undeploy removes the leftover."""
    import docker.errors

    from weave_nb.providers.docker.engine import DockerEngine

    name = docker_names("zdleft")
    cname = f"weave-nb-{name}"
    mgr = docker_manager()
    first = mgr.deploy(_values(name, hello_weave("Say hi.")))
    old_id = first.details["container_id"]
    real_remove = DockerEngine.remove_container

    def refuse_the_old_one(self, ident, *args, **kwargs):
        if ident == old_id:
            raise docker.errors.APIError("injected: removal refused")
        return real_remove(self, ident, *args, **kwargs)

    monkeypatch.setattr(DockerEngine, "remove_container", refuse_the_old_one)
    warnings = []
    second = mgr.deploy(_values(name, hello_weave("Say hello.")),
                        sink=lambda event: warnings.append(event.text) if type(event).__name__ == "WarningEvent" else None)
    assert second.status.value == "active" and second.details["container_id"] != old_id
    assert any("could not be removed" in text and old_id[:12] in text for text in warnings), warnings
    assert post_json(second.endpoint, {"input": "x"})["weave"] == "hello"  # the new one serves
    assert docker_api.inspect_container(old_id)["State"]["Running"] is False  # stopped, only its removal failed

    monkeypatch.setattr(DockerEngine, "remove_container", real_remove)
    mgr.destroy(name, "docker")
    assert docker_api.containers(all=True, filters={"label": [f"weave-nb.name={name}"]}) == []
    assert docker_api.containers(all=True, filters={"name": [cname]}) == []
