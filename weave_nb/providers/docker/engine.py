"""The Docker engine as the provider uses it: connection, streamed build and pull, containers, health waits.

Pushing and registry logins are in ``registry`` (mixed into :class:`DockerEngine`).
This module and ``registry`` are the only ones that import ``docker``,
and only once an engine is to be reached (a missing unix socket is reported
without loading it).
Every engine failure comes out as a :class:`~weave_nb.core.errors.WeaveError`
subclass with a suggestion; long operations stream their output line by
line to a callback as it arrives; waits take the caller's sleep and clock.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...core.errors import ConfigError, DeploymentFailed, ProviderUnavailable
from .registry import Log, RegistryClient, RegistryLogin, _docker, _lines, _reason

__all__ = ["BASE_IMAGE_HINT", "DockerEngine", "EngineUnavailable", "Log", "RegistryLogin", "START_HINT"]

if TYPE_CHECKING:
    from ...core.auth import AuthenticationManager
    from ...core.config import AuthConfig

ENGINE_KEYS = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")
START_HINT = (
    "start Docker (Docker Desktop, or `sudo systemctl start docker`), or point DOCKER_HOST at a running engine "
    "(unix:///path/to/docker.sock, or tcp://HOST:2376 with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH)"
)


class EngineUnavailable(ProviderUnavailable):
    """The Docker engine cannot be reached."""


class DockerEngine(RegistryClient):
    """A connected engine.

    Args:
        api: a ``docker.APIClient``.
        host: the engine address, for messages.
    """

    def __init__(self, api: Any, host: str) -> None:
        self.api = api
        self.host = host
        # docker-py's high-level client over the same connection: Container and Image models for reading state
        self.client = object.__new__(_docker().DockerClient)
        self.client.api = api

    # connection -------------------------------------------------------------
    @classmethod
    def connect(cls, auth: AuthenticationManager, config_auth: AuthConfig | None = None, timeout: float = 300) -> DockerEngine:
        """Connect to the engine named by DOCKER_HOST (and the TLS variables) through the auth chain.

        Args:
            auth: the AuthenticationManager (environment, credentials file...).
            config_auth: the deployment's own ``auth`` settings, asked first.
            timeout: seconds an engine call may take once connected.

        Returns:
            The connected :class:`DockerEngine`.

        Raises:
            EngineUnavailable: the engine does not answer; says how to start one or point at one.
        """
        environment = {}
        for key in ENGINE_KEYS:
            val = auth.setting("docker", key, auth=config_auth)
            if val:
                environment[key] = val
        host = environment.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        if host.startswith("unix://") and not os.path.exists(host[len("unix://"):]):
            # what docker-py would find out, without loading it (keeps `weave deployments` quick)
            raise EngineUnavailable(f"cannot reach the Docker engine at {host}: no engine socket there", START_HINT)
        environment["WEAVE_NB"] = "1"  # never empty: docker-py would fall back to os.environ
        try:
            api = _docker().APIClient(**_docker().utils.kwargs_from_env(environment=environment), timeout=10, version="auto")
            api.ping()
        except (_docker().errors.DockerException, OSError, ValueError) as exc:
            raise EngineUnavailable(f"cannot reach the Docker engine at {host}: {_engine_reason(exc)}", START_HINT) from None
        api.timeout = timeout
        return cls(api, host)

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except _docker().errors.NotFound:
            raise
        except _docker().errors.APIError as exc:
            raise DeploymentFailed(f"Docker engine: {what} failed: {_reason(exc)}", "see `docker info` and the engine's log") from None
        except (_docker().errors.DockerException, OSError) as exc:
            raise EngineUnavailable(f"lost the Docker engine at {self.host} during {what}: {_reason(exc)}", START_HINT) from None

    # images -----------------------------------------------------------------
    def can_pull(self, ref: str) -> str | None:
        """``None`` when ``ref`` can be pulled (the registry knows it), else the reason it cannot."""
        try:
            self.api.inspect_distribution(ref)
            return None
        except (_docker().errors.DockerException, OSError) as exc:
            return _reason(exc)

    def pull(self, ref: str, log: Log) -> None:
        """Pull ``ref``, streaming progress to ``log``.

        Raises:
            ConfigError: the image cannot be pulled; says how to set base_image.
        """
        repo, tag = _split_ref(ref)
        try:
            for item in _lines(self.api.pull(repo, tag=tag, stream=True, decode=True)):
                if "error" in item:
                    raise _docker().errors.APIError(item.get("error"))
                if item.get("status") and "progress" not in item:
                    log(" ".join(str(item[k]) for k in ("id", "status") if item.get(k)))
        except (_docker().errors.DockerException, OSError) as exc:
            raise ConfigError(f"base image {ref} is not here and cannot be pulled: {_reason(exc)}", BASE_IMAGE_HINT) from None

    def build(self, context: bytes, ref: str, log: Log, tail: int = 30) -> str:
        """Build an image from an in-memory tar context with the streaming API.

        Each line of build output goes to ``log`` as it arrives.

        Returns:
            The image id.

        Raises:
            DeploymentFailed: the build failed; the message carries the tail of the build log.
        """
        import io

        last: collections.deque[str] = collections.deque(maxlen=tail)
        image_id = None
        error = None
        try:
            stream = self.api.build(fileobj=io.BytesIO(context), custom_context=True, tag=ref, rm=True, forcerm=True, decode=True, pull=False)
            for item in _lines(stream):
                if "stream" in item:
                    for line in str(item["stream"]).splitlines():
                        if line.strip():
                            last.append(line.rstrip())
                            log(line.rstrip())
                elif "status" in item:
                    text = " ".join(str(item[k]) for k in ("id", "status") if item.get(k))
                    last.append(text)
                    log(text)
                if "aux" in item and isinstance(item["aux"], dict) and item["aux"].get("ID"):
                    image_id = item["aux"]["ID"]
                if "error" in item:
                    error = str(item.get("error") or item.get("errorDetail", {}).get("message", "unknown error")).strip()
                    last.append(error)
                    log(error)
        except _docker().errors.APIError as exc:
            error = _reason(exc)
            last.append(error)
        except (_docker().errors.DockerException, OSError) as exc:
            raise EngineUnavailable(f"lost the Docker engine at {self.host} during the build: {_reason(exc)}", START_HINT) from None
        if error or image_id is None:
            body = "\n".join(f"  | {line}" for line in last)
            raise DeploymentFailed(
                f"the image build failed: {error or 'no image was produced'}\nlast lines of the build log:\n{body}",
                "fix the step above (the base_image option sets the FROM image), then deploy again",
            )
        return image_id

    def tag(self, image: str, repository: str, tag: str) -> None:
        """Tag ``image`` as ``repository:tag``."""
        self._call(f"tag {repository}:{tag}", lambda: self.api.tag(image, repository, tag))

    def remove_image(self, ref: str) -> bool:
        """Remove an image (every tag of it when ``ref`` is an id); False when it was not there."""
        try:
            self._call(f"remove image {ref}", lambda: self.api.remove_image(ref, force=True, noprune=False))
            return True
        except _docker().errors.NotFound:
            return False

    # docker-py models (read state through their properties) -----------------
    def get_container(self, name: str) -> Any:
        """The ``docker.models.containers.Container`` named (or with id) ``name``, or ``None``."""
        try:
            return self._call(f"inspect container {name}", lambda: self.client.containers.get(name))
        except _docker().errors.NotFound:
            return None

    def list_containers(self, labels: dict[str, str]) -> list[Any]:
        """Container models, running and stopped, carrying every label in ``labels``."""
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        return self._call("list containers", lambda: self.client.containers.list(all=True, filters=filters, ignore_removed=True))

    def get_image(self, ref: str) -> Any:
        """The ``docker.models.images.Image`` for ``ref`` (a tag or an id), or ``None``."""
        try:
            return self._call(f"inspect image {ref}", lambda: self.client.images.get(ref))
        except _docker().errors.NotFound:
            return None

    def list_images(self, labels: dict[str, str]) -> list[Any]:
        """Image models carrying every label in ``labels``."""
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        return self._call("list images", lambda: self.client.images.list(filters=filters))

    # containers -------------------------------------------------------------
    def container(self, name: str) -> dict | None:
        """The container's inspect data, or ``None``."""
        try:
            return self._call(f"inspect container {name}", lambda: self.api.inspect_container(name))
        except _docker().errors.NotFound:
            return None

    def run(self, name: str, image: str, *, port: int | None, host: str, container_port: int, env: dict[str, str],
            labels: dict[str, str], binds: list[str], memory_mb: int | None = None, user: str | None = None,
            files: bytes | None = None, network_mode: str | None = None, command: list[str] | None = None,
            healthcheck: dict | None = None) -> str:
        """Create and start a detached container (init, restart unless-stopped, short stop timeout).

        ``files``, a tar, is unpacked at ``/`` in the created container before it starts (managed secrets).

        ``port=None`` publishes nothing (a trial container, checked by its own health probe).
        ``network_mode="container:<id>"`` joins another container's network namespace (a port holder's:
        it publishes the port, so ``port`` must be ``None``). ``command`` replaces the image's CMD.

        Returns:
            The container id.
        """
        host_config = self.api.create_host_config(
            port_bindings={container_port: (host, port)} if port is not None else None,
            restart_policy={"Name": "unless-stopped"},
            init=True,
            binds=binds or None,
            mem_limit=f"{memory_mb}m" if memory_mb else None,
            network_mode=network_mode,
        )
        created = self._call(f"create container {name}", lambda: self.api.create_container(
            image, name=name, detach=True, ports=[container_port] if port is not None else None, environment=env, labels=labels,
            host_config=host_config, stop_timeout=2, user=user, command=command, healthcheck=healthcheck,
        ))
        cid = created["Id"]
        try:
            if files is not None:
                self._call(f"copy secret files into {name}", lambda: self.api.put_archive(cid, "/", files))
            self._call(f"start container {name}", lambda: self.api.start(cid))
        except Exception:
            self.remove_container(cid)
            raise
        return cid

    def stop(self, name: str, timeout: int = 2) -> None:
        """Stop a container (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
        try:
            self._call(f"stop container {name}", lambda: self.api.stop(name, timeout=timeout))
        except _docker().errors.NotFound:
            pass

    def start(self, name: str) -> None:
        """Start a stopped container."""
        self._call(f"start container {name}", lambda: self.api.start(name))

    def rename(self, name: str, new: str) -> None:
        """Rename a container."""
        self._call(f"rename container {name}", lambda: self.api.rename(name, new))

    def remove_container(self, name: str) -> bool:
        """Force-remove a container; False when it was not there."""
        try:
            self._call(f"remove container {name}", lambda: self.api.remove_container(name, force=True, v=False))
            return True
        except _docker().errors.NotFound:
            return False

    def logs(self, name: str, tail: int = 100) -> str:
        """The container's recent output (stdout and stderr)."""
        try:
            raw = self._call(f"logs of {name}", lambda: self.api.logs(name, stdout=True, stderr=True, tail=tail))
        except _docker().errors.NotFound:
            return ""
        return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)

    def log_stream(self, name: str, since: float | None = None, follow: bool = False) -> Any:
        """The container's output with the engine's timestamps (``TIME text`` lines, bytes), as an iterator.

        Args:
            name: the container.
            since: only output at or after this Unix time.
            follow: keep the stream open for new output (close the answer to stop).

        Returns:
            An iterator of byte lines (docker-py's ``CancellableStream`` when following; it has ``close()``).
        """
        kwargs: dict[str, Any] = {"stdout": True, "stderr": True, "timestamps": True, "stream": True, "follow": follow}
        if since is not None and since > 0:
            kwargs["since"] = float(since)
        return self._call(f"logs of {name}", lambda: self.api.logs(name, **kwargs))

    def wait_healthy(self, name: str, timeout: float, sleep: Callable[[float], None], clock: Callable[[], float],
                     interval: float = 0.1) -> tuple[bool, str]:
        """Poll the container's state until its health is ``healthy``, it fails, or ``timeout`` passes.

        Returns:
            ``(True, "healthy")`` or ``(False, why)`` where ``why`` quotes the
            health probe's output or the container's log tail.
        """
        deadline = clock() + timeout
        while True:
            data = self.container(name)
            if data is None:
                return False, "the container disappeared"
            state = data.get("State") or {}
            health = (state.get("Health") or {}).get("Status")
            if health == "healthy":
                return True, "healthy"
            if state.get("Status") in ("exited", "dead") or state.get("Restarting") or data.get("RestartCount", 0) > 0:
                code = state.get("ExitCode")
                return False, f"the server exited (status {code}); its log ends with:\n{_indent(self.logs(name, 15))}"
            if health == "unhealthy":
                return False, f"the health check failed: {_health_output(state)}; the log ends with:\n{_indent(self.logs(name, 10))}"
            if health is None and state.get("Status") == "running" and not (data.get("Config") or {}).get("Healthcheck"):
                return False, "the image has no HEALTHCHECK"
            if clock() >= deadline:
                return False, f"not healthy after {timeout:g}s (health: {health or 'unknown'}); {_health_output(state)}"
            sleep(interval)


    def wait_answering(self, name: str, instance: str, timeout: float, sleep: Callable[[float], None],
                       clock: Callable[[], float], interval: float = 0.2) -> tuple[bool, str]:
        """Wait until the container's OWN server answers ``/health`` with 200 in the namespace it shares.

        Two servers listen on the port during a switch-over (SO_REUSEPORT), so an answer proves
        nothing by itself: a probe run inside the container (``docker exec``) opens fresh
        connections until one is answered with ``X-Weave-Instance: <instance>``, the marker only
        this container's server sends.

        Returns:
            ``(True, "answering")`` or ``(False, why)`` (it exited, or the deadline passed).
        """
        deadline = clock() + timeout
        last = "no probe has run yet"
        while True:
            data = self.container(name)
            if data is None:
                return False, "the container disappeared"
            state = data.get("State") or {}
            if state.get("Status") in ("exited", "dead") or state.get("Restarting") or data.get("RestartCount", 0) > 0:
                return False, f"the server exited (status {state.get('ExitCode')}); its log ends with:\n{_indent(self.logs(name, 15))}"
            if state.get("Running"):
                try:
                    ex = self.api.exec_create(name, ["python3", "-c", _OWN_PROBE])
                    out = self.api.exec_start(ex["Id"])
                    code = self.api.exec_inspect(ex["Id"]).get("ExitCode")
                    text = (out.decode(errors="replace") if isinstance(out, bytes) else str(out)).strip()
                    if code == 0 and text == instance:
                        return True, "answering"
                    last = text.splitlines()[-1][:300] if text else f"probe exit {code}"
                except (_docker().errors.DockerException, OSError) as exc:
                    last = _reason(exc)
            if clock() >= deadline:
                return False, f"its own server did not answer /health within {timeout:g}s (last probe: {last})"
            sleep(interval)


