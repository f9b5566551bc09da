"""The bounded HTTP protocol, fed bytes by hand (uvicorn's own tests do the same)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from interpreter.server import protocol
from interpreter.server.protocol import MAX_HEAD, MAX_LINE, BoundedHttpToolsProtocol


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written, self.closed = b"", False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


async def _app(scope: object, receive: object, send) -> None:  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def conn() -> Iterator[tuple[BoundedHttpToolsProtocol, Transport]]:
    loop = asyncio.new_event_loop()
    config = Config(app=_app, http=BoundedHttpToolsProtocol, lifespan="off")
    config.load()
    proto = BoundedHttpToolsProtocol(
        config=config, server_state=ServerState(), app_state={}, _loop=loop
    )
    transport = Transport()
    proto.connection_made(transport)
    yield proto, transport
    loop.close()


def test_a_header_that_never_ends_is_cut_at_the_limit(conn) -> None:  # type: ignore[no-untyped-def]
    proto, transport = conn
    proto.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
    sent = 0
    while not transport.closed:
        proto.data_received(b"a" * 65536)
        sent += 65536
    assert sent <= MAX_HEAD + MAX_LINE + 65536
    assert transport.written.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


def test_a_complete_head_over_the_limit_in_one_read(conn) -> None:  # type: ignore[no-untyped-def]
    proto, transport = conn
    headers = b"".join(b"X-%d: %s\r\n" % (n, b"v" * 1000) for n in range(70))
    proto.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert transport.written.startswith(b"HTTP/1.1 431 ") and transport.closed


def test_a_long_request_target_is_414(conn) -> None:  # type: ignore[no-untyped-def]
    proto, transport = conn
    proto.data_received(b"GET /" + b"a" * (MAX_LINE + 1) + b" HTTP/1.1\r\n")
    assert transport.written.startswith(b"HTTP/1.1 414 URI Too Long\r\n") and transport.closed


def test_heads_within_the_limits_are_served(conn) -> None:  # type: ignore[no-untyped-def]
    proto, transport = conn
    big = b"X-Ok: " + b"v" * (MAX_HEAD - 1000) + b"\r\n"
    proto.data_received(
        b"GET /" + b"a" * (MAX_LINE - 10) + b" HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n"
    )
    proto.loop.run_until_complete(asyncio.sleep(0.01))  # the app answers
    assert transport.written.startswith(b"HTTP/1.1 204 ") and not transport.closed
    proto.data_received(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")  # keep-alive: counted anew
    proto.loop.run_until_complete(asyncio.sleep(0.01))
    assert transport.written.count(b"HTTP/1.1 204 ") == 2 and proto._head_bytes == 0


def test_a_slow_head_is_dropped(conn, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    proto, transport = conn
    monkeypatch.setattr(protocol, "HEAD_TIMEOUT", 0.05)
    proto.data_received(b"GET / HTTP/1.1\r\nHost")
    proto.loop.run_until_complete(asyncio.sleep(0.1))
    assert transport.written.startswith(b"HTTP/1.1 408 ") and transport.closed
