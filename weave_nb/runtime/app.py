"""The HTTP contract of a deployed weave, independent of any server.

``handle(method, path, body, headers)`` answers ``(status, headers, body)``;
the Lambda, Cloud Functions and ``http.server`` adapters only translate to
and from it. Standard library only.

* ``GET /health`` -> ``{"status": "ok", "weaves": [...], "spec_hash": ...}``
* ``POST /`` or ``POST /invoke`` with ``{"weave": ..., "input": ...}`` ->
  the result of :func:`engine.run_weave`
* errors -> ``{"error": message}`` with 400, 404, 405, 413 or 500.
"""

from __future__ import annotations

import json
import os
import time

from . import engine, secret_loader
from .errors import ModelError, RequestError, scrub, secret_values

__all__ = ["handle", "MAX_BODY_BYTES"]

MAX_BODY_BYTES = 1 << 20
_JSON = {"Content-Type": "application/json"}
_ROUTES = {"/health": ("GET",), "/": ("POST",), "/invoke": ("POST",)}


def _answer(status: int, payload: dict, extra: dict | None = None) -> tuple[int, dict, bytes]:
    headers = dict(_JSON)
    if extra:
        headers.update(extra)
    return status, headers, json.dumps(payload).encode("utf-8")


def _error(status: int, message: str, extra: dict | None = None) -> tuple[int, dict, bytes]:
    return _answer(status, {"error": message}, extra)


def handle(method: str, path: str, body: bytes, headers: dict | None = None, *,
           spec_path: str | None = None, environ=None, sleep=time.sleep, platform: str = "plain",
           request_id: str | None = None, record_sink=None) -> tuple[int, dict, bytes]:
    """Answer one HTTP request.

    Args:
        method: HTTP method, any case.
        path: request path; a query string is ignored.
        body: raw request body.
        headers: request headers (unused today; kept for adapters).
        spec_path: ``weave.json`` to serve; default :func:`engine.default_spec_path`.
        environ: environment for the models; ``os.environ`` by default.
        sleep: retry wait function passed to the model backends.
        platform: how the request record is written: ``"lambda"`` (with
            CloudWatch EMF), ``"gcp"`` (structured logging) or ``"plain"``;
            see :mod:`records`.
        request_id: the platform's id for the request (Lambda's), if any.
        record_sink: a callable taking the record's JSON line instead of
            writing it to stderr (tests).

    Returns:
        ``(status, response headers, response body bytes)``; the body is
        always JSON. Errors never contain API keys or env values.
    """
    environ = os.environ if environ is None else environ
    started, clock = time.time(), time.perf_counter()
    trace: dict = {"weave": None, "agents": [], "error": None, "secrets": ()}
    answer = _handle(method, path, body, spec_path, environ, sleep, trace)
    if trace.get("record", True):
        from . import records

        record = records.build(started=started, duration_ms=(time.perf_counter() - clock) * 1000,
                               rid=records.request_id(headers, request_id), weave=trace["weave"], status=answer[0],
                               agents=trace["agents"], error=trace["error"], environ=environ)
        try:
            records.emit(record, platform, trace["secrets"], environ, started, record_sink)
        except (OSError, ValueError):  # a closed stderr must not fail the request
            pass
    return answer


def _handle(method, path, body, spec_path, environ, sleep, trace: dict) -> tuple[int, dict, bytes]:
    method = (method or "GET").upper()
    path = (path or "/").split("?", 1)[0]
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    allowed = _ROUTES.get(path)
    trace["record"] = path != "/health"
    if allowed is None:
        trace["error"] = "RequestError"
        return _error(404, f"No route for {path}; use POST / or GET /health.")
    if method not in allowed:
        trace["error"] = "RequestError"
        return _error(405, f"Method {method} not allowed on {path}; use {', '.join(allowed)}.",
                      {"Allow": ", ".join(allowed)})
    try:
        spec, digest = engine.load_spec(spec_path), engine.spec_hash(spec_path)
    except engine.SpecLoadError as exc:
        trace["error"] = "SpecLoadError"
        _log(f"weave runtime: {exc}")
        return _error(500, "The deployment has no usable weave spec (weave.json); redeploy it.")
    try:  # managed secrets: read once, at the first request of this process (cold start)
        secret_loader.load_secrets(environ)
    except secret_loader.SecretLoadError as exc:
        _log(f"weave runtime: {exc}")
        return _error(500, f"A managed secret could not be read: {exc}")
    if path == "/health":
        health = {"status": "ok", "weaves": sorted(spec.get("weaves", {})), "spec_hash": digest}
        if secret_loader.loaded_names(environ):  # names only, never values
            health["secrets"] = secret_loader.loaded_names(environ)
        return _answer(200, health)
    secrets = trace["secrets"] = secret_values(environ, (*spec.get("env_keys", ()), *secret_loader.loaded_names(environ)))
    try:
        weave, text = _parse_request(body)
        trace["weave"] = weave
        if weave is None or weave in spec.get("weaves", {}):
            trace["weave"] = engine.pick_weave(spec, weave)
        result = engine.run_weave(spec, weave, text, environ, sleep=sleep, trace=trace["agents"])
    except RequestError as exc:
        trace["error"] = "RequestError"
        return _error(exc.status, scrub(exc.message, secrets))
    except ModelError as exc:
        trace["error"] = "ModelError"
        message = scrub(exc.message, secrets)
        _log(f"weave runtime: model failure: {message}")
        return _error(500, message)
    except Exception as exc:  # noqa: BLE001 - the caller gets a 500, the log gets the type
        trace["error"] = type(exc).__name__
        _log(f"weave runtime: internal error: {type(exc).__name__}: {scrub(str(exc), secrets)}")
        return _error(500, f"Internal error while running the weave ({type(exc).__name__}).")
    return _answer(200, result)


def _parse_request(body: bytes) -> tuple[str | None, str]:
    if body is None or not body.strip():
        raise RequestError(400, "Request body is empty; send JSON like {\"input\": \"...\"}.")
    if len(body) > MAX_BODY_BYTES:
        raise RequestError(413, f"Request body is larger than {MAX_BODY_BYTES} bytes.")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"Request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise RequestError(400, "Request body must be a JSON object like {\"weave\": ..., \"input\": ...}.")
    if "input" not in data:
        raise RequestError(400, "Missing \"input\": send {\"input\": \"...\"}.")
    if not isinstance(data["input"], str):
        raise RequestError(400, "\"input\" must be a string.")
    weave = data.get("weave")
    if weave is not None and not isinstance(weave, str):
        raise RequestError(400, "\"weave\" must be a string naming a weave.")
    return weave, data["input"]


def _log(line: str) -> None:
    from .records import write_line

    write_line(line)
