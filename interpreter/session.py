"""One sandboxed kernel: connect, execute, interrupt, restart, files, stop.

A session is one container running one ipykernel (under ``kernels/lci_launcher.py``)
and the host's bounded client of it (``kernelclient.py``), which connects to the
kernel's ``transport: ipc`` sockets on the session's disk (see ``layout.py``). Each
execution is a ``Run`` (``executor.py``); what it produces is stored by ``outputs.py``
and its files by ``catalog.py``. The manager (``manager.py``) builds sessions and
decides whether one is live; a session asks it, never the store.

The sandbox is hostile: what it says about itself (the launcher's state file, the
kernel's messages) is a hint. A kernel's death is reported only once the host has
seen it itself (the connection closed and the launcher started another kernel, or
the engine says the sandbox exited), and "out of memory" only when the cgroup's OOM
counter, read on the host, moved.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from .backends.base import Sandbox
from .catalog import Catalog, SandboxFile
from .config import format_bytes
from .errors import InvalidCode, SessionClosed, SessionStartFailed
from .executor import EXITED, OutputCallback, Run
from .kernelclient import Closed, Dropped, KernelClient
from .launcher import LauncherState, StateFile
from .layout import kernel_uid
from .locking import file_lock, take_turn
from .outputs import OutputCollector
from .results import Execution, SessionState
from .store import SessionRecord
from .zmtp import Limits, NotASocket

if TYPE_CHECKING:
    from .manager import SessionManager

__all__ = ["Session", "check_code"]

REPLY_S = 10.0  # how long the reply may lag the kernel going idle
RECONNECT_S = 10.0  # how long a kernel that answered before may not answer, before a restart


class _Gone(Exception):
    """The session's directories went (it ended under the waiting execution)."""


