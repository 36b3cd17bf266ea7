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
from .errors import DeploymentBusy, InventoryError, WeaveError
from .private_files import private_dir, private_file

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
CREATE TABLE IF NOT EXISTS runs (
  run TEXT PRIMARY KEY, provider TEXT NOT NULL, name TEXT NOT NULL, operation TEXT NOT NULL,
  plan TEXT NOT NULL, outcome TEXT NOT NULL DEFAULT 'running', started_at TEXT NOT NULL, finished_at TEXT);
CREATE TABLE IF NOT EXISTS journal (
  run TEXT NOT NULL, seq INTEGER NOT NULL, step TEXT NOT NULL, action TEXT NOT NULL, call TEXT,
  outcome TEXT NOT NULL, result TEXT NOT NULL DEFAULT '{}', at TEXT NOT NULL,
  PRIMARY KEY (run, seq));
"""

_FIELDS = ("status", "region", "endpoint", "content_hash", "settings_hash", "version", "message", "details")


class Inventory:
    """The deployment records under a home folder.

    Args:
        home: the folder (``$WEAVE_HOME``); the database is ``inventory.db`` in it.
    """

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.home = Path(home).expanduser().absolute()
        try:
            private_dir(self.home)  # 0700, also when an older version made it 0755
            private_dir(self.home / "locks")
            self.path = private_file(self.home / "inventory.db")  # SQLite gives its -wal and -shm files the same mode
        except OSError as exc:
            raise InventoryError(
                f"cannot use {self.home} as the weave-nb home: {exc.strerror or exc}",
                "point WEAVE_HOME at a folder you can write to (default ~/.weave)",
            ) from None
        with self._connect() as db:
            db.executescript(SCHEMA)
        self.journal = Journal(self)
        self._owner: str | None = None

    @property
    def owner_id(self) -> str:
        """This inventory's id, stamped on every resource it makes (see :mod:`weave_nb.core.ownership`)."""
        if self._owner is None:
            from .ownership import owner_id

            self._owner = owner_id(self.home)
        return self._owner

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.DatabaseError as exc:
            raise self._unusable(exc) from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        except sqlite3.DatabaseError as exc:
            raise self._unusable(exc) from None
        finally:
            db.close()

    def _unusable(self, exc: sqlite3.DatabaseError) -> Exception:
        """An InventoryError for a damaged or unusable database file; any other database error (a bug) as is."""
        code = getattr(exc, "sqlite_errorname", "") or ""
        text = str(exc)
        if code.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or type(exc) is sqlite3.DatabaseError:
            return InventoryError(
                f"the inventory {self.path} is damaged ({text}), so no deployment record can be read",
                f"move it aside (mv {self.path} {self.path}.broken, with its -wal and -shm files if any); "
                "the next command starts a new, empty inventory; then `weave deployments --rebuild` records again "
                "every deployment whose resources carry this inventory's owner mark (local processes excepted)",
            )
        if code.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_PERM", "SQLITE_FULL",
                            "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_AUTH")):
            return InventoryError(
                f"cannot use the inventory {self.path}: {text}",
                f"check that {self.home} is writable and its disk not full; if another weave command is "
                "writing, wait for it and run again",
            )
        return exc

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
        info = _row_to_info(dict(zip(cols, row)), lenient=True)
        info.resources = [_resource(k, r, a, c) for k, r, a, c in res]
        return info

    def list(self, provider: str | None = None, skipped: list[str] | None = None) -> list[DeploymentInfo]:
        """Return every recorded deployment (of one provider, if given), newest first.

        Args:
            provider: only this provider's deployments.
            skipped: if given, a note is appended here for each damaged row
                (a bad status, details that are not JSON...), which is left
                out instead of failing the whole listing.
        """
        query = "SELECT * FROM deployments"
        args: tuple[Any, ...] = ()
        if provider:
            query += " WHERE provider=?"
            args = (provider,)
        query += " ORDER BY created_at DESC, name"
        with self._connect() as db:
            cur = db.execute(query, args)
            cols = [c[0] for c in cur.description]
            rows = [dict(zip(cols, r)) for r in cur.fetchall()]
        out = []
        for row in rows:
            try:
                out.append(_row_to_info(row))
            except (TypeError, ValueError, KeyError):  # pydantic's ValidationError and JSON errors are ValueErrors
                if skipped is not None:
                    skipped.append(damaged_note(row, _damage(row)))
        return out

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
                merged = _json_object(row[0]) if row else {}  # damaged stored details are replaced
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
            db.execute("DELETE FROM journal WHERE run IN (SELECT run FROM runs WHERE provider=? AND name=?)", (provider, name))
            db.execute("DELETE FROM runs WHERE provider=? AND name=?", (provider, name))
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


