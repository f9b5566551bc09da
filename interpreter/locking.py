"""Cross-process exclusion with ``flock``, awaited without blocking the event loop."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

__all__ = ["file_lock"]


@asynccontextmanager
async def file_lock(path: Path, poll: float = 0.01) -> AsyncIterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block.

    Each call opens its own descriptor, so two holders in one process exclude each
    other too. Raises FileNotFoundError when the directory of ``path`` is gone."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(poll)
        yield
    finally:
        os.close(fd)  # closing releases the lock
