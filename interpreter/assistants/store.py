"""Where assistants, threads, messages, runs, run steps and tool-call turns are kept.

One table in the lci database (``Store``): each row is one object as the Assistants
API shows it (JSON), with its kind, tenant, parent (the thread of a message,
run or turn; the run of a step) and a sequence number that orders a thread's
contents exactly. A run also keeps private state (the calls it waits for, how many
tool calls it made) in ``state``, never shown to clients.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from ..errors import NoSuchObject, ThreadLocked
from ..store import Store

__all__ = ["ACTIVE", "TERMINAL", "AssistantsStore", "new_id"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS assistant_objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    tenant TEXT NOT NULL DEFAULT '',
    parent TEXT,
    status TEXT,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS assistant_objects_parent ON assistant_objects(tenant, kind, parent);
"""
PREFIX = {
    "assistant": "asst_",
    "thread": "thread_",
    "message": "msg_",
    "run": "run_",
    "step": "step_",
    "turn": "turn_",
}
ACTIVE = ("queued", "in_progress", "requires_action", "cancelling")
TERMINAL = ("completed", "failed", "cancelled", "expired", "incomplete")


def new_id(kind: str) -> str:
    return PREFIX[kind] + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")


class AssistantsStore:
    def __init__(self, store: Store) -> None:
        self.db = store
        store.ensure_schema(SCHEMA)

    def add(
        self, kind: str, tenant: str, body: dict[str, Any], parent: str | None = None
    ) -> dict[str, Any]:
        with self.db.transaction() as db:
            db.execute(
                "INSERT INTO assistant_objects (id, kind, tenant, parent, status, body)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (body["id"], kind, tenant, parent, body.get("status"), json.dumps(body)),
            )
        return body

    def add_run(self, tenant: str, run: dict[str, Any], state: dict[str, Any]) -> None:
        """Insert a run unless another is active on its thread (the thread lock)."""
        thread_id = run["thread_id"]
        with self.db.transaction() as db:
            active = db.execute(
                "SELECT id FROM assistant_objects WHERE tenant = ? AND kind = 'run'"
                f" AND parent = ? AND status IN {ACTIVE} LIMIT 1",
                (tenant, thread_id),
            ).fetchall()
            if active:
                raise ThreadLocked(thread_id, active[0][0], "create a run on")
            db.execute(
                "INSERT INTO assistant_objects (id, kind, tenant, parent, status, body, state)"
                " VALUES (?, 'run', ?, ?, ?, ?, ?)",
                (run["id"], tenant, thread_id, run["status"], json.dumps(run), json.dumps(state)),
            )

    def get(
        self, kind: str, object_id: str, tenant: str, parent: str | None = None
    ) -> dict[str, Any]:
        sql = "SELECT body FROM assistant_objects WHERE id = ? AND kind = ? AND tenant = ?"
        args: tuple[Any, ...] = (object_id, kind, tenant)
        if parent is not None:
            sql, args = sql + " AND parent = ?", (*args, parent)
        rows = self.db.query(sql, args)
        if not rows:
            raise NoSuchObject(kind, object_id, f"{kind}_id")
        body: dict[str, Any] = json.loads(rows[0][0])
        return body

    def state(self, object_id: str) -> dict[str, Any]:
        rows = self.db.query("SELECT state FROM assistant_objects WHERE id = ?", (object_id,))
        return json.loads(rows[0][0]) if rows else {}

    def put(self, body: dict[str, Any], state: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write back a changed object (and, for a run, its private state)."""
        sets, args = "status = ?, body = ?", [body.get("status"), json.dumps(body)]
        if state is not None:
            sets, args = sets + ", state = ?", [*args, json.dumps(state)]
        with self.db.transaction() as db:
            db.execute(f"UPDATE assistant_objects SET {sets} WHERE id = ?", (*args, body["id"]))
        return body

    def children(
        self, kind: str, tenant: str, parent: str | None = None, kinds: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """Objects of ``kind`` (or ``kinds``) under ``parent``, oldest first."""
        wanted = kinds or (kind,)
        marks = ", ".join("?" * len(wanted))
        sql = f"SELECT body FROM assistant_objects WHERE tenant = ? AND kind IN ({marks})"
        args: tuple[Any, ...] = (tenant, *wanted)
        if parent is not None:
            sql, args = sql + " AND parent = ?", (*args, parent)
        return [json.loads(r[0]) for r in self.db.query(sql + " ORDER BY seq", args)]

    def active_run(self, tenant: str, thread_id: str) -> str | None:
        rows = self.db.query(
            "SELECT id FROM assistant_objects WHERE tenant = ? AND kind = 'run'"
            f" AND parent = ? AND status IN {ACTIVE} LIMIT 1",
            (tenant, thread_id),
        )
        return str(rows[0][0]) if rows else None

    def runs_with_status(self, statuses: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
        """(tenant, run) of every run in one of ``statuses``, any tenant."""
        marks = ", ".join("?" * len(statuses))
        rows = self.db.query(
            "SELECT tenant, body FROM assistant_objects"
            f" WHERE kind = 'run' AND status IN ({marks})",
            statuses,
        )
        return [(r[0], json.loads(r[1])) for r in rows]

    def delete(self, object_id: str, tenant: str) -> None:
        with self.db.transaction() as db:
            db.execute(
                "DELETE FROM assistant_objects WHERE id = ? AND tenant = ?", (object_id, tenant)
            )

    def delete_thread(self, thread_id: str, tenant: str) -> None:
        """The thread and everything in it: messages, runs, turns and the runs' steps."""
        with self.db.transaction() as db:
            db.execute(
                "DELETE FROM assistant_objects WHERE tenant = ? AND kind = 'step' AND parent IN"
                " (SELECT id FROM assistant_objects"
                " WHERE tenant = ? AND kind = 'run' AND parent = ?)",
                (tenant, tenant, thread_id),
            )
            db.execute(
                "DELETE FROM assistant_objects WHERE tenant = ? AND (parent = ? OR id = ?)",
                (tenant, thread_id, thread_id),
            )
