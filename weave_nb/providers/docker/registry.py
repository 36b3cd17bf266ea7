"""Registries: where to push, the login (its password only ever given to the engine), the streamed push.

:class:`RegistryClient` is mixed into :class:`~weave_nb.providers.docker.engine.DockerEngine`;
the small helpers below (the SDK loaded on first use, an SDK error as one
line) are shared with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...core.errors import ConfigError, CredentialsError, DeploymentFailed

if TYPE_CHECKING:
    from ...core.auth import AuthenticationManager
    from ...core.config import AuthConfig

Log = Callable[[str], None]


@dataclass
class RegistryLogin:
    """Where to push and how to log in (the password never leaves this object except to the engine)."""

    url: str
    username: str | None = None
    password: Any = field(default=None, repr=False)  # SecretStr


class RegistryClient:
    """Login and push over ``self.api`` (a ``docker.APIClient``)."""

    api: Any

    @staticmethod
    def registry_login(auth: AuthenticationManager, registry: str | None, config_auth: AuthConfig | None = None) -> RegistryLogin:
        """Registry and credentials from DOCKER_REGISTRY_URL / DOCKER_USERNAME / DOCKER_PASSWORD.

        Without a username the engine's client config (``~/.docker/config.json``
        or ``$DOCKER_CONFIG``) is used at push time.

        Raises:
            ConfigError: no registry is given.
            CredentialsError: a username without a password.
        """
        url = registry or auth.setting("docker", "DOCKER_REGISTRY_URL", auth=config_auth)
        if not url:
            raise ConfigError(
                "pushing needs a registry, and DOCKER_REGISTRY_URL is not set",
                "set DOCKER_REGISTRY_URL=HOST[:PORT][/NAMESPACE] (and DOCKER_USERNAME/DOCKER_PASSWORD), or --option registry=HOST",
            )
        url = url.split("://", 1)[-1].rstrip("/")
        user = auth.setting("docker", "DOCKER_USERNAME", auth=config_auth)
        password = auth.lookup("docker", "DOCKER_PASSWORD", auth=config_auth)
        if user and password is None:
            raise CredentialsError(f"DOCKER_USERNAME is set for {url} but DOCKER_PASSWORD is not", "set DOCKER_PASSWORD too, or unset DOCKER_USERNAME to use the Docker config file")
        return RegistryLogin(url=url, username=user, password=password)

    def login(self, login: RegistryLogin) -> dict | None:
        """Log in to the registry when a username is given (else the Docker config file is used).

        Returns:
            The auth config to pass with a push, or ``None``.

        Raises:
            CredentialsError: the registry refused the login (the password is never in the message).
        """
        if not login.username:
            return None
        password = login.password.get_secret_value() if login.password is not None else ""
        try:
            self.api.login(username=login.username, password=password, registry=login.url, reauth=True)
        except (_docker().errors.DockerException, OSError) as exc:
            reason = _reason(exc).replace(password, "***") if password else _reason(exc)
            raise CredentialsError(f"login to {login.url} as {login.username} failed: {reason}",
                                   "check DOCKER_USERNAME and DOCKER_PASSWORD (or DOCKER_REGISTRY_URL)") from None
        return {"username": login.username, "password": password}

    def push(self, repository: str, tag: str, login: RegistryLogin, log: Log) -> str:
        """Push ``repository:tag`` (logging in first when credentials are given), streaming progress.

        Returns:
            The pushed manifest digest (``sha256:...``).

        Raises:
            CredentialsError: the registry refused the login.
            DeploymentFailed: the push failed.
        """
        auth_config = self.login(login)
        if login.username:
            log(f"logged in to {login.url} as {login.username}")
        digest = None
        seen: set[tuple[str, str]] = set()
        try:
            for item in _lines(self.api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth_config)):
                if "error" in item:
                    raise DeploymentFailed(f"push of {repository}:{tag} failed: {str(item['error']).strip()}", "check the registry address and credentials (DOCKER_REGISTRY_URL, DOCKER_USERNAME, DOCKER_PASSWORD)")
                aux = item.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = aux["Digest"]
                status = str(item.get("status") or "")
                key = (str(item.get("id", "")), status)
                if status and key not in seen:  # one line per layer and state, not every progress tick
                    seen.add(key)
                    log(" ".join(p for p in key if p))
        except (_docker().errors.DockerException, OSError) as exc:
            raise DeploymentFailed(f"push of {repository}:{tag} failed: {_reason(exc)}", "check the registry address and credentials") from None
        if not digest:
            raise DeploymentFailed(f"push of {repository}:{tag} gave no digest", "see the push log above")
        return digest


def _docker() -> Any:
    """The docker SDK, imported on first use (importing it costs ~70 ms)."""
    import docker
    import docker.errors

    return docker


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc) or type(exc).__name__
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return str(text).strip().splitlines()[0][:300] if str(text).strip() else type(exc).__name__


def _lines(stream: Iterable[Any]) -> Iterator[dict]:
    for item in stream:
        if isinstance(item, dict):
            yield item
