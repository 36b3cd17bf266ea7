"""Managed secrets on the real Docker engine: a file only the container's user can read, never env or image.

The runtime reports in ``GET /health`` the names (never values) of the
secrets it loaded; it answers 500 when a secret file is missing or
unreadable, so a wrong mode, owner or path fails the health check, and the
deploy with it.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.request

import pytest
from docker_fixtures import *  # noqa: F403
from docker_fixtures import hello_weave

from weave_nb.core.errors import ConfigError

pytestmark = pytest.mark.docker

VALUE = "docker-fake-secret-6Gh3Jk8Lm2"


def exec_in(api, container, cmd, user=""):
    run = api.exec_create(container, cmd, user=user)
    out = api.exec_start(run["Id"]).decode(errors="replace")
    return api.exec_inspect(run["Id"])["ExitCode"], out


def test_a_secret_is_a_0400_file_of_the_container_user_and_nowhere_else(docker_api, docker_names, docker_manager, tmp_path):
    name = docker_names("sec")
    mgr = docker_manager(SERVICE_TOKEN=VALUE)
    events = []
    info = mgr.deploy({"name": name, "provider": "docker", "weave_text": hello_weave(), "secrets": ["SERVICE_TOKEN"]},
                      sink=events.append)
    assert info.status.value == "active"
    container = f"weave-nb-{name}"
    inspected = docker_api.inspect_container(container)
    env = inspected["Config"]["Env"]
    assert "WEAVE_SECRET_FILES=SERVICE_TOKEN" in env
    assert not any(e.startswith("SERVICE_TOKEN=") for e in env)
    assert VALUE not in json.dumps(inspected)

    code, out = exec_in(docker_api, container, ["stat", "-c", "%a %u %g", "/run/secrets/SERVICE_TOKEN"])
    assert (code, out.strip()) == (0, "400 10001 10001")
    code, out = exec_in(docker_api, container, ["stat", "-c", "%a %u", "/run/secrets"])
    assert (code, out.strip()) == (0, "500 10001")
    code, out = exec_in(docker_api, container, ["cat", "/run/secrets/SERVICE_TOKEN"], user="10002:10002")
    assert code != 0 and VALUE not in out  # another user of the container cannot read it
    code, out = exec_in(docker_api, container, ["cat", "/run/secrets/SERVICE_TOKEN"], user="10001:10001")
    assert code == 0 and out == VALUE  # the container's user can

    with urllib.request.urlopen(info.endpoint.rstrip("/") + "/health", timeout=10) as answer:
        health = json.loads(answer.read())
    assert health["secrets"] == ["SERVICE_TOKEN"]  # the runtime read the file at its first request

    image = info.details["image"]
    assert VALUE not in json.dumps(docker_api.inspect_image(image))
    saved = b"".join(docker_api.get_image(image))
    assert VALUE.encode() not in saved  # in no image layer
    assert VALUE not in repr(events)
    dump = "\n".join(sqlite3.connect(mgr.inventory.path).iterdump())
    assert VALUE not in dump
    assert all(VALUE.encode() not in p.read_bytes() for p in mgr.home.rglob("*") if p.is_file())

    mgr.destroy(name, "docker")
    assert not docker_api.containers(all=True, filters={"name": container})


def test_a_named_container_user_cannot_own_secrets(docker_manager):
    mgr = docker_manager(SERVICE_TOKEN=VALUE)
    with pytest.raises(ConfigError, match="numeric container user"):
        mgr.plan({"name": "named-user", "provider": "docker", "weave_text": hello_weave(), "secrets": ["SERVICE_TOKEN"],
                  "options": {"user": "app"}})
