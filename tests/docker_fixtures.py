"""Fixtures for the Docker provider tests (import them into a test module with ``from docker_fixtures import *``).

The tests talk to the real engine named by ``DOCKER_HOST`` (started by
``scripts/docker-env.sh``). Outside CI they skip, with the reason, when it
does not answer; under CI (``CI=true``) a missing engine FAILS the run.
Every container and image a test makes carries ``weave-nb.name=<its name>``
(or ``weave-nb-test=<run id>``) and is removed by label in teardown.
"""

from __future__ import annotations

import os
import secrets
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


try:
    import docker
except ImportError:  # pragma: no cover - depends on the installation
    if _in_ci():
        raise
    pytest.skip("the docker package is not installed (pip install -e '.[docker]')", allow_module_level=True)

from weave_nb.core.auth import AuthenticationManager, EnvironmentCredentialProvider
from weave_nb.core.events import Event, LogLine
from weave_nb.core.procutil import free_port
from weave_nb.core.manager import DeploymentManager

__all__ = [
    "RUN_ID",
    "EndpointPoller",
    "docker_api",
    "docker_manager",
    "docker_names",
    "events",
    "free_tcp_port",
    "hello_weave",
    "log_lines",
    "remove_labelled",
    "test_label",
]

RUN_ID = secrets.token_hex(4)
TEST_LABEL = "weave-nb-test"


@pytest.fixture(scope="session")
def docker_api() -> Iterator[Any]:
    """A low-level client of the engine at DOCKER_HOST; skip (or, under CI, fail) without one."""
    host = os.environ.get("DOCKER_HOST")
    why = None
    api = None
    if not host:
        why = "DOCKER_HOST is not set (start an engine with `bash scripts/docker-env.sh start`)"
    else:
        try:
            api = docker.APIClient(base_url=host, version="auto", timeout=120)
            api.ping()
        except Exception as exc:  # noqa: BLE001 - any failure means no engine
            why = f"the Docker engine at {host} does not answer: {exc}"
    if why:
        if _in_ci():
            pytest.fail(f"CI=true but the Docker tests cannot run: {why}", pytrace=False)
        pytest.skip(why)
    yield api
    api.close()


def remove_labelled(api: Any, label: str) -> None:
    """Remove every container, then every image, carrying ``label`` (``key=value``)."""
    for c in api.containers(all=True, filters={"label": [label]}):
        api.remove_container(c["Id"], force=True)
    for img in api.images(filters={"label": [label]}):
        try:
            api.remove_image(img["Id"], force=True)
        except docker.errors.NotFound:
            pass


@pytest.fixture
def docker_names(docker_api: Any) -> Iterator[Callable[[str], str]]:
    """Make unique deployment names; everything labelled with them is removed afterwards."""
    made: list[str] = []

    def make(prefix: str = "t") -> str:
        name = f"{prefix}-{RUN_ID}-{secrets.token_hex(3)}"
        made.append(name)
        return name

    yield make
    for name in made:
        remove_labelled(docker_api, f"weave-nb.name={name}")
    assert not any(
        docker_api.containers(all=True, filters={"label": [f"weave-nb.name={n}"]}) for n in made
    ), "teardown left a container behind"


@pytest.fixture
def test_label(docker_api: Any) -> Iterator[str]:
    """A ``key=value`` label for helper images a test builds; they are removed afterwards."""
    label = f"{TEST_LABEL}={RUN_ID}-{secrets.token_hex(3)}"
    yield label
    remove_labelled(docker_api, label)


@pytest.fixture
def docker_manager(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, docker_api: Any) -> Callable[..., DeploymentManager]:
    """Make a DeploymentManager with its own WEAVE_HOME and the given extra environment."""
    monkeypatch.setenv("WEAVE_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir(exist_ok=True)

    def make(**environ: str) -> DeploymentManager:
        env = {k: v for k, v in os.environ.items()}
        env.update(environ)
        auth = AuthenticationManager(providers=[EnvironmentCredentialProvider(env)], environ=env)
        return DeploymentManager(home=tmp_path / "home", auth=auth)

    return make


@pytest.fixture
def events() -> list[Event]:
    """A list that a sink (``events.append``) fills."""
    return []


def log_lines(collected: list[Event], step: str | None = None) -> list[str]:
    """The text of every LogLine event (of one step, when given)."""
    return [e.text for e in collected if isinstance(e, LogLine) and (step is None or e.step == step)]


def hello_weave(greeting: str = "Greet the user warmly.") -> str:
    """A one-agent weave on the offline mock model; ``greeting`` changes its weave.json."""
    return textwrap.dedent(
        f"""\
        version: "1.0"
        agents:
          greeter:
            model: mock
            outputs: greeting
            config:
              system: {greeting}
        weaves:
          hello:
            description: Say hello
            agents: [greeter]
        """
    )


def free_tcp_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    return free_port("127.0.0.1")


class EndpointPoller:
    """A thread that requests ``url`` back to back (a fresh connection each time) while the ``with`` block runs.

    Attributes:
        answers: ``(status, X-Weave-Instance)`` of every answer (the instance names the container that answered).
        failures: every failed request: ``(seconds since start, error)``.
    """

    def __init__(self, url: str, limit: float = 180.0) -> None:
        self.url, self.limit = url, limit
        self.answers: list[tuple[int, str]] = []
        self.failures: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set() and time.monotonic() - start < self.limit:
            try:
                with urllib.request.urlopen(self.url, timeout=5) as resp:
                    self.answers.append((resp.status, resp.headers.get("X-Weave-Instance") or ""))
            except (urllib.error.URLError, OSError) as exc:
                self.failures.append((time.monotonic() - start, repr(exc)))

    def instances(self) -> list[str]:
        """The containers that answered, in the order they first did."""
        return list(dict.fromkeys(who for _, who in self.answers))

    def __enter__(self) -> "EndpointPoller":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not (self.answers or self.failures) and time.monotonic() < deadline:
            self._stop.wait(0.01)  # the first request has come back: polling is under way before the switch starts
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
