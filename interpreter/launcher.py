"""The host's reading of the launcher's state file (``kernels/lci_launcher.py``).

Only the launcher's uid can write ``state.json``, but it is still a file inside the
sandbox, so it is read as hostile input: no symlink followed, only a regular file,
at most ``MAX_BYTES``, JSON of bounded depth, every field type-checked. Anything off
reads as "no state". What it says is a hint: the session confirms a kernel's death
from what the host sees itself (the connection closing, the engine, the cgroup).
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Exit", "LauncherState", "StateFile", "parse_state", "read_state"]

MAX_BYTES = 65536
SETTLE_NS = 50_000_000  # how old a state file must be before its identity is trusted


@dataclass(frozen=True)
class Exit:
    """How one kernel ended, as the launcher saw it."""

    generation: int = 0
    returncode: int | None = None
    signal: int | None = None
    reason: str | None = None  # "restart" when the host asked for it


@dataclass(frozen=True)
class LauncherState:
    generation: int = 0  # kernels started so far: a new one means the last one ended
    exits: list[Exit] = field(default_factory=list)
    exiting: str | None = None


def parse_state(raw: bytes) -> LauncherState:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return LauncherState()
    if not isinstance(data, dict):
        return LauncherState()
    exits = [_exit(e) for e in _list(data.get("exits"))[-5:] if isinstance(e, dict)]
    exiting = data.get("exiting")
    return LauncherState(
        generation=_int(data.get("generation")) or 0,
        exits=exits,
        exiting=exiting[:64] if isinstance(exiting, str) else None,
    )


def read_state(path: Path) -> LauncherState:
    return StateFile(path).read()


class StateFile:
    """``state.json`` of one sandbox, parsed again only when the file changed.

    The file is known unchanged when its inode, size, mtime and ctime are (the launcher
    replaces it by a rename; ``utime`` cannot set a ctime back) and it was already older
    than SETTLE_NS when it was read, so a warm execution costs one ``stat`` here, not an
    open, a read and a parse."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int, int] | None = None
        self._state = LauncherState()

    def read(self) -> LauncherState:
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return LauncherState()
        if self._seen is not None and self._seen == _identity(st):
            return self._state
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return LauncherState()
        try:
            st = os.fstat(fd)  # what is read is what the identity describes
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BYTES:
                return LauncherState()
            state = parse_state(os.read(fd, MAX_BYTES))
        except OSError:
            return LauncherState()
        finally:
            os.close(fd)
        # a file changed within the clock's last ticks may change again unseen (same
        # size, a reused inode, the same coarse timestamps): trusted only once older
        settled = time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > SETTLE_NS
        self._seen, self._state = (_identity(st) if settled else None), state
        return state


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _exit(d: dict[str, Any]) -> Exit:
    reason = d.get("reason")
    return Exit(
        generation=_int(d.get("generation")) or 0,
        returncode=_int(d.get("returncode")),
        signal=_int(d.get("signal")),
        reason=reason[:64] if isinstance(reason, str) else None,
    )


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31:
        return value
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
