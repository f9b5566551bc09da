"""The inspector on the wire, under ``/v1/lci/sessions``: a thin face over
``app.state.inspector`` (what ``lci sessions/logs/attach/export --url`` talk to).

A tenant sees only its own sessions; another tenant's id is a 404, like an unknown one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import nbformat
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from ..inspection.interface import SessionView
from ..inspection.local import LocalInspector
from ..session import Session
from .common import Deps, deps
from .execution import EVENT, ExecutionCreate, check_code, execute, stream
from .openapi import NEW_WORK, answers, sse
from .problems import ApiError
from .schemas import HistoryList, LciExecution, LciSession, LciSessionAction, SessionList
from .utf8 import JSONResponse, scrub

__all__ = ["router"]

router = APIRouter(prefix="/v1/lci/sessions", tags=["lci inspector"])
RECENT = 10  # executions shown with a session
LAST_MAX = 2**53  # a count or a sequence number: any larger is refused (SQLite integers are 64-bit)
EXECUTION_EVENTS = sse(
    [*EVENT.values(), "execution", "error"],
    "stdout, stderr, result and traceback chunks as they come ({'text'}), then the"
    " execution (an LciExecution), or an error ({'error'}) if the engine failed",
)
FOLLOW_EVENTS = sse(
    ["started", "output", "finished", "ended"],
    "started and finished ({'execution'}), output ({'execution_id', 'text'}) as code"
    " runs, ended ({'session'}) last",
)
KEEPALIVE = 1.0  # seconds between SSE comments while nothing happens


def _inspector(request: Request) -> LocalInspector:
    inspector: LocalInspector = request.app.state.inspector
    return inspector


def _entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A history entry without the server's own paths."""
    return {k: v for k, v in entry.items() if k != "live_log"}


def _event(event: dict[str, Any]) -> dict[str, Any]:
    out = dict(event)
    if isinstance(out.get("session"), SessionView):
        out["session"] = out["session"].to_dict()
    if isinstance(out.get("execution"), dict):
        out["execution"] = _entry(out["execution"])
    return out


async def _live(request: Request, d: Deps, session_id: str) -> SessionView:
    view = await _inspector(request).session(session_id, d.tenant)
    if view.state in ("expired", "dead"):
        raise ApiError(
            409,
            f"Session {session_id} has ended ({view.state}: {view.end_reason}).",
            "session_ended",
            "session_id",
        )
    return view


@router.get(
    "",
    summary="List sandbox sessions (all=true: ended ones too)",
    response_model=None,
    responses=answers(SessionList),
)
async def list_sessions(request: Request, all: bool = False, d: Deps = deps) -> dict[str, Any]:
    views = await _inspector(request).sessions(d.tenant, all=all)
    return {"object": "list", "data": [v.to_dict() for v in views]}


@router.get(
    "/{session_id}",
    summary="A session: state, usage, limits, its last executions",
    response_model=None,
    responses=answers(LciSession, 404),
)
async def get_session(session_id: str, request: Request, d: Deps = deps) -> dict[str, Any]:
    insp = _inspector(request)
    view = await insp.session(session_id, d.tenant)
    recent = await insp.executions(session_id, d.tenant, last=RECENT)
    return {
        "object": "lci.session",
        **view.to_dict(),
        "last_executions": [_entry(e) for e in recent],
    }


@router.get(
    "/{session_id}/executions",
    summary="The session's executions, oldest first",
    response_model=None,
    responses=answers(HistoryList, 404),
)
async def list_executions(
    session_id: str,
    request: Request,
    last: int | None = Query(None, ge=1, le=LAST_MAX),
    d: Deps = deps,
) -> dict[str, Any]:
    entries = await _inspector(request).executions(session_id, d.tenant, last=last)
    return {"object": "list", "data": [_entry(e) for e in entries]}


