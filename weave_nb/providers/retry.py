"""One retry loop for every provider: bounded exponential backoff, optional jitter, injected sleep.

Providers decide what counts as transient (throttling, 5xx, a dropped
connection, in their SDK's terms) and pass their sleep function, so tests
never wait for real.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class RetryPolicy:
    """Bounded exponential backoff, with full jitter unless ``rand`` is ``None``.

    Attributes:
        attempts: tries in all (the first call included).
        base: the first delay in seconds.
        cap: the longest single delay.
        rand: a source of numbers in [0, 1) for jitter; ``None`` for fixed delays.
    """

    attempts: int = 6
    base: float = 0.5
    cap: float = 8.0
    rand: Callable[[], float] | None = field(default=random.random, repr=False)

    def delay(self, attempt: int) -> float:
        """The delay before retry number ``attempt`` (1-based).

        Returns:
            ``min(cap, base * 2**(attempt-1))``, scaled into its upper half by the jitter.
        """
        ceiling = min(self.cap, self.base * (2 ** (attempt - 1)))
        return ceiling if self.rand is None else ceiling * (0.5 + 0.5 * self.rand())


def retry(
    fn: Callable[[], T],
    transient: Callable[[BaseException], bool],
    sleep: Callable[[float], None],
    policy: RetryPolicy,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """Call ``fn`` until it returns, retrying while ``transient(error)`` holds, at most ``policy.attempts`` times.

    Args:
        fn: the call (no arguments).
        transient: whether an error may go away on a retry.
        sleep: waits between tries (tests pass a fake).
        policy: attempts and delays.
        on_retry: told of each retry (the error and the delay) before the wait.

    Returns:
        What ``fn`` returned.

    Raises:
        Exception: a non-transient error at once, or the last transient one after the final attempt.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:  # classified by ``transient``
            if not transient(exc) or attempt >= policy.attempts:
                raise
            delay = policy.delay(attempt)
            if on_retry is not None:
                on_retry(exc, delay)
            sleep(delay)