class Journal:
    """The step journal: each run of a plan, and each step as it finished, failed or was undone.

    Written by the executor after every step, so what a half-finished run
    did can always be read back (``weave`` re-plans from live state; the
    journal says what happened and in which order).
    """

    def __init__(self, inventory: Inventory) -> None:
        self._inv = inventory

    def begin(self, run: str, provider: str, name: str, plan: Any) -> None:
        """Record that ``run`` starts executing ``plan`` (its steps, calls and parameters; no secrets)."""
        with self._inv._connect() as db:
            db.execute(
                "INSERT INTO runs (run, provider, name, operation, plan, started_at) VALUES (?,?,?,?,?,?)",
                (run, provider, name, plan.operation, plan.model_dump_json(), utcnow().isoformat()),
            )

    def step(self, run: str, step: Any, outcome: str, result: dict[str, Any]) -> None:
        """Record one step's outcome (done, failed, undone, undo-failed) with its result."""
        with self._inv._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM journal WHERE run=?", (run,)).fetchone()[0]
            db.execute(
                "INSERT INTO journal (run, seq, step, action, call, outcome, result, at) VALUES (?,?,?,?,?,?,?,?)",
                (run, seq, step.key, step.action, step.call, outcome, json.dumps(result, sort_keys=True, default=str),
                 utcnow().isoformat()),
            )
            db.execute("COMMIT")

    def end(self, run: str, outcome: str) -> None:
        """Record how the run ended (done or failed)."""
        with self._inv._connect() as db:
            db.execute("UPDATE runs SET outcome=?, finished_at=? WHERE run=?", (outcome, utcnow().isoformat(), run))

    def runs(self, provider: str, name: str) -> list[dict[str, Any]]:
        """Every recorded run of one deployment, oldest first, each with its steps."""
        with self._inv._connect() as db:
            rows = db.execute(
                "SELECT run, operation, plan, outcome, started_at, finished_at FROM runs WHERE provider=? AND name=? "
                "ORDER BY started_at, rowid", (provider, name)).fetchall()
            out = []
            for run, operation, plan, outcome, started, finished in rows:
                steps = db.execute(
                    "SELECT step, action, call, outcome, result FROM journal WHERE run=? ORDER BY seq", (run,)).fetchall()
                out.append({
                    "run": run, "operation": operation, "plan": json.loads(plan), "outcome": outcome,
                    "started_at": started, "finished_at": finished,
                    "steps": [{"key": k, "action": a, "call": c, "outcome": o, "result": json.loads(r)} for k, a, c, o, r in steps],
                })
        return out


def _json_object(text: Any) -> dict[str, Any]:
    """``text`` parsed as a JSON object, or ``{}`` when it is not one."""
    try:
        value = json.loads(text or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _damage(row: dict[str, Any]) -> str:
    """What is wrong with a deployments row that does not read as a DeploymentInfo."""
    problems = []
    try:
        if not isinstance(json.loads(row.get("details") or "{}"), dict):
            problems.append("details is not a JSON object")
    except (TypeError, ValueError):
        problems.append("details is not valid JSON")
    if row.get("status") not in {s.value for s in DeploymentStatus}:
        problems.append(f"unknown status {str(row.get('status'))[:40]!r}")
    for col in ("created_at", "updated_at"):
        try:
            _dt.datetime.fromisoformat(row.get(col))
        except (TypeError, ValueError):
            problems.append(f"{col} is not a date")
    return "; ".join(problems) or "a field has the wrong type"


def damaged_note(row: dict[str, Any], damage: str) -> str:
    """The listing's note for a damaged row: which one, what is wrong, what to do."""
    name, provider = str(row.get("name"))[:80], str(row.get("provider"))[:40]
    return (
        f"skipped the damaged inventory record {provider}/{name} ({damage}); "
        f"`weave undeploy {name} --provider {provider}` removes what it made and forgets it"
    )


def _resource(kind: str, rid: str, attrs: Any, created: Any) -> Resource:
    try:
        when = _dt.datetime.fromisoformat(created)
    except (TypeError, ValueError):
        when = utcnow()
    return Resource(kind=str(kind), id=str(rid), attrs=_json_object(attrs), created_at=when)


def _row_to_info(row: dict[str, Any], lenient: bool = False) -> DeploymentInfo:
    """The DeploymentInfo of a row; ``lenient``: a damaged row reads as a failed deployment that says so."""
    try:
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
    except (TypeError, ValueError, KeyError):
        if not lenient:
            raise
        damage = _damage(row)
    text = {k: row.get(k) if isinstance(row.get(k), str) else None for k in ("region", "endpoint", "version")}
    return DeploymentInfo(
        name=str(row.get("name")),
        provider=str(row.get("provider")),
        status=DeploymentStatus.FAILED,
        details=_json_object(row.get("details")),
        message=f"the inventory record is damaged ({damage}); undeploy to remove what it made and forget it",
        **text,
    )
