"""The HTTP/1.1 protocol ``lci serve`` runs: uvicorn's httptools one, with the request
head bounded before anything else looks at it.

httptools puts no limit on a request line or a header: it buffers a header value
until its end, so four connections sending 64 MiB headers without a key took the
service from 94 MB to 421 MB. Here the request target is cut at ``MAX_LINE`` (8 KiB,
414) and the headers at ``MAX_HEAD`` (64 KiB together, 431), counted as the bytes
arrive: a connection holds at most one read (256 KiB) past the limits before it is
answered and closed.
A head that is not complete ``HEAD_TIMEOUT`` seconds after it began is dropped too
(a client sending one byte at a time holds nothing for long).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["MAX_HEAD", "MAX_LINE", "BoundedHttpToolsProtocol"]

MAX_LINE = 8 * 1024  # the request target (path and query)
MAX_HEAD = 64 * 1024  # the headers together
HEAD_TIMEOUT = 30.0  # seconds from a request's first byte to the end of its head

_REASONS = {
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    408: b"Request Timeout",
}


class _Refused(Exception):
    """Raised in a parser callback to stop parsing. httptools wraps it in an
    HttpParserError, which uvicorn answers with ``send_400_response``: that is where
    the refusal it stands for is sent instead."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # reading a request head (from the connection's start)
        self._head_bytes = 0  # bytes received since the head began
        self._head_timer: asyncio.TimerHandle | None = None
        self._refusal: tuple[int, str] | None = None

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_too_slow)
        super().data_received(data)
        if self._in_head and self._head_bytes > MAX_HEAD + MAX_LINE:
            self._refuse(431, f"The request headers are over {MAX_HEAD} bytes.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_LINE:
            self._refusal = (414, f"The request target is over {MAX_LINE} bytes.")
            raise _Refused

    def on_headers_complete(self) -> None:
        size = sum(len(n) + len(v) + 4 for n, v in self.headers)  # "name: value\r\n"
        if size > MAX_HEAD:
            self._refusal = (431, f"The request headers are over {MAX_HEAD} bytes.")
            raise _Refused
        self._end_of_head()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0  # the next request's head may follow

    def send_400_response(self, msg: str) -> None:
        refusal, self._refusal = self._refusal, None
        if refusal is None:
            super().send_400_response(msg)
        else:
            self._refuse(*refusal)

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_of_head()
        super().connection_lost(exc)

    def _end_of_head(self) -> None:
        self._in_head, self._head_bytes = False, 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head:
            self._refuse(408, f"The request head took over {HEAD_TIMEOUT:g} s.")

    def _refuse(self, status: int, message: str) -> None:
        """Answer with ``status`` and close: nothing more is read from this connection."""
        self._end_of_head()
        if self.transport.is_closing():
            return
        body = message.encode()
        head = (
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n"
        ) % (status, _REASONS[status], len(body))
        self.transport.write(head + body)
        self.transport.close()
        self.logger.warning("refused a request from %s: %s", _peer(self.client), message)


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "?"
