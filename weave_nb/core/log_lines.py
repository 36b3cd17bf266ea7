"""Log lines read back from a deployment, and the one way every provider selects and follows them.

A provider's ``read_logs`` answers :class:`LogEntry` items (time, text,
stream or severity); ``follow_logs`` yields them as they arrive. The rules
shared by every provider live here:

* ``--since`` is a duration (``30s``, ``10m``, ``2h``, ``1d``) back from now,
  or an ISO-8601 time (``2026-01-01T12:00:00Z``; no zone means UTC);
* ``--filter TEXT`` keeps lines whose text contains ``TEXT``, ignoring case
  (applied on this machine, so it means the same on every provider);
* ``--tail N`` keeps the newest ``N`` lines (after the other two).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Iterator

from .errors import ConfigError

__all__ = ["LogEntry", "parse_since", "select", "matches", "format_time", "parse_time", "poll_follow", "split_stamp"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hr|hrs|hours?|d|days?)\s*$", re.I)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)) (.*)$", re.S)


@dataclass(frozen=True)
class LogEntry:
    """One log line of a deployment.

    Attributes:
        time: when it was written (UTC), or ``None`` when the source does not say.
        text: the line itself, without a trailing newline.
        stream: ``stdout``/``stderr``, or the severity (``INFO``, ``ERROR``) where the source has one.
        key: an id that tells two lines with the same time apart (event id, insert id, file offset).
    """

    time: datetime | None
    text: str
    stream: str = ""
    key: str = ""

    def line(self) -> str:
        """``TIME  text`` as ``weave logs`` prints it (``-`` for an unknown time)."""
        return f"{format_time(self.time) if self.time else '-':<24} {self.text}"


def format_time(when: datetime) -> str:
    """``when`` as ISO-8601 UTC with milliseconds and ``Z``."""
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime | None:
    """An ISO-8601 time (``Z``, an offset, or none = UTC; any fraction of a second) as a UTC datetime, or ``None``."""
    text = (text or "").strip()
    if not text:
        return None
    match = re.match(r"^(.*?T\d\d:\d\d(?::\d\d)?)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$", text.replace(" ", "T", 1), re.I)
    if not match:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        head, frac, zone = match.groups()
        frac = (frac or "")[:7]  # microseconds at most (Cloud Logging sends nanoseconds)
        zone = "+00:00" if not zone or zone.upper() == "Z" else zone
        try:
            when = datetime.fromisoformat(head + frac + zone)
        except ValueError:
            return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def parse_since(value: str | datetime | None, now: datetime | None = None) -> datetime | None:
    """``--since`` as a UTC datetime.

    Args:
        value: ``10m``, ``2h``, ``1d``, ``30s`` (back from ``now``), an ISO-8601
            time, a datetime, or ``None`` (no limit).
        now: the current time (tests pass one).

    Raises:
        ConfigError: the value is neither.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    now = now or datetime.now(timezone.utc)
    found = _DURATION.match(str(value))
    if found:
        return now - timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2)[0].lower()])
    when = parse_time(str(value))
    if when is None:
        raise ConfigError(f"--since {value!r} is neither a duration nor a time",
                          "use a duration such as 30s, 10m, 2h or 1d, or an ISO time such as 2026-01-01T12:00:00Z")
    return when


def matches(entry: LogEntry, since: datetime | None, text: str | None) -> bool:
    """True when ``entry`` is at or after ``since`` and contains ``text`` (ignoring case)."""
    if since is not None and (entry.time is None or entry.time < since):
        return False
    return not text or text.lower() in entry.text.lower()


def select(entries: Iterable[LogEntry], since: datetime | None = None, text: str | None = None,
           tail: int | None = None) -> list[LogEntry]:
    """The entries that match ``since`` and ``text``, oldest first, the newest ``tail`` of them."""
    kept = [e for e in entries if matches(e, since, text)]
    return kept[-tail:] if tail else kept


def split_stamp(line: str) -> tuple[datetime | None, str]:
    """``(time, rest)`` of a line that starts with an ISO time and a space (as Docker and the local runtime write them)."""
    found = _STAMP.match(line)
    if not found:
        return None, line
    return parse_time(found.group(1)), found.group(2)


def poll_follow(fetch: Callable[[datetime | None], list[LogEntry]], since: datetime | None, text: str | None,
                interval: float = 1.0, sleep: Callable[[float], None] = time.sleep,
                first: list[LogEntry] | None = None) -> Iterator[LogEntry]:
    """Follow a log that can only be read, not streamed: read what is new every ``interval`` seconds.

    Args:
        fetch: reads the entries at or after a time (``None``: from the start), oldest first.
        since: where following starts.
        text: the ``--filter`` text.
        interval: seconds between reads.
        sleep: the wait between reads.
        first: entries already shown (they are not repeated).

    Yields:
        Each new matching entry once, in order, until the caller stops iterating (or Ctrl-C).
    """
    seen: set[tuple] = {(e.time, e.key, e.text) for e in first or ()}
    mark = max((e.time for e in first or () if e.time), default=since)
    while True:
        fresh = []
        for entry in fetch(mark):
            ident = (entry.time, entry.key, entry.text)
            if ident in seen or not matches(entry, since, text):
                continue
            fresh.append(entry)
        for entry in fresh:
            seen.add((entry.time, entry.key, entry.text))
            yield entry
        newest = max((e.time for e in fresh if e.time), default=None)
        if newest is not None and (mark is None or newest > mark):
            mark = newest
            seen = {s for s in seen if s[0] is None or s[0] >= mark}  # only the boundary's lines can come again
        sleep(interval)
