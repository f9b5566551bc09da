"""Many sessions, one per thread: the only place that builds sessions and decides
whether one is live, whether it has expired, and what a thread's state is.

Session records live in SQLite, so a second process (another ``lci run``, a restarted
service) re-attaches to the thread's live container instead of starting another.
Expiry is enforced by the reaper of any open manager and by a sweep whenever a
manager opens (``upkeep.py``), and inside each sandbox by the launcher's own idle
watchdog. Starts pass ``admission.py`` first.

What happens is reported to ``listeners`` (``fn(event, fields)``): ``sandbox_started``
(session_id, tenant), ``session_ended`` (session_id, tenant, state, reason, reaped) and
``execution`` (execution, tenant), the last for every execution from any face.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from typing import Any

import anyio
import anyio.to_thread

from .admission import Admission
from .backends.base import Backend, load_backend
from .catalog import Index
from .config import Settings
from .errors import NoSuchSession, SessionClosed, SessionError
from .files import FileStore
from .history import History, Purged
from .image import sandbox_image
from .layout import new_record, private_dir, start_sandbox, teardown
from .locking import ThreadLocks
from .pool import Pool, Profile
from .quotas import Quotas
from .results import SessionState
from .session import Session
from .store import SessionRecord, Store
from .threads import Threads, successor_notice
from .upkeep import Meter, Upkeep

__all__ = ["SessionManager"]

Listener = Callable[[str, dict[str, Any]], None]


class SessionManager:
    """The async core. ``async with SessionManager.from_env() as manager: ...``"""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        backend: Backend | None = None,
        reaper: bool = True,
        quotas: Quotas | None = None,
        pool: bool = False,
    ) -> None:
        """``quotas``: the tenants' limits (the service passes them; the local tenant
        ``""`` has none). The host's capacity applies to every start. ``pool``: keep
        LCI_POOL_SIZE sandboxes ready (``pool.py``); any manager claims ready ones."""
        self.settings = settings or Settings.from_env()
        self.quotas = quotas
        private_dir(self.settings.home)
        private_dir(self.settings.sessions_dir)
        self.store = Store(self.settings.db_path)
        limits, capacity = self.settings.limits, self.settings.capacity
        self.files = FileStore(
            self.store, self.settings.blobs_dir, limits.max_upload_bytes, capacity.min_free
        )
        self.admission = Admission(self.settings, self.store, self.files, quotas)
        self.history = History(self.store)
        self.threads = Threads(self)
        self.index = Index(self.store)
        self.backend = backend or load_backend(self.settings)
        self.upkeep = Upkeep(self)
        self._seccomp: str | None = None
        self._sessions: dict[str, Session] = {}  # by session id
        self._locks = ThreadLocks(self.settings.home / "locks")
        self._use_reaper, self._use_pool = reaper, pool
        self.pool = Pool(self)
        self._reaper: asyncio.Task[None] | None = None
        self._image: str | None = None
        self._closed = False
        self.meter = Meter(self.backend)
        self.listeners: list[Listener] = []

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> SessionManager:
        reaper, pool = overrides.pop("reaper", True), overrides.pop("pool", False)
        return cls(Settings.from_env(environ, **overrides), reaper=reaper, pool=pool)

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
            self._reaper = asyncio.create_task(self.upkeep.forever(), name="lci-reaper")
        if self._use_pool:
            self.pool.start()

    async def close(self) -> None:
        """Let go of every kernel client. Sandboxes keep running until they expire."""
        self._closed = True
        await self.pool.stop()
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
        tenant: str = "",
        idle_timeout: float | None = None,
        memory: int | None = None,
        runtime: str | None = None,
    ) -> Session:
        """The live session of ``thread_id``, re-attached or started; files are attached.

        ``runtime`` (``runc``, ``runsc``) applies when a sandbox is started."""
        if self._closed:
            raise SessionClosed("manager")
        thread_id = thread_id or "thread_" + secrets.token_hex(8)
        cached = self._cached(tenant, thread_id)
        if cached is not None and not file_ids:
            return cached
        async with self._locks.hold(tenant, thread_id):
            if (memory, idle_timeout, runtime) != (None, None, None):
                self.threads.ask(
                    tenant, thread_id, memory=memory, idle_timeout=idle_timeout, runtime=runtime
                )
            session = await self._live(tenant, thread_id)
            if session is None:
                session = await self._start(tenant, thread_id, idle_timeout, memory, runtime)
        ids = list(file_ids)
        if ids:
            await session.add_files(ids)
        return session

    async def find(self, thread_id: str, *, tenant: str = "") -> Session | None:
        """The live session of ``thread_id`` if there is one; never starts a sandbox."""
        if self._closed:
            raise SessionClosed("manager")
        cached = self._cached(tenant, thread_id)
        if cached is not None:
            return cached
        async with self._locks.hold(tenant, thread_id):
            return await self._live(tenant, thread_id)

    def _cached(self, tenant: str, thread_id: str) -> Session | None:
        """The fast path: a session this manager holds whose record is still live."""
        for s in self._sessions.values():
            if s.tenant == tenant and s.thread_id == thread_id and not s.closed:
                return s if self.ended(s.id) is None else None
        return None

    async def get(self, session_id: str) -> Session:
        """A live session by its id (``sess_...``)."""
        rec = self._live_record(session_id)
        session = await self.session(rec.thread_id, tenant=rec.tenant)
        if session.id != session_id:  # it ended meanwhile and the thread got a new one
            raise NoSuchSession(f"{session_id} (it ended)")
        return session

    async def list_sessions(
        self, tenant: str | None = None, live_only: bool = True
    ) -> list[SessionRecord]:
        return self.records(tenant, live_only)

    async def stop(self, session_id: str, reason: str = "stopped") -> None:
        rec = self.store.get_session(session_id)
        if rec is None:
            raise NoSuchSession(session_id)
        await self.end(rec, SessionState.EXPIRED, reason)

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
            session = Session(rec, await self.backend.attach(rec.sandbox_id), self)
            self._sessions[rec.id] = session
        await session.restart()

    async def stop_all(self) -> int:
        recs = self.store.list_sessions(live_only=True)
        for rec in recs:
            await self.end(rec, SessionState.EXPIRED, "stopped")
        return len(recs)

    # -- liveness and expiry: decided here only ------------------------------------------

    def record(self, session_id: str) -> SessionRecord | None:
        """The session's record (live or ended), or None."""
        return self.store.get_session(session_id)

    def records(self, tenant: str | None = None, live_only: bool = True) -> list[SessionRecord]:
        return self.store.list_sessions(tenant=tenant, live_only=live_only)

    def ended(self, session_id: str) -> str | None:
        """Why the session is over (its end reason), or None while it is live."""
        rec = self.store.get_session(session_id)
        if rec is None:
            return "forgotten"
        return None if rec.state.live else (rec.end_reason or "stopped")

    def expired(self, rec: SessionRecord, now: float | None = None) -> bool:
        """Is the live session past its idle timeout? A busy one only once its execution
        could no longer be running (its process died); a starting one not before its
        start could have finished."""
        now = time.time() if now is None else now
        t = self.settings.timeouts
        deadline = rec.expires_at()
        if rec.state is SessionState.BUSY:
            deadline += t.exec_timeout + t.interrupt_grace + 60
        if rec.state is SessionState.STARTING:
            deadline = max(deadline, rec.created_at + t.start_timeout)
        return now > deadline

    def live_record(self, tenant: str, thread_id: str) -> SessionRecord | None:
        """The thread's live session record, unless it has expired."""
        rec = self.store.live_session_for(tenant, thread_id)
        return None if rec is None or self.expired(rec) else rec

    def _live_record(self, session_id: str) -> SessionRecord:
        rec = self.store.get_session(session_id)
        if rec is None or not rec.state.live:
            raise NoSuchSession(session_id)
        return rec

    # -- events and state changes (the session's calls) ------------------------------------

    def emit(self, event: str, **fields: Any) -> None:
        for listener in self.listeners:
            with suppress(Exception):
                listener(event, fields)

    def touch(self, session_id: str, state: SessionState, executed: bool = False) -> None:
        self.store.touch_session(session_id, state, executed)

    def exited(self, rec: SessionRecord, reason: str) -> bool:
        """The host saw the sandbox exit under a session: it is dead (True if this call
        ended it)."""
        return self._ended(rec, SessionState.DEAD, reason)

    def _ended(
        self, rec: SessionRecord, state: SessionState, reason: str, reaped: bool = False
    ) -> bool:
        ended = self.store.end_session(rec.id, state, reason)
        if ended:
            what = {"state": state, "reason": reason, "reaped": reaped}
            self.emit("session_ended", session_id=rec.id, tenant=rec.tenant, **what)
        return ended

    async def end(
        self, rec: SessionRecord, state: SessionState, reason: str, reaped: bool = False
    ) -> None:
        """End a session: let go of it, record why, remove its sandbox and disk."""
        cached = self._sessions.pop(rec.id, None)
        if cached is not None:
            cached.release()
        ended = self._ended(rec, state, reason, reaped)
        if ended or rec.sandbox_id:
            sandbox = await self.backend.attach(rec.sandbox_id) if rec.sandbox_id else None
            await teardown(sandbox, rec, self.settings)

    async def renew(self, session: Session) -> None:
        """The sandbox of a held ``session`` ended: give it the thread's live one, or a
        fresh one, in place."""
        async with self._locks.hold(session.tenant, session.thread_id):
            self._sessions.pop(session.id, None)
            session.release()
            fresh = await self._live(session.tenant, session.thread_id)
            if fresh is None:
                fresh = await self._start(session.tenant, session.thread_id, None, None)
            session.rebind(fresh)
            self._sessions[fresh.id] = session

    # -- building sessions --------------------------------------------------------------

    async def _live(self, tenant: str, thread_id: str) -> Session | None:
        rec = self.store.live_session_for(tenant, thread_id)
        if rec is None:
            return None
        cached = self._sessions.get(rec.id)
        if cached is not None and not cached.closed:
            return cached
        if self.expired(rec):
            await self.end(rec, SessionState.EXPIRED, f"expired after {rec.idle_timeout:g} s idle")
            return None
        if rec.sandbox_id is None:  # another process is starting it, or died doing so
            return None
        sandbox = await self.backend.attach(rec.sandbox_id)
        if await sandbox.poll() is not None:
            await self.end(rec, SessionState.DEAD, "the sandbox had exited")
            return None
        session = Session(rec, sandbox, self)
        try:
            await session.connect(min(self.settings.timeouts.start_timeout, 15.0))
        except SessionError:
            await self.end(rec, SessionState.DEAD, "the kernel did not answer")
            return None
        self._sessions[rec.id] = session
        return session

    async def _start(
        self,
        tenant: str,
        thread_id: str,
        idle_timeout: float | None,
        memory: int | None,
        runtime: str | None = None,
    ) -> Session:
        previous = self.store.last_session_for(tenant, thread_id)
        image = await self.image()  # a missing image is said before anything is spent
        # what was asked for this thread (now or when it was made), else what is configured
        # now: a thread does not keep a runtime or limits the operator has since changed
        ask, s = self.threads.asked(tenant, thread_id), self.settings
        memory = self.admission.memory_for(tenant, memory or ask.get("memory") or s.sandbox.memory)
        idle_timeout = idle_timeout or ask.get("idle_timeout") or s.timeouts.idle_timeout
        runtime = runtime or ask.get("runtime") or s.sandbox.runtime
        profile = Profile(image, runtime, memory)
        session = await self.pool.claim(tenant, thread_id, profile, idle_timeout)  # or cold
        if session is None:
            async with self.admission.start(tenant, memory):
                record = new_record(thread_id, tenant, self.settings, self.backend.name)
                record.idle_timeout, record.memory, record.runtime = idle_timeout, memory, runtime
                session = await self._launch(record)
        self._sessions[session.id] = session
        self.emit("sandbox_started", session_id=session.id, tenant=tenant)
        attached = self.index.attachments(tenant, thread_id)
        if previous is not None:
            session.notice = successor_notice(previous, bool(attached))
        if attached:
            await session.add_files([fid for _, fid in attached])
        return session

    async def _launch(self, record: SessionRecord) -> Session:
        """Make the session's disk, start its sandbox, wait until its kernel answers. A
        failure leaves nothing behind; a stop meanwhile is said as such."""
        sid, settings = record.id, self.settings
        self.store.add_session(record, settings.sandbox.uid_range)
        try:
            image = await self.image()
            sandbox = await start_sandbox(record, settings, self.backend, image, self._seccomp)
            self.store.update_session(sid, sandbox_id=sandbox.id)
            record.sandbox_id = sandbox.id
            session = Session(record, sandbox, self)
            await session.connect(settings.timeouts.start_timeout)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                stopped = self.ended(sid)
                what = "kernel" if record.sandbox_id else "sandbox"
                await self.end(record, SessionState.DEAD, f"the {what} did not start")
            _stopped_while_starting(stopped, exc)
            raise
        return session

    async def image(self) -> str:
        """The sandbox image to run; it must be present (``lci image build``)."""
        if self._image is None:
            self._image, self._seccomp = await sandbox_image(self.backend, self.settings)
        return self._image

    # -- upkeep and measurements ----------------------------------------------------------

    async def sweep(self) -> dict[str, int]:
        """Reap, reconcile containers with records, settle lost executions, remove
        stale session disks (see ``upkeep.py``)."""
        return await self.upkeep.sweep()

    async def purge_history(self, days: float | None = None) -> Purged:
        """Forget executions (and ended sessions) older than ``days`` (default
        LCI_HISTORY_DAYS; 0 keeps everything), with the output files only they held."""
        return await self.upkeep.purge_history(days)

    def revoke(self, token_id: str, until: float) -> None:
        """A credential (a web inspector login) ended early: refused until ``until``, in
        every process on this LCI_HOME."""
        self.store.revoke(token_id, until)

    def revoked(self, token_id: str) -> bool:
        return self.store.revoked(token_id)

    def ping(self) -> None:
        """Raise if the store cannot be read."""
        self.store.ping()

    async def usage(self, records: Iterable[SessionRecord]) -> dict[str, tuple[int, float]]:
        """(memory bytes, CPU percent of one core) of each running session (``Meter``)."""
        return await self.meter.measure(records)


def _stopped_while_starting(stopped: str | None, exc: BaseException) -> None:
    if stopped and isinstance(exc, Exception):
        raise SessionClosed(f"session (it was stopped while it started: {stopped})") from exc
