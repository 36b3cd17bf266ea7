"""Release history: every deploy that changes what runs is a numbered release.

A :class:`Release` records the artifact hash, the settings hash, who made it
and when, the provider's own version id (Lambda version, Cloud Run revision,
Docker image tag, local artifact folder) and its state:

- ``live``: takes the traffic (all of it, or the rest of a canary's split);
- ``canary``: a new release taking ``weight`` of the traffic;
- ``previous``: the one that was live before the live one (the default rollback target);
- ``retired``: older ones; ``details["pruned"]`` once its provider artifact was deleted.

The core owns the numbers and the states (the rules are the ``after_*``
functions here, pure functions over a list of releases); providers only
report their version id (``run.outputs["release_version"]``). The store is
the ``releases`` table of the inventory, keyed (provider, name, number), with
a nullable ``region`` column for deployments in several regions.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from .config import utcnow

if TYPE_CHECKING:
    from .inventory import Inventory

LIVE, CANARY, PREVIOUS, RETIRED = "live", "canary", "previous", "retired"
STATES = (LIVE, CANARY, PREVIOUS, RETIRED)
DEFAULT_KEEP = 5
COLUMNS = ["number", "state", "version_id", "traffic", "content_hash", "settings_hash", "created_at", "created_by", "region"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (
  provider TEXT NOT NULL, name TEXT NOT NULL, number INTEGER NOT NULL, region TEXT,
  version_id TEXT NOT NULL, content_hash TEXT NOT NULL, settings_hash TEXT NOT NULL, state TEXT NOT NULL,
  weight REAL, created_at TEXT NOT NULL, created_by TEXT NOT NULL, details TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (provider, name, number));
"""


@dataclass
class Release:
    """One release of one deployment.

    Attributes:
        number: 1, 2, 3... per (provider, name).
        provider, name: the deployment.
        version_id: the provider's own id of what runs (Lambda version, revision, image tag, folder).
        content_hash, settings_hash: what was deployed.
        state: live, canary, previous or retired.
        created_at: ISO time (UTC); created_by: ``user@host``.
        weight: the fraction of traffic while a canary split is on (``None`` otherwise).
        region: for deployments in several regions (``None``: the deployment's one region).
        details: anything else (``pruned``: its provider artifact was deleted; ``env_names``...). Never secrets.
    """

    number: int
    provider: str
    name: str
    version_id: str
    content_hash: str
    settings_hash: str
    state: str
    created_at: str
    created_by: str
    weight: float | None = None
    region: str | None = None
    details: dict = field(default_factory=dict)

    @property
    def pruned(self) -> bool:
        """True once the provider artifact of this release was deleted (it can no longer be rolled back to)."""
        return bool(self.details.get("pruned"))

    @property
    def label(self) -> str:
        """``v3``: how a release is named in messages and traffic splits."""
        return f"v{self.number}"

    def row(self) -> dict[str, Any]:
        """One row of ``weave releases`` / ``%weave_releases``."""
        traffic = None
        if self.state in (LIVE, CANARY):
            traffic = f"{round((1.0 if self.weight is None else self.weight) * 100)}%"
        state = self.state + (" (pruned)" if self.pruned else "")
        version = self.version_id.rsplit(os.sep, 1)[-1] if os.sep in self.version_id else self.version_id  # a local folder: its name
        return {"number": self.number, "state": state, "version_id": version, "traffic": traffic,
                "content_hash": self.content_hash[:12], "settings_hash": self.settings_hash[:12],
                "created_at": self.created_at, "created_by": self.created_by, "region": self.region}


