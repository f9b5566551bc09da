"""What an execution gives back: plain dataclasses with ``to_dict()``.

``Execution.outputs`` has the shape of the Assistants code_interpreter tool call
(``{"type": "logs", "logs": ...}`` and ``{"type": "image", "image": {"file_id": ...}}``).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ErrorInfo", "Execution", "ExecutionStatus", "FileInfo", "ProducedFile", "SessionState"]


class ExecutionStatus(enum.StrEnum):
    OK = "ok"  # the code ran to the end
    ERROR = "error"  # the code raised (or did not compile); the session keeps its state
    TIMEOUT = "timeout"  # stopped at the deadline; see Execution.state_lost
    DIED = "died"  # the kernel died (os._exit, a crash, out of memory); state lost
    CANCELLED = "cancelled"  # stopped before it ended: its caller went away, its session stopped

    def __str__(self) -> str:
        return self.value


class SessionState(enum.StrEnum):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    EXPIRED = "expired"  # shut down after its idle timeout (or stopped)
    DEAD = "dead"  # the sandbox is gone for another reason

    @property
    def live(self) -> bool:
        return self in (SessionState.STARTING, SessionState.IDLE, SessionState.BUSY)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ErrorInfo:
    ename: str
    evalue: str
    traceback: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ProducedFile:
    """A file created or modified under /mnt/data by one execution."""

    file_id: str
    path: str  # /mnt/data/...
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FileInfo:
    """Metadata of a stored file (uploaded or produced)."""

    id: str
    filename: str
    bytes: int
    mime_type: str
    sha256: str
    purpose: str  # "assistants" (uploaded) or "assistants_output" (produced)
    created_at: float
    thread_id: str | None = None
    session_id: str | None = None
    execution_id: str | None = None
    path: str | None = None  # where it lives in the sandbox, for produced files

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Execution:
    """The result of running one piece of code in a session."""

    id: str
    session_id: str
    thread_id: str
    code: str
    status: ExecutionStatus
    outputs: list[dict[str, Any]] = field(default_factory=list)
    files: list[ProducedFile] = field(default_factory=list)
    error: ErrorInfo | None = None
    results: list[dict[str, Any]] = field(default_factory=list)  # rich mime bundles
    # every output in the order it came, as a notebook cell shows it (see messaging.py);
    # images as {"type": "image", "file_id", "mime"}
    transcript: list[dict[str, Any]] = field(default_factory=list)
    stdout: str = ""  # cut like logs when long; the log file has everything
    stderr: str = ""
    log_file_id: str | None = None  # the complete stdout/stderr, never cut
    logs_truncated: bool = False
    execution_count: int | None = None
    started_at: float = 0.0
    duration_ms: int = 0
    kernel_restarted: bool = False  # a fresh kernel (or sandbox) runs from now on
    state_lost: bool = False  # variables and imports from earlier calls are gone
    notice: str | None = None  # what happened to the session, in words
    # output the host did not keep, by kind: {"what", "count", "bytes", "limit"}
    dropped: list[dict[str, Any]] = field(default_factory=list)
    # files in /mnt/data this execution wrote but that were not collected: {"path", "reason"}
    skipped_files: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status is ExecutionStatus.OK

    @property
    def logs(self) -> str:
        return "".join(o["logs"] for o in self.outputs if o["type"] == "logs")

    @property
    def images(self) -> list[str]:
        return [o["image"]["file_id"] for o in self.outputs if o["type"] == "image"]

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("files", "error", "status")}
        d["status"] = self.status.value
        d["files"] = [f.to_dict() for f in self.files]
        d["error"] = self.error.to_dict() if self.error else None
        return d
