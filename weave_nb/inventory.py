"""The inventory: a SQLite record of every deployment and what each step made.

Written after every step, so a half-finished deploy can always be finished or
torn down. Safe with several processes: SQLite in WAL mode with a busy
timeout for writes, and a per-deployment lock file (``fcntl``) so only one
process changes a given deployment at a time. Secrets are never stored.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from .config import DeploymentInfo, DeploymentStatus, Resource, check_name, check_provider_name, utcnow
from .errors import DeploymentBusy, WeaveError

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
  provider TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
  region TEXT, endpoint TEXT, content_hash TEXT, settings_hash TEXT, version TEXT,
  message TEXT, details TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  PRIMARY KEY (provider, name));
CREATE TABLE IF NOT EXISTS resources (
  provider TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, rid TEXT NOT NULL,
  attrs TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL,
  PRIMARY KEY (provider, name, kind, rid));
"""

_FIELDS = ("status", "region", "endpoint", "content_hash", "settings_hash", "version", "message", "details")


class Inventory:
    """The deployment records under a home folder.

    Args:
        home: the folder (``$WEAVE_HOME``); the database is ``inventory.db`` in it.
    """

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.home = Path(home).expanduser().absolute()
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "locks").mkdir(exist_ok=True)
        self.path = self.home / "inventory.db"
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        finally:
            db.close()

    # -- deployments --------------------------------------------------------
    def get(self, provider: str, name: str) -> DeploymentInfo | None:
        """Return the recorded deployment with its resources, or ``None``."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM deployments WHERE provider=? AND name=?", (provider, name)).fetchone()
            if row is None:
                return None
            cols = [c[0] for c in db.execute("SELECT * FROM deployments LIMIT 0").description]
            res = db.execute(
                "SELECT kind, rid, attrs, created_at FROM resources WHERE provider=? AND name=? ORDER BY created_at",
                (provider, name),
            ).fetchall()
        info = _row_to_info(dict(zip(cols, row)))
        info.resources = [
            Resource(kind=k, id=r, attrs=json.loads(a), created_at=_dt.datetime.fromisoformat(c)) for k, r, a, c in res
        ]
        return info

    def list(self, provider: str | None = None) -> list[DeploymentInfo]:
        """Return every recorded deployment (of one provider, if given), newest first."""
        query = "SELECT * FROM deployments"
        args: tuple[Any, ...] = ()
        if provider:
            query += " WHERE provider=?"
            args = (provider,)
        query += " ORDER BY created_at DESC, name"
        with self._connect() as db:
            cur = db.execute(query, args)
            cols = [c[0] for c in cur.description]
            return [_row_to_info(dict(zip(cols, r))) for r in cur.fetchall()]

    def save(self, provider: str, name: str, **fields: Any) -> DeploymentInfo:
        """Create or update a deployment's row; only the given fields change.

        Args:
            provider: provider name.
            name: deployment name.
            **fields: any of status, region, endpoint, content_hash, settings_hash,
                version, message, details (a dict, merged into what is stored).

        Returns:
            The row as stored.
        """
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise TypeError(f"unknown inventory fields: {sorted(unknown)}")
        now = utcnow().isoformat()
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT details FROM deployments WHERE provider=? AND name=?", (provider, name)).fetchone()
            if "details" in fields:
                merged = json.loads(row[0]) if row else {}
                merged.update(fields["details"] or {})
                fields["details"] = json.dumps({k: v for k, v in merged.items() if v is not None}, sort_keys=True)
            if "status" in fields:
                fields["status"] = DeploymentStatus(fields["status"]).value
            if row is None:
                fields.setdefault("status", DeploymentStatus.PENDING.value)
                cols = ["provider", "name", "created_at", "updated_at", *fields]
                db.execute(
                    f"INSERT INTO deployments ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    (provider, name, now, now, *fields.values()),
                )
            else:
                sets = ", ".join(f"{k}=?" for k in fields)
                db.execute(
                    f"UPDATE deployments SET {sets + ', ' if sets else ''}updated_at=? WHERE provider=? AND name=?",
                    (*fields.values(), now, provider, name),
                )
            db.execute("COMMIT")
        info = self.get(provider, name)
        assert info is not None
        return info

    def delete(self, provider: str, name: str) -> None:
        """Forget a deployment and its resources."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM resources WHERE provider=? AND name=?", (provider, name))
            db.execute("DELETE FROM deployments WHERE provider=? AND name=?", (provider, name))
            db.execute("COMMIT")

    # -- resources ----------------------------------------------------------
    def add_resource(self, provider: str, name: str, kind: str, rid: str, **attrs: Any) -> None:
        """Record (or refresh) one resource a deployment made."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO resources (provider, name, kind, rid, attrs, created_at) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(provider, name, kind, rid) DO UPDATE SET attrs=excluded.attrs",
                (provider, name, kind, rid, json.dumps(attrs, sort_keys=True, default=str), utcnow().isoformat()),
            )

    def remove_resource(self, provider: str, name: str, kind: str, rid: str) -> None:
        """Forget one resource (after it was deleted)."""
        with self._connect() as db:
            db.execute(
                "DELETE FROM resources WHERE provider=? AND name=? AND kind=? AND rid=?", (provider, name, kind, rid)
            )

    def resources(self, provider: str, name: str) -> list[Resource]:
        """The resources recorded for a deployment, oldest first."""
        info = self.get(provider, name)
        return info.resources if info else []

    # -- locking ------------------------------------------------------------
    def is_locked(self, provider: str, name: str) -> bool:
        """True when a live process holds the lock for this deployment (it is being changed right now).

        Reads the holder's pid from the lock file instead of probing the lock,
        so asking never makes a concurrent deploy fail as busy.
        """
        from .procutil import pid_alive

        try:
            path = self._lock_path(provider, name)
        except WeaveError:
            return False  # no lock can exist for an invalid name
        try:
            holder = path.read_text().strip()
        except OSError:
            return False
        return holder.isdigit() and pid_alive(int(holder))

    def _lock_path(self, provider: str, name: str) -> Path:
        """The lock file of one deployment; the names are checked, so it is always inside ``locks/``.

        Raises:
            ConfigError: an invalid deployment or provider name.
        """
        return self.home / "locks" / f"{check_provider_name(provider)}--{check_name(name)}.lock"

    @contextlib.contextmanager
    def lock(
        self,
        provider: str,
        name: str,
        wait: float = 0.0,
        poll: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> Iterator[None]:
        """Hold the exclusive lock for one deployment.

        The lock is an ``fcntl`` lock on a file, so it is released when the
        holding process dies, even without clean-up.

        Args:
            wait: seconds to wait for another process to finish (0: fail at once).
            poll: seconds between attempts while waiting.
            sleep, clock: the wait and the monotonic clock (tests pass fakes).

        Raises:
            DeploymentBusy: another process holds the lock after ``wait`` seconds.
            ConfigError: an invalid deployment or provider name (no file is created).
        """
        import fcntl

        path = self._lock_path(provider, name)  # checked before any file is created
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = clock() + wait
        held = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held = True
                    break
                except BlockingIOError:
                    if clock() >= deadline:
                        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
                        raise DeploymentBusy(
                            f"{name!r} on {provider} is being changed by process {holder}",
                            "wait for that deploy or undeploy to finish, then run again",
                        ) from None
                    sleep(poll)  # waiting on another process's lock: no event to wait on
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            if held:  # the holder's pid stays in the file while it holds the lock
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
            os.close(fd)


def _row_to_info(row: dict[str, Any]) -> DeploymentInfo:
    return DeploymentInfo(
        name=row["name"],
        provider=row["provider"],
        status=row["status"],
        region=row["region"],
        endpoint=row["endpoint"],
        content_hash=row["content_hash"],
        settings_hash=row["settings_hash"],
        version=row["version"],
        message=row["message"],
        details=json.loads(row["details"] or "{}"),
        created_at=_dt.datetime.fromisoformat(row["created_at"]),
        updated_at=_dt.datetime.fromisoformat(row["updated_at"]),
    )
