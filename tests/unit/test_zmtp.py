"""The host's ZMTP client: interoperates with real libzmq sockets, and a hostile peer
(oversized or endless messages, frame floods, junk handshakes, swapped socket files)
cannot make it hold more than one message under the cap or connect anywhere else."""

from __future__ import annotations

import asyncio
import os
import socket
import tracemalloc
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from interpreter.zmtp import GREETING, Closed, Connection, Dropped, Limits, NotASocket

pytestmark = pytest.mark.anyio
LIMITS = Limits(max_bytes=1024 * 1024, max_frames=8, queue_bytes=2 * 1024 * 1024)


def _frame(body: bytes, more: bool = False, command: bool = False) -> bytes:
    flags = (1 if more else 0) | (4 if command else 0)
    if len(body) > 255:
        return bytes([flags | 2]) + len(body).to_bytes(8, "big") + body
    return bytes([flags, len(body)]) + body


READY = _frame(b"\x05READY\x0bSocket-Type\x00\x00\x00\x03PUB", command=True)


async def _peer(path: Path, script):  # type: ignore[no-untyped-def]
    """A unix server that greets like libzmq, then runs ``script(writer)``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(GREETING + READY)
        await writer.drain()
        try:
            await script(writer)
            await reader.read()  # keep the connection until the client closes it
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    return await asyncio.start_unix_server(handle, path=str(path))


async def test_interoperates_with_libzmq_pub_and_router(tmp_path: Path) -> None:
    ctx = zmq.asyncio.Context()
    pub, router = ctx.socket(zmq.PUB), ctx.socket(zmq.ROUTER)
    pub.bind(f"ipc://{tmp_path}/pub")
    router.bind(f"ipc://{tmp_path}/router")
    sub = await Connection.open(tmp_path, "pub", "SUB", uid=os.getuid(), limits=LIMITS)
    dealer = await Connection.open(tmp_path, "router", "DEALER", uid=None, limits=LIMITS)
    try:
        dealer.send([b"hello", b"x" * 1000])
        ident, *parts = await router.recv_multipart()
        assert parts == [b"hello", b"x" * 1000]
        await router.send_multipart([ident, b"reply", b"y" * 300])
        assert await dealer.recv(5) == [b"reply", b"y" * 300]
        for _ in range(50):  # the subscription takes effect asynchronously
            await pub.send_multipart([b"topic", b"data"])
            try:
                got = await sub.recv(0.1)
                break
            except TimeoutError:
                continue
        assert got == [b"topic", b"data"]
    finally:
        sub.close()
        dealer.close()
        pub.close(0)
        router.close(0)
        ctx.term()


async def test_an_oversized_message_is_skipped_and_the_stream_stays_in_step(
    tmp_path: Path,
) -> None:
    big = 50 * 1024 * 1024  # fifty times the cap, sent in chunks, never held

    async def script(w: asyncio.StreamWriter) -> None:
        w.write(_frame(b"head", more=True))
        w.write(bytes([2]) + big.to_bytes(8, "big"))
        chunk = b"\0" * (1 << 20)
        for _ in range(big // len(chunk)):
            w.write(chunk)
            await w.drain()
        w.write(_frame(b"after"))
        await w.drain()

    server = await _peer(tmp_path / "s", script)
    tracemalloc.start()
    try:
        conn = await Connection.open(tmp_path, "s", "SUB", uid=None, limits=LIMITS)
        first = await conn.recv(30)
        assert isinstance(first, Dropped) and first.size >= big and "bytes" in first.reason
        assert await conn.recv(10) == [b"after"]
        _, peak = tracemalloc.get_traced_memory()
        assert peak < 8 * 1024 * 1024, peak  # nothing like the 50 MiB that went past
        conn.close()
    finally:
        tracemalloc.stop()
        server.close()


async def test_a_flood_of_frames_is_one_dropped_message(tmp_path: Path) -> None:
    async def script(w: asyncio.StreamWriter) -> None:
        for _ in range(10_000):
            w.write(_frame(b"f" * 100, more=True))
        w.write(_frame(b"last"))
        w.write(_frame(b"next"))
        await w.drain()

    server = await _peer(tmp_path / "s", script)
    try:
        conn = await Connection.open(tmp_path, "s", "SUB", uid=None, limits=LIMITS)
        first = await conn.recv(10)
        assert isinstance(first, Dropped) and first.frames == 10_001 and "frames" in first.reason
        assert await conn.recv(10) == [b"next"]
        conn.close()
    finally:
        server.close()


async def test_waiting_messages_are_bounded_while_the_reader_is_slow(tmp_path: Path) -> None:
    async def script(w: asyncio.StreamWriter) -> None:
        for n in range(200):
            w.write(_frame(b"m%d" % n + b"z" * 500_000))
            await w.drain()  # blocks once the host stops reading: backpressure

    server = await _peer(tmp_path / "s", script)
    tracemalloc.start()
    try:
        conn = await Connection.open(tmp_path, "s", "SUB", uid=None, limits=LIMITS)
        await asyncio.sleep(1.0)  # the peer would send 100 MB if the host kept reading
        _, peak = tracemalloc.get_traced_memory()
        assert peak < 6 * 1024 * 1024, peak  # the 2 MiB queue, a frame in progress, copies
        for n in range(200):
            assert (await conn.recv(10))[0].startswith(b"m%d" % n)
        conn.close()
    finally:
        tracemalloc.stop()
        server.close()


@pytest.mark.parametrize(
    "junk",
    [
        b"GET / HTTP/1.1\r\n" + b"x" * 64,  # not ZMTP
        b"",  # a greeting, then a 1 MiB command
    ],
)
async def test_junk_handshakes_and_huge_commands_close_the_connection(
    tmp_path: Path, junk: bytes
) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(junk or GREETING + bytes([6]) + (1 << 20).to_bytes(8, "big") + b"c" * 100)
        await writer.drain()
        await reader.read()

    server = await asyncio.start_unix_server(handle, path=str(tmp_path / "s"))
    try:
        with pytest.raises((Closed, TimeoutError)):
            await Connection.open(tmp_path, "s", "SUB", uid=None, limits=LIMITS, timeout=2)
    finally:
        server.close()


async def test_a_symlinked_or_foreign_socket_is_never_connected(tmp_path: Path) -> None:
    canary = socket.socket(socket.AF_UNIX)
    canary.bind(str(tmp_path / "host.sock"))  # a host socket the sandbox would like us to reach
    canary.listen()
    canary.setblocking(False)
    sock_dir = tmp_path / "sock"
    sock_dir.mkdir()
    os.symlink(tmp_path / "host.sock", sock_dir / "kernel-2")
    with pytest.raises(NotASocket, match="symlink"):
        await Connection.open(sock_dir, "kernel-2", "SUB", uid=None, limits=LIMITS)
    (sock_dir / "kernel-1").write_text("not a socket")
    with pytest.raises(NotASocket):
        await Connection.open(sock_dir, "kernel-1", "SUB", uid=None, limits=LIMITS)
    os.link(tmp_path / "host.sock", sock_dir / "kernel-3")  # a socket, but not the kernel's
    os.chown(tmp_path / "host.sock", 4242, 4242)
    with pytest.raises(NotASocket):
        await Connection.open(sock_dir, "kernel-3", "SUB", uid=2_000_000_001, limits=LIMITS)
    with pytest.raises(BlockingIOError):
        canary.accept()  # nothing ever connected to it
    canary.close()
