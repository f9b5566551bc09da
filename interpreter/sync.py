"""The blocking facade: the async core run on a background event loop.

``SyncSessionManager`` / ``SyncSession`` forward a few calls through an anyio
blocking portal, for scripts and frameworks that are not async.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from .config import Settings
from .files import FileStore, Source
from .manager import SessionManager
from .results import Execution, FileInfo
from .session import Session
from .store import SessionRecord

__all__ = ["SyncFiles", "SyncSession", "SyncSessionManager"]


class SyncSession:
    def __init__(self, portal: BlockingPortal, session: Session) -> None:
        self._portal, self._session = portal, session

    @property
    def id(self) -> str:
        return self._session.id

    @property
    def thread_id(self) -> str:
        return self._session.thread_id

    def execute(self, code: str, timeout: float | None = None) -> Execution:
        return self._portal.call(self._session.execute, code, timeout)

    def interrupt(self) -> None:
        self._portal.call(self._session.interrupt)

    def restart(self) -> None:
        self._portal.call(self._session.restart)

    def add_files(self, file_ids: list[str]) -> list[str]:
        return self._portal.call(self._session.add_files, file_ids)

    def stop(self) -> None:
        self._portal.call(self._session.stop)

    def close(self) -> None:
        self._portal.call(self._session.close)

    def __enter__(self) -> SyncSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SyncFiles:
    def __init__(self, portal: BlockingPortal, files: FileStore) -> None:
        self._portal, self._files = portal, files

    def upload(self, source: Source, filename: str | None = None, **kw: Any) -> str:
        return self._portal.call(lambda: self._files.upload(source, filename, **kw))

    def get(self, file_id: str) -> FileInfo:
        return self._portal.call(self._files.get, file_id)

    def content(self, file_id: str) -> bytes:
        return self._portal.call(self._files.content, file_id)

    def list(self, thread_id: str | None = None) -> list[FileInfo]:
        return self._portal.call(lambda: self._files.list(thread_id=thread_id))

    def delete(self, file_id: str) -> None:
        self._portal.call(self._files.delete, file_id)


class SyncSessionManager:
    """``with SyncSessionManager.from_env() as manager: manager.session("t").execute("1+1")``"""

    def __init__(self, settings: Settings | None = None, **kw: Any) -> None:
        self._cm = start_blocking_portal(backend="asyncio")
        self._portal = self._cm.__enter__()
        try:
            self._manager: SessionManager = self._portal.call(self._make, settings, kw)
        except BaseException:
            self._cm.__exit__(None, None, None)
            raise
        self.files = SyncFiles(self._portal, self._manager.files)

    @staticmethod
    async def _make(settings: Settings | None, kw: dict[str, Any]) -> SessionManager:
        manager = SessionManager(settings, **kw)
        await manager.open()
        return manager

    @classmethod
    def from_env(cls, environ: Any = None, **overrides: Any) -> SyncSessionManager:
        reaper = overrides.pop("reaper", True)
        return cls(Settings.from_env(environ, **overrides), reaper=reaper)

    @property
    def settings(self) -> Settings:
        return self._manager.settings

    def session(
        self, thread_id: str | None = None, *, file_ids: Iterable[str] = (), **kw: Any
    ) -> SyncSession:
        s = self._portal.call(lambda: self._manager.session(thread_id, file_ids=file_ids, **kw))
        return SyncSession(self._portal, s)

    def list_sessions(self, live_only: bool = True) -> list[SessionRecord]:
        return self._portal.call(lambda: self._manager.list_sessions(live_only=live_only))

    def stop(self, session_id: str) -> None:
        self._portal.call(self._manager.stop, session_id)

    def sweep(self) -> dict[str, int]:
        return self._portal.call(self._manager.sweep)

    def close(self) -> None:
        try:
            self._portal.call(self._manager.close)
        finally:
            self._cm.__exit__(None, None, None)

    def __enter__(self) -> SyncSessionManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
