"""``lci attach``: a prompt in a live session, its code run in the sandbox.

The prompt (with readline history) runs in the main thread, the inspector on a
blocking portal's event loop; ``_CtrlC`` makes every Ctrl-C reach the prompt, which
interrupts the running code, drops the line, or stops saving outputs.
"""

from __future__ import annotations

import argparse
import codeop
import contextlib
import functools
import os
import signal
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from ..config import Settings
from ..errors import NoSuchSession, SessionClosed, SessionEnded
from ..inspection.interface import Inspector
from ..inspection.local import SessionView
from ..results import Execution, ExecutionStatus
from . import display
from .sessions import live, open_inspector, resolve

__all__ = ["COMMANDS", "add_parser"]


def add_parser(sub: Any, where: argparse.ArgumentParser) -> None:
    """Add ``attach`` to the ``lci`` parser; ``where`` holds ``--url``/``--api-key``."""
    attach = sub.add_parser("attach", parents=[where], help="a prompt in a live session")
    attach.add_argument("session_id")
    attach.add_argument("--timeout", type=float, help="seconds per input before it is stopped")
    attach.add_argument(
        "--out", default="lci-output", metavar="DIR", help="where images and files are saved"
    )


def cmd_attach(args: argparse.Namespace) -> int:
    """Blocking: the prompt runs in this thread, the inspector on a portal's loop."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(open_inspector(args)) as insp,
    ):
        view = live(portal.call(resolve, insp, args.session_id))
        home = Settings.from_env().home
        return Prompt(portal, insp, view, Path(args.out), args.timeout).loop(
            home / "attach_history"
        )


class Prompt:
    """A REPL whose code runs in the sandbox: ``>>>``/``...`` as in Python, Ctrl-C
    interrupts the running code (or, at the prompt, drops the line; while outputs are
    saved, the rest of them), Ctrl-D or ``exit`` leaves."""

    def __init__(
        self,
        portal: BlockingPortal,
        insp: Inspector,
        view: SessionView,
        out: Path,
        timeout: float | None,
    ) -> None:
        self.portal, self.insp, self.view, self.out, self.timeout = portal, insp, view, out, timeout

    def loop(self, history: Path) -> int:
        rl = _readline(history)
        v = self.view
        print(
            f"attached to {v.id} (thread {v.thread_id}{', tenant ' + v.tenant if v.tenant else ''})"
        )
        print("Ctrl-C interrupts running code; Ctrl-D or `exit` leaves.")
        lines: list[str] = []
        try:
            with _CtrlC():
                while True:
                    try:  # a Ctrl-C anywhere in here leaves the REPL at a fresh prompt
                        try:
                            line = _ask("... " if lines else ">>> ")
                        except EOFError:
                            print()
                            return 0
                        if not lines and line.strip() in ("exit", "exit()", "quit", "quit()"):
                            return 0
                        lines.append(line)
                        source = "\n".join(lines)
                        if _incomplete(source):
                            continue
                        lines = []
                        if source.strip() and not self.run(source):
                            return 1
                    except KeyboardInterrupt:
                        print("\nKeyboardInterrupt", flush=True)
                        lines = []
        finally:
            if rl is not None:
                with contextlib.suppress(OSError):
                    history.parent.mkdir(parents=True, exist_ok=True)
                    rl.write_history_file(str(history))

    def run(self, source: str) -> bool:
        """Execute and show; False when the session has ended."""
        call = functools.partial(
            self.insp.execute, self.view.id, source, timeout=self.timeout, on_output=_echo
        )
        future = self.portal.start_task_soon(call)
        while True:
            try:
                exe: Execution = future.result()
                break
            except KeyboardInterrupt:
                print("\nKeyboardInterrupt: interrupting the code", file=sys.stderr, flush=True)
                self._interrupt()
            except (NoSuchSession, SessionClosed, SessionEnded):
                view = self.portal.call(self.insp.session, self.view.id)
                print(SessionEnded(view.id, view.state, view.end_reason), file=sys.stderr)
                return False
        sys.stdout.flush()
        self.report(exe)
        return True

    def _interrupt(self) -> None:
        """Ask the kernel to stop; another Ctrl-C meanwhile stops waiting for the answer
        (the request goes on; the next Ctrl-C sends another)."""
        request = self.portal.start_task_soon(self.insp.interrupt, self.view.id)
        with contextlib.suppress(KeyboardInterrupt, NoSuchSession, SessionEnded):
            request.result()

    def report(self, exe: Execution) -> None:
        if exe.notice:
            print(display.safe(f"note: {exe.notice}"), file=sys.stderr)
        if exe.status in (ExecutionStatus.TIMEOUT, ExecutionStatus.DIED) and exe.error:
            print(display.safe(f"{exe.status}: {exe.error.evalue}"), file=sys.stderr)
        items = [("image", fid) for fid in exe.images] + [("file", f.file_id) for f in exe.files]
        for done, (kind, fid) in enumerate(items):
            try:
                name, data = _wait(self.portal.start_task_soon(self.insp.file, fid))
                print(display.safe(f"{kind}: {_save(self.out, name, fid, data)}"), flush=True)
            except KeyboardInterrupt:  # stop saving, back to the prompt
                print(
                    f"\nKeyboardInterrupt: {len(items) - done} of {len(items)} images and files"
                    f" not saved to {self.out}",
                    file=sys.stderr,
                    flush=True,
                )
                return


def _wait(future: Future[Any]) -> Any:
    """A portal task's result; on Ctrl-C the task is cancelled."""
    try:
        return future.result()
    except KeyboardInterrupt:
        future.cancel()
        raise


