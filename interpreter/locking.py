"""Cross-process exclusion with ``flock``, awaited without blocking the event loop."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

__all__ = ["ThreadLocks", "file_lock", "take_turn"]


@asynccontextmanager
async def file_lock(path: Path, poll: float = 0.01) -> AsyncIterator[int]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block.

    Each call opens its own descriptor, so two holders in one process exclude each
    other too. Yields the locked descriptor. Raises FileNotFoundError when the directory
    of ``path`` is gone."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(poll)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def take_turn(fd: int) -> tuple[int, int]:
    """Count one more holder of the lock on ``fd`` (its file holds the count): return
    (the count the last holder left, this holder's). A holder that finds the count it
    left itself knows nobody else held the lock meanwhile."""
    raw = os.pread(fd, 8, 0)
    last = int.from_bytes(raw, "little") if len(raw) == 8 else 0
    mine = (last + 1) % (1 << 63)
    os.pwrite(fd, mine.to_bytes(8, "little"), 0)
    return last, mine


class ThreadLocks:
    """One get-or-create per thread at a time, in this process and across processes
    (a lock file per thread in ``directory``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._local: dict[tuple[str, str], asyncio.Lock] = {}

    @asynccontextmanager
    async def hold(self, tenant: str, thread_id: str) -> AsyncIterator[None]:
        lock = self._local.setdefault((tenant, thread_id), asyncio.Lock())
        async with lock:
            key = hashlib.sha256(f"{tenant}\0{thread_id}".encode()).hexdigest()[:24]
            self.directory.mkdir(mode=0o700, exist_ok=True)
            async with file_lock(self.directory / key, poll=0.02):
                yield
