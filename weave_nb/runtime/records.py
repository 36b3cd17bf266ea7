"""One structured JSON line per request (standard library only).

Every request the runtime answers (``GET /health`` excepted: probes would
drown the numbers) is written as one JSON line::

    {"type": "weave.request", "time": "2026-01-01T12:00:00.123Z", "request_id": "...",
     "deployment": "demo", "weave": "pipeline", "status": 200, "duration_ms": 12.5,
     "input_tokens": 40, "output_tokens": 80,
     "agents": [{"agent": "...", "model": "...", "backend": "...", "duration_ms": 5.1,
                 "input_tokens": 20, "output_tokens": 40}],
     "error": null}

``deployment`` comes from ``WEAVE_DEPLOYMENT`` (every provider sets it);
``error`` is a short error class (``RequestError``, ``ModelError``, an
internal exception's type name), never a message, so no text that came from
a model, a caller or the environment is written, and the line is scrubbed of
secret values all the same.

How the line is dressed depends on where it runs (``platform``):

* ``"lambda"``: CloudWatch Embedded Metric Format is added (``_aws`` with
  namespace ``WeaveNb``, dimension ``Deployment``, metrics ``Requests``,
  ``Errors`` (status >= 500), ``Latency``, ``InputTokens``, ``OutputTokens``),
  so CloudWatch turns the line into metrics with no extra call;
* ``"gcp"``: Cloud Logging structured logging (``severity`` ``INFO`` or
  ``ERROR``, ``message``); the record's keys land in ``jsonPayload``;
* ``"plain"``: the record as is (local processes and Docker containers).

Lines go to stderr. With ``WEAVE_LOG_TIMESTAMPS=1`` (the local provider
sets it) every line the runtime writes starts with its UTC time
(``2026-01-01T12:00:00.123Z``), so a log file alone tells when.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

__all__ = ["NAMESPACE", "METRICS", "iso_time", "request_id", "build", "dress", "emit", "write_line"]

NAMESPACE = "WeaveNb"
METRICS = (("Requests", "Count"), ("Errors", "Count"), ("Latency", "Milliseconds"),
           ("InputTokens", "Count"), ("OutputTokens", "Count"))
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/")
_write_lock = threading.Lock()


def iso_time(epoch: float) -> str:
    """``epoch`` seconds as ISO-8601 UTC with milliseconds and ``Z``."""
    millis = int(epoch * 1000)  # floored: a line is never stamped later than it was written
    seconds, ms = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


def request_id(headers: dict | None, given: str | None = None) -> str:
    """The request's id: ``given`` (Lambda's), a well-formed ``X-Request-Id`` or
    ``Function-Execution-Id`` header, else a new random one."""
    candidates = [given]
    for key, value in (headers or {}).items():
        if str(key).lower() in ("x-request-id", "function-execution-id", "x-cloud-trace-context"):
            candidates.append(str(value).split(";", 1)[0])
    for value in candidates:
        if value and len(value) <= 100 and set(value) <= _ID_CHARS:
            return value
    return os.urandom(8).hex()


def build(*, started: float, duration_ms: float, rid: str, weave, status: int, agents=(), error=None,
          environ=None) -> dict:
    """The request record (see the module docstring).

    Args:
        started: when the request arrived (epoch seconds).
        duration_ms: how long it took.
        rid: the request id.
        weave: the weave's name (``None`` when the request named none that ran).
        status: the HTTP status answered.
        agents: the engine's agent entries run so far (``name``, ``model``,
            ``backend``, ``duration_ms``, ``tokens``).
        error: a short error class, or ``None``.
        environ: where ``WEAVE_DEPLOYMENT`` is read; ``os.environ`` by default.

    Returns:
        The record as a dict.
    """
    environ = os.environ if environ is None else environ
    rows = []
    for agent in agents:
        tokens = agent.get("tokens") or {}
        rows.append({"agent": agent.get("name"), "model": agent.get("model"), "backend": agent.get("backend"),
                     "duration_ms": float(agent.get("duration_ms") or 0.0),
                     "input_tokens": int(tokens.get("prompt") or 0), "output_tokens": int(tokens.get("completion") or 0)})
    return {
        "type": "weave.request",
        "time": iso_time(started),
        "request_id": rid,
        "deployment": environ.get("WEAVE_DEPLOYMENT") or None,
        "weave": weave if weave is None else str(weave)[:200],
        "status": int(status),
        "duration_ms": round(float(duration_ms), 3),
        "input_tokens": sum(r["input_tokens"] for r in rows),
        "output_tokens": sum(r["output_tokens"] for r in rows),
        "agents": rows,
        "error": error,
    }


def dress(record: dict, platform: str, environ=None, started: float | None = None) -> dict:
    """The record as the platform's logging wants it (EMF on Lambda, structured logging on GCP)."""
    environ = os.environ if environ is None else environ
    if platform == "lambda":
        deployment = record["deployment"] or environ.get("AWS_LAMBDA_FUNCTION_NAME") or "unknown"
        stamp = int(round((started if started is not None else time.time()) * 1000))
        return {**record, "_aws": {"Timestamp": stamp, "CloudWatchMetrics": [{
            "Namespace": NAMESPACE, "Dimensions": [["Deployment"]],
            "Metrics": [{"Name": name, "Unit": unit} for name, unit in METRICS]}]},
            "Deployment": deployment, "Requests": 1, "Errors": 1 if record["status"] >= 500 else 0,
            "Latency": record["duration_ms"], "InputTokens": record["input_tokens"],
            "OutputTokens": record["output_tokens"]}
    if platform == "gcp":
        severity = "ERROR" if record["status"] >= 500 else "INFO"
        message = f"{record['weave'] or '-'} {record['status']} in {record['duration_ms']:.0f} ms"
        return {"severity": severity, "message": message, **record}
    return record


def write_line(text: str, environ=None, stream=None) -> None:
    """Write one line to stderr (or ``stream``), prefixed with the UTC time when ``WEAVE_LOG_TIMESTAMPS`` is set."""
    environ = os.environ if environ is None else environ
    if environ.get("WEAVE_LOG_TIMESTAMPS", "").strip() in ("1", "true", "yes"):
        text = f"{iso_time(time.time())} {text}"
    out = stream or sys.stderr
    with _write_lock:
        out.write(text + "\n")
        out.flush()


def emit(record: dict, platform: str = "plain", secrets=(), environ=None, started: float | None = None,
         sink=None) -> str:
    """Dress ``record`` for ``platform``, remove secret values, and write it as one line.

    Args:
        record: from :func:`build`.
        platform: ``"lambda"``, ``"gcp"`` or ``"plain"``.
        secrets: values that must never appear (scrubbed if they somehow do).
        environ: the environment (``WEAVE_DEPLOYMENT``, ``WEAVE_LOG_TIMESTAMPS``).
        started: the request's start (epoch seconds), for EMF's ``Timestamp``.
        sink: a callable taking the line instead of writing it to stderr.

    Returns:
        The JSON line written.
    """
    line = json.dumps(dress(record, platform, environ, started), separators=(",", ":"), ensure_ascii=False)
    if secrets:
        from .errors import scrub

        line = scrub(line, secrets)
    if sink is not None:
        sink(line)
    else:
        write_line(line, environ)
    return line
