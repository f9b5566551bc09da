"""``lci logs|export``: a session's executions, as text (``logs -f`` follows them
live) or as a Jupyter notebook."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nbformat

from . import display
from .sessions import RECENT, open_inspector, public, resolve

__all__ = ["COMMANDS", "add_export_parser", "add_parser"]

# -- logs ---------------------------------------------------------------------------


def add_parser(sub: Any, where: argparse.ArgumentParser) -> None:
    """Add ``logs`` to the ``lci`` parser; ``where`` holds ``--url``/``--api-key``."""
    logs = sub.add_parser("logs", parents=[where], help="a session's executions as text")
    logs.add_argument("session_id")
    logs.add_argument("-f", "--follow", action="store_true", help="follow live executions")
    logs.add_argument("-n", type=int, metavar="N", help="only the last N executions")


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


def add_export_parser(sub: Any, where: argparse.ArgumentParser) -> None:
    """Add ``export`` to the ``lci`` parser."""
    export = sub.add_parser("export", parents=[where], help="a session as a Jupyter notebook")
    export.add_argument("session_id")
    export.add_argument("-o", "--output", help="the .ipynb to write (default: SESSION.ipynb)")


async def cmd_export(args: argparse.Namespace) -> int:
    async with open_inspector(args) as insp:
        view = await resolve(insp, args.session_id)
        nb = await insp.notebook(view.id)
    target = Path(args.output or f"{view.id}.ipynb")
    nbformat.write(nb, str(target))
    cells = sum(1 for c in nb.cells if c.cell_type == "code")
    print(f"{target} ({cells} executions)")
    return 0


COMMANDS = {"logs": cmd_logs, "export": cmd_export}
