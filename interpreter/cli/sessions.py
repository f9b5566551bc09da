"""``lci sessions|logs|attach|export``: look into sandbox sessions and step in.

Every command works on the local store (``LCI_HOME``) or, with ``--url``/``LCI_URL``
(and ``--api-key``/``LCI_API_KEY``), against a running ``lci serve``: both sides have
the ``remote.Inspecting`` shape, so each command is written once.
"""

from __future__ import annotations

import argparse
import codeop
import contextlib
import functools
import json
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import nbformat
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ..config import Settings
from ..errors import BackendError, NoSuchSession, SessionClosed
from ..inspection.local import Inspector, SessionView
from ..inspection.remote import Inspecting, RemoteInspector, SessionEnded
from ..manager import SessionManager
from ..results import Execution, ExecutionStatus
from . import display

__all__ = ["COMMANDS", "add_parsers"]

RECENT = 10  # executions `sessions show` lists, and `logs -f` replays by default


class LocalInspector(Inspector):
    """The Inspector on the local store, plus what the CLI saves: a file's bytes."""

    async def file(self, file_id: str) -> tuple[str, bytes]:
        info = await self.manager.files.get(file_id)
        return Path(info.path or info.filename).name, await self.manager.files.content(file_id)


# -- arguments ----------------------------------------------------------------------


def add_parsers(sub: Any) -> None:
    """Add ``sessions``, ``logs``, ``attach`` and ``export`` to the ``lci`` parser."""
    where = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: given before or after the sub-command, neither default hides the other
    where.add_argument(
        "--url", default=argparse.SUPPRESS, help="a running lci service (env LCI_URL)"
    )
    where.add_argument("--api-key", default=argparse.SUPPRESS, help="its API key (env LCI_API_KEY)")

    sessions = sub.add_parser("sessions", parents=[where], help="list and manage sessions")
    sessions.add_argument("--all", action="store_true", help="include ended sessions")
    sessions.add_argument("--json", action="store_true", help="one JSON list, for scripts")
    ssub = sessions.add_subparsers(dest="sessions_cmd", metavar="ACTION")
    show = ssub.add_parser("show", parents=[where], help="details, limits, last executions")
    show.add_argument("session_id")
    show.add_argument("--json", action="store_true")
    for name, text in (
        ("interrupt", "interrupt the code running in a session"),
        ("restart", "a fresh kernel in the same sandbox (variables lost, files kept)"),
        ("stop", "stop a session and free its sandbox"),
    ):
        ssub.add_parser(name, parents=[where], help=text).add_argument("session_id")
    ssub.add_parser(
        "sweep", parents=[where], help="expire idle sessions, remove orphaned containers (local)"
    )
    purge = ssub.add_parser("purge", parents=[where], help="forget old execution history (local)")
    purge.add_argument("--days", type=float, help="older than this (default LCI_HISTORY_DAYS)")

    logs = sub.add_parser("logs", parents=[where], help="a session's executions as text")
    logs.add_argument("session_id")
    logs.add_argument("-f", "--follow", action="store_true", help="follow live executions")
    logs.add_argument("-n", type=int, metavar="N", help="only the last N executions")

    attach = sub.add_parser("attach", parents=[where], help="a prompt in a live session")
    attach.add_argument("session_id")
    attach.add_argument("--timeout", type=float, help="seconds per input before it is stopped")
    attach.add_argument(
        "--out", default="lci-output", metavar="DIR", help="where images and files are saved"
    )

    export = sub.add_parser("export", parents=[where], help="a session as a Jupyter notebook")
    export.add_argument("session_id")
    export.add_argument("-o", "--output", help="the .ipynb to write (default: SESSION.ipynb)")