def who() -> str:
    """``user@host``: who made a release (no secret)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def keep_count(environ: Any = None) -> int:
    """How many releases keep their provider artifacts: ``WEAVE_KEEP_RELEASES`` (at least 1), default 5."""
    env = os.environ if environ is None else environ
    text = str(env.get("WEAVE_KEEP_RELEASES", "")).strip()
    if text.isdigit() and int(text) >= 1:
        return int(text)
    return DEFAULT_KEEP


class ReleaseStore:
    """The ``releases`` table of an inventory.

    Args:
        inventory: the inventory whose database holds the table (created here when missing).
    """

    def __init__(self, inventory: "Inventory") -> None:
        self._inv = inventory
        with inventory._connect() as db:
            db.executescript(SCHEMA)

    def list(self, provider: str, name: str, region: str | None = None) -> list[Release]:
        """Every release of one deployment (of one region, if given), oldest first."""
        query = "SELECT * FROM releases WHERE provider=? AND name=?"
        args: tuple[Any, ...] = (provider, name)
        if region is not None:
            query += " AND region IS ?"
            args += (region,)
        with self._inv._connect() as db:
            cur = db.execute(query + " ORDER BY number", args)
            cols = [c[0] for c in cur.description]
            rows = [dict(zip(cols, r)) for r in cur.fetchall()]
        return [_release(r) for r in rows]

    def next_number(self, provider: str, name: str) -> int:
        """The number the next release of this deployment gets."""
        with self._inv._connect() as db:
            top = db.execute("SELECT COALESCE(MAX(number), 0) FROM releases WHERE provider=? AND name=?",
                             (provider, name)).fetchone()[0]
        return int(top) + 1

    def save(self, releases: Iterable[Release]) -> None:
        """Insert or replace each release (one transaction)."""
        with self._inv._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            for r in releases:
                db.execute(
                    "INSERT OR REPLACE INTO releases (provider, name, number, region, version_id, content_hash, settings_hash, "
                    "state, weight, created_at, created_by, details) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (r.provider, r.name, r.number, r.region, r.version_id, r.content_hash, r.settings_hash, r.state,
                     r.weight, r.created_at, r.created_by, json.dumps(r.details, sort_keys=True, default=str)))
            db.execute("COMMIT")

    def delete(self, provider: str, name: str) -> None:
        """Forget every release of a deployment (after an undeploy)."""
        with self._inv._connect() as db:
            db.execute("DELETE FROM releases WHERE provider=? AND name=?", (provider, name))


def _release(row: dict[str, Any]) -> Release:
    try:
        details = json.loads(row.get("details") or "{}")
    except ValueError:
        details = {}
    return Release(number=int(row["number"]), provider=row["provider"], name=row["name"], version_id=row["version_id"],
                   content_hash=row["content_hash"], settings_hash=row["settings_hash"], state=row["state"],
                   created_at=row["created_at"], created_by=row["created_by"], weight=row["weight"], region=row["region"],
                   details=details if isinstance(details, dict) else {})


def new_release(number: int, provider: str, name: str, version_id: str, content_hash: str, settings_hash: str,
                region: str | None = None, details: dict | None = None) -> Release:
    """A release made now by this user (its state is set by :func:`after_deploy`)."""
    return Release(number=number, provider=provider, name=name, version_id=str(version_id), content_hash=content_hash,
                   settings_hash=settings_hash, state=LIVE, created_at=utcnow().isoformat(timespec="seconds"),
                   created_by=who(), region=region, details=dict(details or {}))


def find(releases: list[Release], state: str) -> Release | None:
    """The newest release in ``state``, or ``None``."""
    return next((r for r in reversed(releases) if r.state == state), None)


def _set(r: Release, state: str, weight: float | None = None) -> Release:
    return dataclasses.replace(r, state=state, weight=weight)


def after_deploy(releases: list[Release], new: Release, canary: int | None = None) -> list[Release]:
    """The releases after ``new`` was deployed: all of the traffic, or ``canary`` percent beside the live one."""
    out = []
    if canary:
        for r in releases:
            if r.state == CANARY:  # a canary replaced by a newer one
                out.append(_set(r, RETIRED))
            elif r.state == LIVE:
                out.append(_set(r, LIVE, round(1 - canary / 100, 4)))
            else:
                out.append(r)
        return out + [_set(new, CANARY, round(canary / 100, 4))]
    for r in releases:
        if r.state == LIVE:
            out.append(_set(r, PREVIOUS))
        elif r.state in (PREVIOUS, CANARY):
            out.append(_set(r, RETIRED))
        else:
            out.append(r)
    return out + [_set(new, LIVE)]


def after_rollback(releases: list[Release], target: Release) -> list[Release]:
    """The releases after ``target`` took all of the traffic again.

    During a canary with ``target`` the live release, the canary is retired and the rest stays.
    """
    canary = find(releases, CANARY)
    if canary is not None and target.state == LIVE:
        return [_set(r, RETIRED) if r.state == CANARY else _set(r, LIVE) if r.number == target.number else r for r in releases]
    out = []
    for r in releases:
        if r.number == target.number:
            out.append(_set(r, LIVE))
        elif r.state == LIVE:
            out.append(_set(r, PREVIOUS))
        elif r.state in (PREVIOUS, CANARY):
            out.append(_set(r, RETIRED))
        else:
            out.append(r)
    return out


def after_promote(releases: list[Release], canary: Release) -> list[Release]:
    """The releases after the canary took all of the traffic."""
    out = []
    for r in releases:
        if r.number == canary.number:
            out.append(_set(r, LIVE))
        elif r.state == LIVE:
            out.append(_set(r, PREVIOUS))
        elif r.state == PREVIOUS:
            out.append(_set(r, RETIRED))
        else:
            out.append(r)
    return out


def to_prune(releases: list[Release], keep: int, adding: bool, content_hash: str | None = None,
             canary: bool = False) -> list[Release]:
    """The releases whose provider artifacts a deploy deletes, oldest first.

    Keeps the newest ``keep`` releases (the one being added counts when
    ``adding``), and always the live and canary ones, the previous one (unless
    the deploy makes the live one previous), one whose artifact is the one
    being deployed (``content_hash``), and one sharing its version id with a
    kept release.
    """
    alive = [r for r in releases if not r.pruned]
    room = max(keep - (1 if adding else 0), 0)
    kept = {r.number for r in alive[len(alive) - room:]} if room else set()
    guarded = (LIVE, CANARY) if adding and not canary else (LIVE, CANARY, PREVIOUS)
    kept |= {r.number for r in alive if r.state in guarded}
    kept |= {r.number for r in alive if content_hash and r.content_hash == content_hash}
    kept_ids = {r.version_id for r in alive if r.number in kept}
    return [r for r in alive if r.number not in kept and r.version_id not in kept_ids]


def traffic_text(releases: list[Release], split: dict[str, float] | None = None) -> str | None:
    """``v3 90% / v4 10%`` for a canary split (from the provider's live ``split`` when given), else ``None``."""
    canary = find(releases, CANARY)
    if canary is None:
        return None
    by_version = {r.version_id: r for r in releases}
    if split:
        parts = [(by_version[v], w) for v, w in split.items() if v in by_version]
        if len(parts) >= 2:
            parts.sort(key=lambda p: p[0].number)
            return " / ".join(f"{r.label} {round(w * 100)}%" for r, w in parts)
    live = find(releases, LIVE)
    parts2 = [r for r in (live, canary) if r is not None]
    return " / ".join(f"{r.label} {round((r.weight if r.weight is not None else 1.0) * 100)}%" for r in parts2)
