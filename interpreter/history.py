"""Execution history: every execution, kept in the store after its session is gone.

A row is written when an execution starts (status ``running``, with the path of its
live log, so ``lci logs -f`` can tail it from another process) and completed when it
ends (the whole ``Execution.to_dict()``). ``purge`` drops what is older than the
retention (``LCI_HISTORY_DAYS``) with the output files only those executions held.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .messaging import clean_text
from .results import Execution
from .store import Store

__all__ = ["RUNNING", "History", "Purged", "Settled", "runner_alive"]

RUNNING = "running"
SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL DEFAULT '',
    session_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    duration_ms INTEGER,
    live_log TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_session ON executions(session_id, started_at);
CREATE INDEX IF NOT EXISTS executions_started ON executions(started_at);
"""


@dataclass(frozen=True)
class Settled:
    """An execution settled as lost: where its live log was, which session ran it."""

    id: str
    live_log: str | None
    session_id: str


@dataclass(frozen=True)
class Purged:
    executions: int
    sessions: int
    files: list[str]  # file ids whose records went (their blobs too, when unshared)


class History:
    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema(SCHEMA)
        store.add_column("executions", "runner", "TEXT")

    def started(self, exe: Execution, tenant: str, live_log: Path) -> None:
        """Record a running execution, with which process runs it (``runner``)."""
        data = {
            "id": exe.id,
            "session_id": exe.session_id,
            "thread_id": exe.thread_id,
            "code": exe.code,
            "status": RUNNING,
            "started_at": exe.started_at,
        }
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO executions (id, tenant, session_id, thread_id, status, started_at,"
                " live_log, data, runner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    exe.id,
                    tenant,
                    exe.session_id,
                    exe.thread_id,
                    RUNNING,
                    exe.started_at,
                    str(live_log),
                    _dumps(data),
                    RUNNER,
                ),
            )

    def finished(self, exe: Execution) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE executions SET status = ?, duration_ms = ?, live_log = NULL, data = ?"
                " WHERE id = ?",
                (exe.status.value, exe.duration_ms, _dumps(_stored(exe.to_dict())), exe.id),
            )

    def ended_early(self, exe_id: str, status: str, why: str) -> None:
        """The execution did not finish (``cancelled``: its caller went away; ``lost``: lci
        failed): the row must not stay ``running``."""
        rows = self.store.query("SELECT data FROM executions WHERE id = ?", (exe_id,))
        if not rows:
            return
        data = json.loads(rows[0][0])
        error = {"ename": status.capitalize(), "evalue": why, "traceback": []}
        data.update(status=status, error=error)
        with self.store.transaction() as db:
            db.execute(
                "UPDATE executions SET status = ?, live_log = NULL, data = ?,"
                " duration_ms = ? WHERE id = ?",
                (status, _dumps(data), int((time.time() - data["started_at"]) * 1000), exe_id),
            )

    def settle(self) -> list[Settled]:
        """Executions left ``running`` by a process that is gone (killed, crashed): each is
        recorded as ``lost``, with the reason. An execution whose process still runs is
        left to it."""
        rows = self.store.query(
            "SELECT id, runner, live_log, session_id FROM executions WHERE status = ?", (RUNNING,)
        )
        gone = [Settled(r[0], r[2], r[3]) for r in rows if not runner_alive(r[1])]
        for s in gone:
            self.ended_early(
                s.id, "lost", "the process that ran it ended before it finished (killed or crashed)"
            )
        return gone

    def entries(
        self,
        *,
        session_id: str | None = None,
        thread_id: str | None = None,
        tenant: str | None = None,
        since: float | None = None,
        last: int | None = None,
    ) -> list[dict[str, Any]]:
        """Executions oldest first (``last``: only the newest N), each with ``live_log``."""
        conds: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("session_id", session_id),
            ("thread_id", thread_id),
            ("tenant", tenant),
        ):
            if value is not None:
                conds.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            conds.append("started_at >= ?")
            args.append(since)
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        sql = f"SELECT data, live_log, status FROM executions{where}"
        sql += " ORDER BY started_at DESC, rowid DESC"
        if last is not None:
            sql += f" LIMIT {int(last)}"
        rows = self.store.query(sql, tuple(args))
        return [_entry(r) for r in reversed(rows)]

    def get(self, exe_id: str, tenant: str | None = None) -> dict[str, Any] | None:
        sql, args = "SELECT data, live_log, status FROM executions WHERE id = ?", [exe_id]
        if tenant is not None:
            sql, args = sql + " AND tenant = ?", [exe_id, tenant]
        rows = self.store.query(sql, tuple(args))
        return _entry(rows[0]) if rows else None

    def counts(self, session_ids: list[str]) -> dict[str, int]:
        if not session_ids:
            return {}
        marks = ", ".join("?" * len(session_ids))
        rows = self.store.query(
            f"SELECT session_id, count(*) FROM executions WHERE session_id IN ({marks})"
            " GROUP BY session_id",
            tuple(session_ids),
        )
        return {r[0]: r[1] for r in rows}

    def purge(self, older_than_days: float, now: float | None = None) -> Purged:
        """Forget executions started before the cutoff, ended sessions before it, and the
        output files only those executions made (files in a thread's /mnt/data stay)."""
        cutoff = (now or time.time()) - older_than_days * 86400
        with self.store.transaction() as db:
            files = [
                r[0]
                for r in db.execute(
                    "SELECT f.id FROM files f JOIN executions e ON f.execution_id = e.id"
                    " WHERE e.started_at < ? AND e.status != ? AND NOT EXISTS"
                    " (SELECT 1 FROM thread_files t WHERE t.file_id = f.id)",
                    (cutoff, RUNNING),
                )
            ]
            n = db.execute(
                "DELETE FROM executions WHERE started_at < ? AND status != ?", (cutoff, RUNNING)
            ).rowcount
            s = db.execute(
                "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?", (cutoff,)
            ).rowcount
        return Purged(n, s, files)


def _process_start(pid: int) -> str | None:
    """When a process started (clock ticks since boot), or None when there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: starttime


RUNNER = f"{os.getpid()}:{_process_start(os.getpid())}"  # this process, as runners are named


def runner_alive(runner: str | None) -> bool:
    """Is the process named ``pid:starttime`` still running (the same one, not a new pid)?"""
    if not runner:
        return False
    pid, _, start = runner.partition(":")
    return pid.isdigit() and _process_start(int(pid)) == start


def _entry(row: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(row[0])
    data["live_log"], data["status"] = row[1], row[2]
    results = data.get("results") or []
    for n, item in enumerate(data.get("transcript") or []):
        if isinstance(item.get("result"), int) and item["result"] < len(results):
            data["transcript"][n] = results[item["result"]]
    return data


def _stored(data: dict[str, Any]) -> dict[str, Any]:
    """A result is stored once: the transcript refers to it by its index in ``results``."""
    index = {id(r): n for n, r in enumerate(data.get("results") or [])}
    data["transcript"] = [
        {"type": item["type"], "result": index[id(item)]} if id(item) in index else item
        for item in data.get("transcript") or []
    ]
    return data


def _dumps(data: dict[str, Any]) -> str:
    """JSON text with any lone surrogate replaced, so every reader can encode it."""
    return clean_text(json.dumps(data, ensure_ascii=False))
