"""SQLite metadata under LCI_HOME: the database, its files and sessions tables.

One small synchronous class; each call is one short statement (WAL, so readers in
other processes never wait for a writer). Contents of files live on disk (files.py).
The schema of every core table is here; the rows of ``thread_files`` are the
catalogue's (``catalog.py``), those of ``thread_settings`` and ``containers`` the
threads' (``threads.py``).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .results import FileInfo, SessionState

__all__ = ["SessionRecord", "Store"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL DEFAULT '',
    filename TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    mime_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    purpose TEXT NOT NULL,
    created_at REAL NOT NULL,
    thread_id TEXT,
    session_id TEXT,
    execution_id TEXT,
    path TEXT
);
CREATE INDEX IF NOT EXISTS files_thread ON files(tenant, thread_id);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL DEFAULT '',
    thread_id TEXT NOT NULL,
    state TEXT NOT NULL,
    backend TEXT NOT NULL,
    sandbox_id TEXT,
    connection TEXT NOT NULL,
    runtime_dir TEXT NOT NULL,
    data_dir TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_activity REAL NOT NULL,
    idle_timeout REAL NOT NULL,
    memory INTEGER NOT NULL,
    executions INTEGER NOT NULL DEFAULT 0,
    ended_at REAL,
    end_reason TEXT,
    uid INTEGER NOT NULL DEFAULT 0,
    runtime TEXT NOT NULL DEFAULT 'runc',
    pool TEXT
);
CREATE INDEX IF NOT EXISTS sessions_thread ON sessions(tenant, thread_id);
CREATE INDEX IF NOT EXISTS sessions_state ON sessions(state);
CREATE TABLE IF NOT EXISTS thread_files (
    tenant TEXT NOT NULL DEFAULT '',
    thread_id TEXT NOT NULL,
    path TEXT NOT NULL,
    file_id TEXT NOT NULL,
    size INTEGER,
    mtime_ns INTEGER,
    source TEXT NOT NULL DEFAULT 'user',
    PRIMARY KEY (tenant, thread_id, path)
);
CREATE TABLE IF NOT EXISTS thread_settings (
    tenant TEXT NOT NULL DEFAULT '',
    thread_id TEXT NOT NULL,
    memory INTEGER,
    idle_timeout REAL,
    runtime TEXT,
    PRIMARY KEY (tenant, thread_id)
);
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    idle_timeout REAL NOT NULL,
    memory INTEGER NOT NULL,
    deleted_at REAL
);
CREATE INDEX IF NOT EXISTS containers_tenant ON containers(tenant);
CREATE TABLE IF NOT EXISTS ui_logouts (
    login TEXT PRIMARY KEY,
    expires REAL NOT NULL
);
"""
# columns added after a table first shipped: (table, column, declaration)
MIGRATIONS = [
    ("thread_files", "size", "INTEGER"),
    ("thread_files", "mtime_ns", "INTEGER"),
    ("thread_files", "source", "TEXT NOT NULL DEFAULT 'user'"),
    ("sessions", "uid", "INTEGER NOT NULL DEFAULT 0"),
    ("sessions", "runtime", "TEXT NOT NULL DEFAULT 'runc'"),
    ("sessions", "pool", "TEXT"),
]
LIVE = tuple(s.value for s in SessionState if s.live)


