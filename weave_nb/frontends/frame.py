"""Deployments as a pandas DataFrame (pandas is imported only here, lazily)."""

from __future__ import annotations

from typing import Any, Iterable

COLUMNS = ["name", "provider", "status", "region", "endpoint", "created_at", "updated_at", "drift", "health", "version", "message"]


def deployments_frame(infos: Iterable[Any]) -> Any:
    """A DataFrame with one row per deployment, newest first.

    Columns: name, provider, status, region, endpoint, created_at and
    updated_at (timezone-aware UTC datetimes), drift, health, version, message.
    """
    import pandas as pd

    rows = [i.row() for i in infos]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("created_at", "updated_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    frame = frame.sort_values("created_at", ascending=False, kind="stable").reset_index(drop=True)
    return frame
