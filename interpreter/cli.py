"""``lci``: parse arguments, call the core, print. No business logic here.

Exit codes: 0 ok; 1 the code raised; 2 usage or a local file error; 3 timeout; 4 the kernel died;
5 lci itself failed (engine, image, configuration).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import InterpreterError
from .manager import SessionManager
from .results import Execution, ExecutionStatus, SessionState

EXIT = {
    ExecutionStatus.OK: 0,
    ExecutionStatus.ERROR: 1,
    ExecutionStatus.TIMEOUT: 3,
    ExecutionStatus.DIED: 4,
}
EXIT_ENGINE = 5


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lci", description="A local, sandboxed code interpreter.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    image = sub.add_parser("image", help="the sandbox image").add_subparsers(
        dest="image_cmd", required=True
    )
    build = image.add_parser("build", help="build the sandbox image if it is missing")
    build.add_argument("--method", choices=["auto", "debootstrap", "dockerfile"], default="auto")
    build.add_argument("--force", action="store_true", help="rebuild even when present")
    image.add_parser("tag", help="print the tag the current sources build to")

    serve = sub.add_parser("serve", help="run the HTTP service (OpenAI, Azure sessions, MCP)")
    serve.add_argument("--host", help="address to listen on (default: LCI_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: LCI_PORT or 8000)")
    sub.add_parser("mcp", help="serve the Model Context Protocol over stdio")

    sessions = sub.add_parser("sessions", help="list sandbox sessions")
    sessions.add_argument("--all", action="store_true", help="include ended sessions")
    sessions.add_argument("--json", action="store_true")
    ssub = sessions.add_subparsers(dest="sessions_cmd")
    stop = ssub.add_parser("stop", help="stop a session and free its sandbox")
    stop.add_argument("session_id")
    ssub.add_parser("sweep", help="expire idle sessions, remove orphaned containers")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "image":
            return cmd_image(args)
        if args.command == "serve":
            return cmd_serve(args)
        return asyncio.run(COMMANDS[args.command](args))
    except InterpreterError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ENGINE
    except OSError as exc:  # a local file the user named
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
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
        target.write_bytes(await manager.files.content(fid))
        saved.append((kind, target, fid))
    return saved


def print_human(exe: Execution, saved: list[tuple[str, Path, str]]) -> None:
    if exe.notice:
        print(f"note: {exe.notice}", file=sys.stderr)
    logs = exe.logs
    if logs:
        print(logs, end="" if logs.endswith("\n") else "\n")
    for kind, path, fid in saved:
        print(f"{kind}: {path} ({fid})")
    if (
        exe.status is not ExecutionStatus.OK
        and exe.error
        and exe.error.ename in ("TimeoutError", "KernelDied")
    ):
        print(f"{exe.status}: {exe.error.evalue}", file=sys.stderr)


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
                print_table(("FILE", "PURPOSE", "BYTES", "THREAD", "NAME"), rows)
            return 0
        info = await manager.files.get(args.file_id)
        data = await manager.files.content(args.file_id)
    if args.output == "-":
        sys.stdout.buffer.write(data)
        return 0
    target = Path(args.output or info.filename.rsplit("/", 1)[-1])
    target.write_bytes(data)
    print(f"{target} ({len(data)} bytes)")
    return 0


# -- serve / mcp --------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from .config import Settings
    from .server import serve

    serve(Settings.from_env(), host=args.host, port=args.port)
    return 0


async def cmd_mcp(args: argparse.Namespace) -> int:
    from .config import Settings
    from .server.mcp import run_stdio

    await run_stdio(Settings.from_env())
    return 0


# -- image -------------------------------------------------------------------------


def cmd_image(args: argparse.Namespace) -> int:
    from . import image

    if args.image_cmd == "tag":
        print(image.image_tag())
        return 0
    image.build_image(
        method=args.method, force=args.force, progress=lambda line: print(line, flush=True)
    )
    return 0


# -- sessions ----------------------------------------------------------------------


async def cmd_sessions(args: argparse.Namespace) -> int:
    async with SessionManager.from_env(reaper=False) as manager:
        if args.sessions_cmd == "stop":
            await manager.stop(args.session_id)
            print(f"stopped {args.session_id}")
            return 0
        if args.sessions_cmd == "sweep":
            print(json.dumps(await manager.sweep()))
            return 0
        records = await manager.list_sessions(live_only=not args.all)
    if args.json:
        print(json.dumps([session_row(r) for r in records]))
        return 0
    rows = []
    for r in records:
        d = session_row(r)
        rows.append(
            (
                d["thread_id"],
                d["id"],
                d["state"],
                ago(d["age_s"]),
                ago(d["idle_s"]),
                str(d["executions"]),
            )
        )
    print_table(("THREAD", "SESSION", "STATE", "AGE", "IDLE", "EXECUTIONS"), rows)
    return 0


def session_row(r: Any) -> dict[str, Any]:
    now = time.time()
    live = SessionState(r.state).live
    return {
        "id": r.id,
        "thread_id": r.thread_id,
        "state": str(r.state),
        "age_s": round(now - r.created_at, 1),
        "idle_s": round(now - r.last_activity, 1) if live else None,
        "expires_in_s": round(r.expires_at() - now, 1) if live else None,
        "executions": r.executions,
        "end_reason": r.end_reason,
    }


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return (
        f"{s // 3600}h{s % 3600 // 60:02d}m"
        if s >= 3600
        else f"{s // 60}m{s % 60:02d}s"
        if s >= 60
        else f"{s}s"
    )


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


COMMANDS = {"run": cmd_run, "files": cmd_files, "sessions": cmd_sessions, "mcp": cmd_mcp}
