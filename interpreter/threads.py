"""What a thread keeps between its sandboxes, and the OpenAI face's containers.

A thread is the id a caller runs code under (an Assistants thread, an Azure session
identifier, a container's id); its sessions come and go. It keeps what was asked for
its sandboxes (memory, idle timeout, runtime: only what was asked explicitly, so a
thread does not keep limits the operator has since changed). A container is a thread
with a name and settings, as the OpenAI containers API has it. Whether a thread's
session is live, or a container has expired, the manager decides
(``SessionManager.thread_state``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .store import Store

__all__ = ["ContainerRecord", "ThreadState", "Threads"]


class ThreadState(StrEnum):
    NEW = "new"  # no session yet
    LIVE = "live"  # a session runs
    RESUMABLE = "resumable"  # its sandbox died: the next call starts a fresh one
    ENDED = "ended"  # it expired or was stopped: it stays ended


@dataclass(frozen=True)
class ContainerRecord:
    id: str
    owner: str
    name: str
    created_at: float
    idle_timeout: float
    memory: int
    deleted_at: float | None = None


class Threads:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- what was asked for a thread's sandboxes ----------------------------------------

    def ask(self, owner: str, thread_id: str, **values: Any) -> None:
        """Remember what was asked for this thread (None: keep what was asked before)."""
        given = {k: v for k, v in values.items() if v is not None}
        with self.store.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO thread_settings (owner, thread_id) VALUES (?, ?)",
                (owner, thread_id),
            )
            for column, value in given.items():  # column names are ours, never a caller's
                assert column in ("memory", "idle_timeout", "runtime")
                db.execute(
                    f"UPDATE thread_settings SET {column} = ? WHERE owner = ? AND thread_id = ?",
                    (value, owner, thread_id),
                )

    def asked(self, owner: str, thread_id: str) -> dict[str, Any]:
        rows = self.store.query(
            "SELECT memory, idle_timeout, runtime FROM thread_settings"
            " WHERE owner = ? AND thread_id = ?",
            (owner, thread_id),
        )
        return {k: v for k, v in dict(rows[0]).items() if v is not None} if rows else {}

    # -- containers ---------------------------------------------------------------------

    def add_container(self, rec: ContainerRecord) -> None:
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO containers (id, owner, name, created_at, idle_timeout, memory)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (rec.id, rec.owner, rec.name, rec.created_at, rec.idle_timeout, rec.memory),
            )

    def container(self, owner: str, container_id: str) -> ContainerRecord | None:
        rows = self.store.query(
            "SELECT * FROM containers WHERE id = ? AND owner = ? AND deleted_at IS NULL",
            (container_id, owner),
        )
        return ContainerRecord(**dict(rows[0])) if rows else None

    def containers(self, owner: str) -> list[ContainerRecord]:
        rows = self.store.query(
            "SELECT * FROM containers WHERE owner = ? AND deleted_at IS NULL"
            " ORDER BY created_at, id",
            (owner,),
        )
        return [ContainerRecord(**dict(r)) for r in rows]

    def delete_container(self, owner: str, container_id: str) -> bool:
        with self.store.transaction() as db:
            cur = db.execute(
                "UPDATE containers SET deleted_at = ? WHERE id = ? AND owner = ?"
                " AND deleted_at IS NULL",
                (time.time(), container_id, owner),
            )
        return cur.rowcount > 0
