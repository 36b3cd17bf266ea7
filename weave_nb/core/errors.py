"""The one error root of weave-nb.

Every failure a user can act on is a :class:`WeaveError` carrying a plain
message and, where there is one, a suggestion saying what to do next.
"""

from __future__ import annotations

import os

from .present import hint_line, with_hint

#: In IPython, a WeaveError shows as its message and hint; set this to True
#: (or the environment variable WEAVE_TRACEBACKS=1) for the full traceback.
SHOW_TRACEBACKS = False


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

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for this error: its type, message and hint, not a long traceback.

        With :data:`SHOW_TRACEBACKS` (or ``WEAVE_TRACEBACKS=1``) it is IPython's full traceback.
        """
        if SHOW_TRACEBACKS or os.environ.get("WEAVE_TRACEBACKS", "").strip().lower() in ("1", "true", "yes", "on"):
            from IPython import get_ipython

            shell = get_ipython()
            if shell is not None:
                return shell.InteractiveTB.structured_traceback(type(self), self, self.__traceback__)
            import traceback

            return traceback.format_exception(type(self), self, self.__traceback__)
        lines = [f"\x1b[31m{type(self).__name__}:\x1b[0m {self.message}"]
        if self.suggestion:
            lines.append(hint_line(self.suggestion))
        lines.append("\x1b[2m(traceback hidden: weave_nb.core.errors.SHOW_TRACEBACKS = True shows it)\x1b[0m")
        return lines


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


class EndpointError(WeaveError):
    """A deployed weave answered an HTTP error status.

    Args:
        message, suggestion: as for :class:`WeaveError`.
        status: the HTTP status the endpoint answered (400, 404, 500, ...).
    """

    def __init__(self, message: str, suggestion: str | None = None, status: int = 0) -> None:
        super().__init__(message, suggestion)
        self.status = status


class InvokeTimeout(WeaveError):
    """A call to a deployed weave got no answer within the time it was given (it may still be running)."""

    def __init__(self, message: str, suggestion: str | None = None, seconds: float = 0.0) -> None:
        super().__init__(message, suggestion)
        self.seconds = seconds