def service(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> str | None:
    url: str | None = getattr(args, "url", None) or environ.get("LCI_URL")
    return url or None


@contextlib.asynccontextmanager
async def open_inspector(
    args: argparse.Namespace, environ: Mapping[str, str] = os.environ
) -> AsyncIterator[Inspecting]:
    url = service(args, environ)
    if url:
        key = getattr(args, "api_key", None) or environ.get("LCI_API_KEY")
        async with RemoteInspector(url, key) as remote:
            yield remote
        return
    manager = SessionManager(Settings.from_env(environ), reaper=False)
    try:
        try:
            await manager.open()  # sweep, so states are current
        except BackendError:  # no engine: history is still readable
            await manager.open(sweep=False)
        yield LocalInspector(manager)
    finally:
        await manager.close()


async def resolve(insp: Inspecting, session_id: str) -> SessionView:
    """The session by its id, or by a unique prefix of it."""
    try:
        return await insp.session(session_id)
    except NoSuchSession:
        matches = [v for v in await insp.sessions(all=True) if v.id.startswith(session_id)]
        if len(matches) != 1:
            raise
        return matches[0]


def live(view: SessionView) -> SessionView:
    if view.state in ("expired", "dead"):
        raise SessionEnded(view.id, view.state, view.end_reason)
    return view


def public(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "live_log"}


# -- sessions -----------------------------------------------------------------------


async def cmd_sessions(args: argparse.Namespace) -> int:
    action = args.sessions_cmd
    if action in ("sweep", "purge"):
        return await _housekeeping(args)
    async with open_inspector(args) as insp:
        if action is None:
            views = [v.to_dict() for v in await insp.sessions(all=args.all)]
            if args.json:
                print(json.dumps(views))
            else:
                print(display.table(display.SESSION_HEADER, display.session_rows(views)))
            return 0
        view = await resolve(insp, args.session_id)
        if action == "show":
            recent = [public(e) for e in await insp.executions(view.id, last=RECENT)]
            _show(view, recent, args.json)
            return 0
        live(view)
        await {"interrupt": insp.interrupt, "restart": insp.restart, "stop": insp.stop}[action](
            view.id
        )
        done = {"interrupt": "interrupted", "restart": "restarted", "stop": "stopped"}[action]
        print(f"{done} {view.id}")
        return 0


def _show(view: SessionView, recent: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps({**view.to_dict(), "last_executions": recent}))
        return
    print(display.session_details(view.to_dict()))
    print(f"\nlast {len(recent)} executions:" if recent else "\nno executions yet")
    for e in recent:
        first = (e.get("code") or "").strip().split("\n")[0][:60]
        took = display.duration(e.get("duration_ms")) if e["status"] != "running" else "-"
        line = f"  {display.stamp(e['started_at'])}  {e['id']}  {e['status']:<9} {took:>9}  {first}"
        print(display.safe(line))


async def _housekeeping(args: argparse.Namespace) -> int:
    if service(args):
        print(f"lci sessions {args.sessions_cmd} works on the local store only.", file=sys.stderr)
        return 2
    async with SessionManager.from_env(reaper=False) as manager:
        if args.sessions_cmd == "sweep":
            print(json.dumps(await manager.sweep()))
            return 0
        days = manager.settings.history_days if args.days is None else args.days
        if days <= 0:
            print("LCI_HISTORY_DAYS is 0 (keep forever): nothing purged; pass --days N.")
            return 0
        purged = await manager.purge_history(days)
    print(
        f"purged {purged.executions} executions, {purged.sessions} ended sessions and"
        f" {len(purged.files)} output files older than {days:g} days"
    )
    return 0


# -- logs ---------------------------------------------------------------------------


async def cmd_logs(args: argparse.Namespace) -> int:
    async with open_inspector(args) as insp:
        view = await resolve(insp, args.session_id)
        if not args.follow:
            for e in await insp.executions(view.id, last=args.n):
                print(display.execution_text(public(e)))
            return 0
        replay = RECENT if args.n is None else args.n
        await _follow(insp.follow(view.id, last=replay))
    return 0


async def _follow(events: AsyncIterator[dict[str, Any]]) -> None:
    out = sys.stdout
    fresh = True  # at the start of a line
    async for ev in events:
        kind = ev["event"]
        if kind == "output":
            out.write(display.safe(ev["text"]))
            fresh = ev["text"].endswith("\n")
        else:
            if not fresh:
                out.write("\n")
            fresh = True
            if kind == "started":
                out.write(display.safe(display.execution_header(ev["execution"])) + "\n")
            elif kind == "finished":
                out.write(display.execution_footer(ev["execution"]) + "\n")
            elif kind == "ended":
                s = ev["session"]
                out.write(display.safe(f"── session {s.id} ended ({s.state}: {s.end_reason})\n"))
        out.flush()


# -- export -------------------------------------------------------------------------


async def cmd_export(args: argparse.Namespace) -> int:
    async with open_inspector(args) as insp:
        view = await resolve(insp, args.session_id)
        nb = await insp.notebook(view.id)
    target = Path(args.output or f"{view.id}.ipynb")
    nbformat.write(nb, str(target))
    cells = sum(1 for c in nb.cells if c.cell_type == "code")
    print(f"{target} ({cells} executions)")
    return 0


# -- attach -------------------------------------------------------------------------


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
        insp: Inspecting,
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


COMMANDS = {
    "sessions": cmd_sessions,
    "logs": cmd_logs,
    "attach": cmd_attach,
    "export": cmd_export,
}
