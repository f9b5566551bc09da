"""Many sessions, one per thread: get-or-create, re-attach, idle expiry, sweep.

Session records live in SQLite, so a second process (another ``lci run``, a restarted
service) re-attaches to the thread's live container instead of starting another.
Expiry is enforced by the reaper task of any open manager, by a sweep whenever a
manager opens, and inside each sandbox by the launcher's own idle watchdog.
"""

from __future__ import annotations

import asyncio
import grp
import hashlib
import pwd
import secrets
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio.to_thread

from .backends.base import Backend, load_backend
from .config import Settings
from .disk import Disk
from .errors import (
    ConfigError,
    ImageNotFound,
    NoSuchSession,
    SessionClosed,
    SessionError,
)
from .files import FileStore
from .history import History, Purged
from .layout import LABEL, session_disk, teardown
from .locking import file_lock
from .quotas import Capacity, Quotas
from .results import SessionState
from .session import Session
from .store import SessionRecord, Store

__all__ = ["SessionManager"]


class SessionManager:
    """The async core. ``async with SessionManager.from_env() as manager: ...``"""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        backend: Backend | None = None,
        reaper: bool = True,
        quotas: Quotas | None = None,
    ) -> None:
        """``quotas``: the tenants' limits (the service passes them; the local owner
        ``""`` has none). The host's capacity applies to every start."""
        self.settings = settings or Settings.from_env()
        self.quotas = quotas
        _private_dir(self.settings.home)
        _private_dir(self.settings.sessions_dir)
        self.store = Store(self.settings.db_path)
        self.files = FileStore(
            self.store,
            self.settings.blobs_dir,
            self.settings.limits.max_upload_bytes,
            self.settings.capacity.min_free,
        )
        self._reserved_at = (0.0, 0)
        self.files.reserved = self._reserved
        self.files.charge = self._charge
        self.capacity = Capacity(self.settings, self.store.live_count)
        self._pending: dict[str, list[int]] = {}  # owner -> memory of starts under way
        self.history = History(self.store)
        self.backend = backend or load_backend(self.settings)
        self._uids_checked = False
        self._seccomp: str | None = None
        self._sessions: dict[str, Session] = {}  # by session id
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._use_reaper = reaper
        self._reaper: asyncio.Task[None] | None = None
        self._image: str | None = None
        self._closed = False
        self._cpu_seen: dict[str, tuple[float, int, float]] = {}  # last usage sample
        self._purged_at = 0.0
        # observers of what happens (metrics): fn(event, fields); events are
        # "sandbox_started" and "session_ended" (fields: reason, state, reaped)
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> SessionManager:
        reaper = overrides.pop("reaper", True)
        return cls(Settings.from_env(environ, **overrides), reaper=reaper)

    async def __aenter__(self) -> SessionManager:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self, sweep: bool = True) -> None:
        """Sweep what earlier processes left behind and start the reaper."""
        if sweep:
            await self.sweep()
        if self._use_reaper and self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_forever(), name="lci-reaper")

    async def close(self) -> None:
        """Let go of every kernel client. Sandboxes keep running until they expire."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        for s in list(self._sessions.values()):
            await s.close()
        self._sessions.clear()
        self.backend.close()
        self.store.close()

    # -- sessions ---------------------------------------------------------------------

    async def session(
        self,
        thread_id: str | None = None,
        *,
        file_ids: Iterable[str] = (),
        owner: str = "",
        idle_timeout: float | None = None,
        memory: int | None = None,
        runtime: str | None = None,
    ) -> Session:
        """The live session of ``thread_id``, re-attached or started; files are attached.

        ``runtime`` (``runc``, ``runsc``) applies when a sandbox is started."""
        if self._closed:
            raise SessionClosed("manager")
        thread_id = thread_id or "thread_" + secrets.token_hex(8)
        cached = self._cached(owner, thread_id)
        if cached is not None and not file_ids:
            return cached
        async with self._thread_lock(owner, thread_id):
            if (memory, idle_timeout, runtime) != (None, None, None):
                self.store.set_thread_settings(
                    owner, thread_id, memory=memory, idle_timeout=idle_timeout, runtime=runtime
                )
            session = await self._live(owner, thread_id)
            if session is None:
                session = await self._start(owner, thread_id, idle_timeout, memory, runtime)
        ids = list(file_ids)
        if ids:
            await session.add_files(ids)
        return session

    async def find(self, thread_id: str, *, owner: str = "") -> Session | None:
        """The live session of ``thread_id`` if there is one; never starts a sandbox."""
        if self._closed:
            raise SessionClosed("manager")
        cached = self._cached(owner, thread_id)
        if cached is not None:
            return cached
        async with self._thread_lock(owner, thread_id):
            return await self._live(owner, thread_id)

    def _cached(self, owner: str, thread_id: str) -> Session | None:
        """The fast path: a session this manager holds whose record is still live."""
        for s in self._sessions.values():
            if s.owner == owner and s.thread_id == thread_id and not s.closed:
                rec = self.store.get_session(s.id)
                return s if rec is not None and rec.state.live else None
        return None

    async def get(self, session_id: str) -> Session:
        """A live session by its id (``sess_...``)."""
        rec = self.store.get_session(session_id)
        if rec is None or not rec.state.live:
            raise NoSuchSession(session_id)
        session = await self.session(rec.thread_id, owner=rec.owner)
        if session.id != session_id:  # it ended meanwhile and the thread got a new one
            raise NoSuchSession(f"{session_id} (it ended)")
        return session

    async def list_sessions(
        self, owner: str | None = None, live_only: bool = True
    ) -> list[SessionRecord]:
        return self.store.list_sessions(owner=owner, live_only=live_only)

    async def stop(self, session_id: str, reason: str = "stopped") -> None:
        rec = self.store.get_session(session_id)
        if rec is None:
            raise NoSuchSession(session_id)
        await self._end(rec, SessionState.EXPIRED, reason)

    async def interrupt(self, session_id: str) -> None:
        """Interrupt the code running in a session, whichever process runs it."""
        rec = self._live_record(session_id)
        cached = self._sessions.get(rec.id)
        if cached is not None and cached.kc is not None:
            await cached.interrupt()
        elif rec.sandbox_id:
            sandbox = await self.backend.attach(rec.sandbox_id)
            await sandbox.send_signal(signal.SIGUSR1)  # the launcher passes SIGINT on

    async def restart(self, session_id: str) -> None:
        """A fresh kernel in the same sandbox: variables are lost, files are kept."""
        rec = self._live_record(session_id)
        session = self._sessions.get(rec.id)
        if session is None or session.closed:
            if rec.sandbox_id is None:
                raise NoSuchSession(session_id)
            session = self._wrap(rec, await self.backend.attach(rec.sandbox_id))
            self._sessions[rec.id] = session
        await session.restart()

    def _live_record(self, session_id: str) -> SessionRecord:
        rec = self.store.get_session(session_id)
        if rec is None or not rec.state.live:
            raise NoSuchSession(session_id)
        return rec

    async def usage(self, records: Iterable[SessionRecord]) -> dict[str, tuple[int, float]]:
        """(memory bytes, CPU percent of one core) of each running session, measured now
        (CPU over the time since the last call, or over a short sample)."""
        live = [r for r in records if r.state.live and r.sandbox_id]
        first = await self._sample(live)
        if any(sid not in self._cpu_seen for sid in first):
            await asyncio.sleep(0.25)
            self._cpu_seen.update(first)
            first = await self._sample(live)
        out = {}
        for sid, (t, memory, cpu) in first.items():
            t0, _, cpu0 = self._cpu_seen.get(sid, (t, 0, cpu))
            out[sid] = (memory, round(100 * (cpu - cpu0) / (t - t0), 1) if t > t0 else 0.0)
        self._cpu_seen = dict(first)
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

    async def purge_history(self, days: float | None = None) -> Purged:
        """Forget executions (and ended sessions) older than ``days`` (default
        LCI_HISTORY_DAYS; 0 keeps everything), with the output files only they held."""
        days = self.settings.history_days if days is None else days
        if days <= 0:  # LCI_HISTORY_DAYS=0: keep everything
            return Purged(0, 0, [])
        purged = self.history.purge(days)
        for fid in purged.files:
            with suppress(Exception):
                await self.files.delete(fid)
        return purged

    async def stop_all(self) -> int:
        recs = self.store.list_sessions(live_only=True)
        for rec in recs:
            await self._end(rec, SessionState.EXPIRED, "stopped")
        return len(recs)

    async def _live(self, owner: str, thread_id: str) -> Session | None:
        rec = self.store.live_session_for(owner, thread_id)
        if rec is None:
            return None
        cached = self._sessions.get(rec.id)
        if cached is not None and not cached.closed:
            return cached
        if time.time() > rec.expires_at():
            await self._end(rec, SessionState.EXPIRED, f"expired after {rec.idle_timeout:g} s idle")
            return None
        if rec.sandbox_id is None:  # another process is starting it, or died doing so
            return None
        sandbox = await self.backend.attach(rec.sandbox_id)
        if await sandbox.poll() is not None:
            await self._end(rec, SessionState.DEAD, "the sandbox had exited")
            return None
        session = self._wrap(rec, sandbox)
        try:
            await session.connect(min(self.settings.timeouts.start_timeout, 15.0))
        except SessionError:
            await self._end(rec, SessionState.DEAD, "the kernel did not answer")
            return None
        self._sessions[rec.id] = session
        return session

    async def _start(
        self,
        owner: str,
        thread_id: str,
        idle_timeout: float | None,
        memory: int | None,
        runtime: str | None = None,
    ) -> Session:
        previous = self.store.last_session_for(owner, thread_id)
        await self.image()  # a missing image is said before anything is spent
        self._admit()
        # what was asked for this thread (now or when it was made), else what is configured
        # now: a thread does not keep a runtime or limits the operator has since changed
        asked = self.store.thread_settings(owner, thread_id)
        memory = memory or asked.get("memory") or self.settings.sandbox.memory
        idle_timeout = idle_timeout or asked.get("idle_timeout")
        runtime = runtime or asked.get("runtime")
        if self.quotas is not None and owner:
            memory = self.quotas.memory_for(owner, memory)
            live = [r.memory for r in self.store.list_sessions(owner=owner, live_only=True)]
            self.quotas.check_start(owner, live + self._pending.get(owner, []), memory)
        pending = self._pending.setdefault(owner, [])
        pending.append(memory)
        try:
            async with self.capacity.slot():
                session = await self._launch(owner, thread_id, idle_timeout, memory, runtime)
        finally:
            pending.remove(memory)
        self._sessions[session.id] = session
        self._emit("sandbox_started", session_id=session.id, owner=owner)
        attached = self.store.attachments(owner, thread_id)
        if previous is not None:
            session.notice = (
                f"A new session was started for this thread: the previous one ({previous.id}) "
                f"ended ({previous.end_reason or 'it stopped'}), so variables and imports from "
                f"before are lost."
                + (" The thread's files are back in /mnt/data." if attached else "")
            )
        if attached:
            await session.add_files([fid for _, fid in attached])
        return session

    async def _launch(
        self,
        owner: str,
        thread_id: str,
        idle_timeout: float | None,
        memory: int,
        runtime: str | None,
    ) -> Session:
        session = await Session.start(
            thread_id,
            owner=owner,
            settings=self.settings,
            backend=self.backend,
            image=await self.image(),
            seccomp=self._seccomp,
            store=self.store,
            files=self.files,
            renew=self._renew,
            history=self.history,
            idle_timeout=idle_timeout,
            memory=memory,
            runtime=runtime,
        )
        session.quotas = self.quotas
        return session

    async def _renew(self, session: Session) -> None:
        """Called by a Session whose sandbox ended: give it a fresh one, in place."""
        async with self._thread_lock(session.owner, session.thread_id):
            self._sessions.pop(session.id, None)
            session._release()
            fresh = await self._live(session.owner, session.thread_id)
            if fresh is None:
                fresh = await self._start(session.owner, session.thread_id, None, None)
            session._take_over(fresh)
            self._sessions[fresh.id] = session

    def _wrap(self, rec: SessionRecord, sandbox: Any) -> Session:
        session = Session(
            rec,
            sandbox,
            settings=self.settings,
            store=self.store,
            files=self.files,
            renew=self._renew,
            history=self.history,
        )
        session.quotas = self.quotas
        return session

    def _admit(self) -> None:
        """May one more sandbox start? Its uids must be free on the host, and LCI_HOME
        must hold its whole disk on top of every live session's unused share and the
        floor (LCI_MIN_FREE): a sandbox can never fill the disk the store lives on."""
        if not self._uids_checked:
            clash = host_ids_in(*self.settings.sandbox.uid_range)
            if clash:
                raise ConfigError(
                    "LCI_UID_RANGE",
                    "{}-{}".format(*self.settings.sandbox.uid_range),
                    f"a range no host account uses ({clash} is in it)",
                )
            self._uids_checked = True
        self._reserved(fresh=True)
        self.files.check_room(self.settings.sandbox.disk_limit)

    def _charge(self, owner: str, size: int) -> None:
        """Storing ``size`` more bytes for ``owner``: within its quota?"""
        if self.quotas is not None and owner:
            self.quotas.check_stored(owner, self.store.stored_bytes(owner), size)

    def _reserved(self, fresh: bool = False) -> int:
        """What live sessions' disks may still grow by: kept aside from everything else.
        Measured at most once a second, unless ``fresh`` (a new disk is being admitted)."""
        limit = self.settings.sandbox.disk_limit
        if not limit:
            return 0
        when, value = self._reserved_at
        if fresh or time.monotonic() - when > 1.0:
            value = sum(
                max(limit - session_disk(rec, self.settings).used(), 0)
                for rec in self.store.list_sessions(live_only=True)
            )
            self._reserved_at = (time.monotonic(), value)
        return value

    async def image(self) -> str:
        """The sandbox image to run; it must be present (``lci image build``)."""
        if self._image is None:
            if self.settings.sandbox.image:
                tag = self.settings.sandbox.image
            else:
                from .image import image_tag

                tag = image_tag()
            if not await self.backend.image_present(tag):
                raise ImageNotFound(tag)
            from .image import seccomp_profile

            self._seccomp = seccomp_profile()
            self._image = tag
        return self._image

    # -- expiry ------------------------------------------------------------------------

    def _emit(self, event: str, **fields: Any) -> None:
        for listener in self.listeners:
            with suppress(Exception):
                listener(event, fields)

    async def _end(
        self, rec: SessionRecord, state: SessionState, reason: str, reaped: bool = False
    ) -> None:
        cached = self._sessions.pop(rec.id, None)
        if cached is not None:
            cached._release()
        ended = self.store.end_session(rec.id, state, reason)
        if ended:
            self._emit(
                "session_ended", session_id=rec.id, state=state, reason=reason, reaped=reaped
            )
        if ended or rec.sandbox_id:
            sandbox = await self.backend.attach(rec.sandbox_id) if rec.sandbox_id else None
            await teardown(sandbox, rec, self.settings)

    async def reap(self) -> int:
        """End every live session idle past its timeout; return how many."""
        now, n = time.time(), 0
        for rec in self.store.list_sessions(live_only=True):
            # a busy session is running code: only a stuck one (its process died) expires
            grace = (
                self.settings.timeouts.exec_timeout + self.settings.timeouts.interrupt_grace + 60
            )
            deadline = rec.expires_at() + (grace if rec.state is SessionState.BUSY else 0)
            if rec.state is SessionState.STARTING:  # a slow start is not idleness
                deadline = max(deadline, rec.created_at + self.settings.timeouts.start_timeout)
            if now > deadline:
                await self._end(
                    rec,
                    SessionState.EXPIRED,
                    f"expired after {rec.idle_timeout:g} s idle",
                    reaped=True,
                )
                n += 1
        return n

    async def sweep(self) -> dict[str, int]:
        """Reap, then reconcile containers with records: remove our containers that no
        live record claims, and end records whose container is gone."""
        reaped = await self.reap()
        labels = {LABEL: "1", "lci.home": self.settings.home_id}
        orphans = dead = 0
        seen = set()
        for info in await self.backend.list_sandboxes(labels):
            sid = info.labels.get("lci.session", "")
            seen.add(sid)
            rec = self.store.get_session(sid)
            if rec is None or not rec.state.live:
                await self._remove(info.id)
                if rec is not None:
                    await teardown(None, rec, self.settings)
                orphans += 1
            elif not info.running:
                await self._end(rec, SessionState.DEAD, "the sandbox had exited")
                dead += 1
        for rec in self.store.list_sessions(live_only=True):
            young = time.time() - rec.created_at < self.settings.timeouts.start_timeout
            if rec.id not in seen and not young:
                self.store.end_session(rec.id, SessionState.DEAD, "the sandbox was gone")
                await teardown(None, rec, self.settings)
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
        settled = self.history.settle()
        for s in settled:
            if s.live_log:
                Path(s.live_log).unlink(missing_ok=True)
            rec = self.store.get_session(s.session_id)
            if rec is not None and rec.state.live and rec.sandbox_id:
                with suppress(Exception):
                    sandbox = await self.backend.attach(rec.sandbox_id)
                    await sandbox.send_signal(signal.SIGUSR1)  # the launcher passes SIGINT on
                self.store.touch_session(rec.id, SessionState.IDLE)
        return len(settled)

    async def _remove(self, sandbox_id: str) -> None:
        sandbox = await self.backend.attach(sandbox_id)
        with suppress(Exception):
            await sandbox.cleanup()

    async def _reap_forever(self) -> None:
        while True:
            if self.settings.history_days and time.time() - self._purged_at > 3600:
                self._purged_at = time.time()  # on start, then hourly
                with suppress(Exception):
                    await self.purge_history()
            idle = min(
                [r.idle_timeout for r in self.store.list_sessions(live_only=True)]
                or [self.settings.timeouts.idle_timeout]
            )
            await asyncio.sleep(max(0.5, min(30.0, idle / 4)))
            with suppress(Exception):
                await self.reap()

    @asynccontextmanager
    async def _thread_lock(self, owner: str, thread_id: str) -> AsyncIterator[None]:
        """One get-or-create per thread at a time, in this process and across processes."""
        lock = self._locks.setdefault((owner, thread_id), asyncio.Lock())
        async with lock:
            key = hashlib.sha256(f"{owner}\0{thread_id}".encode()).hexdigest()[:24]
            locks = self.settings.home / "locks"
            locks.mkdir(mode=0o700, exist_ok=True)
            async with file_lock(locks / key, poll=0.02):
                yield


def _private_dir(path: Path) -> None:
    """A directory only the service's user can enter (created, or tightened)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def host_ids_in(first: int, last: int) -> str | None:
    """A host user, group or subordinate id range that falls within [first, last], or None."""
    for user in pwd.getpwall():
        if first <= user.pw_uid <= last:
            return f"user {user.pw_name} (uid {user.pw_uid})"
    for group in grp.getgrall():
        if first <= group.gr_gid <= last:
            return f"group {group.gr_name} (gid {group.gr_gid})"
    for sub in ("/etc/subuid", "/etc/subgid"):
        with suppress(OSError):
            for line in Path(sub).read_text().splitlines():
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                    lo, n = int(parts[1]), int(parts[2])
                    if lo <= last and first < lo + n:
                        return f"{sub} range of {parts[0]} ({lo}-{lo + n - 1})"
    return None
