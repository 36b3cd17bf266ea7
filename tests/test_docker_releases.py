"""Releases on the docker provider with a real engine: rollback runs the kept image, prune, --canary refused."""

from __future__ import annotations

import pytest
from docker_fixtures import *  # noqa: F401,F403
from docker_fixtures import EndpointPoller, hello_weave

from weave_nb.core.errors import ConfigError
from weave_nb.core.http_call import post_json

pytestmark = pytest.mark.docker


def _values(name, text, **extra):
    return {"name": name, "provider": "docker", "weave_text": text, **extra}


def _system_prompt(docker_api, cname: str) -> str:
    """The image the serving container runs (read from the engine, not from our records)."""
    return docker_api.inspect_container(cname)["Config"]["Image"]


def test_rollback_runs_the_kept_image_on_the_same_port_and_prunes(docker_api, docker_names, docker_manager):
    name = docker_names("rel")
    cname = f"weave-nb-{name}"
    mgr = docker_manager()
    first = mgr.deploy(_values(name, hello_weave("Say hi.")))
    second = mgr.deploy(_values(name, hello_weave("Say hello.")))
    assert first.details["image"] != second.details["image"] and second.endpoint == first.endpoint
    rels = mgr.releases(name, "docker")
    assert [(r.number, r.state, r.version_id) for r in rels] == [
        (2, "live", second.details["image"]), (1, "previous", first.details["image"])]

    plan = mgr.rollback(name, "docker", dry_run=True)
    assert [s.key for s in plan.changing()] == ["trial", "container", "health", "switch", "old"]
    assert plan.step("container").params["image"] == first.details["image"]
    assert plan.step("container").params["port"] == first.details["port"]
    assert _system_prompt(docker_api, cname) == second.details["image"]  # the dry run changed nothing

    poller = EndpointPoller(f"{first.endpoint}/health")
    with poller:
        info = mgr.rollback(name, "docker")
    print(f"rollback switch: {len(poller.answers)} answers from {len(poller.instances())} containers, "
          f"{len(poller.failures)} failed")
    assert poller.failures == [] and len(poller.answers) > 20
    assert len(poller.instances()) == 2  # the answering container changed, with no failed request in between
    assert info.endpoint == first.endpoint
    assert _system_prompt(docker_api, cname) == first.details["image"]  # release 1's image, not rebuilt
    assert post_json(info.endpoint, {"input": "x"})["weave"] == "hello"
    assert [(r.number, r.state) for r in mgr.releases(name, "docker")] == [(2, "previous"), (1, "live")]
    label = {"label": [f"weave-nb.name={name}"]}
    assert sorted(c["Names"] for c in docker_api.containers(all=True, filters=label)) == [[f"/{cname}"], [f"/{cname}-net"]]

    # a third release with keep_releases=2 prunes the oldest image that is neither live nor previous
    mgr.keep_releases = 2
    mgr.rollback(name, "docker", to=2)
    third = mgr.deploy(_values(name, hello_weave("Say hey.")))
    states = [(r.number, r.state, r.pruned) for r in mgr.releases(name, "docker")]
    assert states == [(3, "live", False), (2, "previous", False), (1, "retired", True)]
    tags = {t for img in docker_api.images(filters=label) for t in img["RepoTags"] or []}
    assert first.details["image"] not in tags and {second.details["image"], third.details["image"]} <= tags


def test_canary_is_refused_on_docker_before_anything_is_built(docker_api, docker_names, docker_manager):
    name = docker_names("rel")
    mgr = docker_manager()
    with pytest.raises(ConfigError, match="docker provider has no canary"):
        mgr.deploy(_values(name, hello_weave(), options={"canary": 10}))
    label = {"label": [f"weave-nb.name={name}"]}
    assert docker_api.images(filters=label) == [] and docker_api.containers(all=True, filters=label) == []
