"""``lci sessions``: list sessions and manage them (show, interrupt, restart, stop,
and on the local store sweep and purge); and what every session command shares.

Every session command (``sessions`` here, ``logs`` and ``export`` in ``cli.logs``,
``attach`` in ``cli.attach``) works on the local store (``LCI_HOME``) or, with
``--url``/``LCI_URL`` (and ``--api-key``/``LCI_API_KEY``), against a running
``lci serve``: both sides have the ``inspection.Inspector`` shape, so each command is
written once. ``service_options`` is their ``--url``/``--api-key``, ``open_inspector``
the side they name, ``resolve`` a session by its id or a prefix of it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..config import Settings
from ..errors import BackendError, NoSuchSession, SessionEnded
from ..inspection.interface import Inspector, SessionView
from ..inspection.local import LocalInspector
from ..inspection.remote import RemoteInspector
from ..manager import SessionManager
from . import display

__all__ = ["COMMANDS", "add_parser", "service_options"]

RECENT = 10  # executions `sessions show` lists, and `logs -f` replays by default


# -- arguments ----------------------------------------------------------------------


def service_options() -> argparse.ArgumentParser:
    """The parent parser of every session command: ``--url`` and ``--api-key``."""
    where = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: given before or after the sub-command, neither default hides the other
    where.add_argument(
        "--url", default=argparse.SUPPRESS, help="a running lci service (env LCI_URL)"
    )
    where.add_argument("--api-key", default=argparse.SUPPRESS, help="its API key (env LCI_API_KEY)")
    return where


def add_parser(sub: Any, where: argparse.ArgumentParser) -> None:
    """Add ``sessions`` and its actions; ``where`` is ``service_options()``."""
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


def service(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> str | None:
    url: str | None = getattr(args, "url", None) or environ.get("LCI_URL")
    return url or None


@contextlib.asynccontextmanager
async def open_inspector(
    args: argparse.Namespace, environ: Mapping[str, str] = os.environ
) -> AsyncIterator[Inspector]:
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


async def resolve(insp: Inspector, session_id: str) -> SessionView:
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
        took = display.took(e) if e["status"] != "running" else "-"
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


COMMANDS = {"sessions": cmd_sessions}
