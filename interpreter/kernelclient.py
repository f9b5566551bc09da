"""The host's client of one kernel: shell, iopub and control over bounded ZMTP.

jupyter_client's ``Session`` builds and signs what the host sends. What the kernel
sends is hostile input: it is read by ``zmtp`` (bounded), its signature checked, and
parsed by ``messaging.parse_message`` (bounded JSON, checked types) before anything
looks at it. Nothing here reconnects on its own: the session decides when to.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from jupyter_client.session import Session as JupyterSession

from .messaging import parse_message
from .zmtp import Closed, Connection, Dropped, Limits

__all__ = ["Closed", "Dropped", "KernelClient"]

Message = dict[str, Any]


class KernelClient:
    """Connects to the sockets named by a kernel's connection info in ``sock_dir``."""

    def __init__(
        self, sock_dir: Path, connection: dict[str, Any], *, uid: int | None, limits: Limits
    ) -> None:
        self.sock_dir, self.uid, self.limits = sock_dir, uid, limits
        base = Path(str(connection["ip"])).name  # "kernel": ipc sockets are <ip>-<port>
        self._names = {
            ch: f"{base}-{connection[f'{ch}_port']}" for ch in ("shell", "iopub", "control")
        }
        self.session = JupyterSession(
            key=str(connection["key"]).encode(),
            signature_scheme=str(connection.get("signature_scheme", "hmac-sha256")),
        )
        self._shell: Connection | None = None
        self._iopub: Connection | None = None
        self._control: Connection | None = None

    async def connect(self, timeout: float) -> None:
        """Open all three connections (raises OSError/NotASocket, Closed, TimeoutError)."""
        self.close()
        try:
            self._iopub = await self._open("iopub", "SUB", timeout)
            self._shell = await self._open("shell", "DEALER", timeout)
            self._control = await self._open("control", "DEALER", timeout)
        except BaseException:
            self.close()
            raise

    async def _open(self, channel: str, kind: str, timeout: float) -> Connection:
        return await Connection.open(
            self.sock_dir, self._names[channel], kind, uid=self.uid, limits=self.limits,
            timeout=timeout,
        )  # fmt: skip

    @property
    def connected(self) -> bool:
        conns = (self._shell, self._iopub, self._control)
        return all(c is not None and not c.closed for c in conns)

    def close(self) -> None:
        for conn in (self._shell, self._iopub, self._control):
            if conn is not None:
                conn.close()
        self._shell = self._iopub = self._control = None

    # -- requests ---------------------------------------------------------------------

    def execute(self, code: str) -> str:
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": False,
        }
        return self._send(self._shell, "execute_request", content)

    def kernel_info(self) -> str:
        return self._send(self._shell, "kernel_info_request", {})

    def interrupt(self) -> str:
        return self._send(self._control, "interrupt_request", {})

    def _send(self, conn: Connection | None, msg_type: str, content: dict[str, Any]) -> str:
        if conn is None:
            raise Closed("not connected to the kernel")
        msg = self.session.msg(msg_type, content)
        conn.send(self.session.serialize(msg))
        return str(msg["header"]["msg_id"])

    # -- replies and output -----------------------------------------------------------

    async def iopub(self, timeout: float | None) -> Message | Dropped:
        """The next iopub message; TimeoutError when none came, Closed when disconnected."""
        return await self._recv(self._iopub, timeout)

    async def shell(self, timeout: float | None) -> Message | Dropped:
        return await self._recv(self._shell, timeout)

    async def _recv(self, conn: Connection | None, timeout: float | None) -> Message | Dropped:
        if conn is None:
            raise Closed("not connected to the kernel")
        loop = asyncio.get_running_loop()
        end = None if timeout is None else loop.time() + timeout
        while True:
            left = None if end is None else max(end - loop.time(), 0)
            frames = await conn.recv(left)
            if isinstance(frames, Dropped):
                return frames
            msg = parse_message(frames, self.session.sign)
            if msg is not None:
                return msg
            # unsigned, forged or malformed: not a message from this kernel; ignore it
