"""The image recipe (Dockerfile, build context, names) and the engine wrapper's wait and login logic, no engine needed."""

from __future__ import annotations

import io
import tarfile

import pytest
from docker_fixtures import (
    hello_weave,  # first: skips this module when docker-py is missing
)

from weave_nb.core.artifact import build_artifact
from weave_nb.core.auth import AuthenticationManager, EnvironmentCredentialProvider
from weave_nb.core.errors import ConfigError, CredentialsError
from weave_nb.providers.docker.engine import DockerEngine
from weave_nb.providers.docker.image import (
    build_context,
    check_docker_name,
    check_user,
    make_recipe,
    parse_volume,
    repository_for,
)
from weave_nb.spec.model import parse_weave


def _artifact(greeting: str = "Hi."):
    return build_artifact(parse_weave(hello_weave(greeting), source="<test>"))


def _recipe(greeting: str = "Hi.", base: str = "python:3.12-slim"):
    art = _artifact(greeting)
    return art, make_recipe("demo", art.files, art.content_hash, base)


def test_dockerfile_layers_and_settings():
    art, recipe = _recipe()
    lines = [ln for ln in recipe.dockerfile.splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "FROM python:3.12-slim"
    assert lines[-2] == "COPY weave.json /app/weave.json", "weave.json must be the last layer"
    assert lines[-1].startswith("LABEL ") and f'weave-nb.hash="{art.content_hash}"' in lines[-1]
    assert 'weave-nb.managed="true"' in lines[-1] and 'weave-nb.name="demo"' in lines[-1]
    text = recipe.dockerfile
    assert not any(word in ln for ln in lines for word in ("pip ", "curl", "apt-get"))
    assert "USER 10001:10001" in text and "EXPOSE 8080" in text
    health = next(ln for ln in lines if ln.startswith("HEALTHCHECK"))
    assert "--interval=1s" in health and "python3" in health and "/health" in health
    assert text.index("COPY weave_runtime/") < text.index("COPY weave.json")


def test_context_holds_only_runtime_weave_and_dockerfile_and_is_deterministic():
    art, recipe = _recipe()
    with tarfile.open(fileobj=io.BytesIO(recipe.context)) as tar:
        names = tar.getnames()
        members = tar.getmembers()
    assert sorted(names) == sorted([*art.files, "Dockerfile"])
    assert all(m.mtime == 0 and m.mode == 0o644 and m.uid == 0 for m in members)
    assert build_context(art.files, recipe.dockerfile) == recipe.context


def test_tag_follows_weave_and_base_image():
    _, one = _recipe("Hi.")
    _, same = _recipe("Hi.")
    _, changed = _recipe("Bye.")
    _, other_base = _recipe("Hi.", base="python:3.11-slim")
    assert one.ref == same.ref
    assert len({one.tag, changed.tag, other_base.tag}) == 3
    assert one.repository == "weave-nb/demo"
    assert repository_for("demo", "127.0.0.1:5000/team/") == "127.0.0.1:5000/team/weave-nb/demo"


@pytest.mark.parametrize("name", ["demo", "my-app", "a1_b2", "x.y", "a__b", "a--b"])
def test_valid_docker_names(name):
    check_docker_name(name)


@pytest.mark.parametrize("name", ["Demo", "demo-", "a_-b", "a_", "My_App"])
def test_invalid_docker_names(name):
    with pytest.raises(ConfigError, match="not a valid name for a Docker image"):
        check_docker_name(name)


def test_users_and_volumes():
    check_user("10001:10001")
    check_user("app")
    for bad in ("root", "0:0", "0", "a b"):
        with pytest.raises(ConfigError):
            check_user(bad)
    assert parse_volume("./data:/app/data") == ("./data", "/app/data", "rw")
    assert parse_volume("cache:/app/cache:ro") == ("cache", "/app/cache", "ro")
    for bad in ("data", "./data:", "./a:b", ":/x", "a:/b:c:d"):
        with pytest.raises(ValueError):
            parse_volume(bad)


def _auth(**env):
    return AuthenticationManager([EnvironmentCredentialProvider(env)], environ=env)


def test_registry_login_settings():
    with pytest.raises(ConfigError, match="DOCKER_REGISTRY_URL"):
        DockerEngine.registry_login(_auth(), None)
    login = DockerEngine.registry_login(_auth(DOCKER_REGISTRY_URL="https://reg.example:5000/"), None)
    assert login.url == "reg.example:5000" and login.username is None
    login = DockerEngine.registry_login(_auth(DOCKER_REGISTRY_URL="r:1", DOCKER_USERNAME="u", DOCKER_PASSWORD="pw-123"), "other:2")
    assert login.url == "other:2" and login.username == "u" and "pw-123" not in repr(login)
    with pytest.raises(CredentialsError, match="DOCKER_PASSWORD"):
        DockerEngine.registry_login(_auth(DOCKER_REGISTRY_URL="r:1", DOCKER_USERNAME="u"), None)


class _FakeApi:
    """Answers inspect_container from a script of states (only for the wait logic)."""

    def __init__(self, states):
        self.states = list(states)
        self.calls = 0

    def inspect_container(self, name):
        self.calls += 1
        return self.states[min(self.calls, len(self.states)) - 1]

    def logs(self, name, **kwargs):
        return b"Traceback...\nModuleNotFoundError: No module named 'x'\n"


def _state(status="running", health="starting", restarting=False, probe=None, restarts=0):
    log = [{"ExitCode": 1, "Output": probe}] if probe else []
    return {"State": {"Status": status, "Running": status == "running", "Restarting": restarting, "ExitCode": 1,
                      "Health": {"Status": health, "Log": log}}, "RestartCount": restarts, "Config": {"Healthcheck": {}}}


class _Clock:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_wait_healthy_polls_until_healthy():
    clock = _Clock()
    api = _FakeApi([_state(), _state(), _state(health="healthy")])
    assert DockerEngine(api, "x").wait_healthy("c", 10, clock.sleep, clock) == (True, "healthy")
    assert api.calls == 3 and len(clock.slept) == 2


def test_wait_healthy_is_bounded_and_says_why():
    clock = _Clock()
    api = _FakeApi([_state(probe="HTTP Error 500")])
    ok, why = DockerEngine(api, "x").wait_healthy("c", 2.0, clock.sleep, clock, interval=0.5)
    assert not ok and "not healthy after 2s" in why and "HTTP Error 500" in why
    assert clock.now == pytest.approx(2.0)


def test_wait_healthy_stops_at_a_crash():
    clock = _Clock()
    api = _FakeApi([_state(), _state(status="restarting", restarting=True, restarts=1)])
    ok, why = DockerEngine(api, "x").wait_healthy("c", 30, clock.sleep, clock)
    assert not ok and "exited" in why and "No module named" in why and clock.now < 1