def _ask(prompt: str) -> str:
    """``input()`` with readline, made safe for a Ctrl-C that comes with typed-ahead
    input.

    A Ctrl-C makes the terminal discard unread input (unless ``NOFLSH``). When readline
    had been told that input is waiting and is about to read it, that read then blocks
    for good, with the SIGINT already taken: the prompt hangs until the next key. So
    the terminal keeps its input at the prompt; ``_CtrlC`` then brings the SIGINT to the
    prompt once readline has read it.
    """
    try:
        import termios
    except ImportError:  # not on every platform
        return input(prompt)
    try:
        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        keep = list(saved)
        keep[3] |= termios.NOFLSH
        termios.tcsetattr(fd, termios.TCSANOW, keep)
    except (OSError, ValueError, termios.error):  # not a terminal: nothing to keep
        return input(prompt)
    try:
        return input(prompt)
    finally:
        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(fd, termios.TCSANOW, saved)


class _CtrlC:
    """Makes every Ctrl-C reach the main thread's Python code while the REPL runs.

    Python only runs its SIGINT handler (the ``KeyboardInterrupt``) when the main
    thread is back in Python code or its blocking call fails with EINTR. A SIGINT that
    arrives just before the main thread blocks (readline between two keys, or right
    before it waits in ``select()``; a lock wait) or that the kernel gives another
    thread (the portal's) is noted but not acted on until something else wakes the main
    thread: the prompt looks dead. Here the handler writes each signal to a pipe (Python's
    wakeup fd); a watcher thread that sees a SIGINT the main thread has not acted on
    pokes it with a no-op signal until it has: the poke ends the blocking call, and
    Python then runs the pending SIGINT handler.
    """

    POKE = getattr(signal, "SIGURG", None)  # ignored by default: a late poke is harmless
    DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)  # seconds between pokes, then give up

    def __init__(self) -> None:
        self.handled = 0  # SIGINTs the main thread acted on
        self.seen = 0  # of them, those the watcher has accounted for
        self.stopping = threading.Event()
        self.installed = False

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.handled += 1
        raise KeyboardInterrupt

    def __enter__(self) -> _CtrlC:
        poke = self.POKE
        if poke is None or threading.current_thread() is not threading.main_thread():
            return self  # no such signal here (Windows), or signals can't be set
        self.poke: int = poke
        self.main = threading.main_thread().ident or 0
        self.r, self.w = os.pipe()
        os.set_blocking(self.w, False)
        self.old_int = signal.signal(signal.SIGINT, self._on_sigint)
        self.old_poke = signal.signal(self.poke, lambda signum, frame: None)
        self.old_fd = signal.set_wakeup_fd(self.w, warn_on_full_buffer=False)
        self.watcher = threading.Thread(target=self._watch, name="lci-ctrl-c", daemon=True)
        self.watcher.start()
        self.installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.installed:
            return
        self.stopping.set()
        with contextlib.suppress(OSError):
            os.write(self.w, b"\0")
        self.watcher.join(5)
        signal.set_wakeup_fd(self.old_fd)
        signal.signal(signal.SIGINT, self.old_int)
        signal.signal(self.poke, self.old_poke)
        os.close(self.r)
        os.close(self.w)

    def _watch(self) -> None:
        while not self.stopping.is_set():
            try:
                got = os.read(self.r, 64)
            except OSError:
                return
            for signum in got:
                if signum == signal.SIGINT:
                    self._see_through()

    def _see_through(self) -> None:
        """Poke the main thread until it has acted on the SIGINT (or, if that SIGINT
        was folded into an earlier one, until the pokes run out)."""
        for delay in self.DELAYS:
            if self.stopping.wait(delay) or self.handled > self.seen:
                break
            with contextlib.suppress(OSError, ValueError):
                signal.pthread_kill(self.main, self.poke)
        self.seen = self.handled


def _echo(kind: str, text: str) -> None:
    stream = sys.stderr if kind in ("stderr", "error") else sys.stdout
    stream.write(display.safe(text))
    stream.flush()


def _incomplete(source: str) -> bool:
    """As the Python REPL decides: more lines are needed (a block waits for a blank line)."""
    try:
        return codeop.compile_command(source, "<attach>", "single") is None
    except (SyntaxError, OverflowError, ValueError):
        return False  # the kernel reports it (IPython syntax such as %magic lands here too)


def _save(out: Path, name: str, file_id: str, data: bytes) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    target = out / Path(name).name
    if target.exists() and target.read_bytes() != data:
        target = out / f"{target.stem}-{file_id[-8:]}{target.suffix}"
    part = target.with_name(f".{target.name}.part")  # never half a file under its name
    try:
        part.write_bytes(data)
        part.replace(target)
    finally:
        part.unlink(missing_ok=True)
    return target


def _readline(history: Path) -> Any:
    try:
        import readline
    except ImportError:  # not on every platform; the prompt works without it
        return None
    with contextlib.suppress(OSError):
        readline.read_history_file(str(history))
    readline.set_history_length(1000)
    return readline


COMMANDS = {"attach": cmd_attach}