@router.get(
    "/{session_id}/events",
    summary="Server-Sent Events as executions happen: started, output, finished, ended",
    response_class=StreamingResponse,
    responses=answers(None, 404, media={"text/event-stream": {"schema": FOLLOW_EVENTS}}),
)
async def follow(
    session_id: str, request: Request, last: int = Query(0, ge=0, le=LAST_MAX), d: Deps = deps
) -> StreamingResponse:
    insp = _inspector(request)
    await insp.session(session_id, d.tenant)  # a 404 before the stream starts
    events = insp.follow(session_id, d.tenant, last=last)
    return StreamingResponse(
        _sse(request, events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(request: Request, events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """The follow events as SSE, with a comment now and then so that a client that went
    away is noticed (and the follow stopped) even while nothing happens."""
    it = aiter(events)
    pending: asyncio.Task[dict[str, Any]] | None = None
    try:
        while True:
            pending = pending or asyncio.ensure_future(anext(it))
            done, _ = await asyncio.wait([pending], timeout=KEEPALIVE)
            if not done:
                if await request.is_disconnected():
                    return
                yield b": keepalive\n\n"
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            data = json.dumps(_event(event))
            yield f"event: {event['event']}\ndata: {data}\n\n".encode()
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            await aclose()


@router.post(
    "/{session_id}/executions",
    summary="Run code in the session by hand (stream=true for SSE)",
    response_model=None,
    responses=answers(LciExecution, 404, 413, *NEW_WORK, stream=EXECUTION_EVENTS),
)
async def create_execution(
    session_id: str, body: ExecutionCreate, request: Request, d: Deps = deps
) -> dict[str, Any] | Response:
    check_code(body.code, d.settings.limits.max_code_bytes)
    await _live(request, d, session_id)
    session: Session = await d.manager.get(session_id)
    if body.stream:
        return stream(
            session,
            body.code,
            body.timeout,
            lambda exe: {"object": "lci.execution", **exe.to_dict()},
        )
    exe = await execute(request, session, body.code, body.timeout)
    return JSONResponse({"object": "lci.execution", **exe.to_dict()})


@router.post(
    "/{session_id}/interrupt",
    summary="Interrupt the code running in the session",
    response_model=None,
    responses=answers(LciSessionAction, 404, 409, 503),
)
async def interrupt(session_id: str, request: Request, d: Deps = deps) -> dict[str, Any]:
    await _live(request, d, session_id)
    await _inspector(request).interrupt(session_id, d.tenant)
    return {"id": session_id, "object": "lci.session.interrupted"}


@router.post(
    "/{session_id}/restart",
    summary="A fresh kernel: variables lost, files kept",
    response_model=None,
    responses=answers(LciSessionAction, 404, 409, 503),
)
async def restart(session_id: str, request: Request, d: Deps = deps) -> dict[str, Any]:
    await _live(request, d, session_id)
    await _inspector(request).restart(session_id, d.tenant)
    return {"id": session_id, "object": "lci.session.restarted"}


@router.post(
    "/{session_id}/stop",
    summary="Stop the session and free its sandbox",
    response_model=None,
    responses=answers(LciSessionAction, 404, 409, 503),
)
async def stop(session_id: str, request: Request, d: Deps = deps) -> dict[str, Any]:
    await _live(request, d, session_id)
    await _inspector(request).stop(session_id, d.tenant)
    return {"id": session_id, "object": "lci.session.stopped"}


@router.get(
    "/{session_id}/notebook",
    summary="The session's executions as a Jupyter notebook (.ipynb, images embedded)",
    response_class=Response,
    responses=answers(
        None, 404, media={"application/x-ipynb+json": {"schema": {"type": "object"}}}
    ),
)
async def notebook(session_id: str, request: Request, d: Deps = deps) -> Response:
    nb = await _inspector(request).notebook(session_id, d.tenant)
    return Response(
        scrub(nbformat.writes(nb)),
        media_type="application/x-ipynb+json",
        headers={"Content-Disposition": f'attachment; filename="{session_id}.ipynb"'},
    )
