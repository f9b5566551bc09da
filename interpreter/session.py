"""One sandboxed kernel: start, execute, interrupt, restart, stop.

A session is one container running one ipykernel (under ``kernels/lci_launcher.py``)
and the host's bounded client of it (``kernelclient.py``), which connects to the
kernel's ``transport: ipc`` sockets on the session's disk (see ``layout.py``). What
an execution produces is stored by ``outputs.py``.

The sandbox is hostile: what it says about itself (the launcher's state file, the
kernel's messages) is a hint. A kernel's death is reported only once the host has
seen it itself (the connection closed and the launcher started another kernel, or
the engine says the sandbox exited), and "out of memory" only when the cgroup's OOM
counter, read on the host, moved.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path
from typing import Any, NoReturn

import anyio
import anyio.to_thread

from .backends.base import Backend, Sandbox
from .catalog import Catalog, SandboxFile
from .config import Settings, format_bytes
from .errors import InvalidCode, SessionClosed, SessionStartFailed
from .files import FileStore
from .history import History
from .kernelclient import Closed, Dropped, KernelClient
from .launcher import Exit, LauncherState, read_state
from .layout import kernel_uid, make_dirs, new_record, remove_dirs, sandbox_spec, teardown
from .locking import file_lock
from .messaging import Budget, OutputFold
from .outputs import LogSpool, OutputCollector
from .quotas import Quotas
from .results import ErrorInfo, Execution, ExecutionStatus, SessionState
from .store import SessionRecord, Store
from .workspace import MOUNT, Workspace
from .zmtp import Limits, NotASocket

__all__ = ["Session"]

OutputCallback = Callable[[str, str], None]
POLL_S = 0.25  # how often a waiting execution looks up from the kernel's output
SANDBOX_POLL_EVERY = 8  # ... and every this many polls, asks the engine the sandbox runs
REPLY_S = 10.0  # how long the reply may lag the kernel going idle
REPLY_GRACE = 3.0  # how long output may follow the reply when the idle status never comes
CONFIRM_S = 3.0  # how long a lost connection gets to be explained
EXITED = "the sandbox exited"
RECONNECT_S = 10.0  # how long a kernel that answered before may not answer, before a restart


class _Deadline(Exception):
    pass


class _Gone(Exception):
    pass


class _Died(Exception):
    def __init__(self, detail: str) -> None:
        self.detail = detail


class _Disconnected(Exception):
    pass


class _Stopped(Exception):
    """The session was stopped (by a request, here or in another process) under the code."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class Session:
    """A live sandbox for one thread. Get one from ``SessionManager.session()``."""

    def __init__(
        self,
        record: SessionRecord,
        sandbox: Sandbox,
        *,
        settings: Settings,
        store: Store,
        files: FileStore,
        renew: Callable[[Session], Awaitable[None]] | None = None,
        history: History | None = None,
    ) -> None:
        self.settings, self.store, self.files = settings, store, files
        self.history = history or History(store)
        self._renew = renew
        self._replies: dict[str, dict[str, Any]] = {}  # a reply taken before its turn
        self.quotas: Quotas | None = None  # the tenants' limits, set by the manager
        self._lock = asyncio.Lock()
        self._closed = False
        self.notice: str | None = None  # told once, with the next execution
        self._adopt(record, sandbox)

    def _adopt(self, record: SessionRecord, sandbox: Sandbox) -> None:
        self.record, self.sandbox = record, sandbox
        self.root = Path(record.runtime_dir)
        self.sock_dir = self.root / "disk" / "sock"
        self.state_file = self.root / "disk" / "state" / "state.json"
        uid = kernel_uid(record)
        self.workspace = Workspace(Path(record.data_dir), (uid, uid))
        self.catalog = Catalog(
            self.store,
            self.files,
            self.workspace,
            record.owner,
            record.thread_id,
            self.settings.limits.max_output_file_bytes,
            self.settings.sandbox.disk_limit,
        )
        self.outputs = OutputCollector(self.files, self.catalog, record.owner)
        self.kc: KernelClient | None = None
        self._generation = 0
        self._oom_baseline: int | None = None
        self._ready = False

    def _take_over(self, fresh: Session) -> None:
        """Become ``fresh`` (a new sandbox for this thread), keeping this object's identity."""
        self._adopt(fresh.record, fresh.sandbox)
        self.kc, self._ready, self._generation = fresh.kc, fresh._ready, fresh._generation
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
    def owner(self) -> str:
        return self.record.owner

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"<Session {self.id} thread={self.thread_id!r}>"

    # -- start ------------------------------------------------------------------------

    @classmethod
    async def start(
        cls,
        thread_id: str,
        *,
        owner: str = "",
        settings: Settings,
        backend: Backend,
        image: str,
        seccomp: str | None = None,
        store: Store,
        files: FileStore,
        renew: Callable[[Session], Awaitable[None]] | None = None,
        history: History | None = None,
        idle_timeout: float | None = None,
        memory: int | None = None,
        runtime: str | None = None,
    ) -> Session:
        record = new_record(thread_id, owner, settings, backend.name, idle_timeout, memory, runtime)
        sid = record.id
        store.add_session(record, settings.sandbox.uid_range)
        try:
            await anyio.to_thread.run_sync(make_dirs, record, settings)
            sandbox = await backend.launch(sandbox_spec(record, settings, image, seccomp))
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                stopped = _stopped_meanwhile(store, sid)
                store.end_session(sid, SessionState.DEAD, "the sandbox did not start")
                await anyio.to_thread.run_sync(remove_dirs, record, settings)
            if stopped and isinstance(exc, Exception):
                raise SessionClosed(
                    f"session (it was stopped while it started: {stopped})"
                ) from exc
            raise
        store.update_session(sid, sandbox_id=sandbox.id)
        record.sandbox_id = sandbox.id
        session = cls(
            record, sandbox, settings=settings, store=store, files=files, renew=renew,
            history=history,
        )  # fmt: skip
        try:
            await session.connect(settings.timeouts.start_timeout)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                stopped = _stopped_meanwhile(store, sid)
                await session.stop("the kernel did not start", state=SessionState.DEAD)
            if stopped and isinstance(exc, Exception):
                raise SessionClosed(
                    f"session (it was stopped while it started: {stopped})"
                ) from exc
            raise
        return session

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
                if stopped := _stopped_meanwhile(self.store, self.id):
                    raise SessionClosed(f"session (it was stopped: {stopped})")
                tail = await self.sandbox.logs()
                detail = await self._exit_detail()
                raise SessionStartFailed(
                    self.id, detail + (f"\nIts last output:\n{tail}" if tail else "")
                )
            if time.monotonic() >= deadline:
                kc.close()
                raise SessionStartFailed(self.id, "the kernel did not answer in time")
        self._generation = self._read_state().generation
        with suppress(OSError):  # the kernel answers: the idle clock starts now
            os.utime(self.root / "ctl" / "activity")
        if self._oom_baseline is None:
            self._oom_baseline = await self.sandbox.oom_kills()
        self._ready = True
        if self.record.state is SessionState.STARTING:
            self.record.state = SessionState.IDLE
            self.store.touch_session(self.id, SessionState.IDLE)

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
        if self.quotas is not None and self.owner:
            self.quotas.check_execution(self.owner)
        timeout = timeout or self.settings.timeouts.exec_timeout
        async with self._lock:
            for attempt in range(2):
                try:
                    async with self._exec_lock():
                        await self._ensure_live()  # another process may have ended it
                        return await self._execute(code, timeout, on_output)
                except _Gone:  # its directories went with it: renew, then lock again
                    if attempt:
                        raise SessionClosed("session (it ended while waiting)") from None
                    await self._ensure_live()
        raise AssertionError("unreachable")

    async def _ensure_live(self) -> None:
        current = self.store.get_session(self.id)
        if current is None or not current.state.live:
            if self._renew is None:
                raise SessionClosed("session (it expired)")
            await self._renew(self)
        elif self._ready and (state := self._read_state()).generation != self._generation:
            if await self._same_kernel():  # the state file says so; the connection says not
                self._generation = state.generation
            else:
                self.notice = self.notice or (
                    "The kernel was restarted by another client: variables and imports are lost."
                )
                self._ready = False
        if not self._ready:
            await self.connect(self.settings.timeouts.start_timeout)

    async def _execute(
        self, code: str, timeout: float, on_output: OutputCallback | None
    ) -> Execution:
        exe = Execution(
            id="exec_" + secrets.token_hex(8),
            session_id=self.id,
            thread_id=self.thread_id,
            code=code,
            status=ExecutionStatus.OK,
            started_at=time.time(),
        )
        if self.notice:
            exe.notice, exe.state_lost, exe.kernel_restarted = self.notice, True, True
            self.notice = None
        self._touch(SessionState.BUSY)
        before = await anyio.to_thread.run_sync(self.catalog.scan)
        spool = LogSpool(self.files.blobs / "tmp", self.settings.limits.max_log_bytes)
        self.history.started(exe, self.owner, spool.path)
        fold = self._fold(spool, on_output)
        started = time.monotonic()
        try:
            try:
                await self._run(exe, fold, started + timeout, timeout)
            finally:
                exe.duration_ms = int((time.monotonic() - started) * 1000)
            await self.outputs.finish(exe, fold, spool, before)
            self.history.finished(exe)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._abandon(fold)
                _cancel(exe, fold, "the caller went away; the code was stopped")
                await self._finish_early(exe, fold, spool, before)
            raise
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                spool.discard()
                self._touch(SessionState.IDLE)
                why = f"lci failed during the execution: {type(exc).__name__}: {exc}"
                self.history.ended_early(exe.id, "lost", why)
            raise
        self._touch(SessionState.IDLE, executed=True)
        return exe

    def _fold(self, spool: LogSpool, on_output: OutputCallback | None) -> OutputFold:
        """Send the execute request; the fold that will take its output."""
        assert self.kc is not None
        budget = Budget(
            chars=self.settings.limits.max_log_chars,
            result_bytes=self.settings.limits.max_result_bytes,
            image_bytes=self.settings.limits.max_image_bytes,
        )
        return OutputFold(
            "", budget.chars, on_text=_tee(spool, on_output), on_image=self.outputs.image,
            budget=budget,
        )  # fmt: skip

    async def _finish_early(
        self, exe: Execution, fold: OutputFold, spool: LogSpool, before: Any
    ) -> None:
        """Keep what a cancelled execution printed (and its log); never raise."""
        try:
            await self.outputs.finish(exe, fold, spool, before)
            self.history.finished(exe)
        except Exception as exc:
            spool.discard()
            self.history.ended_early(exe.id, "cancelled", f"{exc}")
        self._touch(SessionState.IDLE, executed=True)

    async def _run(self, exe: Execution, fold: OutputFold, deadline: float, timeout: float) -> None:
        if self.kc is None:  # let go of since it was made ready: stopped meanwhile
            raise SessionClosed("session (it was stopped)")
        fold.msg_id = self.kc.execute(exe.code)
        try:
            await self._collect(fold, deadline)
            reply = await self._reply(fold.msg_id)
            if reply is None:
                exe.status = ExecutionStatus.ERROR
                exe.error = fold.error or ErrorInfo(
                    "NoReply",
                    "The kernel went idle without replying to the request, so lci cannot tell"
                    " how the code ended; its output so far is above.",
                )
            elif fold.error or reply.get("status") == "error":
                exe.status = ExecutionStatus.ERROR
                exe.error = fold.error or _reply_error(reply)
        except _Deadline:
            await self._on_timeout(exe, fold, timeout)
        except _Stopped as stopped:
            _cancel(exe, fold, f"the session was stopped ({stopped.reason})")
            exe.state_lost = exe.kernel_restarted = True
        except _Died as died:
            exe.status, exe.state_lost, exe.kernel_restarted = ExecutionStatus.DIED, True, True
            exe.error = ErrorInfo("KernelDied", died.detail)
            fold.note("error", f"KernelDied: {died.detail}\n")
            self._ready = False
        except _Disconnected:
            exe.status = ExecutionStatus.ERROR
            exe.error = ErrorInfo(
                "KernelDisconnected",
                "The kernel closed its connection to lci during the execution: what it"
                " printed after that is lost. The next call reconnects.",
            )
            fold.note("error", f"KernelDisconnected: {exe.error.evalue}\n")
            self._ready = False

    async def _collect(self, fold: OutputFold, deadline: float) -> None:
        """Take the request's output until the kernel says it is idle, or, should that
        message be lost (a flooded kernel drops output), until REPLY_GRACE after its reply."""
        kc = self.kc  # the session may let go of it meanwhile (stopped): its reads then fail
        polls, replied = 0, 0.0
        while not fold.idle:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Deadline
            try:
                if kc is None:
                    raise Closed("not connected to the kernel")
                msg = await kc.iopub(min(remaining, POLL_S))
            except TimeoutError:
                polls += 1
                if polls % SANDBOX_POLL_EVERY == 0 and await self.sandbox.poll() is not None:
                    await self._gone()
                if not replied and await self._reply(fold.msg_id, timeout=0) is not None:
                    replied = time.monotonic()
                if replied and time.monotonic() - replied > REPLY_GRACE:
                    fold.drop("message", 0, "the kernel's output queue: some output was lost")
                    return
                continue
            except Closed:
                await self._lost_connection()
            if isinstance(msg, Dropped):
                cap = self.settings.limits.max_message_bytes
                limit = f"LCI_MAX_MESSAGE_BYTES ({cap}; {msg.reason})"
                fold.drop("message", msg.size, limit)
            else:
                fold.feed(msg)

    async def _reply(self, msg_id: str, timeout: float = REPLY_S) -> dict[str, Any] | None:
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
        return await self._reply(msg_id, timeout=2.0) is not None

    async def _lost_connection(self) -> NoReturn:
        """The kernel's connection closed: find out why from what the host sees itself."""
        self._ready = False
        end = time.monotonic() + CONFIRM_S
        while True:
            rec = self.store.get_session(self.id)
            if rec is None or not rec.state.live or await self.sandbox.poll() is not None:
                await self._gone()
            state = self._read_state()
            if state.generation != self._generation:
                raise _Died(await self._death_detail(state))
            if time.monotonic() > end:
                raise _Disconnected
            await asyncio.sleep(0.05)

    async def _gone(self) -> NoReturn:
        """The sandbox is not running: stopped on purpose (the record says so), or died."""
        rec = self.store.get_session(self.id)
        if rec is None or (not rec.state.live and rec.end_reason != EXITED):
            raise _Stopped(rec.end_reason if rec and rec.end_reason else "stopped")
        raise _Died(await self._exit_detail())

    async def _death_detail(self, state: LauncherState) -> str:
        last = state.exits[-1] if state.exits else Exit()
        limit = format_bytes(self.record.memory)
        # an OOM kill is a SIGKILL: a kernel that ended otherwise did not die of it, even
        # if the cgroup killed something else of the sandbox's meanwhile
        unknown = last.signal is None and last.returncode is None
        oom = await self._oom_confirmed() if last.signal == 9 or unknown else False
        if oom:
            cause = f"out of memory (the sandbox's memory limit is {limit})"
        elif last.signal is not None:
            name = _signal_name(last.signal)
            maybe = name == "SIGKILL" and oom is None
            cause = f"killed by {name}" + (
                f" (possibly out of memory; limit {limit})" if maybe else ""
            )
        else:
            cause = f"it exited with code {last.returncode}"
        return (
            f"The kernel died: {cause}. Variables and imports are lost; files in {MOUNT} are "
            "intact and the next call runs in a fresh kernel."
        )

    async def _oom_confirmed(self) -> bool | None:
        """Did the cgroup's OOM counter (read on the host) move? None: cannot tell."""
        now = await self.sandbox.oom_kills()
        if now is None or self._oom_baseline is None:
            return None
        moved, self._oom_baseline = now > self._oom_baseline, now
        return moved

    async def _exit_detail(self) -> str:
        info = await self.sandbox.exit_info()
        self.store.end_session(self.id, SessionState.DEAD, EXITED)
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

    async def _abandon(self, fold: OutputFold) -> None:
        """The caller went away mid-execution: stop the code so the session is free."""
        with suppress(Exception):
            await self.interrupt()
            try:
                await self._collect(fold, time.monotonic() + self.settings.timeouts.interrupt_grace)
                await self._reply(fold.msg_id, timeout=1.0)
            except _Deadline:
                await self.restart()
                self.notice = (
                    "An earlier execution was abandoned by its caller and ignored the "
                    "interrupt, so the kernel was restarted: variables and imports are lost."
                )
            except _Died as died:
                self._ready = False
                self.notice = died.detail
            except _Disconnected:
                self._ready = False

    async def _on_timeout(self, exe: Execution, fold: OutputFold, timeout: float) -> None:
        exe.status = ExecutionStatus.TIMEOUT
        await self.interrupt()
        try:
            await self._collect(fold, time.monotonic() + self.settings.timeouts.interrupt_grace)
            await self._reply(fold.msg_id, timeout=1.0)
            detail = f"The code ran longer than {timeout:g} s and was interrupted; state is kept."
        except _Deadline:
            await self.restart()
            exe.state_lost = exe.kernel_restarted = True
            detail = (
                f"The code ran longer than {timeout:g} s and ignored the interrupt, so the kernel "
                f"was restarted: variables and imports are lost; files in {MOUNT} are intact."
            )
        except _Died as died:
            exe.state_lost = exe.kernel_restarted = True
            self._ready = False
            detail = died.detail
        except _Disconnected:
            self._ready = False
            detail = f"The code ran longer than {timeout:g} s; the kernel then disconnected."
        exe.error = ErrorInfo("TimeoutError", detail)
        fold.note("error", f"TimeoutError: {detail}\n")

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
        self._ready = False
        if self.kc is not None:
            self.kc.close()
        current = self._read_state().generation
        await self.sandbox.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + self.settings.timeouts.start_timeout
        while self._read_state().generation == current:
            if stopped := _stopped_meanwhile(self.store, self.id):
                raise SessionClosed(f"session (it was stopped: {stopped})")
            if time.monotonic() > deadline:
                raise SessionStartFailed(self.id, "the kernel did not restart")
            await asyncio.sleep(0.02)

    async def add_files(self, file_ids: list[str] | tuple[str, ...]) -> list[str]:
        """Place stored files at /mnt/data/<filename> and attach them to the thread."""
        paths = []
        for fid in file_ids:
            info = self.files.info(fid, self.owner)
            placed = await anyio.to_thread.run_sync(self.catalog.put, info.filename, info)
            paths.append(placed.full_path)
        return paths

    async def list_files(self) -> list[SandboxFile]:
        """The regular files in /mnt/data now, each with its file ID."""
        return await anyio.to_thread.run_sync(self.catalog.list)

    async def put_file(self, name: str, file_id: str) -> SandboxFile:
        """Place a stored file at /mnt/data/``name``, overwriting what is there."""
        info = self.files.info(file_id, self.owner)
        return await anyio.to_thread.run_sync(self.catalog.put, name, info)

    async def remove_file(self, name: str) -> None:
        await anyio.to_thread.run_sync(self.catalog.remove, name)

    async def close(self) -> None:
        """Let go of the kernel client. The sandbox keeps running (another process may attach)."""
        self._closed = True
        self._release()

    def _release(self) -> None:
        if self.kc is not None:
            self.kc.close()
            self.kc = None
        self._ready = False

    async def stop(
        self, reason: str = "stopped", state: SessionState = SessionState.EXPIRED
    ) -> None:
        """Shut the sandbox down and free its resources; its stored files are kept."""
        self._release()
        self.store.end_session(self.id, state, reason)
        await teardown(self.sandbox, self.record, self.settings)

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- small helpers ---------------------------------------------------------------

    def _touch(self, state: SessionState, executed: bool = False) -> None:
        with suppress(OSError):
            os.utime(self.root / "ctl" / "activity")
        self.store.touch_session(self.id, state, executed)

    def _read_state(self) -> LauncherState:
        return read_state(self.state_file)

    @asynccontextmanager
    async def _exec_lock(self) -> AsyncIterator[None]:
        """Executions on one session are serialised across processes, too."""
        async with AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(file_lock(self.root / "exec.lock"))
            except FileNotFoundError:  # the session ended under us: its directories are gone
                raise _Gone from None
            yield


