"""The rules every provider's logs share (weave_nb.core.log_lines) and the record parser (weave_nb.core.records)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from weave_nb.core.errors import ConfigError
from weave_nb.core.log_lines import LogEntry, format_time, parse_since, parse_time, poll_follow, select, split_stamp
from weave_nb.core.records import parse_records, summarize, summary_text
from weave_nb.runtime import records as runtime_records

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("value, expected", [
    ("30s", NOW - timedelta(seconds=30)), ("10m", NOW - timedelta(minutes=10)), ("2h", NOW - timedelta(hours=2)),
    ("1d", NOW - timedelta(days=1)), ("1.5h", NOW - timedelta(minutes=90)),
    ("2026-03-01T11:00:00Z", NOW - timedelta(hours=1)), ("2026-03-01T11:00:00", NOW - timedelta(hours=1)),
    ("2026-03-01T13:00:00+02:00", NOW - timedelta(hours=1)), (None, None),
])
def test_since_takes_durations_and_iso_times(value, expected):
    assert parse_since(value, now=NOW) == expected


@pytest.mark.parametrize("value", ["yesterday", "10 parsecs", "-5m", "2026-13-01T00:00:00Z"])
def test_a_bad_since_says_what_it_takes(value):
    with pytest.raises(ConfigError) as caught:
        parse_since(value, now=NOW)
    assert "10m" in caught.value.suggestion


def test_times_with_nanoseconds_and_stamped_lines():
    assert parse_time("2026-03-01T12:00:00.123456789Z") == NOW.replace(microsecond=123456)
    assert format_time(NOW.replace(microsecond=123999)) == "2026-03-01T12:00:00.123Z"
    when, text = split_stamp("2026-03-01T12:00:00.5Z GET /health 200")
    assert when == NOW.replace(microsecond=500000) and text == "GET /health 200"
    assert split_stamp("Traceback (most recent call last):") == (None, "Traceback (most recent call last):")


def test_select_applies_since_filter_then_tail():
    entries = [LogEntry(NOW + timedelta(seconds=i), f"line {i} {'ERROR' if i % 2 else 'ok'}") for i in range(10)]
    assert [e.text for e in select(entries, NOW + timedelta(seconds=6))] == [f"line {i} {'ERROR' if i % 2 else 'ok'}"
                                                                               for i in range(6, 10)]
    assert [e.text[:6] for e in select(entries, None, "error", 2)] == ["line 7", "line 9"]
    assert select(entries, NOW + timedelta(days=1)) == []
    assert select([LogEntry(None, "no time")], NOW) == []  # an undated line cannot be said to be after a time


def test_poll_follow_yields_each_new_line_once_in_order():
    log = [LogEntry(NOW, "a", key="1")]
    reads: list = []

    def fetch(mark):
        reads.append(mark)
        return [e for e in log if mark is None or e.time >= mark]

    def sleep(seconds):  # between reads the log grows: one line at the same time as the last, one later
        assert seconds == 1.0
        if len(reads) == 1:
            log.extend([LogEntry(NOW, "b", key="2"), LogEntry(NOW + timedelta(seconds=1), "c ERROR", key="3")])
        elif len(reads) == 2:
            log.append(LogEntry(NOW + timedelta(seconds=2), "d", key="4"))

    follow = poll_follow(fetch, None, None, sleep=sleep, first=[log[0]])
    assert [next(follow).text for _ in range(3)] == ["b", "c ERROR", "d"]
    assert reads[:3] == [NOW, NOW, NOW + timedelta(seconds=1)]
    follow.close()
    only_errors = poll_follow(lambda mark: log, None, "error", sleep=lambda s: None)
    assert next(only_errors).text == "c ERROR"


def test_records_parse_from_any_provider_shape_and_summarise():
    lines = []
    for i, (duration, status) in enumerate([(30.0, 200), (10.0, 200), (20.0, 500), (40.0, 404)]):
        rec = runtime_records.build(started=NOW.timestamp() + i, duration_ms=duration, rid=f"r{i}", weave="w", status=status,
                                    agents=[{"name": "a", "model": "m", "backend": "mock", "duration_ms": duration / 2,
                                             "tokens": {"prompt": 1, "completion": 2}}], environ={"WEAVE_DEPLOYMENT": "d"})
        lines.append(runtime_records.emit(rec, ("plain", "lambda", "gcp", "plain")[i], environ={}, sink=lambda t: None))
    gcp = json.loads(lines[2])
    del gcp["time"], gcp["severity"]  # Cloud Logging moves them into the entry
    entries = [LogEntry(NOW, "prefix " + lines[0]), LogEntry(NOW, lines[1]), LogEntry(NOW + timedelta(seconds=2), json.dumps(gcp)),
               LogEntry(NOW, lines[3]), LogEntry(NOW, lines[3]), LogEntry(NOW, "START RequestId: x"),
               LogEntry(NOW, '{"type": "weave.request", "status": "broken"}')]
    found = parse_records(entries)
    assert [r.request_id for r in found] == ["r0", "r1", "r2", "r3"]  # the repeated line counted once, junk skipped
    assert found[2].time == NOW + timedelta(seconds=2) and found[2].failed
    s = summarize(found, price_of=lambda model: (1_000_000.0, 0.0) if model == "m" else None)
    assert (s.requests, s.errors, s.error_rate, s.statuses) == (4, 1, 0.25, {200: 2, 404: 1, 500: 1})
    assert (s.p50_ms, s.p95_ms, s.p99_ms, s.mean_ms) == (20.0, 40.0, 40.0, 25.0)
    assert (s.input_tokens, s.output_tokens, s.cost_usd) == (4, 8, 4.0)
    assert s.agents["a"] == {"calls": 4, "total_ms": 50.0, "input_tokens": 4, "output_tokens": 8}
    text = summary_text("d", "local", NOW, s)
    assert "errors        1 (25.0%" in text and "est. cost     $4.0000" in text
    assert summarize(found).cost_usd is None and "est. cost" not in summary_text("d", "local", None, summarize(found))
