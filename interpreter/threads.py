"""What a thread keeps between its sandboxes, and the OpenAI face's containers.

A thread is the id a caller runs code under (an Assistants thread, an Azure session
identifier, a container's id); its sessions come and go. It keeps what was asked for
its sandboxes (memory, idle timeout, runtime: only what was asked explicitly, so a
thread does not keep limits the operator has since changed). A container is a thread
with a name and settings, as the OpenAI containers API has it. Whether a thread's
session is live or has expired the manager decides (``SessionManager.live_record``);
a thread's state (``Threads.state``) follows from that and its last session.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .catalog import Catalog, IndexEntry, SandboxFile
from .errors import ContainerExpired
from .results import SessionState
from .store import SessionRecord

if TYPE_CHECKING:
    from .manager import SessionManager
    from .session import Session

__all__ = ["TIERS", "ContainerRecord", "ThreadState", "Threads", "successor_notice"]

# the memory_limit values of the OpenAI containers API (openai-python 3.3.1
# ``types/container_create_params.py``), in bytes
TIERS = {"1g": 1024**3, "4g": 4 * 1024**3, "16g": 16 * 1024**3, "64g": 64 * 1024**3}


class ThreadState(StrEnum):
    NEW = "new"  # no session yet
    LIVE = "live"  # a session runs
    RESUMABLE = "resumable"  # its sandbox died: the next call starts a fresh one
    ENDED = "ended"  # it expired or was stopped: it stays ended


@dataclass(frozen=True)
class ContainerRecord:
    id: str
    tenant: str
    name: str
    created_at: float
    idle_timeout: float
    memory: int
    deleted_at: float | None = None


class Threads:
    """The threads of one manager: their state (from the manager's liveness), files,
    settings and containers."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager, self.store = manager, manager.store

    # -- what a thread is now -------------------------------------------------------------

    def state(self, tenant: str, thread_id: str) -> ThreadState:
        """Live, resumable (its sandbox died: the next call starts a fresh one), ended
        (expired or stopped: it stays ended), or new."""
        if self.manager.live_record(tenant, thread_id) is not None:
            return ThreadState.LIVE
        last = self.last(tenant, thread_id)
        if last is None:
            return ThreadState.NEW
        return ThreadState.RESUMABLE if last.state is SessionState.DEAD else ThreadState.ENDED

    def last(self, tenant: str, thread_id: str) -> SessionRecord | None:
        """The thread's newest session record, live or ended."""
        return self.store.last_session_for(tenant, thread_id)

    def live(self, tenant: str) -> list[str]:
        """Threads of ``tenant`` with a live session, newest first."""
        return self.store.threads_of(tenant)

    async def session(self, tenant: str, thread_id: str) -> Session:
        """The thread's live session, or a new one. A container whose session expired or
        was stopped stays ended (``ContainerExpired``); one whose sandbox died gets a
        fresh sandbox with the container's settings, as its death said."""
        container = self.container(tenant, thread_id)
        if container is None:
            return await self.manager.session(thread_id, tenant=tenant)
        session = await self.manager.find(thread_id, tenant=tenant)
        if session is None and self.state(tenant, thread_id) is ThreadState.RESUMABLE:
            session = await self.manager.session(
                thread_id, tenant=tenant, idle_timeout=container.idle_timeout,
                memory=container.memory,
            )  # fmt: skip
        if session is None:
            raise ContainerExpired(thread_id, container.idle_timeout)
        return session

    async def forget(self, tenant: str, thread_id: str, reason: str) -> bool:
        """Stop the thread's live session (if any) and forget its files' places: the
        thread's /mnt/data starts empty next time (the stored files stay). True when a
        session was live."""
        live = self.store.live_session_for(tenant, thread_id)
        if live is not None:
            await self.manager.stop(live.id, reason=reason)
        self.manager.index.forget(tenant, thread_id)
        return live is not None

    # -- its files ------------------------------------------------------------------------

    async def files(self, tenant: str, thread_id: str) -> list[SandboxFile]:
        """The thread's files: as they are now if its session is live, else as last known."""
        session = await self.manager.find(thread_id, tenant=tenant)
        if session is not None:
            return await session.list_files()
        m = self.manager
        return Catalog(self.store, m.files, None, tenant, thread_id, 0).list()

    def placed(self, tenant: str, thread_id: str) -> dict[str, IndexEntry]:
        """What the thread's /mnt/data last held, by path (no sandbox is asked)."""
        return self.manager.index.entries(tenant, thread_id)

    # -- what was asked for a thread's sandboxes ----------------------------------------

    def ask(self, tenant: str, thread_id: str, **values: Any) -> None:
        """Remember what was asked for this thread (None: keep what was asked before)."""
        given = {k: v for k, v in values.items() if v is not None}
        with self.store.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO thread_settings (tenant, thread_id) VALUES (?, ?)",
                (tenant, thread_id),
            )
            for column, value in given.items():  # column names are ours, never a caller's
                assert column in ("memory", "idle_timeout", "runtime")
                db.execute(
                    f"UPDATE thread_settings SET {column} = ? WHERE tenant = ? AND thread_id = ?",
                    (value, tenant, thread_id),
                )

    def asked(self, tenant: str, thread_id: str) -> dict[str, Any]:
        rows = self.store.query(
            "SELECT memory, idle_timeout, runtime FROM thread_settings"
            " WHERE tenant = ? AND thread_id = ?",
            (tenant, thread_id),
        )
        return {k: v for k, v in dict(rows[0]).items() if v is not None} if rows else {}

    # -- containers ---------------------------------------------------------------------

    async def open_container(
        self,
        tenant: str,
        name: str,
        *,
        idle_timeout: float,
        memory: int,
        file_ids: Iterable[str] = (),
        runtime: str | None = None,
    ) -> ContainerRecord:
        """A new container (``cntr_...``) with its sandbox started; ``memory`` is clamped
        to the tenant's largest sandbox. The containers face and Responses' auto
        containers both come here."""
        if self.manager.quotas is not None:
            memory = self.manager.quotas.memory_for(tenant, memory)
        rec = ContainerRecord(
            "cntr_" + secrets.token_hex(24), tenant, name, time.time(), idle_timeout, memory
        )
        await self.manager.session(
            rec.id,
            tenant=tenant,
            idle_timeout=idle_timeout,
            memory=memory,
            file_ids=list(file_ids),
            runtime=runtime,
        )
        self.add_container(rec)
        return rec

    def add_container(self, rec: ContainerRecord) -> None:
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO containers (id, tenant, name, created_at, idle_timeout, memory)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (rec.id, rec.tenant, rec.name, rec.created_at, rec.idle_timeout, rec.memory),
            )

    def container(self, tenant: str, container_id: str) -> ContainerRecord | None:
        rows = self.store.query(
            "SELECT * FROM containers WHERE id = ? AND tenant = ? AND deleted_at IS NULL",
            (container_id, tenant),
        )
        return ContainerRecord(**dict(rows[0])) if rows else None

    def containers(self, tenant: str) -> list[ContainerRecord]:
        rows = self.store.query(
            "SELECT * FROM containers WHERE tenant = ? AND deleted_at IS NULL"
            " ORDER BY created_at, id",
            (tenant,),
        )
        return [ContainerRecord(**dict(r)) for r in rows]

    def delete_container(self, tenant: str, container_id: str) -> bool:
        with self.store.transaction() as db:
            cur = db.execute(
                "UPDATE containers SET deleted_at = ? WHERE id = ? AND tenant = ?"
                " AND deleted_at IS NULL",
                (time.time(), container_id, tenant),
            )
        return cur.rowcount > 0


def successor_notice(previous: SessionRecord, files_back: bool) -> str:
    """What the first execution of a thread's new session is told about its predecessor."""
    return (
        f"A new session was started for this thread: the previous one ({previous.id}) "
        f"ended ({previous.end_reason or 'it stopped'}), so variables and imports from "
        "before are lost." + (" The thread's files are back in /mnt/data." if files_back else "")
    )
