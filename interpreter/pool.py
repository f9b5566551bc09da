"""The warm pool: ready sandboxes, claimed by new threads instead of a cold start.

A pooled sandbox is an ordinary session record whose ``pool`` column names its
profile (image, runtime, memory, idle timeout: what its container was started with)
and which no thread and no tenant own yet (``thread_id`` and ``tenant`` empty). It has
its own uid pair and its own disk like every session (``layout.py``), and its kernel
has imported LCI_PRELOAD (``kernels/lci_startup.py``).

A new thread's start (``manager._start``) first asks ``claim``: a sandbox of the
thread's profile is admitted like a start (the tenant's quota), taken with one
compare-and-set on its record (another process's claim cannot take it too), gets the
thread's files, and from then on is an ordinary session; it never goes back to the
pool (ended sessions are destroyed). An empty pool means a cold start.

The filler (``LCI_POOL_SIZE`` per profile; run by ``lci serve``, or by a manager made
with ``pool=True``) sleeps until a claim, an end or a minute's timer wakes it, and
starts what is missing one at a time, each through the host's admission (capacity,
free memory, disk room). Pooled records live in the store, so a restarted service
adopts the ones still running; the sweep treats them as the live records they are,
and the reaper ends them after their idle timeout like any session (then the filler
replaces them). Profiles: the configured one, and those claims asked for recently
(at most ``MAX_PROFILES``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from .errors import BackendError, InterpreterError, SessionError
from .layout import new_record
from .results import SessionState
from .session import Session
from .store import SessionRecord

if TYPE_CHECKING:
    from .manager import SessionManager

__all__ = ["Pool", "Profile"]

MAX_PROFILES = 4
WAKE_S = 60.0  # the filler's timer: what another process claimed or ended is seen by then
BACKOFF_S = 30.0  # after a start the host refused or that failed
# a refill waits this long after it is woken: starting a sandbox takes both cores of a
# small host for a moment, which the claimed session's first calls should not share
SETTLE_S = 1.5


@dataclass(frozen=True)
class Profile:
    """What a sandbox was started with that a claim must match. Its idle timeout is not
    part of it: a pooled sandbox's launcher watchdog is started with LCI_IDLE_TIMEOUT, a
    claim asking for at most that takes it and its record gets the thread's timeout (the
    reaper's); one asking for longer starts cold."""

    image: str
    runtime: str
    memory: int

    @property
    def key(self) -> str:
        text = f"{self.image}|{self.runtime}|{self.memory}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class Pool:
    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        self.size = manager.settings.sandbox.pool_size
        self._held: dict[str, Session] = {}  # ready sandboxes this process is connected to
        self._profiles: dict[str, Profile] = {}  # key -> profile, most recently asked last
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.claims = {"warm": 0, "cold": 0}

    # -- the filler -------------------------------------------------------------------

    def start(self) -> None:
        if self.size and self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._forever(), name="lci-pool")
            self.manager.listeners.append(self._on_event)

    async def stop(self) -> None:
        """Stop filling and let go of the kernel clients; the sandboxes stay pooled for
        the next process (or until their idle timeout)."""
        if self._task is not None:
            self._stopping = True  # a cancel asyncio loses in a race still stops the loop
            self._wake.set()
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for s in self._held.values():
            s.release()
        self._held.clear()

    def _on_event(self, event: str, fields: dict[str, Any]) -> None:
        if event == "session_ended":  # perhaps a pooled one: the filler looks
            self._wake.set()

    async def default_profile(self) -> Profile:
        s = self.manager.settings
        return Profile(await self.manager.image(), s.sandbox.runtime, s.sandbox.memory)

    async def _forever(self) -> None:
        while not self._stopping:
            try:
                await self.fill()
                delay = WAKE_S
            except (InterpreterError, OSError):
                delay = BACKOFF_S  # the host is full, the image missing, the engine away
            self._wake.clear()
            with anyio.move_on_after(delay):
                await self._wake.wait()
            await asyncio.sleep(SETTLE_S)

    async def fill(self) -> int:
        """Start what each profile misses; return how many were started."""
        default = await self.default_profile()
        self._profiles.setdefault(default.key, default)
        started = 0
        for profile in list(self._profiles.values()):
            ready = self.manager.store.pooled(profile.key)
            self._forget_claimed({r.id for r in ready})
            for _ in range(self.size - len(ready)):
                if self.manager._closed or self._stopping:
                    return started
                await self._start_one(profile)
                started += 1
        return started

    def _forget_claimed(self, ready: set[str]) -> None:
        for sid in [sid for sid in self._held if sid not in ready]:
            self._held.pop(sid).release()  # claimed by another process, or ended

    async def _start_one(self, p: Profile) -> None:
        m = self.manager
        async with m.admission.start("", p.memory):  # the host's room, as any start
            record = new_record("", "", m.settings, m.backend.name, None, p.memory)
            record.runtime, record.pool = p.runtime, p.key
            session = await m._launch(record)
        self._held[session.id] = session
        m.emit("pool_filled", session_id=session.id)

    async def wait_ready(self, timeout: float = 120.0) -> int:
        """Until the configured profile has LCI_POOL_SIZE ready (tests, benchmarks)."""
        key = (await self.default_profile()).key
        deadline = time.monotonic() + timeout
        while len(self.manager.store.pooled(key)) < self.size:
            if time.monotonic() > deadline:
                break
            self._wake.set()
            await asyncio.sleep(0.1)
        return len(self.manager.store.pooled(key))

    # -- claims -----------------------------------------------------------------------

    def ready(self) -> dict[str, int]:
        """Ready sandboxes by runtime (every profile), for /metrics and ``lci sessions``."""
        out = {self.manager.settings.sandbox.runtime: 0} if self.size else {}
        for rec in self.manager.store.pooled():
            out[rec.runtime] = out.get(rec.runtime, 0) + 1
        return out

    async def claim(
        self, tenant: str, thread_id: str, profile: Profile, idle_timeout: float
    ) -> Session | None:
        """A ready sandbox of ``profile`` for the thread, admitted like a start, or None
        (the pool is empty: the caller starts one cold)."""
        m = self.manager
        self._remember(profile)
        for rec in m.store.pooled(profile.key):
            if rec.idle_timeout < idle_timeout:  # its watchdog would end it too early
                continue
            m.admission.check_claim(tenant, rec.memory)  # the tenant's quota, as a start
            if not m.store.claim_session(rec.id, tenant, thread_id, idle_timeout):
                continue  # another process took it
            self._wake.set()
            rec.tenant, rec.thread_id, rec.pool = tenant, thread_id, None
            rec.last_activity, rec.idle_timeout = time.time(), idle_timeout
            session = await self._connect(rec)
            if session is not None:
                self.claims["warm"] += 1
                return session
        self.claims["cold"] += 1
        self._wake.set()
        return None

    async def _connect(self, rec: SessionRecord) -> Session | None:
        """The claimed sandbox as the thread's session; None (and ended) if it died."""
        m = self.manager
        session = self._held.pop(rec.id, None)
        if session is None:
            assert rec.sandbox_id is not None
            session = Session(rec, await m.backend.attach(rec.sandbox_id), m)
        session.claimed(rec)
        with suppress(OSError):  # the launcher's idle clock starts again now
            os.utime(session.root / "ctl" / "activity")
        try:
            if not session.ready:
                await session.connect(min(m.settings.timeouts.start_timeout, 15.0))
        except (SessionError, BackendError):  # its container went while no one watched
            await m.end(rec, SessionState.DEAD, "the pooled kernel did not answer")
            return None
        return session

    def _remember(self, profile: Profile) -> None:
        self._profiles.pop(profile.key, None)
        self._profiles[profile.key] = profile
        while len(self._profiles) > MAX_PROFILES:
            del self._profiles[next(iter(self._profiles))]
