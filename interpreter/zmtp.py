"""ZMTP 3.0 over unix sockets: the host's own, bounded end of a kernel's sockets.

The kernel (ipykernel, in the sandbox) binds ZeroMQ sockets on ``transport: ipc``.
The host connects with this small implementation of the wire protocol (ZMTP 3.0,
NULL mechanism: https://rfc.zeromq.org/spec/23/) rather than libzmq, because libzmq
buffers whole multipart messages, of any number of frames, before the reader sees a
byte, and queues up to its high-water mark of them: a hostile kernel could make the
host hold gigabytes. Here every frame header is read before its body:

* a message over ``max_bytes`` (all frames together) or ``max_frames`` is skipped,
  its bytes read and thrown away as they arrive, and reported as ``Dropped``;
* finished messages wait for the reader up to ``queue_bytes`` together (a burst of small
  ones, as libzmq's queue would take them, so the kernel does not drop any); past that
  the socket is not read until the reader catches up (the kernel's buffers take the
  backpressure);
* commands (the handshake) are size-capped; anything off-protocol closes the
  connection.

Connections are opened through an ``O_PATH`` descriptor of the socket file, checked
to be a socket owned by the expected uid and reached without following a symlink,
and connected via ``/proc/self/fd/N``: a sandbox that swaps its socket for a symlink
to a host socket cannot make the host connect anywhere else. Every (re)connect
checks again.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from collections import deque
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Closed", "Connection", "Dropped", "Limits", "NotASocket", "open_checked"]

GREETING = (
    b"\xff" + b"\x00" * 8 + b"\x7f"  # signature
    + b"\x03\x00"  # version 3.0
    + b"NULL".ljust(20, b"\x00")  # mechanism
    + b"\x00"  # as-server: no
    + b"\x00" * 31
)  # fmt: skip
MORE, LONG, COMMAND = 0x01, 0x02, 0x04
MAX_COMMAND = 4096  # the handshake's READY is a few dozen bytes
HANDSHAKE_S = 5.0


class Closed(ConnectionError):
    """The peer closed the connection (or broke the protocol)."""


class NotASocket(OSError):
    """The path is not a socket we may connect to (a symlink, a file, another owner)."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 16 * 1024**2  # one message, every frame together
    max_frames: int = 64
    queue_bytes: int = 32 * 1024**2  # finished messages waiting for the reader, together
    queue_messages: int = 8192


@dataclass(frozen=True)
class Dropped:
    """A message that was skipped for being over the limits."""

    size: int  # bytes of it that were seen (at least the limit)
    frames: int
    reason: str


def open_checked(directory: Path, name: str, uid: int | None) -> int:
    """An O_PATH fd of ``directory/name``: a socket, owned by ``uid``, no symlink followed."""
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    finally:
        os.close(dfd)
    st = os.fstat(fd)
    if not stat.S_ISSOCK(st.st_mode) or (uid is not None and st.st_uid != uid):
        os.close(fd)
        what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a socket of the sandbox"
        raise NotASocket(f"{directory / name} is {what}")
    return fd


