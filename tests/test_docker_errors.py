"""Bad input and failures: each a clear error, with nothing left half-made."""

from __future__ import annotations

import io
import socket
import tarfile

import pytest
from docker_fixtures import *
from docker_fixtures import free_tcp_port, hello_weave

from weave_nb.core.auth import AuthenticationManager, EnvironmentCredentialProvider
from weave_nb.core.errors import ConfigError, DeploymentFailed, ProviderUnavailable
from weave_nb.core.manager import DeploymentManager

pytestmark = pytest.mark.docker


def _nothing_made(api, mgr, name):
    label = {"label": [f"weave-nb.name={name}"]}
    assert api.containers(all=True, filters=label) == []
    assert api.images(filters=label) == []
    assert mgr.inventory.get("docker", name) is None


def test_engine_not_running_says_how_to_start_one(tmp_path):
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    mgr = DeploymentManager(home=tmp_path, auth=AuthenticationManager([EnvironmentCredentialProvider(env)], environ=env))
    with pytest.raises(ProviderUnavailable) as err:
        mgr.deploy({"name": "demo", "provider": "docker", "weave_text": hello_weave()})
    text = str(err.value)
    assert "cannot reach the Docker engine" in text and "no-engine.sock" in text and "DOCKER_HOST" in text
    assert mgr.inventory.get("docker", "demo") is None
    listing = mgr.list()
    assert any(note.startswith("skipped docker: cannot reach the Docker engine") for note in listing.notes)


def test_tls_variables_come_through_the_auth_chain(tmp_path):
    """DOCKER_TLS_VERIFY/DOCKER_CERT_PATH reach docker-py: an empty cert folder is refused for TLS, not dialled in plain."""
    from weave_nb.providers.docker.engine import DockerEngine

    host = f"tcp://127.0.0.1:{free_tcp_port()}"  # nothing listens there
    plain = {"DOCKER_HOST": host}
    tls = {**plain, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)}
    with pytest.raises(ProviderUnavailable, match="connection refused"):
        DockerEngine.connect(AuthenticationManager([EnvironmentCredentialProvider(plain)], environ=plain))
    with pytest.raises(ProviderUnavailable, match="certificate") as err:
        DockerEngine.connect(AuthenticationManager([EnvironmentCredentialProvider(tls)], environ=tls))
    assert host in str(err.value) and "DOCKER_CERT_PATH" in err.value.suggestion


@pytest.mark.parametrize("bad, hint", [("Demo", "use --name demo"), ("demo_", "lower-case letters")])
def test_invalid_docker_name(docker_api, docker_manager, bad, hint):
    mgr = docker_manager()
    with pytest.raises(ConfigError) as err:
        mgr.deploy({"name": bad, "provider": "docker", "weave_text": hello_weave()})
    assert "not a valid name for a Docker image" in str(err.value) and hint in str(err.value)
    _nothing_made(docker_api, mgr, bad)


def test_port_already_in_use(docker_api, docker_names, docker_manager):
    name = docker_names("port")
    mgr = docker_manager()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError) as err:
            mgr.deploy({"name": name, "provider": "docker", "weave_text": hello_weave(), "port": port})
    assert f"port {port} on 127.0.0.1 is already in use" in str(err.value)
    _nothing_made(docker_api, mgr, name)


def test_given_port_is_used(docker_api, docker_names, docker_manager):
    name = docker_names("myport")
    port = free_tcp_port()
    info = docker_manager().deploy({"name": name, "provider": "docker", "weave_text": hello_weave(), "port": port})
    assert info.endpoint == f"http://127.0.0.1:{port}"


def test_base_image_that_cannot_be_pulled(docker_api, docker_names, docker_manager):
    name = docker_names("base")
    mgr = docker_manager()
    missing = "127.0.0.1:9/weave-nb-missing/python:0.0"
    with pytest.raises(ConfigError) as err:
        mgr.deploy({"name": name, "provider": "docker", "weave_text": hello_weave(), "options": {"base_image": missing}})
    text = str(err.value)
    assert f"base image {missing} is not here and cannot be pulled" in text and "--base-image" in text
    _nothing_made(docker_api, mgr, name)


@pytest.fixture
def python_less_base(docker_api, test_label):
    """A base image whose python3 is gone: the generated Dockerfile's python check fails."""
    tag = f"weave-nb-test/nopython:{test_label.split('=')[1]}"
    dockerfile = f"FROM python:3.12-slim\nRUN rm -f /usr/bin/python3* /usr/local/bin/python*\nLABEL {test_label}\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile.encode()))
    for item in docker_api.build(fileobj=io.BytesIO(buf.getvalue()), custom_context=True, tag=tag, decode=True, rm=True):
        assert "error" not in item, item
    return tag


def test_broken_build_shows_its_log_tail(docker_api, docker_names, docker_manager, python_less_base, events):
    name = docker_names("broken")
    mgr = docker_manager()
    with pytest.raises(DeploymentFailed) as err:
        mgr.deploy({"name": name, "provider": "docker", "weave_text": hello_weave(), "options": {"base_image": python_less_base}},
                   sink=events.append)
    text = str(err.value)
    assert "the image build failed" in text and "last lines of the build log" in text
    assert "Step 2/" in text and "python3" in text, text
    assert "base_image" in text
    label = {"label": [f"weave-nb.name={name}"]}
    assert docker_api.images(filters=label) == [] and docker_api.containers(all=True, filters=label) == []
    assert mgr.inventory.get("docker", name).resources == []


def test_bad_options_are_config_errors(docker_api, docker_manager):
    mgr = docker_manager()
    cases = [
        ({"volumes": ["data"]}, "must look like ./data:/app/data"),
        ({"volumes": ["./data:app/data"]}, "must be absolute"),
        ({"user": "root"}, "must not run as root"),
        ({"python_version": "2.7"}, "python_version"),
        ({"no_such_option": 1}, "no_such_option"),
    ]
    for options, words in cases:
        with pytest.raises(ConfigError, match=words):
            mgr.deploy({"name": "opts", "provider": "docker", "weave_text": hello_weave(), "options": options})
    with pytest.raises(ConfigError, match="not an IP address"):
        mgr.deploy({"name": "opts", "provider": "docker", "weave_text": hello_weave(), "host": "example.invalid"})
    assert mgr.inventory.get("docker", "opts") is None
