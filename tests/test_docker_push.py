"""Pushing to a registry: --push-only and --push against the local registry, logins, pull back by digest."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.error
import urllib.request
import warnings

import pytest
from docker_fixtures import *
from docker_fixtures import free_tcp_port, hello_weave, log_lines

from weave_nb.core.config import DeploymentStatus
from weave_nb.core.errors import ConfigError, CredentialsError
from weave_nb.core.http_call import post_json
from weave_nb.core.procutil import stop_process, wait_for

pytestmark = pytest.mark.docker


@pytest.fixture
def registry(docker_api):
    """The test registry from scripts/docker-env.sh (WEAVE_TEST_REGISTRY)."""
    reg = os.environ.get("WEAVE_TEST_REGISTRY")
    if not reg:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI=true but WEAVE_TEST_REGISTRY is not set (scripts/docker-env.sh start sets it)", pytrace=False)
        pytest.skip("WEAVE_TEST_REGISTRY is not set (start it with `bash scripts/docker-env.sh start`)")
    return reg


def _pull_by_digest(api, pushed):
    ref, digest = pushed.rsplit("@", 1)
    repo = ref.rsplit(":", 1)[0]
    for item in api.pull(repo, tag=digest, stream=True, decode=True):
        assert "error" not in item, item
    return api.inspect_image(f"{repo}@{digest}")


def test_push_only_then_pull_back_by_digest(docker_api, docker_names, docker_manager, registry, events):
    name = docker_names("push")
    mgr = docker_manager(DOCKER_REGISTRY_URL=registry)
    info = mgr.deploy({"name": name, "provider": "docker", "weave_text": hello_weave(), "options": {"push_only": True}},
                      sink=events.append)
    assert info.status == DeploymentStatus.ACTIVE and info.endpoint is None
    pushed = info.details["pushed"]
    assert pushed.startswith(f"{registry}/weave-nb/{name}:") and "@sha256:" in pushed
    assert any("Pushed" in line or "Layer already exists" in line for line in log_lines(events, "push"))
    assert docker_api.containers(all=True, filters={"label": [f"weave-nb.name={name}"]}) == []

    content_hash = mgr.inventory.get("docker", name).content_hash
    mgr.destroy(name, "docker")
    assert docker_api.images(filters={"label": [f"weave-nb.name={name}"]}) == []

    pulled = _pull_by_digest(docker_api, pushed)
    assert pulled["Config"]["Labels"]["weave-nb.hash"] == content_hash


def test_push_then_run(docker_api, docker_names, docker_manager, registry, events):
    name = docker_names("pushrun")
    mgr = docker_manager(DOCKER_REGISTRY_URL=f"http://{registry}/", DOCKER_USERNAME="weave", DOCKER_PASSWORD="any-password")
    info = mgr.deploy({"name": name, "provider": "docker", "weave_text": hello_weave(), "options": {"push": True}},
                      sink=events.append)
    assert post_json(info.endpoint, {"input": "pushed and running"})["weave"] == "hello"
    assert f"logged in to {registry} as weave" in log_lines(events, "push")
    digest = info.details["digest"]
    assert docker_api.inspect_image(info.details["image"])["RepoDigests"] == [f"{registry}/weave-nb/{name}@{digest}"]
    again = mgr.deploy({"name": name, "provider": "docker", "weave_text": hello_weave(), "options": {"push": True}})
    assert again.message == "no changes"


def test_push_without_registry_is_a_config_error(docker_names, docker_manager, monkeypatch):
    monkeypatch.delenv("DOCKER_REGISTRY_URL", raising=False)
    name = docker_names("noreg")
    mgr = docker_manager()
    with pytest.raises(ConfigError, match="DOCKER_REGISTRY_URL"):
        mgr.deploy({"name": name, "provider": "docker", "weave_text": hello_weave(), "options": {"push": True}})
    assert mgr.inventory.get("docker", name) is None


@pytest.fixture
def auth_registry(tmp_path, docker_api):
    """A second docker-registry on 127.0.0.1 that requires a login (htpasswd, bcrypt)."""
    binary = shutil.which("docker-registry")
    if not binary:
        pytest.skip("docker-registry is not installed (scripts/docker-env.sh installs it)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt = pytest.importorskip("crypt")
    hashed = crypt.crypt("right-password", crypt.mksalt(crypt.METHOD_BLOWFISH))
    (tmp_path / "htpasswd").write_text(f"pusher:{hashed}\n")
    port = free_tcp_port()
    (tmp_path / "config.yml").write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"auth:\n  htpasswd:\n    realm: weave-test\n    path: {tmp_path / 'htpasswd'}\n"
    )
    with open(tmp_path / "registry.log", "wb") as log:
        proc = subprocess.Popen([binary, "serve", str(tmp_path / "config.yml")], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def answers() -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=0.5)
        except urllib.error.HTTPError as exc:
            return exc.code == 401
        except OSError:
            return False
        return False

    try:
        assert wait_for(answers, timeout=15), (tmp_path / "registry.log").read_text()[-2000:]
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(proc.pid)


def test_login_to_a_registry_that_needs_one(docker_api, docker_names, docker_manager, auth_registry):
    name = docker_names("login")
    good = docker_manager(DOCKER_REGISTRY_URL=auth_registry, DOCKER_USERNAME="pusher", DOCKER_PASSWORD="right-password")
    info = good.deploy({"name": name, "provider": "docker", "weave_text": hello_weave(), "options": {"push_only": True}})
    assert info.details["pushed"].startswith(f"{auth_registry}/weave-nb/{name}:")

    other = docker_names("login")
    bad = docker_manager(DOCKER_REGISTRY_URL=auth_registry, DOCKER_USERNAME="pusher", DOCKER_PASSWORD="wrong-password")
    with pytest.raises(CredentialsError) as err:
        bad.deploy({"name": other, "provider": "docker", "weave_text": hello_weave(), "options": {"push_only": True}})
    assert "wrong-password" not in str(err.value) and "login to" in str(err.value)
    assert bad.inventory.get("docker", other) is None, "a refused login must stop the deploy before the build"
    assert docker_api.images(filters={"label": [f"weave-nb.name={other}"]}) == []
