"""Cloud Logging ``entries.list`` for the Cloud Functions v2 TEST FAKE (not Google's service).

Written from the public Cloud Logging v2 REST reference (``POST
/v2/entries:list``, the ``LogEntry`` resource and the structured-logging rules
of Cloud Run). The fake's functions-framework processes are the "Cloud Run
services": every line they print becomes a ``LogEntry`` the moment it is
read, as Cloud Run's logging agent would make it:

* ``resource``: ``{"type": "cloud_run_revision", "labels": {"project_id",
  "service_name" (the function id), "revision_name", "location",
  "configuration_name"}}``; ``logName``:
  ``projects/P/logs/run.googleapis.com%2Fstdout`` (or ``%2Fstderr``);
* a line that is a JSON object is structured: ``severity`` becomes the
  entry's severity, ``time``/``timestamp`` its timestamp, the
  ``logging.googleapis.com/labels|insertId|trace|spanId|sourceLocation``
  keys and ``httpRequest`` move to the entry, and the rest (``message``
  included) is ``jsonPayload``; any other line is ``textPayload`` with
  severity ``DEFAULT``;
* ``timestamp`` and ``receiveTimestamp`` are RFC 3339 with nanoseconds.

``entries.list`` takes ``resourceNames`` (``projects/P``; required),
``filter``, ``orderBy`` (``timestamp asc``, the default, or ``timestamp
desc``), ``pageSize`` (default 50, at most 1000) and ``pageToken``. The
filter language is a SUBSET of Google's: comparisons ``FIELD OP VALUE``
(``=``, ``!=``, ``>``, ``>=``, ``<``, ``<=``, ``:`` = contains, ignoring
case) on ``resource.type``, ``resource.labels.*``, ``logName``,
``severity`` (ordered DEFAULT < DEBUG < INFO < ... < EMERGENCY),
``timestamp``, ``insertId``, ``textPayload``, ``jsonPayload.*`` and
``labels.*``, joined by ``AND`` or whitespace. ``OR``, ``NOT``, parentheses
and bare search terms are answered 400 (the real service accepts them; the
fake says it does not implement them). Standard library only.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from datetime import datetime, timezone

from weave_nb.sandbox.emulators.gcf_fake_functions import ApiError

__all__ = ["LogStore", "SEVERITIES"]

SEVERITIES = {"DEFAULT": 0, "DEBUG": 100, "INFO": 200, "NOTICE": 300, "WARNING": 400, "ERROR": 500,
              "CRITICAL": 600, "ALERT": 700, "EMERGENCY": 800}
_MOVED = {"logging.googleapis.com/labels": "labels", "logging.googleapis.com/insertId": "insertId",
          "logging.googleapis.com/trace": "trace", "logging.googleapis.com/spanId": "spanId",
          "logging.googleapis.com/sourceLocation": "sourceLocation", "httpRequest": "httpRequest"}
_TERM = re.compile(r'\s*([A-Za-z_][\w.\-/]*)\s*(>=|<=|!=|=|>|<|:)\s*("(?:[^"\\]|\\.)*"|[^\s()"]+)')


def _rfc3339(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def _parse_time(text: str) -> datetime | None:
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", str(text).strip())
    if not match:
        return None
    head, frac, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    try:
        return datetime.fromisoformat(head + (frac or "")[:7] + zone).astimezone(timezone.utc)
    except ValueError:
        return None


def parse_filter(text: str | None) -> list[tuple[str, str, str]]:
    """``[(field, op, value), ...]`` of an AND-only filter.

    Raises:
        ApiError: 400 for syntax the fake does not implement.
    """
    terms = []
    rest = (text or "").strip()
    while rest:
        if re.match(r"^(OR|NOT)\b|^[(\-]", rest):
            raise ApiError(400, f"the fake's filter supports AND-joined comparisons only, not {rest[:30]!r}")
        found = _TERM.match(rest)
        if not found:
            raise ApiError(400, f"unsupported or invalid filter near {rest[:40]!r}")
        field, op, value = found.groups()
        if value.startswith('"'):
            value = json.loads(value)
        terms.append((field, op, value))
        rest = rest[found.end():].strip()
        if rest.startswith("AND") and (len(rest) == 3 or rest[3].isspace()):
            rest = rest[3:].strip()
    return terms


def _field(entry: dict, path: str):
    if path == "textPayload" or path == "jsonPayload" or "." not in path:
        return entry.get(path)
    head, _, tail = path.partition(".")
    value = entry.get(head)
    for part in tail.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _compare(entry: dict, field: str, op: str, value: str) -> bool:
    have = _field(entry, field)
    if have is None:
        return op == "!="
    if op == ":":
        return value.lower() in (json.dumps(have) if isinstance(have, (dict, list)) else str(have)).lower()
    if field == "timestamp":
        left, right = _parse_time(have), _parse_time(value)
        if right is None:
            raise ApiError(400, f"invalid timestamp {value!r} in filter")
    elif field == "severity":
        left, right = SEVERITIES.get(str(have), 0), SEVERITIES.get(value.upper(), None)
        if right is None:
            raise ApiError(400, f"unknown severity {value!r} in filter")
    else:
        left, right = str(have).lower() if isinstance(have, bool) else str(have), value
    return {"=": left == right, "!=": left != right, ">": left > right, ">=": left >= right,
            "<": left < right, "<=": left <= right}[op]


class LogStore:
    """The fake's log entries, in the order they were read."""

    def __init__(self) -> None:
        self._entries: list[dict] = []
        self._lock = threading.Lock()
        self._seq = 0

    def add_line(self, *, project: str, location: str, service: str, revision: str, stream: str, when: float,
                 text: str) -> dict:
        """Record one line a function printed (``stream`` is ``stdout`` or ``stderr``), as Cloud Run would."""
        received = datetime.fromtimestamp(when, timezone.utc)
        entry: dict = {
            "logName": f"projects/{project}/logs/run.googleapis.com%2F{stream}",
            "resource": {"type": "cloud_run_revision", "labels": {
                "project_id": project, "service_name": service, "revision_name": revision,
                "location": location, "configuration_name": service}},
            "receiveTimestamp": _rfc3339(received),
            "severity": "DEFAULT",
        }
        stamp = received
        data = None
        if text.lstrip().startswith("{"):
            try:
                data = json.loads(text)
            except ValueError:
                data = None
        if isinstance(data, dict):
            severity = str(data.pop("severity", "DEFAULT")).upper()
            entry["severity"] = severity if severity in SEVERITIES else "DEFAULT"
            for key in ("time", "timestamp"):
                if key in data:
                    parsed = _parse_time(str(data.pop(key)))
                    stamp = parsed or stamp
            for key, target in _MOVED.items():
                if key in data:
                    entry[target] = data.pop(key)
            entry["jsonPayload"] = data
        else:
            entry["textPayload"] = text
        entry["timestamp"] = _rfc3339(stamp)
        with self._lock:
            self._seq += 1
            entry.setdefault("insertId", f"{self._seq:012x}")
            entry["_order"] = (stamp, self._seq)
            self._entries.append(entry)
        return entry

    def list(self, body: dict | None) -> dict:
        """Answer ``entries.list`` (see the module docstring).

        Raises:
            ApiError: 400 for a missing ``resourceNames``, a bad ``orderBy``, ``pageSize`` or filter.
        """
        body = body or {}
        names = body.get("resourceNames") or []
        if not names or not all(isinstance(n, str) and n.startswith("projects/") for n in names):
            raise ApiError(400, "resourceNames must name at least one project (projects/PROJECT_ID)")
        order = (body.get("orderBy") or "timestamp asc").strip().lower()
        if order not in ("timestamp asc", "timestamp desc", "timestamp"):
            raise ApiError(400, f"orderBy must be 'timestamp asc' or 'timestamp desc', not {order!r}")
        size = int(body.get("pageSize") or 50)
        if not 0 < size <= 1000:
            raise ApiError(400, f"pageSize must be between 1 and 1000, not {size}")
        terms = parse_filter(body.get("filter"))
        prefixes = tuple(f"{n}/logs/" for n in names)
        with self._lock:
            found = [e for e in self._entries if e["logName"].startswith(prefixes)]
        found = [e for e in found if all(_compare(e, *term) for term in terms)]
        found.sort(key=lambda e: e["_order"], reverse=order.endswith("desc"))
        start = 0
        if body.get("pageToken"):
            try:
                start = int(base64.urlsafe_b64decode(body["pageToken"].encode()).decode().split(":", 1)[1])
            except (ValueError, IndexError):
                raise ApiError(400, "invalid pageToken") from None
        page = [{k: v for k, v in e.items() if k != "_order"} for e in found[start:start + size]]
        out: dict = {"entries": page} if page else {}
        if start + size < len(found):
            out["nextPageToken"] = base64.urlsafe_b64encode(f"offset:{start + size}".encode()).decode()
        return out
