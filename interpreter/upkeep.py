"""What keeps LCI_HOME true over time (expiry, the sweep, lost executions, old history),
and what the running sandboxes use (``Meter``).

The manager decides (``manager.expired``, ``manager.end``); ``Upkeep`` applies it on a
clock and when a manager opens: it ends sessions idle past their timeout, reconciles
the engine's containers with the records (our containers no live record claims are
removed; records whose container is gone end), settles executions a killed process
left ``running``, removes session directories no live record claims, and forgets
history older than LCI_HISTORY_DAYS.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from .backends.base import Backend
from .disk import Disk
from .history import Purged
from .layout import LABEL, teardown
from .results import SessionState
from .store import SessionRecord

if TYPE_CHECKING:
    from .manager import SessionManager

__all__ = ["Meter", "Upkeep"]


class Upkeep:
    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        self.settings, self.store = manager.settings, manager.store
        self._purged_at = 0.0

    async def reap(self) -> int:
        """End every live session idle past its timeout; return how many."""
        n = 0
        for rec in self.store.list_sessions(live_only=True):
            if self.manager.expired(rec):
                why = f"expired after {rec.idle_timeout:g} s idle"
                await self.manager.end(rec, SessionState.EXPIRED, why, reaped=True)
                n += 1
        return n

    async def sweep(self) -> dict[str, int]:
        """Reap, then reconcile containers with records: remove our containers that no
        live record claims, and end records whose container is gone."""
        reaped = await self.reap()
        orphans, dead, seen = await self._reconcile()
        for rec in self.store.list_sessions(live_only=True):
            young = time.time() - rec.created_at < self.settings.timeouts.start_timeout
            if rec.id not in seen and not young:
                await self.manager.end(rec, SessionState.DEAD, "the sandbox was gone")
                dead += 1
        lost = await self.settle()
        stale = await anyio.to_thread.run_sync(self._stale_disks)
        return {
            "reaped": reaped,
            "orphans_removed": orphans,
            "dead": dead,
            "lost": lost,
            "stale_disks": stale,
        }

    async def _reconcile(self) -> tuple[int, int, set[str]]:
        labels = {LABEL: "1", "lci.home": self.settings.home_id}
        orphans = dead = 0
        seen = set()
        backend = self.manager.backend
        for info in await backend.list_sandboxes(labels):
            sid = info.labels.get("lci.session", "")
            seen.add(sid)
            rec = self.store.get_session(sid)
            if rec is None or not rec.state.live:
                with suppress(Exception):
                    await (await backend.attach(info.id)).cleanup()
                if rec is not None:
                    await teardown(None, rec, self.settings)
                orphans += 1
            elif not info.running:
                await self.manager.end(rec, SessionState.DEAD, "the sandbox had exited")
                dead += 1
        return orphans, dead, seen

    def _stale_disks(self) -> int:
        """Session directories (and their mounted disks) no live record claims: what a
        process that died between ending a session and tearing it down left."""
        n = 0
        for path in self.settings.sessions_dir.glob("sess_*"):
            rec = self.store.get_session(path.name)
            if rec is None or not rec.state.live:
                Disk(path, self.settings.sandbox.disk_limit, self.settings.sandbox.inodes).destroy()
                n += 1
        return n

    async def settle(self) -> int:
        """Executions a killed process left ``running``: recorded as lost, their spools
        removed, and the code (if its session lives) interrupted, so the session shows
        its real state."""
        settled = self.manager.history.settle()
        for s in settled:
            if s.live_log:
                Path(s.live_log).unlink(missing_ok=True)
            rec = self.store.get_session(s.session_id)
            if rec is not None and rec.state.live and rec.sandbox_id:
                with suppress(Exception):
                    sandbox = await self.manager.backend.attach(rec.sandbox_id)
                    await sandbox.send_signal(signal.SIGUSR1)  # the launcher passes SIGINT on
                self.store.touch_session(rec.id, SessionState.IDLE)
        return len(settled)

    async def purge_history(self, days: float | None = None) -> Purged:
        """Forget executions (and ended sessions) older than ``days`` (default
        LCI_HISTORY_DAYS; 0 keeps everything), with the output files only they held."""
        days = self.settings.history_days if days is None else days
        if days <= 0:  # LCI_HISTORY_DAYS=0: keep everything
            return Purged(0, 0, [])
        purged = self.manager.history.purge(days)
        for fid in purged.files:
            with suppress(Exception):
                await self.manager.files.delete(fid)
        return purged

    async def forever(self) -> None:
        """The reaper: reap on a clock (a quarter of the shortest idle timeout, within
        0.5-30 s), and purge old history on start and then hourly."""
        while True:
            if self.settings.history_days and time.time() - self._purged_at > 3600:
                self._purged_at = time.time()
                with suppress(Exception):
                    await self.purge_history()
            idle = min(
                [r.idle_timeout for r in self.store.list_sessions(live_only=True)]
                or [self.settings.timeouts.idle_timeout]
            )
            await asyncio.sleep(max(0.5, min(30.0, idle / 4)))
            with suppress(Exception):
                await self.reap()


class Meter:
    """What running sandboxes use, measured on the engine: memory now, and CPU over the
    time since the last measurement (or over a short sample the first time)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._seen: dict[str, tuple[float, int, float]] = {}  # the last sample

    async def measure(self, records: Iterable[SessionRecord]) -> dict[str, tuple[int, float]]:
        """(memory bytes, CPU percent of one core) of each running session."""
        live = [r for r in records if r.state.live and r.sandbox_id]
        first = await self._sample(live)
        if any(sid not in self._seen for sid in first):
            await asyncio.sleep(0.25)
            self._seen.update(first)
            first = await self._sample(live)
        out = {}
        for sid, (t, memory, cpu) in first.items():
            t0, _, cpu0 = self._seen.get(sid, (t, 0, cpu))
            out[sid] = (memory, round(100 * (cpu - cpu0) / (t - t0), 1) if t > t0 else 0.0)
        self._seen = dict(first)
        return out

    async def _sample(self, records: list[SessionRecord]) -> dict[str, tuple[float, int, float]]:
        async def one(rec: SessionRecord) -> tuple[str, Any]:
            assert rec.sandbox_id is not None
            return rec.id, await (await self.backend.attach(rec.sandbox_id)).usage()

        got = await asyncio.gather(*(one(r) for r in records), return_exceptions=True)
        now = time.monotonic()
        return {
            sid: (now, u.memory, u.cpu_seconds)
            for sid, u in (g for g in got if isinstance(g, tuple))
            if u is not None
        }
