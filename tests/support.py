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


def weave_cli(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    """Run the ``weave`` command line in this process: ``(exit code, stdout, stderr)``; stdin is not a terminal."""
    import io

    from weave_nb.frontends import cli

    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err, stdin=io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


def post_status(url: str, request_id: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> int:
    """POST ``body`` (default ``{"input": "tides"}``) as JSON with an ``X-Request-Id``; the HTTP status, errors included."""
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body or json.dumps({"input": "tides"}).encode(),
                                 headers={"content-type": "application/json", "X-Request-Id": request_id, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code
