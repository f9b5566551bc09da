"""Inspect sandbox sessions: what is alive and what it costs, what ran, and stepping in.

The one core behind ``lci sessions/logs/attach/export`` (on the local store) and the
service's ``/v1/lci`` routes and ``/ui`` pages. ``tenant=None`` sees every tenant (the
local operator); a string sees only that tenant's sessions, others are NoSuchSession.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio.to_thread
from nbformat import NotebookNode

from ..config import Settings
from ..errors import NoSuchFile, NoSuchSession
from ..executor import OutputCallback
from ..history import RUNNING
from ..manager import SessionManager
from ..results import Execution
from ..store import SessionRecord
from ..workspace import MOUNT
from .interface import SessionView
from .notebook import build_notebook

__all__ = ["LocalInspector"]


class LocalInspector:
    """The ``Inspector`` on this LCI_HOME's store and engine."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager

    # -- looking --------------------------------------------------------------------

    async def sessions(self, tenant: str | None = None, *, all: bool = False) -> list[SessionView]:
        """Live sessions (``all``: ended ones too), newest first."""
        records = self.manager.records(tenant=tenant, live_only=not all)
        records.reverse()
        return await self._views(records)

    async def session(self, session_id: str, tenant: str | None = None) -> SessionView:
        return (await self._views([self._record(session_id, tenant)]))[0]

    async def executions(
        self, session_id: str, tenant: str | None = None, *, last: int | None = None
    ) -> list[dict[str, Any]]:
        """The session's executions, oldest first (``last``: the newest N only)."""
        self._record(session_id, tenant)
        return self.manager.history.entries(session_id=session_id, last=last)

    async def files(self, session_id: str, tenant: str | None = None) -> list[dict[str, Any]]:
        """The files its thread's /mnt/data last held, by path: ``{path, file_id, bytes}``
        (as last indexed; no sandbox is asked)."""
        rec = self._record(session_id, tenant)
        placed = self.manager.threads.placed(rec.tenant, rec.thread_id)
        return [
            {"path": f"{MOUNT}/{path}", "file_id": e.file_id, "bytes": e.size}
            for path, e in sorted(placed.items())
        ]

    async def file(self, file_id: str) -> tuple[str, bytes]:
        """A stored file: (a name for it, its bytes)."""
        info = await self.manager.files.get(file_id)
        return Path(info.path or info.filename).name, await self.manager.files.content(file_id)

    async def notebook(self, session_id: str, tenant: str | None = None) -> NotebookNode:
        rec = self._record(session_id, tenant)
        entries = self.manager.history.entries(session_id=session_id)

        def load(file_id: str) -> bytes | None:
            try:
                return self.manager.files.path(file_id, rec.tenant).read_bytes()
            except (NoSuchFile, OSError):
                return None

        title = f"lci session {rec.id} (thread {rec.thread_id})"
        return await anyio.to_thread.run_sync(lambda: build_notebook(entries, load, title))

    async def follow(
        self, session_id: str, tenant: str | None = None, *, last: int = 0, poll: float = 0.2
    ) -> AsyncIterator[dict[str, Any]]:
        """Events as executions happen in the session, from any process:
        ``{"event": "started", "execution"}``, ``{"event": "output", "execution_id",
        "text"}`` while it runs, ``{"event": "finished", "execution"}``; and
        ``{"event": "ended", "session"}`` last, when the session ends. ``last`` replays
        the newest N executions first."""
        rec = self._record(session_id, tenant)
        history = self.manager.history
        done: set[str] = set()
        shown: dict[str, int] = {}  # running execution -> characters of its log sent
        earlier = history.entries(session_id=rec.id)
        for entry in earlier[: len(earlier) - last] if last else earlier:
            if entry["status"] != RUNNING:
                done.add(entry["id"])  # not replayed; a running one is followed
        since = 0.0
        while True:
            current = self.manager.record(rec.id)
            ended = self.manager.ended(rec.id) is not None
            for entry in history.entries(session_id=rec.id, since=since):
                if entry["id"] in done:
                    continue
                async for event in self._advance(entry, shown):
                    yield event
                if entry["status"] != RUNNING:
                    done.add(entry["id"])
                    shown.pop(entry["id"], None)
            started = [history.get(e) for e in shown]
            since = min([e["started_at"] for e in started if e] or [time.time() - 1])
            if ended:
                yield {"event": "ended", "session": (await self._views([current or rec]))[0]}
                return
            await asyncio.sleep(poll)

    async def _advance(
        self, entry: dict[str, Any], shown: dict[str, int]
    ) -> AsyncIterator[dict[str, Any]]:
        exe_id = entry["id"]
        if exe_id not in shown:
            shown[exe_id] = 0
            yield {"event": "started", "execution": _head(entry)}
        text = await anyio.to_thread.run_sync(self._log_text, entry, shown[exe_id])
        if text:
            shown[exe_id] += len(text)
            yield {"event": "output", "execution_id": exe_id, "text": text}
        if entry["status"] != RUNNING:
            yield {"event": "finished", "execution": entry}

    def _log_text(self, entry: dict[str, Any], offset: int) -> str:
        """The execution's log from ``offset``: the live spool while it runs, the stored
        complete log once it finished."""
        if entry["status"] == RUNNING:
            path = entry.get("live_log")
        elif entry.get("log_file_id"):
            try:
                path = str(self.manager.files.path(entry["log_file_id"]))
            except NoSuchFile:
                return ""
        else:
            return ""
        try:
            with open(path, encoding="utf-8", errors="replace") as f:  # type: ignore[arg-type]
                return f.read()[offset:]
        except (OSError, TypeError):
            return ""

    # -- stepping in ----------------------------------------------------------------

    async def execute(
        self,
        session_id: str,
        code: str,
        tenant: str | None = None,
        *,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> Execution:
        """Run code in the session by hand (``lci attach``); it is recorded like any other."""
        self._record(session_id, tenant, live=True)
        session = await self.manager.get(session_id)
        return await session.execute(code, timeout, on_output=on_output)

    async def interrupt(self, session_id: str, tenant: str | None = None) -> None:
        self._record(session_id, tenant, live=True)
        await self.manager.interrupt(session_id)

    async def restart(self, session_id: str, tenant: str | None = None) -> None:
        self._record(session_id, tenant, live=True)
        await self.manager.restart(session_id)

    async def stop(self, session_id: str, tenant: str | None = None) -> None:
        self._record(session_id, tenant, live=True)
        await self.manager.stop(session_id, "stopped by an operator")

    # -- helpers ----------------------------------------------------------------------

    def _record(self, session_id: str, tenant: str | None, live: bool = False) -> SessionRecord:
        rec = self.manager.record(session_id)
        if rec is None or (tenant is not None and rec.tenant != tenant):
            raise NoSuchSession(session_id)
        if live and not rec.state.live:
            raise NoSuchSession(f"{session_id} (it {rec.state.value}: {rec.end_reason})")
        return rec

    async def _views(self, records: list[SessionRecord]) -> list[SessionView]:
        usage = await self.manager.usage(records)
        counts = self.manager.history.counts([r.id for r in records])
        now = time.time()
        return [
            _view(
                r, self.manager.settings, now, usage.get(r.id), counts.get(r.id, 0), self._files(r)
            )
            for r in records
        ]

    def _files(self, rec: SessionRecord) -> int:
        return len(self.manager.threads.placed(rec.tenant, rec.thread_id))


def _view(
    r: SessionRecord,
    settings: Settings,
    now: float,
    usage: tuple[int, float] | None,
    executions: int,
    files: int,
) -> SessionView:
    live = r.state.live
    return SessionView(
        id=r.id,
        thread_id=r.thread_id if r.pool is None else "(pool)",  # ready, owned by no one
        tenant=r.tenant,
        state=r.state.value,
        created_at=r.created_at,
        last_activity=r.last_activity,
        age_s=round((r.ended_at or now) - r.created_at, 1),
        idle_s=round(now - r.last_activity, 1) if live else None,
        expires_in_s=round(max(r.expires_at() - now, 0), 1) if live else None,
        memory_bytes=usage[0] if usage else None,
        cpu_percent=usage[1] if usage else None,
        executions=max(executions, r.executions),
        files=files,
        memory_limit=r.memory,
        cpus=settings.sandbox.cpus,
        pids_limit=settings.sandbox.pids_limit,
        network=settings.sandbox.network,
        idle_timeout=r.idle_timeout,
        container=r.sandbox_id,
        ended_at=r.ended_at,
        end_reason=r.end_reason,
    )


def _head(entry: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "session_id", "thread_id", "code", "status", "started_at")
    return {k: entry.get(k) for k in keys}
