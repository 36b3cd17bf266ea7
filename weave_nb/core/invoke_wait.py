"""How long ``weave invoke`` (and ``weave bench``) wait for a deployed weave to answer.

The rule, in order:

1. ``--timeout S`` (``timeout=S``) when given: exactly ``S`` seconds;
2. the deployment's own request timeout plus :data:`MARGIN`: the
   ``timeout_seconds`` it was deployed with (recorded in the inventory's
   details at deploy time), else its provider's default
   (``DeploymentProvider.timeout_default``: 60 s on Lambda as weave-nb
   deploys it, 60 s on Cloud Functions);
3. :data:`NO_LIMIT_WAIT` for a provider whose server puts no limit on a
   request (local, docker) and a deployment that set none.

A call that gets no answer in that time fails with
:class:`~weave_nb.core.errors.InvokeTimeout` ("no answer within S s"), not
with "could not reach".
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigError

#: seconds added to the deployment's own timeout: connection set-up, a cold start, the answer's way back
MARGIN = 10.0
#: the wait for a deployment whose server has no request timeout (local process, container)
NO_LIMIT_WAIT = 300.0


def invoke_wait(record: Any, provider: Any, given: float | None = None) -> float:
    """The seconds to wait for one answer of the deployment ``record`` on ``provider``.

    Args:
        record: the deployment's inventory row (``DeploymentInfo``) or ``None``.
        provider: the provider instance (its ``timeout_default`` is read, if any).
        given: ``--timeout``; wins when not ``None``.

    Returns:
        Seconds, greater than 0.

    Raises:
        ConfigError: ``given`` is not a positive number.
    """
    if given is not None:
        return check_timeout(given)
    own = None
    if record is not None:
        own = (record.details or {}).get("timeout_seconds")
    if own is None:
        own = getattr(provider, "timeout_default", None)
    if own is None:
        return NO_LIMIT_WAIT
    return float(own) + MARGIN


def check_timeout(value: Any) -> float:
    """``value`` as a positive number of seconds.

    Raises:
        ConfigError: not a number, or not above 0.
    """
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--timeout must be a number of seconds, got {value!r}", "e.g. --timeout 30") from None
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise ConfigError(f"--timeout must be more than 0 seconds, got {value!r}", "e.g. --timeout 30") from None
    return seconds
