"""Test support shared by every server fixture: free ports, waits on real conditions, a recording sleep."""

from __future__ import annotations

import urllib.error
import urllib.request

from weave_nb.core.procutil import free_port, wait_for

__all__ = ["FakeSleep", "free_port", "http_answers", "wait_for"]


class FakeSleep:
    """Records requested sleeps instead of sleeping (passed where the code takes ``sleep``)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def http_answers(url: str, timeout: float) -> bool:
    """Wait until ``url`` answers at all (any HTTP status, even an error); False when ``timeout`` passes first."""

    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    return wait_for(answers, timeout, 0.05)
