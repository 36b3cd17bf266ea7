"""Calling a deployed weave over HTTP."""

from __future__ import annotations

import json
from typing import Any, Mapping

from .errors import WeaveError


def post_json(url: str, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None, timeout: float = 60) -> Any:
    """POST ``payload`` as JSON to ``url`` and return the decoded answer.

    Args:
        url: the endpoint.
        payload: the request body, e.g. ``{"weave": "w", "input": "hi"}``.
        headers: extra headers (for signed requests).
        timeout: seconds to wait for the answer.

    Returns:
        The decoded JSON body of a 2xx answer.

    Raises:
        WeaveError: the endpoint answered an error or could not be reached.
    """
    import urllib.error  # imported here: urllib.request costs ~10 ms and most commands never call out
    import urllib.request

    body = json.dumps(payload).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except (ValueError, AttributeError):
            pass
        raise WeaveError(f"the endpoint answered {exc.code}: {str(detail)[:500]}", _hint(exc.code)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WeaveError(f"could not reach {url}: {reason}", "check `weave status` and that the deployment is running") from None


def _hint(code: int) -> str:
    if code in (401, 403):
        return "the endpoint is private: deploy with --public, or call it with credentials"
    if code == 404:
        return "check the weave name (GET /health lists them)"
    if code == 400:
        return 'send {"weave": NAME, "input": TEXT}'
    return "see `weave logs` for the deployment"