class Session:
    """A live sandbox for one thread. Get one from ``SessionManager.session()``: the
    manager builds every session and decides whether it is live."""

    def __init__(self, record: SessionRecord, sandbox: Sandbox, manager: SessionManager) -> None:
        self.manager = manager
        self.settings, self.files, self.history = manager.settings, manager.files, manager.history
        self.quotas = manager.quotas  # the tenants' limits (None: the library's own use)
        self._replies: dict[str, dict[str, Any]] = {}  # a reply taken before its turn
        self._lock = asyncio.Lock()
        self._closed = False
        self.notice: str | None = None  # told once, with the next execution
        self._bind(record, sandbox)

    def _bind(self, record: SessionRecord, sandbox: Sandbox) -> None:
        self.record, self.sandbox = record, sandbox
        self.root = Path(record.runtime_dir)
        self.sock_dir = self.root / "disk" / "sock"
        self.state_file = StateFile(self.root / "disk" / "state" / "state.json")
        self._turn = 0  # the count this process left in exec.lock (locking.take_turn)
        m = self.manager
        self.catalog = Catalog.of(record, m.store, m.files, m.settings)
        self.outputs = OutputCollector(self.files, self.catalog, record.tenant)
        self.kc: KernelClient | None = None
        self.generation = 0  # the launcher's kernel generation this client is connected to
        self._oom_baseline: int | None = None
        self.ready = False  # connected and answered; False: the next call reconnects

    def claimed(self, record: SessionRecord) -> None:
        """A pooled sandbox became the thread's (``pool.py``): its files are the thread's."""
        self.record, m = record, self.manager
        self.catalog = Catalog.of(record, m.store, m.files, m.settings)
        self.outputs = OutputCollector(self.files, self.catalog, record.tenant)

    def rebind(self, fresh: Session) -> None:
        """Become ``fresh`` (a new sandbox for this thread), keeping this object's
        identity: what the manager does when the sandbox ended under a held session."""
        self._bind(fresh.record, fresh.sandbox)
        self.kc, self.ready, self.generation = fresh.kc, fresh.ready, fresh.generation
        self._oom_baseline = fresh._oom_baseline
        self.notice = fresh.notice or self.notice

    # -- identity ---------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def thread_id(self) -> str:
        return self.record.thread_id

    @property
    def tenant(self) -> str:
        return self.record.tenant

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"<Session {self.id} thread={self.thread_id!r}>"

    # -- connect ----------------------------------------------------------------------

    async def connect(self, timeout: float) -> None:
        """Connect to the kernel's sockets and wait until it answers (checked each time)."""
        deadline = time.monotonic() + timeout
        if self.kc is None:
            limits = Limits(max_bytes=self.settings.limits.max_message_bytes)
            uid = kernel_uid(self.record)
            self.kc = KernelClient(self.sock_dir, self.record.connection, uid=uid, limits=limits)
        kc = self.kc
        polls, healed = 0, False
        while True:
            if self.kc is not kc:  # let go of meanwhile: the session was stopped
                raise SessionClosed("session (it was stopped while it connected)")
            try:
                if not kc.connected:
                    await kc.connect(max(min(deadline - time.monotonic(), 2.0), 0.1))
                if await self._handshake(kc, min(deadline, time.monotonic() + 0.5)):
                    break
            except NotASocket as exc:  # the sandbox swapped a socket: never follow it
                kc.close()
                if healed:
                    raise SessionStartFailed(self.id, str(exc)) from None
                healed = True
                self.notice = (
                    "The kernel's sockets had been tampered with, so lci restarted the kernel:"
                    " variables and imports are lost."
                )
                await self._new_kernel()
            except (OSError, Closed, TimeoutError):  # not bound yet, or a kernel restarting
                kc.close()
                if not healed and self._stuck(deadline, timeout):
                    healed = True
                    self.notice = (
                        "The kernel stopped answering on its sockets, so lci restarted it:"
                        " variables and imports are lost."
                    )
                    await self._new_kernel()
                await asyncio.sleep(0.02)
            polls += 1
            if polls % 4 == 0 and await self.sandbox.poll() is not None:
                if stopped := self.manager.ended(self.id):
                    raise SessionClosed(f"session (it was stopped: {stopped})")
                tail = await self.sandbox.logs()
                detail = await self.exit_detail(EXITED)
                raise SessionStartFailed(
                    self.id, detail + (f"\nIts last output:\n{tail}" if tail else "")
                )
            if time.monotonic() >= deadline:
                kc.close()
                raise SessionStartFailed(self.id, "the kernel did not answer in time")
        self.generation = self.launcher_state().generation
        with suppress(OSError):  # the kernel answers: the idle clock starts now
            os.utime(self.root / "ctl" / "activity")
        if self._oom_baseline is None:
            self._oom_baseline = await self.sandbox.oom_kills()
        self.ready = True
        if self.record.state is SessionState.STARTING:
            self.record.state = SessionState.IDLE
            self.touch(SessionState.IDLE)

    def _stuck(self, deadline: float, timeout: float) -> bool:
        """A kernel that answered before and has not for RECONNECT_S is wedged (its
        sockets closed under it), not slow to start."""
        waited = timeout - (deadline - time.monotonic())
        return self.record.state is not SessionState.STARTING and waited > RECONNECT_S

    async def _handshake(self, kc: KernelClient, until: float) -> bool:
        """A kernel_info round trip whose status also came back on iopub, so no output
        of the next execution can be lost to a late subscription."""
        msg_id = kc.kernel_info()
        while (left := until - time.monotonic()) > 0:
            try:
                msg = await kc.iopub(left)
            except TimeoutError:
                return False
            if not isinstance(msg, Dropped) and msg["parent_header"]["msg_id"] == msg_id:
                return True
        return False

    # -- execute ----------------------------------------------------------------------

    async def execute(
        self,
        code: str,
        timeout: float | None = None,
        *,
        on_output: OutputCallback | None = None,
    ) -> Execution:
        """Run ``code``; errors in it come back as ``status="error"``, never raised.

        ``on_output(kind, text)`` sees the output as it is printed (kind: stdout, stderr,
        result, error). Cancelling the call interrupts the running code (and restarts
        the kernel if it ignores the interrupt) before the cancellation goes on."""
        if self._closed:
            raise SessionClosed()
        check_code(code)
        self.files.check_floor()  # below LCI_HOME's floor no new work starts
        if self.quotas is not None and self.tenant:
            self.quotas.check_execution(self.tenant)
        timeout = timeout or self.settings.timeouts.exec_timeout
        async with self._lock:
            for attempt in range(2):
                try:
                    async with self._exec_lock():
                        await self._ensure_live()  # another process may have ended it
                        return await Run(self, code, timeout, on_output)()
                except _Gone:  # its directories went with it: renew, then lock again
                    if attempt:
                        raise SessionClosed("session (it ended while waiting)") from None
                    await self._ensure_live()
        raise AssertionError("unreachable")

    async def _ensure_live(self) -> None:
        if self.manager.ended(self.id) is not None:
            await self.manager.renew(self)  # the thread's sandbox, or a fresh one
        elif self.ready and (state := self.launcher_state()).generation != self.generation:
            if await self._same_kernel():  # the state file says so; the connection says not
                self.generation = state.generation
            else:
                self.notice = self.notice or (
                    "The kernel was restarted by another client: variables and imports are lost."
                )
                self.ready = False
        if not self.ready:
            await self.connect(self.settings.timeouts.start_timeout)

    async def reply(self, msg_id: str, timeout: float = REPLY_S) -> dict[str, Any] | None:
        """The shell reply to our request (older replies are dropped), or None. A reply
        taken early (``timeout=0``, while output still came) is kept for the next ask."""
        if msg_id in self._replies:
            return self._replies.pop(msg_id) if timeout else self._replies[msg_id]
        kc = self.kc
        end = time.monotonic() + timeout
        while kc is not None:
            try:
                msg = await kc.shell(max(end - time.monotonic(), 0))
            except (TimeoutError, Closed):
                return None
            if not isinstance(msg, Dropped) and msg["parent_header"]["msg_id"] == msg_id:
                if not timeout:
                    self._replies = {msg_id: dict(msg["content"])}
                return dict(msg["content"])
        return None

    async def _same_kernel(self) -> bool:
        """Does the kernel this client is connected to still answer? A restarted kernel
        cannot: its predecessor's connections closed with it."""
        assert self.kc is not None
        try:
            msg_id = self.kc.kernel_info()
        except Closed:
            return False
        return await self.reply(msg_id, timeout=2.0) is not None

    async def exit_detail(self, reason: str) -> str:
        """The sandbox exited (the engine says so): the session is dead; what ended it."""
        info = await self.sandbox.exit_info()
        self.manager.exited(self.record, reason)
        with suppress(Exception):  # gone from the engine now, not at the next sweep
            await self.sandbox.cleanup()
        if info.oom_killed:
            why = f"the sandbox ran out of memory (limit {format_bytes(self.record.memory)})"
        elif info.gone:
            why = "the sandbox was removed"
        else:
            why = f"the sandbox exited with code {info.exit_code}"
        return (
            f"{why}. State is lost; the next call starts a fresh session with the thread's files."
        )

    async def oom_confirmed(self) -> bool | None:
        """Did the cgroup's OOM counter (read on the host) move? None: cannot tell."""
        now = await self.sandbox.oom_kills()
        if now is None or self._oom_baseline is None:
            return None
        moved, self._oom_baseline = now > self._oom_baseline, now
        return moved

    # -- control ------------------------------------------------------------------------

    async def interrupt(self) -> None:
        """Interrupt the running code (KeyboardInterrupt in the kernel)."""
        if self.kc is not None and self.kc.connected:
            self.kc.interrupt()
        else:  # not connected here: the launcher passes SIGUSR1 on as SIGINT
            await self.sandbox.send_signal(signal.SIGUSR1)

    async def restart(self) -> None:
        """A fresh kernel in the same sandbox: variables are lost, files are kept. Every
        process of the kernel's uid ends with it, and /tmp and /dev/shm are emptied."""
        await self._new_kernel()
        await self.connect(self.settings.timeouts.start_timeout)

    async def _new_kernel(self) -> None:
        """Have the launcher replace the kernel; wait until it has."""
        self.ready = False
        if self.kc is not None:
            self.kc.close()
        current = self.launcher_state().generation
        await self.sandbox.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + self.settings.timeouts.start_timeout
        while self.launcher_state().generation == current:
            if stopped := self.manager.ended(self.id):
                raise SessionClosed(f"session (it was stopped: {stopped})")
            if time.monotonic() > deadline:
                raise SessionStartFailed(self.id, "the kernel did not restart")
            await asyncio.sleep(0.02)

    async def add_files(self, file_ids: list[str] | tuple[str, ...]) -> list[str]:
        """Place stored files at /mnt/data/<filename> and attach them to the thread."""
        paths = []
        for fid in file_ids:
            info = self.files.info(fid, self.tenant)
            placed = await anyio.to_thread.run_sync(self.catalog.put, info.filename, info)
            paths.append(placed.full_path)
        return paths

    async def list_files(self) -> list[SandboxFile]:
        """The regular files in /mnt/data now, each with its file ID."""
        return await anyio.to_thread.run_sync(self.catalog.list)

    async def put_file(self, name: str, file_id: str) -> SandboxFile:
        """Place a stored file at /mnt/data/``name``, overwriting what is there."""
        info = self.files.info(file_id, self.tenant)
        return await anyio.to_thread.run_sync(self.catalog.put, name, info)

    async def remove_file(self, name: str) -> None:
        await anyio.to_thread.run_sync(self.catalog.remove, name)

    async def close(self) -> None:
        """Let go of the kernel client. The sandbox keeps running (another process may attach)."""
        self._closed = True
        self.release()

    def release(self) -> None:
        """Let go of the kernel connection (the manager's call when the session ends)."""
        if self.kc is not None:
            self.kc.close()
            self.kc = None
        self.ready = False

    async def stop(
        self, reason: str = "stopped", state: SessionState = SessionState.EXPIRED
    ) -> None:
        """Shut the sandbox down and free its resources; its stored files are kept."""
        await self.manager.end(self.record, state, reason)

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- small helpers ---------------------------------------------------------------

    def touch(self, state: SessionState, executed: bool = False) -> None:
        """The session was used now (its idle clock, on the host and in the sandbox)."""
        with suppress(OSError):
            os.utime(self.root / "ctl" / "activity")
        self.manager.touch(self.id, state, executed)

    def launcher_state(self) -> LauncherState:
        """What the launcher says (a hint: the sandbox writes it)."""
        return self.state_file.read()

    @asynccontextmanager
    async def _exec_lock(self) -> AsyncIterator[None]:
        """Executions on one session are serialised across processes, too."""
        async with AsyncExitStack() as stack:
            try:
                fd = await stack.enter_async_context(file_lock(self.root / "exec.lock"))
            except FileNotFoundError:  # the session ended under us: its directories are gone
                raise _Gone from None
            last, mine = take_turn(fd)
            if last != self._turn:  # another process held it since: what it ran is unseen
                self.catalog.last = None
            self._turn = mine
            yield


def check_code(code: str) -> None:
    """Code must be text the kernel can receive: a lone surrogate is refused."""
    try:
        code.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidCode(exc.start, f"a lone surrogate ({code[exc.start]!r})") from None