@dataclass
class SessionRecord:
    id: str
    thread_id: str
    state: SessionState
    backend: str
    connection: dict[str, Any]
    runtime_dir: str
    data_dir: str
    created_at: float
    last_activity: float
    idle_timeout: float
    memory: int
    tenant: str = ""
    sandbox_id: str | None = None
    executions: int = 0
    ended_at: float | None = None
    end_reason: str | None = None
    uid: int = 0  # the launcher's uid; the kernel's is uid + 1 (see layout.py)
    runtime: str = "runc"
    pool: str | None = None  # a pooled sandbox's profile until a thread claims it (pool.py)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> SessionRecord:
        d = dict(row)
        d["state"] = SessionState(d["state"])
        d["connection"] = json.loads(d["connection"])
        return cls(**d)

    def expires_at(self) -> float:
        return self.last_activity + self.idle_timeout


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._depth = 0  # transactions open (nested ones join the outermost)
        # private before SQLite writes a byte: its -wal and -shm files copy its mode
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        os.chmod(path, 0o600)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._rename_owner()
        self._db.executescript(SCHEMA)
        for table, column, decl in MIGRATIONS:
            have = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")

    def _rename_owner(self) -> None:
        """A database from before the ``owner`` columns were named ``tenant``: renamed in
        place (SQLite >= 3.25 rewrites the indexes that use them); the one index whose
        name said owner is dropped (the schema makes it again under its new name)."""
        tables = [
            r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table in tables:
            have = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
            if "owner" in have and "tenant" not in have:
                self._db.execute(f"ALTER TABLE {table} RENAME COLUMN owner TO tenant")
        self._db.execute("DROP INDEX IF EXISTS containers_owner")

    def ping(self) -> None:
        """Raise if the database cannot be read."""
        self.query("SELECT count(*) FROM sessions")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add_column(self, table: str, column: str, decl: str) -> None:
        """A column another module's table gained after it first shipped."""
        with self._lock:
            have = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")

    def ensure_schema(self, sql: str) -> None:
        """Create tables another module keeps in this database (``CREATE ... IF NOT EXISTS``)."""
        with self._lock:
            self._db.executescript(sql)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``); rolled back if the block raises.

        A transaction opened inside another (on the same thread: the lock is held) joins
        it: several owners' writes that belong together (an execution starting and its
        session turning busy) commit once, or not at all. The inner one is a savepoint: if
        it raises, its own writes are undone even when the outer block goes on."""
        with self._lock:
            if self._depth:
                name = f"lci_{self._depth}"
                self._db.execute(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield self._db
                except BaseException:
                    self._db.execute(f"ROLLBACK TO {name}")
                    raise
                finally:
                    self._depth -= 1
                    self._db.execute(f"RELEASE {name}")
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0
            self._db.execute("COMMIT")

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Every row of one read statement."""
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- files -------------------------------------------------------------------

    def add_file(self, info: FileInfo, tenant: str = "") -> None:
        cols = [f.name for f in fields(FileInfo)]
        with self.transaction() as db:
            db.execute(
                f"INSERT INTO files (tenant, {', '.join(cols)}) VALUES (?{', ?' * len(cols)})",
                (tenant, *(getattr(info, c) for c in cols)),
            )

    def get_file(self, file_id: str, tenant: str | None = None) -> FileInfo | None:
        sql, args = "SELECT * FROM files WHERE id = ?", [file_id]
        if tenant is not None:
            sql, args = sql + " AND tenant = ?", [file_id, tenant]
        rows = self.query(sql, tuple(args))
        return _file(rows[0]) if rows else None

    def list_files(self, tenant: str | None = None, thread_id: str | None = None) -> list[FileInfo]:
        where, args = _where(tenant=tenant, thread_id=thread_id)
        return [
            _file(r) for r in self.query(f"SELECT * FROM files{where} ORDER BY created_at", args)
        ]

    def blob_used(self, sha256: str) -> bool:
        return bool(self.query("SELECT 1 FROM files WHERE sha256 = ? LIMIT 1", (sha256,)))

    def delete_file(self, file_id: str) -> str | None:
        """Forget a file; return its sha256 when no other file shares the blob."""
        with self.transaction() as db:
            row = db.execute("SELECT sha256 FROM files WHERE id = ?", (file_id,)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM files WHERE id = ?", (file_id,))
            db.execute("DELETE FROM thread_files WHERE file_id = ?", (file_id,))
            others = db.execute("SELECT 1 FROM files WHERE sha256 = ?", (row[0],)).fetchone()
        return None if others else str(row[0])

    # -- sessions -----------------------------------------------------------------

    def add_session(self, rec: SessionRecord, uids: tuple[int, int] | None = None) -> None:
        """Insert ``rec``; with ``uids`` (first, last), first give it a pair of uids from
        that range that no live session holds (``rec.uid``, ``rec.uid + 1``)."""
        with self.transaction() as db:
            if uids is not None:
                rec.uid = _free_uid(db, *uids)
            cols = [f.name for f in fields(SessionRecord)]
            values = [getattr(rec, c) for c in cols]
            values[cols.index("state")] = rec.state.value
            values[cols.index("connection")] = json.dumps(rec.connection)
            db.execute(
                f"INSERT INTO sessions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                values,
            )

    def get_session(self, session_id: str) -> SessionRecord | None:
        rows = self.query("SELECT * FROM sessions WHERE id = ?", (session_id,))
        return SessionRecord.from_row(rows[0]) if rows else None

    def live_session_for(self, tenant: str, thread_id: str) -> SessionRecord | None:
        rows = self.query(
            f"SELECT * FROM sessions WHERE tenant = ? AND thread_id = ? AND state IN {LIVE}"
            " ORDER BY created_at DESC LIMIT 1",
            (tenant, thread_id),
        )
        return SessionRecord.from_row(rows[0]) if rows else None

    def last_session_for(self, tenant: str, thread_id: str) -> SessionRecord | None:
        rows = self.query(
            "SELECT * FROM sessions WHERE tenant = ? AND thread_id = ?"
            " ORDER BY created_at DESC LIMIT 1",
            (tenant, thread_id),
        )
        return SessionRecord.from_row(rows[0]) if rows else None

    def list_sessions(
        self, tenant: str | None = None, live_only: bool = False
    ) -> list[SessionRecord]:
        where, args = _where(tenant=tenant)
        if live_only:
            where += (" AND" if where else " WHERE") + f" state IN {LIVE}"
        rows = self.query(f"SELECT * FROM sessions{where} ORDER BY created_at", args)
        return [SessionRecord.from_row(r) for r in rows]

    def update_session(self, session_id: str, **changes: Any) -> None:
        if "state" in changes:
            changes["state"] = SessionState(changes["state"]).value
        sets = ", ".join(f"{k} = ?" for k in changes)
        with self.transaction() as db:
            db.execute(f"UPDATE sessions SET {sets} WHERE id = ?", (*changes.values(), session_id))

    def touch_session(self, session_id: str, state: SessionState, executed: bool = False) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE sessions SET last_activity = ?, state = ?, executions = executions + ?"
                f" WHERE id = ? AND state IN {LIVE}",
                (time.time(), state.value, int(executed), session_id),
            )

    def pooled(self, profile: str | None = None) -> list[SessionRecord]:
        """Pooled sandboxes ready for a thread (started, their kernel answered, unclaimed),
        of ``profile`` or all, oldest first."""
        sql = "SELECT * FROM sessions WHERE pool IS NOT NULL AND state = 'idle'"
        args: tuple[Any, ...] = ()
        if profile is not None:
            sql, args = sql + " AND pool = ?", (profile,)
        return [SessionRecord.from_row(r) for r in self.query(sql + " ORDER BY created_at", args)]

    def claim_session(
        self, session_id: str, tenant: str, thread_id: str, idle_timeout: float
    ) -> bool:
        """Give a ready pooled sandbox to a thread; False when another claim won it."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE sessions SET tenant = ?, thread_id = ?, pool = NULL, last_activity = ?,"
                " idle_timeout = ? WHERE id = ? AND pool IS NOT NULL AND state = 'idle'",
                (tenant, thread_id, time.time(), idle_timeout, session_id),
            )
        return cur.rowcount > 0

    def live_count(self) -> int:
        """Live sessions, of every tenant."""
        return int(self.query(f"SELECT count(*) FROM sessions WHERE state IN {LIVE}")[0][0])

    def stored_bytes(self, tenant: str) -> int:
        """Bytes of every file of ``tenant``, as recorded (shared blobs count each time)."""
        return int(
            self.query("SELECT coalesce(sum(bytes), 0) FROM files WHERE tenant = ?", (tenant,))[0][
                0
            ]
        )

    def threads_of(self, tenant: str) -> list[str]:
        """Threads with a live session, newest first."""
        rows = self.query(
            f"SELECT thread_id, MAX(created_at) AS c FROM sessions WHERE tenant = ?"
            f" AND state IN {LIVE} GROUP BY thread_id ORDER BY c DESC",
            (tenant,),
        )
        return [r[0] for r in rows]

    # -- credentials ended early (the web inspector's logins) ------------------------------

    def revoke(self, token_id: str, until: float) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM ui_logouts WHERE expires < ?", (time.time(),))
            db.execute("INSERT OR REPLACE INTO ui_logouts VALUES (?, ?)", (token_id, until))

    def revoked(self, token_id: str) -> bool:
        return bool(self.query("SELECT 1 FROM ui_logouts WHERE login = ?", (token_id,)))

    def end_session(self, session_id: str, state: SessionState, reason: str) -> bool:
        """Mark a live session ended; False when it had already ended (another process won)."""
        with self.transaction() as db:
            cur = db.execute(
                f"UPDATE sessions SET state = ?, ended_at = ?, end_reason = ?"
                f" WHERE id = ? AND state IN {LIVE}",
                (state.value, time.time(), reason, session_id),
            )
        return cur.rowcount > 0


def _free_uid(db: sqlite3.Connection, first: int, last: int) -> int:
    """A random even uid in [first, last) whose pair no live session uses."""
    pairs = (last - first) // 2
    for _ in range(64):
        uid = first + 2 * secrets.randbelow(pairs)
        taken = db.execute(
            f"SELECT 1 FROM sessions WHERE uid = ? AND state IN {LIVE}", (uid,)
        ).fetchone()
        if taken is None:
            return uid
    raise ConfigError("LCI_UID_RANGE", f"{first}-{last}", "a range with a free pair: widen it")


def _file(row: sqlite3.Row) -> FileInfo:
    d = dict(row)
    d.pop("tenant", None)
    return FileInfo(**d)


def _where(**conds: str | None) -> tuple[str, tuple[Any, ...]]:
    active = {k: v for k, v in conds.items() if v is not None}
    if not active:
        return "", ()
    return " WHERE " + " AND ".join(f"{k} = ?" for k in active), tuple(active.values())