# Run inside a release container: fresh connections to the shared port until this container's own
# server answers /health 200 (its X-Weave-Instance is this container's WEAVE_INSTANCE); prints what it saw.
_OWN_PROBE = """
import os, sys, urllib.request
mine, seen = os.environ.get("WEAVE_INSTANCE", ""), "no answer"
for _ in range(64):
    try:
        r = urllib.request.urlopen("http://127.0.0.1:8080/health", timeout=2)
        who = r.headers.get("X-Weave-Instance") or ""
        if who == mine and r.status == 200:
            print(mine)
            sys.exit(0)
        seen = "answered by " + (who or "another server")
    except Exception as exc:
        seen = type(exc).__name__ + ": " + str(exc)
print(seen)
sys.exit(1)
"""


BASE_IMAGE_HINT = (
    "pull or build it first (`docker pull IMAGE`), or choose another base with "
    "--base-image IMAGE (or --option base_image=IMAGE); it needs python3 3.9+"
)


def _engine_reason(exc: BaseException) -> str:
    text = str(exc)
    for needle, plain in (("FileNotFoundError", "no engine socket there"), ("ConnectionRefused", "connection refused"), ("Connection refused", "connection refused"),
                          ("PermissionError", "permission denied on the socket"), ("timed out", "timed out")):
        if needle in text:
            return plain
    return _reason(exc)


def _health_output(state: dict) -> str:
    logs = (state.get("Health") or {}).get("Log") or []
    if not logs:
        return "no probe has run yet"
    last = logs[-1]
    out = str(last.get("Output") or "").strip().splitlines()
    return f"last probe exit {last.get('ExitCode')}: {out[-1][:300] if out else 'no output'}"


def _indent(text: str) -> str:
    return "\n".join(f"  | {line}" for line in text.strip().splitlines()) or "  | (empty)"


def _split_ref(ref: str) -> tuple[str, str | None]:
    if "@" in ref:
        return ref, None
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = ref.rsplit(":", 1)
        return repo, tag
    return ref, "latest"
