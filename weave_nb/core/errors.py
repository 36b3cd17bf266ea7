"""The one error root of weave-nb.

Every failure a user can act on is a :class:`WeaveError` carrying a plain
message and, where there is one, a suggestion saying what to do next.
"""

from __future__ import annotations

from .present import with_hint


class WeaveError(Exception):
    """A failure the user can act on.

    Args:
        message: what went wrong, in one or two sentences; never a secret.
        suggestion: what to do about it, or ``None``.
    """

    def __init__(self, message: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.suggestion = suggestion

    def __str__(self) -> str:
        return with_hint(self.message, self.suggestion)


class WeaveSpecError(WeaveError):
    """A .weave.yaml file is missing, malformed or inconsistent."""


class ConfigError(WeaveError):
    """A deployment setting is invalid; raised before any remote call."""


class ProviderUnavailable(WeaveError):
    """A provider is unknown, or its optional dependency is not installed."""


class CredentialsError(WeaveError):
    """No usable credentials were found for a provider."""


class DeploymentFailed(WeaveError):
    """A deployment step failed after work had started."""


class DeploymentBusy(WeaveError):
    """Another process holds the lock for this deployment."""


class NotFound(WeaveError):
    """The named deployment does not exist."""


class ForeignResource(ConfigError):
    """A resource with the deployment's name exists but this inventory did not make it; nothing was changed."""
class InventoryError(WeaveError):
    """The inventory (``$WEAVE_HOME/inventory.db``) is damaged or cannot be used."""
