"""The files of a thread's /mnt/data, each with a file ID.

The sandboxed code can create, change and delete files at any time, so the catalog
is the directory as it is now, matched against an index (``thread_files`` in the
store) of the IDs it last had. A file whose size or mtime moved since it was indexed
is stored again and gets a new ID. Blocking: call it from a worker thread.
"""

from __future__ import annotations

import functools
import os
from dataclasses import asdict, dataclass
from typing import Any

from .errors import NoSuchFile
from .files import PURPOSE_OUTPUT, FileStore
from .results import FileInfo
from .store import Store
from .workspace import MOUNT, FileStat, Workspace, sanitize_filename

__all__ = ["Catalog", "SandboxFile"]

USER, ASSISTANT = "user", "assistant"


@dataclass(frozen=True)
class SandboxFile:
    """One regular file under /mnt/data."""

    file_id: str
    path: str  # relative to /mnt/data
    bytes: int
    source: str  # "user" (uploaded or attached) or "assistant" (made by code)
    created_at: float  # when this version was stored
    modified_at: float  # mtime in the sandbox

    @property
    def full_path(self) -> str:
        return f"{MOUNT}/{self.path}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"full_path": self.full_path}


class Catalog:
    def __init__(
        self,
        store: Store,
        files: FileStore,
        workspace: Workspace | None,
        owner: str,
        thread_id: str,
        max_file_bytes: int,
    ) -> None:
        self.store, self.files, self.workspace = store, files, workspace
        self.owner, self.thread_id = owner, thread_id
        self.max_file_bytes = max_file_bytes

    def list(self) -> list[SandboxFile]:
        """Every regular file, sorted by path. Without a live workspace, the last known."""
        index = self.store.thread_index(self.owner, self.thread_id)
        if self.workspace is None:
            out = [self._known(rel, e.file_id, e.source, e.mtime_ns) for rel, e in index.items()]
            return [f for f in out if f is not None]
        found = []
        for rel, st in sorted(self.workspace.scan().items()):
            entry = index.get(rel)
            if entry and (entry.size, entry.mtime_ns) == (st.size, st.mtime_ns):
                known = self._known(rel, entry.file_id, entry.source, st.mtime_ns)
                if known is not None:
                    found.append(known)
                    continue
            fresh = self._index(rel, st, entry.source if entry else ASSISTANT)
            if fresh is not None:
                found.append(fresh)
        for gone in index.keys() - {f.path for f in found}:
            self.store.detach(self.owner, self.thread_id, gone)
        return found

    def put(self, name: str, info: FileInfo, source: str = USER) -> SandboxFile:
        """Place a stored file at ``name`` (overwriting) and index it."""
        rel = sanitize_filename(name)
        assert self.workspace is not None, "placing files needs a live session"
        self.workspace.place(rel, self.files.blob_path(info.sha256))
        st = self.workspace.stat(rel)
        self.store.attach(
            self.owner,
            self.thread_id,
            rel,
            info.id,
            size=st.size if st else info.bytes,
            mtime_ns=st.mtime_ns if st else None,
            source=source,
        )
        return SandboxFile(
            info.id, rel, info.bytes, source, info.created_at, (st.mtime_ns if st else 0) / 1e9
        )

    def remove(self, name: str) -> None:
        rel = sanitize_filename(name)
        present = self.workspace.remove(rel) if self.workspace is not None else False
        known = rel in self.store.thread_index(self.owner, self.thread_id)
        self.store.detach(self.owner, self.thread_id, rel)
        if not (present or known):
            raise NoSuchFile(f"{MOUNT}/{rel}")

    def note(self, rel: str, st: FileStat, info: FileInfo) -> None:
        """An execution stored a produced file: index it under its ID."""
        self.store.attach(
            self.owner,
            self.thread_id,
            rel,
            info.id,
            size=info.bytes,
            mtime_ns=st.mtime_ns,
            source=ASSISTANT,
        )

    # -- helpers ------------------------------------------------------------------

    def _known(
        self, rel: str, file_id: str, source: str, mtime_ns: int | None
    ) -> SandboxFile | None:
        info = self.store.get_file(file_id)
        if info is None:
            return None
        return SandboxFile(file_id, rel, info.bytes, source, info.created_at, (mtime_ns or 0) / 1e9)

    def _index(self, rel: str, st: FileStat, source: str) -> SandboxFile | None:
        assert self.workspace is not None
        try:
            with self.workspace.open_regular(rel) as fd:
                sha, size = self.files.ingest(
                    functools.partial(os.read, fd), self.max_file_bytes, rel
                )
        except (OSError, ValueError):
            return None  # vanished, not regular any more, or over the size limit
        info = self.files.record(
            rel.rsplit("/", 1)[-1],
            sha,
            size,
            PURPOSE_OUTPUT,
            self.owner,
            thread_id=self.thread_id,
            path=f"{MOUNT}/{rel}",
        )
        self.store.attach(
            self.owner, self.thread_id, rel, info.id, size=size, mtime_ns=st.mtime_ns, source=source
        )
        return SandboxFile(info.id, rel, size, source, info.created_at, st.mtime_ns / 1e9)
