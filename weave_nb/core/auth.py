"""Credentials: where they come from, and how they are kept secret.

A provider asks the :class:`AuthenticationManager` for a value by name (for
example ``("aws", "AWS_ACCESS_KEY_ID")``). The manager asks its credential
providers in order: the deployment's own ``auth`` settings first, then each
registered :class:`CredentialProvider` (environment, then the config file).
Every value comes back as a ``SecretStr``.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterable, Mapping

from pydantic import SecretStr

from .config import AUTH_METHODS, AuthConfig  # noqa: F401 - AUTH_METHODS re-exported for providers
from .errors import CredentialsError


class CredentialProvider(ABC):
    """A source of credential values. Subclass it to add a vault or keyring."""

    name: str = "custom"

    @abstractmethod
    def get(self, provider: str, key: str) -> str | None:
        """Return the value for ``key`` used by ``provider``, or ``None``.

        Args:
            provider: the deployment provider asking (``aws``, ``gcp``...).
            key: the variable name, e.g. ``AWS_ACCESS_KEY_ID``.
        """


class EnvironmentCredentialProvider(CredentialProvider):
    """Reads process environment variables (or a given mapping)."""

    name = "environment"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    @property
    def environ(self) -> Mapping[str, str]:
        """The mapping read from (``os.environ`` unless one was given)."""
        return os.environ if self._environ is None else self._environ

    def get(self, provider: str, key: str) -> str | None:
        val = self.environ.get(key)
        return val if val else None


class FileCredentialProvider(CredentialProvider):
    """Reads a YAML (or JSON) file of per-provider values.

    The file maps provider names to variables::

        aws:
          AWS_ACCESS_KEY_ID: ...
          AWS_SECRET_ACCESS_KEY: ...
        gcp:
          GOOGLE_APPLICATION_CREDENTIALS: /path/to/key.json

    Args:
        path: the file; default ``$WEAVE_HOME/credentials.yaml``.
    """

    name = "file"

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path else weave_home() / "credentials.yaml"
        self._data: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._data is None:
            self._data = {}
            if self.path.is_file():
                import yaml

                try:
                    loaded = yaml.safe_load(self.path.read_text()) or {}
                except yaml.YAMLError:
                    raise CredentialsError(
                        f"the credentials file {self.path} is not valid YAML",
                        "fix its syntax (it maps provider names to KEY: value pairs)",
                    ) from None
                if isinstance(loaded, dict):
                    self._data = loaded
        return self._data

    def get(self, provider: str, key: str) -> str | None:
        section = self._load().get(provider) or {}
        val = section.get(key) if isinstance(section, dict) else None
        return None if val in (None, "") else str(val)


def weave_home() -> Path:
    """The folder for the inventory, logs and credentials (``$WEAVE_HOME``, default ``~/.weave``)."""
    # absolute, so recorded paths (and a server process started in another folder) stay valid
    return Path(os.environ.get("WEAVE_HOME") or Path.home() / ".weave").expanduser().absolute()


class AuthenticationManager:
    """Looks up credentials for providers through a chain of credential providers.

    Args:
        providers: credential providers to ask, in order; default environment then file.
        environ: the environment mapping used by the default environment provider.
    """

    def __init__(
        self,
        providers: Iterable[CredentialProvider] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if providers is None:
            providers = [EnvironmentCredentialProvider(environ), FileCredentialProvider()]
        self.providers: list[CredentialProvider] = list(providers)
        self._environ = environ

    @property
    def environ(self) -> Mapping[str, str]:
        """The environment that env-var based lookups read."""
        return os.environ if self._environ is None else self._environ

    def register(self, provider: CredentialProvider, first: bool = False) -> None:
        """Add a credential provider to the chain (last, or first)."""
        if first:
            self.providers.insert(0, provider)
        else:
            self.providers.append(provider)

    def lookup(self, provider: str, *keys: str, auth: AuthConfig | None = None) -> SecretStr | None:
        """Return the first value found for any of ``keys``, as a secret.

        ``auth.params`` are asked first, by the key itself or its lower-case
        form without the provider prefix (``AWS_ACCESS_KEY_ID`` also matches
        ``access_key_id``).
        """
        for key in keys:
            if auth is not None:
                for candidate in _aliases(provider, key):
                    val = auth.get(candidate)
                    if val:
                        return SecretStr(val)
            for source in self.providers:
                val = source.get(provider, key)
                if val:
                    return SecretStr(val)
        return None

    def setting(self, provider: str, *keys: str, auth: AuthConfig | None = None) -> str | None:
        """Like :meth:`lookup` but for non-secret settings (region, project, endpoint)."""
        found = self.lookup(provider, *keys, auth=auth)
        return found.get_secret_value() if found else None

    def require(self, provider: str, keys: Iterable[str], how: str, auth: AuthConfig | None = None) -> SecretStr:
        """Like :meth:`lookup` but raise a :class:`CredentialsError` listing ``how`` when missing."""
        keys = list(keys)
        found = self.lookup(provider, *keys, auth=auth)
        if found is None:
            raise CredentialsError(f"no credentials for {provider}: none of {', '.join(keys)} is set", how)
        return found

    def __repr__(self) -> str:
        return f"AuthenticationManager(providers={[p.name for p in self.providers]})"


def _aliases(provider: str, key: str) -> list[str]:
    out = [key, key.lower()]
    prefix = provider.upper() + "_"
    if key.startswith(prefix):
        out.append(key[len(prefix):].lower())
    return out
