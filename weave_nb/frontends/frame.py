"""Deployments as a pandas DataFrame (pandas is imported only here, lazily)."""

from __future__ import annotations

from typing import Any, Iterable

COLUMNS = ["name", "provider", "status", "region", "endpoint", "created_at", "updated_at", "drift", "health", "version", "message", "traffic"]
TEXT_COLUMNS = [c for c in COLUMNS if c not in ("created_at", "updated_at")]

# one health vocabulary for every provider: each provider's own word -> healthy, unhealthy, starting or missing
HEALTH = ("healthy", "unhealthy", "starting", "missing")
_HEALTH_WORDS = {
    "healthy": "healthy", "active": "healthy", "running": "healthy", "ok": "healthy", "pushed": "healthy",
    "unhealthy": "unhealthy", "failed": "unhealthy", "exited": "unhealthy", "dead": "unhealthy", "error": "unhealthy",
    "starting": "starting", "created": "starting", "restarting": "starting", "deploying": "starting", "pending": "starting",
    "missing": "missing", "gone": "missing", "not running": "missing", "no container": "missing",
    "function missing": "missing", "image removed": "missing", "removing": "missing",
}


def health_word(value: Any) -> str | None:
    """A provider's health word in the one vocabulary (:data:`HEALTH`); ``None`` when it was not checked.

    A word no provider is known to use counts as ``unhealthy``: the deployment answered something other than healthy.
    """
    if value is None:
        return None
    text = str(value).strip().lower()
    if not text:
        return None
    return _HEALTH_WORDS.get(text, "unhealthy")


def deployments_frame(infos: Iterable[Any]) -> Any:
    """A DataFrame with one row per deployment, newest first.

    Columns: name, provider, status, region, endpoint, created_at and
    updated_at (timezone-aware UTC datetimes; missing: ``NaT``), drift,
    health (one of :data:`HEALTH`), version, message, traffic (a canary's split,
    e.g. ``v3 90% / v4 10%``). Text columns use
    pandas' ``string`` dtype, so a missing value is always ``pd.NA``.
    """
    import pandas as pd

    rows = []
    for info in infos:
        row = info.row()
        row["health"] = health_word(row.get("health"))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("created_at", "updated_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True).astype("datetime64[ns, UTC]")  # one unit, even when empty
    for col in TEXT_COLUMNS:
        frame[col] = frame[col].astype("string")
    frame = frame.sort_values("created_at", ascending=False, kind="stable").reset_index(drop=True)
    return frame


def releases_frame(releases: Iterable[Any]) -> Any:
    """A DataFrame with one row per release, newest first (columns: :data:`weave_nb.core.releases.COLUMNS`).

    ``created_at`` is a timezone-aware UTC datetime; the text columns use pandas' ``string`` dtype.
    """
    import pandas as pd

    from ..core.releases import COLUMNS as RELEASE_COLUMNS

    frame = pd.DataFrame([r.row() for r in releases], columns=RELEASE_COLUMNS)
    frame["number"] = frame["number"].astype("int64")
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True).astype("datetime64[ns, UTC]")
    for col in RELEASE_COLUMNS:
        if col not in ("number", "created_at"):
            frame[col] = frame[col].astype("string")
    return frame
