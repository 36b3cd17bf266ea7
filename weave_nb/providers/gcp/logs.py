"""A Cloud Function's log lines from Cloud Logging, with the official ``google-cloud-logging`` client.

A 2nd-gen function runs as a Cloud Run service named like the function, so
its lines are the entries with ``resource.type="cloud_run_revision"`` and
``resource.labels.service_name="FUNCTION_ID"``. The client speaks JSON over
HTTP (``_use_grpc=False``) to ``logging.googleapis.com``, or to
``WEAVE_GCP_LOGGING_ENDPOINT`` (default: the Cloud Functions endpoint
override, which the sandbox's fake also serves ``entries.list`` on).

``--since`` goes to the server as a ``timestamp>=`` restriction (default: the
last 24 hours); ``--filter`` is applied here, so it means the same as on every
other provider. A structured entry's text is its ``jsonPayload`` as JSON.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from ...core.log_lines import LogEntry, select

MAX_ENTRIES = 5000  # read at most this many entries per call (newest kept when more match)


def service_name(details: dict[str, Any], fallback: str) -> str:
    """The Cloud Run service behind the function (its last path segment), from the record."""
    for key in ("service", "function"):
        value = details.get(key)
        if value:
            return str(value).rsplit("/", 1)[-1]
    return fallback


def make_client(session: Any, endpoint: str | None) -> Any:
    """A ``google.cloud.logging_v2.Client`` on ``session``'s credentials and project, over HTTP/JSON."""
    from google.cloud import logging_v2

    options = {"api_endpoint": endpoint} if endpoint else None
    return logging_v2.Client(project=session.project, credentials=session.credentials, _use_grpc=False,
                             client_options=options)


def query(service: str, since: datetime) -> str:
    """The Cloud Logging filter for the service's entries at or after ``since``."""
    stamp = since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return (f'resource.type="cloud_run_revision" AND resource.labels.service_name="{service}" '
            f'AND timestamp>="{stamp}"')


def to_entry(raw: Any) -> LogEntry:
    """A client ``LogEntry`` (text, struct or proto payload) as ours."""
    payload = raw.payload
    if isinstance(payload, dict):
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    else:
        text = "" if payload is None else str(payload)
    when = raw.timestamp
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return LogEntry(when, text.rstrip("\n"), str(raw.severity or "DEFAULT"), str(raw.insert_id or ""))


def read_entries(client: Any, service: str, since: datetime | None, text: str | None, tail: int | None) -> list[LogEntry]:
    """The service's entries, oldest first, selected by ``since``, ``text`` and ``tail``."""
    from google.cloud.logging_v2 import ASCENDING, DESCENDING

    start = since or datetime.now(timezone.utc) - timedelta(hours=24)
    resource = [f"projects/{client.project}"]
    newest_only = bool(tail) and not text  # without a text filter, the newest `tail` can be asked for directly
    found = client.list_entries(resource_names=resource, filter_=query(service, start),
                                order_by=DESCENDING if newest_only else ASCENDING,
                                page_size=min(1000, tail if newest_only else 1000),
                                max_results=tail if newest_only else MAX_ENTRIES)
    entries = [to_entry(raw) for raw in found]
    if newest_only:
        entries.reverse()
    return select(entries, since, text, tail)
