"""Calling a deployed weave over HTTP."""

from __future__ import annotations

import json
from typing import Any, Mapping

from .errors import EndpointError, InvokeTimeout, WeaveError


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
        EndpointError: the endpoint answered an error status (``.status`` holds it).
        InvokeTimeout: no answer within ``timeout`` seconds ("no answer within S s").
        WeaveError: the endpoint could not be reached.
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
        raise EndpointError(f"the endpoint answered {exc.code}: {str(detail)[:500]}", answer_hint(exc.code, str(detail)),
                            status=exc.code) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
            raise no_answer(timeout, url) from None
        raise WeaveError(f"could not reach {url}: {reason}", "check `weave status` and that the deployment is running") from None


def no_answer(timeout: float, where: str) -> InvokeTimeout:
    """The one error for a call that got no answer in time: "no answer within S s"."""
    return InvokeTimeout(
        f"no answer within {timeout:g} s from {where} (the weave may still be running)",
        "wait longer with --timeout SECONDS, or see `weave logs` for the deployment",
        seconds=timeout,
    )


def answer_hint(code: int, detail: str = "") -> str:
    """What to do about an error status a weave answered, in the command line's words (``--weave NAME``)."""
    if code in (401, 403):
        return "the endpoint is private: deploy with --public, or call it with credentials"
    words = detail.lower()
    if code in (400, 404) and ("unknown weave" in words or "several weaves" in words):
        return "name the weave with --weave NAME (one of those listed); `weave status` shows the deployment"
    if code == 404:
        return "check the endpoint with `weave status`"
    if code == 400:
        return "pass the text with --input TEXT (or the whole body with --json), and the weave with --weave NAME"
    return "see `weave logs` for the deployment"