class _Protocol(asyncio.Protocol):
    """Parses frames as bytes arrive; holds at most one finished message."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.greeted = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ready.add_done_callback(_retrieved)
        self.parts: list[bytes] = []
        self.size = 0  # bytes of the message being read
        self.dropping: str | None = None  # why the current message is being skipped
        self.skip = 0  # bytes of the current frame still to throw away
        self.more = False  # the skipped frame is not the message's last
        self.messages: deque[list[bytes] | Dropped] = deque()
        self.queued = 0  # bytes of the waiting messages
        self.waiter: asyncio.Future[None] | None = None
        self.closed: Exception | None = None

    # -- asyncio callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        try:
            self._parse()
        except Closed as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(Closed(f"the kernel closed the connection{f' ({exc})' if exc else ''}"))

    # -- parsing --------------------------------------------------------------------

    def _parse(self) -> None:
        """Consume buffered bytes until a message is complete (then stop: one is held)."""
        if not self.greeted:
            if len(self.buf) < len(GREETING):
                return
            peer = bytes(self.buf[: len(GREETING)])
            del self.buf[: len(GREETING)]
            if peer[0] != 0xFF or peer[9] != 0x7F or peer[10] < 3 or peer[12:16] != b"NULL":
                raise Closed("the kernel's socket does not speak ZMTP 3 (NULL)")
            self.greeted = True
        pos = 0
        while not self._full():
            if self.skip:
                n = min(self.skip, len(self.buf) - pos)
                pos, self.skip = pos + n, self.skip - n
                if self.skip:
                    break
                if not self.more:
                    self._deliver(Dropped(self.size, len(self.parts), self.dropping or ""))
                continue
            if len(self.buf) - pos < 2:
                break
            flags = self.buf[pos]
            head = 9 if flags & LONG else 2
            if len(self.buf) - pos < head:
                break
            size = int.from_bytes(self.buf[pos + 1 : pos + head], "big")
            if flags & COMMAND:
                if size > MAX_COMMAND:
                    raise Closed("the kernel sent an oversized ZMTP command")
                if len(self.buf) - pos - head < size:
                    break
                self._command(bytes(self.buf[pos + head : pos + head + size]))
                pos += head + size
                continue
            if not self._accept(size, bool(flags & MORE)):
                pos += head  # the body is skipped as it arrives
                continue
            if len(self.buf) - pos - head < size:
                break  # wait for the whole frame: it fits under the limit
            self.parts.append(bytes(self.buf[pos + head : pos + head + size]))
            pos += head + size
            self.size += size
            if not flags & MORE:
                self._deliver(self.parts)
        del self.buf[:pos]

    def resume(self) -> None:
        """The held message was taken: parse what is buffered, then read on."""
        try:
            self._parse()
        except Closed as exc:
            self._fail(exc)
            return
        if not self._full() and self.transport is not None and self.closed is None:
            self.transport.resume_reading()

    def _accept(self, size: int, more: bool) -> bool:
        """Account for a frame about to be read; False when it is to be skipped."""
        if self.dropping is None:
            if self.size + size > self.limits.max_bytes:
                self.dropping = f"over {self.limits.max_bytes} bytes"
            elif len(self.parts) + 1 > self.limits.max_frames:
                self.dropping = f"over {self.limits.max_frames} frames"
            if self.dropping is None:
                return True
            self.parts = [b""] * len(self.parts)  # free what was kept, keep the count
        self.parts.append(b"")
        self.size += size
        self.skip, self.more = size, more
        if size == 0 and not more:
            self._deliver(Dropped(self.size, len(self.parts), self.dropping))
        return False

    def _command(self, body: bytes) -> None:
        name_len = body[0] if body else 0
        name = body[1 : 1 + name_len]
        if name == b"READY":
            if not self.ready.done():
                self.ready.set_result(None)
        elif name == b"ERROR":
            raise Closed("the kernel's socket refused the connection")
        # PING, SUBSCRIBE and others: nothing to do for a client of these sockets

    def _full(self) -> bool:
        limits = self.limits
        return self.queued >= limits.queue_bytes or len(self.messages) >= limits.queue_messages

    def _deliver(self, message: list[bytes] | Dropped) -> None:
        self.messages.append(message)
        self.queued += _size(message)
        self.parts, self.size, self.dropping = [], 0, None
        if self._full() and self.transport is not None:
            self.transport.pause_reading()  # resumed when the reader catches up
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if self.closed is None:
            self.closed = exc
        if not self.ready.done():
            self.ready.set_exception(exc)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
        if self.transport is not None:
            self.transport.abort()


class Connection:
    """One connected ZMQ peer socket (``DEALER`` or ``SUB``) speaking to the kernel."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport, self._protocol = transport, protocol

    @classmethod
    async def open(
        cls,
        directory: Path,
        name: str,
        socket_type: str,
        *,
        uid: int | None,
        limits: Limits,
        timeout: float = HANDSHAKE_S,
    ) -> Connection:
        """Connect to the socket ``directory/name`` (checked, see ``open_checked``)."""
        fd = open_checked(directory, name, uid)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.sock_connect(sock, f"/proc/self/fd/{fd}"), timeout)
        except BaseException:
            sock.close()
            raise
        finally:
            os.close(fd)
        transport, protocol = await loop.create_unix_connection(
            lambda: _Protocol(limits), sock=sock
        )
        conn = cls(transport, protocol)
        try:
            transport.write(GREETING)
            transport.write(_command(b"READY", {b"Socket-Type": socket_type.encode()}))
            await asyncio.wait_for(asyncio.shield(protocol.ready), timeout)
            if socket_type == "SUB":  # ZMTP 3.0: a subscription is a message, \x01 + topic;
                transport.write(_frames([b"\x01"]))  # sent once the handshake is done
        except BaseException:
            conn.close()
            raise
        return conn

    @property
    def closed(self) -> bool:
        return self._protocol.closed is not None

    def send(self, frames: list[bytes]) -> None:
        if self._protocol.closed is not None:
            raise Closed(str(self._protocol.closed))
        self._transport.write(_frames(frames))

    async def recv(self, timeout: float | None = None) -> list[bytes] | Dropped:
        """The next message; raises TimeoutError, or Closed once the peer is gone."""
        p = self._protocol
        if not p.messages and p.closed is None:
            p.waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(p.waiter, timeout)
            finally:
                p.waiter = None
        if p.messages:
            message = p.messages.popleft()
            was_full = p._full()
            p.queued -= _size(message)
            if was_full and p.closed is None:
                p.resume()
            return message
        raise Closed(str(p.closed))

    def close(self) -> None:
        """Drop the connection now (no linger: nothing is waited for)."""
        if not self._transport.is_closing():
            self._transport.abort()
        self._protocol._fail(Closed("closed by the host"))


def _size(message: list[bytes] | Dropped) -> int:
    return 0 if isinstance(message, Dropped) else sum(len(part) for part in message)


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # a failed handshake nobody waits for is not an error to log


def _frames(parts: list[bytes]) -> bytes:
    out = bytearray()
    for i, part in enumerate(parts):
        more = MORE if i < len(parts) - 1 else 0
        if len(part) > 255:
            out += bytes([more | LONG]) + len(part).to_bytes(8, "big")
        else:
            out += bytes([more, len(part)])
        out += part
    return bytes(out)


def _command(name: bytes, properties: dict[bytes, bytes]) -> bytes:
    body = bytes([len(name)]) + name
    for key, value in properties.items():
        body += bytes([len(key)]) + key + len(value).to_bytes(4, "big") + value
    return bytes([COMMAND, len(body)]) + body
