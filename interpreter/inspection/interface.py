"""The one inspection interface: ``Inspector`` (what every caller may use) and the
``SessionView`` both implementations answer with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from nbformat import NotebookNode

from ..executor import OutputCallback
from ..results import Execution

__all__ = ["Inspector", "SessionView"]


@dataclass(frozen=True)
class SessionView:
    """One session as an operator sees it. Durations in seconds; None when not live."""

    id: str
    thread_id: str
    tenant: str
    state: str
    created_at: float
    last_activity: float
    age_s: float
    idle_s: float | None
    expires_in_s: float | None
    memory_bytes: int | None  # in use now
    cpu_percent: float | None  # of one core, now
    executions: int
    files: int  # in the thread's /mnt/data
    memory_limit: int
    cpus: float
    pids_limit: int
    network: str
    idle_timeout: float
    container: str | None
    ended_at: float | None
    end_reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Inspector(Protocol):
    """What the CLI, the /v1/lci routes and the /ui pages use; ``LocalInspector`` and
    ``RemoteInspector`` both have it. ``tenant=None`` sees every tenant (the local
    operator); a remote inspector's tenant is its API key's, and the argument is ignored."""

    async def sessions(
        self, tenant: str | None = None, *, all: bool = False
    ) -> list[SessionView]: ...

    async def session(self, session_id: str, tenant: str | None = None) -> SessionView: ...

    async def executions(
        self, session_id: str, tenant: str | None = None, *, last: int | None = None
    ) -> list[dict[str, Any]]: ...

    def follow(
        self, session_id: str, tenant: str | None = None, *, last: int = 0
    ) -> AsyncIterator[dict[str, Any]]: ...

    async def notebook(self, session_id: str, tenant: str | None = None) -> NotebookNode: ...

    async def execute(
        self,
        session_id: str,
        code: str,
        tenant: str | None = None,
        *,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> Execution: ...

    async def interrupt(self, session_id: str, tenant: str | None = None) -> None: ...

    async def restart(self, session_id: str, tenant: str | None = None) -> None: ...

    async def stop(self, session_id: str, tenant: str | None = None) -> None: ...

    async def file(self, file_id: str) -> tuple[str, bytes]:
        """(a file name for it, its bytes)"""
        ...
