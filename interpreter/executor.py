"""One execution on a session, from the request to the settled result.

A ``Run`` sends the code, folds the kernel's output (``messaging.py``) until the kernel
is idle, and settles how it ended from what the host sees itself: a timeout (interrupt,
then a restart if the code ignores it), a stop (the manager says the session ended), a
death (the connection closed and the launcher started another kernel, or the engine
says the sandbox exited), a lost connection. What it produced is stored by
``outputs.py``; the session (``session.py``) owns the kernel connection it runs on.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any, NoReturn

import anyio
import anyio.to_thread

from .config import format_bytes
from .errors import SessionClosed
from .kernelclient import Closed, Dropped
from .launcher import Exit, LauncherState
from .messaging import Budget, OutputFold
from .outputs import LogSpool
from .results import ErrorInfo, Execution, ExecutionStatus, SessionState
from .workspace import MOUNT, Scan

if TYPE_CHECKING:
    from .session import Session

__all__ = ["EXITED", "OutputCallback", "Run"]

OutputCallback = Callable[[str, str], None]
POLL_S = 0.25  # how often a waiting execution looks up from the kernel's output
SANDBOX_POLL_EVERY = 8  # ... and every this many polls, asks the engine the sandbox runs
REPLY_GRACE = 3.0  # how long output may follow the reply when the idle status never comes
CONFIRM_S = 3.0  # how long a lost connection gets to be explained
EXITED = "the sandbox exited"


class _Deadline(Exception):
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


class Run:
    """One execution of ``code`` on ``session`` (whose execution lock the caller holds)."""

    def __init__(
        self, session: Session, code: str, timeout: float, on_output: OutputCallback | None
    ) -> None:
        self.session, self.timeout, self.on_output = session, timeout, on_output
        self.limits = session.settings.limits
        self.exe = Execution(
            id="exec_" + secrets.token_hex(8),
            session_id=session.id,
            thread_id=session.thread_id,
            code=code,
            status=ExecutionStatus.OK,
            started_at=time.time(),
        )

    async def __call__(self) -> Execution:
        s, exe = self.session, self.exe
        if s.notice:
            exe.notice, exe.state_lost, exe.kernel_restarted = s.notice, True, True
            s.notice = None
        before = await s.catalog.starting_scan()
        spool = LogSpool(s.files.blobs / "tmp", self.limits.max_log_bytes)
        with s.history.store.transaction():  # one commit: the session busy, the row running
            s.touch(SessionState.BUSY)
            s.history.started(exe, s.tenant, spool.path)
        fold = self._fold(spool)
        started = time.monotonic()
        try:
            try:
                await self._run(fold, started + self.timeout)
            finally:
                exe.duration_ms = int((time.monotonic() - started) * 1000)
            after = await s.outputs.finish(exe, fold, spool, before)
            with s.history.store.transaction():  # one commit: the result, the session idle
                s.history.finished(exe)
                s.touch(SessionState.IDLE, executed=True)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._abandon(fold)
                _cancel(exe, fold, "the caller went away; the code was stopped")
                await self._finish_early(fold, spool, before)
                s.manager.emit("execution", execution=exe, tenant=s.tenant)
            raise
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                spool.discard()
                s.touch(SessionState.IDLE)
                why = f"lci failed during the execution: {type(exc).__name__}: {exc}"
                s.history.ended_early(exe.id, "lost", why)
            raise
        s.catalog.last = after
        s.manager.emit("execution", execution=exe, tenant=s.tenant)
        return exe

    def _fold(self, spool: LogSpool) -> OutputFold:
        budget = Budget(
            chars=self.limits.max_log_chars,
            result_bytes=self.limits.max_result_bytes,
            image_bytes=self.limits.max_image_bytes,
        )
        return OutputFold(
            "", budget.chars, on_text=_tee(spool, self.on_output),
            on_image=self.session.outputs.image, budget=budget,
        )  # fmt: skip

    async def _finish_early(self, fold: OutputFold, spool: LogSpool, before: Scan) -> None:
        """Keep what a cancelled execution printed (and its log); never raise."""
        s = self.session
        try:
            await s.outputs.finish(self.exe, fold, spool, before)
            s.history.finished(self.exe)
        except Exception as exc:
            spool.discard()
            s.history.ended_early(self.exe.id, "cancelled", f"{exc}")
        s.touch(SessionState.IDLE, executed=True)

    async def _run(self, fold: OutputFold, deadline: float) -> None:
        s, exe = self.session, self.exe
        if s.kc is None:  # let go of since it was made ready: stopped meanwhile
            raise SessionClosed("session (it was stopped)")
        fold.msg_id = s.kc.execute(exe.code)
        try:
            await self._collect(fold, deadline)
            reply = await s.reply(fold.msg_id)
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
            await self._on_timeout(fold)
        except _Stopped as stopped:
            _cancel(exe, fold, f"the session was stopped ({stopped.reason})")
            exe.state_lost = exe.kernel_restarted = True
        except _Died as died:
            exe.status, exe.state_lost, exe.kernel_restarted = ExecutionStatus.DIED, True, True
            exe.error = ErrorInfo("KernelDied", died.detail)
            fold.note("error", f"KernelDied: {died.detail}\n")
            s.ready = False
        except _Disconnected:
            exe.status = ExecutionStatus.ERROR
            exe.error = ErrorInfo(
                "KernelDisconnected",
                "The kernel closed its connection to lci during the execution: what it"
                " printed after that is lost. The next call reconnects.",
            )
            fold.note("error", f"KernelDisconnected: {exe.error.evalue}\n")
            s.ready = False

    async def _collect(self, fold: OutputFold, deadline: float) -> None:
        """Take the request's output until the kernel says it is idle, or, should that
        message be lost (a flooded kernel drops output), until REPLY_GRACE after its reply."""
        s = self.session
        kc = s.kc  # the session may let go of it meanwhile (stopped): its reads then fail
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
                if polls % SANDBOX_POLL_EVERY == 0 and await s.sandbox.poll() is not None:
                    await self._gone()
                if not replied and await s.reply(fold.msg_id, timeout=0) is not None:
                    replied = time.monotonic()
                if replied and time.monotonic() - replied > REPLY_GRACE:
                    fold.drop("message", 0, "the kernel's output queue: some output was lost")
                    return
                continue
            except Closed:
                await self._lost_connection()
            if isinstance(msg, Dropped):
                cap = self.limits.max_message_bytes
                fold.drop("message", msg.size, f"LCI_MAX_MESSAGE_BYTES ({cap}; {msg.reason})")
            else:
                fold.feed(msg)

    async def _lost_connection(self) -> NoReturn:
        """The kernel's connection closed: find out why from what the host sees itself."""
        s = self.session
        s.ready = False
        end = time.monotonic() + CONFIRM_S
        while True:
            if s.manager.ended(s.id) is not None or await s.sandbox.poll() is not None:
                await self._gone()
            state = s.launcher_state()
            if state.generation != s.generation:
                raise _Died(await self._death_detail(state))
            if time.monotonic() > end:
                raise _Disconnected
            await asyncio.sleep(0.05)

    async def _gone(self) -> NoReturn:
        """The sandbox is not running: stopped on purpose (the manager says so), or died."""
        why = self.session.manager.ended(self.session.id)
        if why is not None and why != EXITED:
            raise _Stopped(why)
        raise _Died(await self.session.exit_detail(EXITED))

    async def _death_detail(self, state: LauncherState) -> str:
        s = self.session
        last = state.exits[-1] if state.exits else Exit()
        limit = format_bytes(s.record.memory)
        # an OOM kill is a SIGKILL: a kernel that ended otherwise did not die of it, even
        # if the cgroup killed something else of the sandbox's meanwhile
        unknown = last.signal is None and last.returncode is None
        oom = await s.oom_confirmed() if last.signal == 9 or unknown else False
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

    async def _abandon(self, fold: OutputFold) -> None:
        """The caller went away mid-execution: stop the code so the session is free."""
        s = self.session
        with suppress(Exception):
            await s.interrupt()
            try:
                await self._collect(fold, time.monotonic() + s.settings.timeouts.interrupt_grace)
                await s.reply(fold.msg_id, timeout=1.0)
            except _Deadline:
                await s.restart()
                s.notice = (
                    "An earlier execution was abandoned by its caller and ignored the "
                    "interrupt, so the kernel was restarted: variables and imports are lost."
                )
            except _Died as died:
                s.ready = False
                s.notice = died.detail
            except _Disconnected:
                s.ready = False

    async def _on_timeout(self, fold: OutputFold) -> None:
        s, exe, timeout = self.session, self.exe, self.timeout
        exe.status = ExecutionStatus.TIMEOUT
        await s.interrupt()
        try:
            await self._collect(fold, time.monotonic() + s.settings.timeouts.interrupt_grace)
            await s.reply(fold.msg_id, timeout=1.0)
            detail = f"The code ran longer than {timeout:g} s and was interrupted; state is kept."
        except _Deadline:
            await s.restart()
            exe.state_lost = exe.kernel_restarted = True
            detail = (
                f"The code ran longer than {timeout:g} s and ignored the interrupt, so the kernel "
                f"was restarted: variables and imports are lost; files in {MOUNT} are intact."
            )
        except _Died as died:
            exe.state_lost = exe.kernel_restarted = True
            s.ready = False
            detail = died.detail
        except _Disconnected:
            s.ready = False
            detail = f"The code ran longer than {timeout:g} s; the kernel then disconnected."
        exe.error = ErrorInfo("TimeoutError", detail)
        fold.note("error", f"TimeoutError: {detail}\n")


def _cancel(exe: Execution, fold: OutputFold, why: str) -> None:
    exe.status = ExecutionStatus.CANCELLED
    exe.error = ErrorInfo("Cancelled", why[:1].upper() + why[1:] + ".")
    fold.note("error", f"Cancelled: {exe.error.evalue}\n")


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