def _stopped_meanwhile(store: Store, session_id: str) -> str | None:
    """Why the session was ended by someone else while it started, or None."""
    rec = store.get_session(session_id)
    if rec is not None and not rec.state.live:
        return rec.end_reason or "stopped"
    return None


def _cancel(exe: Execution, fold: OutputFold, why: str) -> None:
    exe.status = ExecutionStatus.CANCELLED
    exe.error = ErrorInfo("Cancelled", why[:1].upper() + why[1:] + ".")
    fold.note("error", f"Cancelled: {exe.error.evalue}\n")


def check_code(code: str) -> None:
    """Code must be text the kernel can receive: a lone surrogate is refused."""
    try:
        code.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidCode(exc.start, f"a lone surrogate ({code[exc.start]!r})") from None


def _tee(spool: LogSpool, on_output: OutputCallback | None) -> OutputCallback:
    if on_output is None:
        return spool.write

    def both(kind: str, text: str) -> None:
        spool.write(kind, text)
        with suppress(Exception):  # a failing observer must not break the execution
            on_output(kind, text)

    return both


def _reply_error(reply: dict[str, Any]) -> ErrorInfo:
    tb = reply.get("traceback")
    return ErrorInfo(
        str(reply.get("ename", "Error"))[:200],
        str(reply.get("evalue", ""))[:10_000],
        [line[:10_000] for line in tb[:200] if isinstance(line, str)]
        if isinstance(tb, list)
        else [],
    )


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
