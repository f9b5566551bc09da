"""Running code for a request: the caller's disconnect interrupts it, output can stream.

``execute`` watches the connection while the code runs; when the client goes away
the execution is cancelled, which makes the session interrupt the kernel (see
``Session.execute``). ``stream`` turns an execution into Server-Sent Events: output
chunks as they are printed, then the final result.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import StreamingResponse

from ..errors import InterpreterError
from ..results import Execution
from ..session import Session
from .problems import ApiError, error_event

__all__ = ["EVENT", "ClientGone", "ExecutionCreate", "check_code", "execute", "stream"]

EVENT = {"stdout": "stdout", "stderr": "stderr", "result": "result", "error": "traceback"}


class ExecutionCreate(BaseModel):
    """The body of an execution request (the lci and the containers faces)."""

    model_config = ConfigDict(strict=True)
    code: str
    timeout: float | None = Field(None, gt=0, le=86400)
    stream: bool = False


class ClientGone(Exception):
    """The client disconnected before the execution finished."""


def check_code(code: str, limit: int, param: str = "code") -> None:
    size = len(code.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise ApiError(
            413,
            f"The code is {size} bytes, over the limit of {limit} bytes (LCI_MAX_CODE_BYTES).",
            "code_too_large",
            param,
        )


async def execute(
    request: Request, session: Session, code: str, timeout: float | None
) -> Execution:
    """Run ``code``; if the client disconnects first, cancel it (which interrupts the
    kernel) and raise ClientGone."""
    host = asyncio.current_task()
    assert host is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone = True
        host.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        exe = await session.execute(code, timeout)
    except asyncio.CancelledError:
        if not gone:
            raise
        host.uncancel()
        raise ClientGone from None
    finally:
        watcher.cancel()
    return exe


STREAM_BUFFER = 4 * 1024**2  # characters of output waiting for a slow SSE client


class _Buffer:
    """Output waiting for the client: bounded; what does not fit is counted, then said."""

    def __init__(self) -> None:
        self.items: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        self.size = self.missed = 0

    def put(self, kind: str, text: str) -> None:
        if self.size + len(text) > STREAM_BUFFER:
            self.missed += len(text)
            return
        self._note()
        self.size += len(text)
        self.items.put_nowait((kind, text))

    def close(self) -> None:
        self._note()
        self.items.put_nowait(None)

    def _note(self) -> None:
        if self.missed:
            note = f"[lci: {self.missed} characters of output were not streamed (a slow"
            note += " reader); the execution's log file has them]\n"
            self.items.put_nowait(("stderr", note))
            self.missed = 0

    async def get(self) -> tuple[str, str] | None:
        item = await self.items.get()
        if item is not None:
            self.size -= len(item[1])
        return item


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def stream(
    session: Session,
    code: str,
    timeout: float | None,
    render: Callable[[Execution], dict[str, Any]],
) -> StreamingResponse:
    """SSE of one execution. A quota refusal comes before the stream starts (a 429), and
    a client that reads slower than the code prints gets a marker for what it missed
    (the log file keeps it): at most STREAM_BUFFER characters wait for it."""
    if session.quotas is not None and session.tenant:
        session.quotas.check_execution(session.tenant, count=False)
    buffer = _Buffer()

    async def events() -> AsyncIterator[bytes]:
        task = asyncio.ensure_future(session.execute(code, timeout, on_output=buffer.put))
        task.add_done_callback(lambda _: buffer.close())
        try:
            while (item := await buffer.get()) is not None:
                kind, text = item
                yield _sse(EVENT.get(kind, kind), {"text": text})
            try:
                exe = task.result()
            except InterpreterError as exc:
                yield _sse("error", error_event(exc))
                return
            yield _sse("execution", render(exe))
        finally:
            if not task.done():  # the client went away: cancelling interrupts the code
                task.cancel()
                with anyio.CancelScope(shield=True):
                    await asyncio.wait([task])

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
