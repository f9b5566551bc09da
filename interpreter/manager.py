"""Many sessions, one per thread: the only place that builds sessions and decides
whether one is live, whether it has expired, and what a thread's state is.

Session records live in SQLite, so a second process (another ``lci run``, a restarted
service) re-attaches to the thread's live container instead of starting another.
Expiry is enforced by the reaper of any open manager and by a sweep whenever a
manager opens (``upkeep.py``), and inside each sandbox by the launcher's own idle
watchdog. Starts pass ``admission.py`` first.

What happens is reported to ``listeners`` (``fn(event, fields)``): ``sandbox_started``
(session_id, owner), ``session_ended`` (session_id, owner, state, reason, reaped) and
``execution`` (execution, owner), the last for every execution from any face.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from .admission import Admission
from .backends.base import Backend, Sandbox, load_backend
from .catalog import Catalog, Index, IndexEntry, SandboxFile
from .config import Settings
from .errors import ImageNotFound, NoSuchSession, SessionClosed, SessionError
from .files import FileStore
from .history import History, Purged
from .layout import kernel_uid, make_dirs, new_record, remove_dirs, sandbox_spec, teardown
from .locking import file_lock
from .quotas import Quotas
from .results import SessionState
from .session import Session
from .store import SessionRecord, Store
from .threads import Threads, ThreadState
from .upkeep import Upkeep
from .workspace import Workspace

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
        self.admission = Admission(self.settings, self.store, self.files, quotas)
        self.history = History(self.store)
        self.threads = Threads(self.store)
        self.index = Index(self.store)
        self.backend = backend or load_backend(self.settings)
        self.upkeep = Upkeep(self)
        self._seccomp: str | None = None
        self._sessions: dict[str, Session] = {}  # by session id
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._use_reaper = reaper
        self._reaper: asyncio.Task[None] | None = None
        self._image: str | None = None
        self._closed = False
        self._cpu_seen: dict[str, tuple[float, int, float]] = {}  # last usage sample
        self.listeners: list[Listener] = []

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
            self._reaper = asyncio.create_task(self.upkeep.forever(), name="lci-reaper")

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
                self.threads.ask(
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
                return s if self.ended(s.id) is None else None
        return None

    async def get(self, session_id: str) -> Session:
        """A live session by its id (``sess_...``)."""
        rec = self._live_record(session_id)
        session = await self.session(rec.thread_id, owner=rec.owner)
        if session.id != session_id:  # it ended meanwhile and the thread got a new one
            raise NoSuchSession(f"{session_id} (it ended)")
        return session

    async def list_sessions(
        self, owner: str | None = None, live_only: bool = True
    ) -> list[SessionRecord]:
        return self.records(owner, live_only)

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

    async def forget(self, owner: str, thread_id: str, reason: str) -> bool:
        """Stop the thread's live session (if any) and forget its files' places: the
        thread's /mnt/data starts empty next time (the stored files stay). True when a
        session was live."""
        live = self.store.live_session_for(owner, thread_id)
        if live is not None:
            await self.stop(live.id, reason=reason)
        self.index.forget(owner, thread_id)
        return live is not None

    # -- liveness and expiry: decided here only ------------------------------------------

    def record(self, session_id: str) -> SessionRecord | None:
        """The session's record (live or ended), or None."""
        return self.store.get_session(session_id)

    def records(self, owner: str | None = None, live_only: bool = True) -> list[SessionRecord]:
        return self.store.list_sessions(owner=owner, live_only=live_only)

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

    def live_record(self, owner: str, thread_id: str) -> SessionRecord | None:
        """The thread's live session record, unless it has expired."""
        rec = self.store.live_session_for(owner, thread_id)
        return None if rec is None or self.expired(rec) else rec

    def last_record(self, owner: str, thread_id: str) -> SessionRecord | None:
        return self.store.last_session_for(owner, thread_id)

    def thread_state(self, owner: str, thread_id: str) -> ThreadState:
        """Live, resumable (its sandbox died: the next call starts a fresh one), ended
        (expired or stopped: it stays ended), or new."""
        if self.live_record(owner, thread_id) is not None:
            return ThreadState.LIVE
        last = self.store.last_session_for(owner, thread_id)
        if last is None:
            return ThreadState.NEW
        if last.state is SessionState.DEAD:
            return ThreadState.RESUMABLE
        return ThreadState.ENDED

    def live_threads(self, owner: str) -> list[str]:
        """Threads of ``owner`` with a live session, newest first."""
        return self.store.threads_of(owner)

    def _live_record(self, session_id: str) -> SessionRecord:
        rec = self.store.get_session(session_id)
        if rec is None or not rec.state.live:
            raise NoSuchSession(session_id)
        return rec

    # -- files of a thread ----------------------------------------------------------------

    def catalog(self, record: SessionRecord) -> Catalog:
        """The /mnt/data <-> file ID catalogue of a live session's record."""
        uid = kernel_uid(record)
        return Catalog(
            self.store,
            self.files,
            Workspace(Path(record.data_dir), (uid, uid)),
            record.owner,
            record.thread_id,
            self.settings.limits.max_output_file_bytes,
            self.settings.sandbox.disk_limit,
        )

    async def thread_files(self, owner: str, thread_id: str) -> list[SandboxFile]:
        """The thread's files: as they are now if its session is live, else as last known."""
        session = await self.find(thread_id, owner=owner)
        if session is not None:
            return await session.list_files()
        return Catalog(self.store, self.files, None, owner, thread_id, 0).list()

    def placed(self, owner: str, thread_id: str) -> dict[str, IndexEntry]:
        """What the thread's /mnt/data last held, by path (no sandbox is asked)."""
        return self.index.entries(owner, thread_id)

    # -- events and state changes (the session's calls) ------------------------------------

    def emit(self, event: str, **fields: Any) -> None:
        for listener in self.listeners:
            with suppress(Exception):
                listener(event, fields)

    def touch(self, session_id: str, state: SessionState, executed: bool = False) -> None:
        self.store.touch_session(session_id, state, executed)

    def exited(self, rec: SessionRecord, reason: str) -> None:
        """The host saw the sandbox exit under a session: it is dead."""
        if self.store.end_session(rec.id, SessionState.DEAD, reason):
            self.emit(
                "session_ended", session_id=rec.id, owner=rec.owner, state=SessionState.DEAD,
                reason=reason, reaped=False,
            )  # fmt: skip

    async def end(
        self, rec: SessionRecord, state: SessionState, reason: str, reaped: bool = False
    ) -> None:
        """End a session: let go of it, record why, remove its sandbox and disk."""
        cached = self._sessions.pop(rec.id, None)
        if cached is not None:
            cached.release()
        ended = self.store.end_session(rec.id, state, reason)
        if ended:
            self.emit(
                "session_ended", session_id=rec.id, owner=rec.owner, state=state, reason=reason,
                reaped=reaped,
            )  # fmt: skip
        if ended or rec.sandbox_id:
            sandbox = await self.backend.attach(rec.sandbox_id) if rec.sandbox_id else None
            await teardown(sandbox, rec, self.settings)

    async def renew(self, session: Session) -> None:
        """The sandbox of a held ``session`` ended: give it the thread's live one, or a
        fresh one, in place."""
        async with self._thread_lock(session.owner, session.thread_id):
            self._sessions.pop(session.id, None)
            session.release()
            fresh = await self._live(session.owner, session.thread_id)
            if fresh is None:
                fresh = await self._start(session.owner, session.thread_id, None, None)
            session.rebind(fresh)
            self._sessions[fresh.id] = session

    # -- building sessions --------------------------------------------------------------

    async def _live(self, owner: str, thread_id: str) -> Session | None:
        rec = self.store.live_session_for(owner, thread_id)
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
        owner: str,
        thread_id: str,
        idle_timeout: float | None,
        memory: int | None,
        runtime: str | None = None,
    ) -> Session:
        previous = self.store.last_session_for(owner, thread_id)
        await self.image()  # a missing image is said before anything is spent
        # what was asked for this thread (now or when it was made), else what is configured
        # now: a thread does not keep a runtime or limits the operator has since changed
        asked = self.threads.asked(owner, thread_id)
        memory = self.admission.memory_for(
            owner, memory or asked.get("memory") or self.settings.sandbox.memory
        )
        idle_timeout = idle_timeout or asked.get("idle_timeout")
        runtime = runtime or asked.get("runtime")
        async with self.admission.start(owner, memory):
            record = new_record(
                thread_id, owner, self.settings, self.backend.name, idle_timeout, memory, runtime
            )
            session = await self._launch(record)
        self._sessions[session.id] = session
        self.emit("sandbox_started", session_id=session.id, owner=owner)
        attached = self.index.attachments(owner, thread_id)
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

    async def _launch(self, record: SessionRecord) -> Session:
        """Make the session's disk, start its sandbox, wait until its kernel answers. A
        failure leaves nothing behind; a stop meanwhile is said as such."""
        sid, settings = record.id, self.settings
        self.store.add_session(record, settings.sandbox.uid_range)
        try:
            await anyio.to_thread.run_sync(make_dirs, record, settings)
            spec = sandbox_spec(record, settings, await self.image(), self._seccomp)
            sandbox: Sandbox = await self.backend.launch(spec)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                stopped = self.ended(sid)
                self.store.end_session(sid, SessionState.DEAD, "the sandbox did not start")
                await anyio.to_thread.run_sync(remove_dirs, record, settings)
            _stopped_while_starting(stopped, exc)
            raise
        self.store.update_session(sid, sandbox_id=sandbox.id)
        record.sandbox_id = sandbox.id
        session = Session(record, sandbox, self)
        try:
            await session.connect(settings.timeouts.start_timeout)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                stopped = self.ended(sid)
                await self.end(record, SessionState.DEAD, "the kernel did not start")
            _stopped_while_starting(stopped, exc)
            raise
        return session

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

    # -- upkeep and measurements ----------------------------------------------------------

    async def reap(self) -> int:
        """End every live session idle past its timeout; return how many."""
        return await self.upkeep.reap()

    async def sweep(self) -> dict[str, int]:
        """Reap, reconcile containers with records, settle lost executions, remove
        stale session disks (see ``upkeep.py``)."""
        return await self.upkeep.sweep()

    async def settle(self) -> int:
        return await self.upkeep.settle()

    async def purge_history(self, days: float | None = None) -> Purged:
        """Forget executions (and ended sessions) older than ``days`` (default
        LCI_HISTORY_DAYS; 0 keeps everything), with the output files only they held."""
        return await self.upkeep.purge_history(days)

    def ping(self) -> None:
        """Raise if the store cannot be read."""
        self.store.ping()

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


def _stopped_while_starting(stopped: str | None, exc: BaseException) -> None:
    if stopped and isinstance(exc, Exception):
        raise SessionClosed(f"session (it was stopped while it started: {stopped})") from exc


def _private_dir(path: Path) -> None:
    """A directory only the service's user can enter (created, or tightened)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
