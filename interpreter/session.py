"""One sandboxed kernel: start, execute, interrupt, restart, stop.

A session is one container running one ipykernel (under ``kernels/lci_launcher.py``)
and the jupyter_client that drives it over ``transport: ipc`` unix sockets in a
per-session directory bind-mounted into the container (see ``layout.py``). What an
execution produces is stored by ``outputs.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path
from queue import Empty
from typing import Any

import anyio.to_thread
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient

from .backends.base import Backend, Sandbox
from .catalog import Catalog, SandboxFile
from .config import Settings, format_bytes
from .errors import SessionClosed, SessionStartFailed
from .files import FileStore
from .history import History
from .layout import PORTS, make_dirs, new_record, sandbox_spec, teardown
from .locking import file_lock
from .messaging import OutputFold
from .outputs import LogSpool, OutputCollector
from .results import ErrorInfo, Execution, ExecutionStatus, SessionState
from .store import SessionRecord, Store
from .workspace import MOUNT, Workspace

__all__ = ["Session"]

OutputCallback = Callable[[str, str], None]
POLL_S = 0.25  # how often a waiting execution checks that the kernel is alive
SANDBOX_POLL_EVERY = 8  # ... and every this many polls, that the container still runs


class _Deadline(Exception):
    pass


class _Gone(Exception):
    pass


class _Died(Exception):
    def __init__(self, detail: str) -> None:
        self.detail = detail


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
        context: zmq.asyncio.Context,
        renew: Callable[[Session], Awaitable[None]] | None = None,
        history: History | None = None,
    ) -> None:
        self.settings, self.store, self.files = settings, store, files
        self.history = history or History(store)
        self._context = context
        self._renew = renew
        self._lock = asyncio.Lock()
        self._closed = False
        self.notice: str | None = None  # told once, with the next execution
        self._adopt(record, sandbox)

    def _adopt(self, record: SessionRecord, sandbox: Sandbox) -> None:
        self.record, self.sandbox = record, sandbox
        self.runtime = Path(record.runtime_dir)
        self.workspace = Workspace(Path(record.data_dir), self.settings.sandbox_uid_gid)
        self.catalog = Catalog(
            self.store,
            self.files,
            self.workspace,
            record.owner,
            record.thread_id,
            self.settings.max_output_file_bytes,
        )
        self.outputs = OutputCollector(
            self.files,
            self.workspace,
            record.owner,
            self.settings.max_output_file_bytes,
            on_file=self.catalog.note,
        )
        self.kc: AsyncKernelClient | None = None
        self._generation = 0
        self._state_mtime = 0
        self._ready = False

    def _take_over(self, fresh: Session) -> None:
        """Become ``fresh`` (a new sandbox for this thread), keeping this object's identity."""
        self._adopt(fresh.record, fresh.sandbox)
        self.kc, self._ready, self._generation = fresh.kc, fresh._ready, fresh._generation
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
        store: Store,
        files: FileStore,
        context: zmq.asyncio.Context,
        renew: Callable[[Session], Awaitable[None]] | None = None,
        history: History | None = None,
        idle_timeout: float | None = None,
        memory: int | None = None,
    ) -> Session:
        record = new_record(thread_id, owner, settings, backend.name, idle_timeout, memory)
        sid = record.id
        await anyio.to_thread.run_sync(make_dirs, record, settings)
        store.add_session(record)
        spec = sandbox_spec(record, settings, image)
        try:
            sandbox = await backend.launch(spec)
        except BaseException:
            store.end_session(sid, SessionState.DEAD, "the sandbox did not start")
            raise
        store.update_session(sid, sandbox_id=sandbox.id)
        record.sandbox_id = sandbox.id
        session = cls(
            record,
            sandbox,
            settings=settings,
            store=store,
            files=files,
            context=context,
            renew=renew,
            history=history,
        )
        try:
            await session.connect(settings.start_timeout)
        except BaseException:
            await session.stop("the kernel did not start", state=SessionState.DEAD)
            raise
        return session

    async def connect(self, timeout: float) -> None:
        """Open the kernel client on the host-side sockets and wait until the kernel answers."""
        if self.kc is None:
            info = dict(self.record.connection, ip=str(self.runtime / "sock" / "kernel"))
            self.kc = AsyncKernelClient(context=self._context)
            self.kc.load_connection_info(info)  # type: ignore[arg-type]
            self.kc.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=True)
        await self._wait_ready(time.monotonic() + timeout)
        if self.record.state is SessionState.STARTING:
            self.record.state = SessionState.IDLE
            self.store.touch_session(self.id, SessionState.IDLE)

    async def _wait_ready(self, deadline: float) -> None:
        """Ready means a kernel_info round trip whose status also came back on iopub,
        so no output of the next execution can be lost to a late subscription."""
        assert self.kc is not None
        polls = 0
        while True:
            self._check_sockets()
            msg_id = self.kc.kernel_info()
            end = min(deadline, time.monotonic() + 0.5)
            while time.monotonic() < end:
                with suppress(Empty):
                    msg = await self.kc.get_iopub_msg(timeout=max(end - time.monotonic(), 0.01))
                    if msg["parent_header"].get("msg_id") == msg_id:
                        self._generation = self._read_state().get("generation", 0)
                        self._ready = True
                        return
            polls += 1
            if polls % 2 == 0 and await self.sandbox.poll() is not None:
                tail = await self.sandbox.logs()
                detail = await self._exit_detail()
                raise SessionStartFailed(
                    self.id, detail + (f"\nIts last output:\n{tail}" if tail else "")
                )
            if time.monotonic() >= deadline:
                raise SessionStartFailed(self.id, "the kernel did not answer in time")

    def _check_sockets(self) -> None:
        """Refuse to connect through anything but a socket the sandbox made (not a symlink
        planted to make the host connect elsewhere)."""
        for port in PORTS.values():
            path = self.runtime / "sock" / f"kernel-{port}"
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue  # not bound yet; zmq retries
            if not stat.S_ISSOCK(st.st_mode):
                raise SessionStartFailed(
                    self.id, f"{path.name} in the socket directory is not a socket"
                )

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
        timeout = timeout or self.settings.exec_timeout
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
        elif self._ready and self._read_state().get("generation", 0) != self._generation:
            self.notice = self.notice or (
                "The kernel was restarted by another client: variables and imports are lost."
            )
            self._ready = False
        if not self._ready:
            await self.connect(self.settings.start_timeout)

    async def _execute(
        self, code: str, timeout: float, on_output: OutputCallback | None
    ) -> Execution:
        assert self.kc is not None
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
        started = time.monotonic()
        self._touch(SessionState.BUSY)
        before = await anyio.to_thread.run_sync(self.workspace.scan)
        spool = LogSpool(self.files.blobs / "tmp")
        self.history.started(exe, self.owner, spool.path)
        msg_id = self.kc.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
        fold = OutputFold(msg_id, self.settings.max_log_chars, on_text=_tee(spool, on_output))
        try:
            try:
                await self._collect(fold, started + timeout)
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    self.history.abandoned(exe.id, "the caller went away; the code was stopped")
                    await self._abandon(fold, spool)
                raise
            reply = await self._reply(msg_id)
            if fold.error or reply.get("status") == "error":
                exe.status = ExecutionStatus.ERROR
                exe.error = fold.error or _reply_error(reply)
        except _Deadline:
            await self._on_timeout(exe, fold, timeout)
        except _Died as died:
            exe.status, exe.state_lost, exe.kernel_restarted = ExecutionStatus.DIED, True, True
            exe.error = ErrorInfo("KernelDied", died.detail)
            fold.note("error", f"KernelDied: {died.detail}\n")
            self._ready = False
        finally:
            exe.duration_ms = int((time.monotonic() - started) * 1000)
        await self.outputs.finish(exe, fold, spool, before)
        self.history.finished(exe)
        self._touch(SessionState.IDLE, executed=True)
        return exe

    async def _collect(self, fold: OutputFold, deadline: float) -> None:
        assert self.kc is not None
        polls = 0
        while not fold.idle:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Deadline
            try:
                msg = await self.kc.get_iopub_msg(timeout=min(remaining, POLL_S))
            except Empty:
                polls += 1
                await self._check_alive(polls % SANDBOX_POLL_EVERY == 0)
                continue
            fold.feed(msg)

    async def _reply(self, msg_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The shell reply to our request; older replies (probes, other requests) are dropped."""
        assert self.kc is not None
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                msg = await self.kc.get_shell_msg(timeout=max(end - time.monotonic(), 0.01))
            except Empty:
                break
            if msg["parent_header"].get("msg_id") == msg_id:
                return dict(msg["content"])
        return {}

    async def _check_alive(self, ask_backend: bool) -> None:
        state = self._read_state()
        if state.get("generation", self._generation) != self._generation:
            raise _Died(self._death_detail(state))
        if ask_backend and await self.sandbox.poll() is not None:
            raise _Died(await self._exit_detail())

    def _death_detail(self, state: dict[str, Any]) -> str:
        exits = state.get("exits") or [{}]
        last = exits[-1] if isinstance(exits[-1], dict) else {}
        limit = format_bytes(self.record.memory)
        if last.get("oom"):
            cause = f"out of memory (the sandbox's memory limit is {limit})"
        elif isinstance(last.get("signal"), int):
            name = _signal_name(last["signal"])
            cause = f"killed by {name}" + (
                f" (possibly out of memory; limit {limit})" if name == "SIGKILL" else ""
            )
        else:
            cause = f"it exited with code {last.get('returncode')}"
        return (
            f"The kernel died: {cause}. Variables and imports are lost; files in {MOUNT} are "
            "intact and the next call runs in a fresh kernel."
        )

    async def _exit_detail(self) -> str:
        info = await self.sandbox.exit_info()
        self.store.end_session(self.id, SessionState.DEAD, "the sandbox exited")
        if info.oom_killed:
            why = f"the sandbox ran out of memory (limit {format_bytes(self.record.memory)})"
        elif info.gone:
            why = "the sandbox was removed"
        else:
            why = f"the sandbox exited with code {info.exit_code}"
        return (
            f"{why}. State is lost; the next call starts a fresh session with the thread's files."
        )

    async def _abandon(self, fold: OutputFold, spool: LogSpool) -> None:
        """The caller went away mid-execution: stop the code so the session is free."""
        spool.discard()
        self._touch(SessionState.IDLE)
        with suppress(Exception):
            await self.interrupt()
            try:
                await self._collect(fold, time.monotonic() + self.settings.interrupt_grace)
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

    async def _on_timeout(self, exe: Execution, fold: OutputFold, timeout: float) -> None:
        exe.status = ExecutionStatus.TIMEOUT
        await self.interrupt()
        try:
            await self._collect(fold, time.monotonic() + self.settings.interrupt_grace)
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
        exe.error = ErrorInfo("TimeoutError", detail)
        fold.note("error", f"TimeoutError: {detail}\n")

    # -- control ------------------------------------------------------------------------

    async def interrupt(self) -> None:
        """Interrupt the running code (KeyboardInterrupt in the kernel)."""
        assert self.kc is not None
        msg = self.kc.session.msg("interrupt_request", content={})
        self.kc.control_channel.send(msg)

    async def restart(self) -> None:
        """Kill the kernel and start a fresh one in the same sandbox (state lost, files kept)."""
        if not self._ready:  # not connected yet: the kernel to replace is the current one
            self._generation = self._read_state().get("generation", 0)
        await self.sandbox.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + self.settings.start_timeout
        while self._read_state().get("generation", 0) == self._generation:
            if time.monotonic() > deadline:
                raise SessionStartFailed(self.id, "the kernel did not restart")
            await asyncio.sleep(0.02)
        self._ready = False
        await self.connect(self.settings.start_timeout)

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
            self.kc.stop_channels()
            self.kc = None
        self._ready = False

    async def stop(
        self, reason: str = "stopped", state: SessionState = SessionState.EXPIRED
    ) -> None:
        """Shut the sandbox down and free its resources; its stored files are kept."""
        self._release()
        self.store.end_session(self.id, state, reason)
        await teardown(self.sandbox, self.record)

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- small helpers ---------------------------------------------------------------

    def _touch(self, state: SessionState, executed: bool = False) -> None:
        with suppress(OSError):
            os.utime(self.runtime / "ctl" / "activity")
        self.store.touch_session(self.id, state, executed)

    def _read_state(self) -> dict[str, Any]:
        """The launcher's state.json. The sandbox can write it, so read it defensively."""
        path = self.runtime / "sock" / "state.json"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return {}
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > 65536:
                return {}
            data = json.loads(os.read(fd, 65536) or b"{}")
            return data if isinstance(data, dict) else {}
        except ValueError:
            return {}
        finally:
            os.close(fd)

    @asynccontextmanager
    async def _exec_lock(self) -> AsyncIterator[None]:
        """Executions on one session are serialised across processes, too."""
        async with AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(file_lock(self.runtime / "exec.lock"))
            except FileNotFoundError:  # the session ended under us: its directories are gone
                raise _Gone from None
            yield


def _tee(spool: LogSpool, on_output: OutputCallback | None) -> OutputCallback:
    if on_output is None:
        return spool.write

    def both(kind: str, text: str) -> None:
        spool.write(kind, text)
        with suppress(Exception):  # a failing observer must not break the execution
            on_output(kind, text)

    return both


def _reply_error(reply: dict[str, Any]) -> ErrorInfo:
    return ErrorInfo(
        str(reply.get("ename", "Error")),
        str(reply.get("evalue", "")),
        list(reply.get("traceback", [])),
    )


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
