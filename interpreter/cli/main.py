"""``lci``: parse arguments, call the core, print. No business logic here.

Exit codes: 0 ok; 1 the code raised (or ``attach``: the session ended); 2 usage, an unknown
or ended session id, or a local file error; 3 timeout; 4 the kernel died;
5 lci itself failed (engine, image, configuration); 6 the execution was cancelled (its
session was stopped under it).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio.to_thread

from ..errors import InterpreterError, NoSuchSession, SessionEnded
from ..manager import SessionManager
from ..results import Execution, ExecutionStatus
from . import attach as cli_attach
from . import logs as cli_logs
from . import sessions as cli_sessions
from .display import safe, table

EXIT = {
    ExecutionStatus.OK: 0,
    ExecutionStatus.ERROR: 1,
    ExecutionStatus.TIMEOUT: 3,
    ExecutionStatus.DIED: 4,
    ExecutionStatus.CANCELLED: 6,
}
EXIT_ENGINE = 5


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lci", description="A local, sandboxed code interpreter.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run_parser(sub)
    _add_files_parser(sub)
    _add_image_parser(sub)
    _add_service_parsers(sub)
    where = cli_sessions.service_options()  # --url, --api-key: the same on each
    cli_sessions.add_parser(sub, where)
    cli_logs.add_parser(sub, where)
    cli_attach.add_parser(sub, where)
    cli_logs.add_export_parser(sub, where)  # after attach, where `lci --help` has it
    return p


def _add_run_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="execute Python in a thread's sandbox")
    run.add_argument("code", help="the code, or - to read it from standard input")
    run.add_argument(
        "--thread",
        "-t",
        help="thread id; its session (state, files) is kept between calls."
        " Without it the code runs in a throw-away session",
    )
    run.add_argument(
        "--file",
        "-f",
        action="append",
        default=[],
        metavar="PATH",
        help="upload a file to /mnt/data first (repeatable)",
    )
    run.add_argument("--timeout", type=float, help="seconds before the code is interrupted")
    run.add_argument("--json", action="store_true", help="print the Execution as one JSON object")
    run.add_argument(
        "--out",
        default="lci-output",
        metavar="DIR",
        help="where images and produced files are saved (default: %(default)s)",
    )


def _add_files_parser(sub: Any) -> None:
    files = sub.add_parser("files", help="stored files").add_subparsers(
        dest="files_cmd", required=True
    )
    get = files.add_parser("get", help="write a file's contents")
    get.add_argument("file_id")
    get.add_argument(
        "-o", "--output", help="path to write (default: the file's name; - for stdout)"
    )
    ls = files.add_parser("list", help="list stored files")
    ls.add_argument("--thread", "-t")
    ls.add_argument("--json", action="store_true")


def _add_image_parser(sub: Any) -> None:
    image = sub.add_parser("image", help="the sandbox image").add_subparsers(
        dest="image_cmd", required=True
    )
    build = image.add_parser("build", help="build the sandbox image if it is missing")
    build.add_argument("--method", choices=["auto", "debootstrap", "dockerfile"], default="auto")
    build.add_argument("--force", action="store_true", help="rebuild even when present")
    image.add_parser("tag", help="print the tag the current sources build to")


def _add_service_parsers(sub: Any) -> None:
    """``serve`` and ``mcp``."""
    serve = sub.add_parser("serve", help="run the HTTP service (OpenAI, Azure sessions, MCP)")
    serve.add_argument("--host", help="address to listen on (default: LCI_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: LCI_PORT or 8000)")
    sub.add_parser("mcp", help="serve the Model Context Protocol over stdio")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        done = COMMANDS[args.command](args)
        return int(asyncio.run(done) if inspect.iscoroutine(done) else done)
    except (NoSuchSession, SessionEnded) as exc:  # an id the user typed
        print(safe(f"{type(exc).__name__}: {exc}"), file=sys.stderr)
        return 2
    except InterpreterError as exc:  # may quote the sandbox (a failed start's output)
        print(safe(f"{type(exc).__name__}: {exc}"), file=sys.stderr)
        return EXIT_ENGINE
    except OSError as exc:  # a local file the user named
        print(safe(f"{type(exc).__name__}: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


# -- run ---------------------------------------------------------------------------


async def cmd_run(args: argparse.Namespace) -> int:
    code = sys.stdin.read() if args.code == "-" else args.code
    async with SessionManager.from_env(reaper=False) as manager:
        file_ids = [await manager.files.upload(Path(p), thread_id=args.thread) for p in args.file]
        session = await manager.session(args.thread, file_ids=file_ids)
        try:
            exe = await session.execute(code, timeout=args.timeout)
            saved = await save_outputs(manager, exe, Path(args.out))
        finally:
            if args.thread is None:
                await session.stop("one-off run finished")
    if args.json:
        print(json.dumps(exe.to_dict()))
    else:
        print_human(exe, saved)
    return EXIT[exe.status]


async def save_outputs(
    manager: SessionManager, exe: Execution, out: Path
) -> list[tuple[str, Path, str]]:
    """Write images and produced files under ``out``; return (kind, local path, file id)."""
    items = [("image", fid) for fid in exe.images] + [("file", f.file_id) for f in exe.files]
    saved = []
    for kind, fid in items:
        info = await manager.files.get(fid)
        target = out / Path(info.path or info.filename).name
        out.mkdir(parents=True, exist_ok=True)
        # copied from the store as a stream: a produced file is never held in memory
        await anyio.to_thread.run_sync(shutil.copyfile, manager.files.path(fid), target)
        saved.append((kind, target, fid))
    return saved


def print_human(exe: Execution, saved: list[tuple[str, Path, str]]) -> None:
    """Logs, then what was saved; everything the sandbox wrote is escaped (``safe``)."""
    if exe.notice:
        print(safe(f"note: {exe.notice}"), file=sys.stderr)
    logs = exe.logs
    if logs:
        print(safe(logs), end="" if logs.endswith("\n") else "\n")
    for kind, path, fid in saved:
        print(safe(f"{kind}: {path} ({fid})"))
    for skipped in exe.skipped_files:
        print(safe(f"not collected: {skipped['path']}: {skipped['reason']}"), file=sys.stderr)
    for d in exe.dropped:
        print(safe(f"dropped: {d['count']} {d['what']} ({d['bytes']} bytes): over {d['limit']}"),
              file=sys.stderr)  # fmt: skip
    if (
        exe.status is not ExecutionStatus.OK
        and exe.error
        and exe.error.ename in ("TimeoutError", "KernelDied", "Cancelled")
    ):
        print(safe(f"{exe.status}: {exe.error.evalue}"), file=sys.stderr)


# -- files -------------------------------------------------------------------------


async def cmd_files(args: argparse.Namespace) -> int:
    async with SessionManager.from_env(reaper=False) as manager:
        if args.files_cmd == "list":
            infos = await manager.files.list(thread_id=args.thread)
            if args.json:
                print(json.dumps([i.to_dict() for i in infos]))
            else:
                rows = [
                    (i.id, i.purpose, str(i.bytes), i.thread_id or "-", i.path or i.filename)
                    for i in infos
                ]
                print(table(("FILE", "PURPOSE", "BYTES", "THREAD", "NAME"), rows))
            return 0
        info = await manager.files.get(args.file_id)
        source = manager.files.path(args.file_id)
    if args.output == "-":
        with open(source, "rb") as f:
            shutil.copyfileobj(f, sys.stdout.buffer)
        return 0
    target = Path(args.output or info.filename.rsplit("/", 1)[-1])
    shutil.copyfile(source, target)
    print(safe(f"{target} ({info.bytes} bytes)"))
    return 0


# -- serve / mcp --------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from ..config import Settings
    from ..server import serve

    serve(Settings.from_env(), host=args.host, port=args.port)
    return 0


async def cmd_mcp(args: argparse.Namespace) -> int:
    from ..config import Settings
    from ..server.mcp import run_stdio

    await run_stdio(Settings.from_env())
    return 0


# -- image -------------------------------------------------------------------------


def cmd_image(args: argparse.Namespace) -> int:
    from .. import image

    if args.image_cmd == "tag":
        print(image.image_tag())
        return 0
    image.build_image(
        method=args.method, force=args.force, progress=lambda line: print(line, flush=True)
    )
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "run": cmd_run,
    "files": cmd_files,
    "image": cmd_image,
    "serve": cmd_serve,
    "mcp": cmd_mcp,
    **cli_sessions.COMMANDS,
    **cli_logs.COMMANDS,
    **cli_attach.COMMANDS,
}
