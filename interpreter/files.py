"""Files with IDs: uploads and what executions produce.

Contents are stored once per sha256 under ``LCI_HOME/blobs`` (written to a temporary
file, then renamed, so a crash never leaves a half-written blob); metadata goes to
SQLite. IDs are opaque: ``file-`` and 24 random hex digits.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread

from .errors import FileTooLarge, NoSuchFile, QuotaExceeded, StorageFull
from .results import FileInfo
from .store import Store
from .workspace import sanitize_filename

__all__ = ["PURPOSE_OUTPUT", "PURPOSE_UPLOAD", "FileStore", "new_file_id"]

PURPOSE_UPLOAD = "assistants"
PURPOSE_OUTPUT = "assistants_output"
CHUNK = 1 << 20
Source = bytes | BinaryIO | os.PathLike[str] | str


def new_file_id() -> str:
    return "file-" + secrets.token_hex(12)


def guess_mime(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


class FileStore:
    """Async API over the blob directory and the store. ``tenant`` scopes every call."""

    def __init__(
        self, store: Store, blobs_dir: Path, max_upload_bytes: int, min_free: int = 0
    ) -> None:
        self.store = store
        self.blobs = blobs_dir
        self.max_upload_bytes = max_upload_bytes
        self.min_free = min_free
        # bytes promised but not yet used (live sandboxes' disks): set by the manager
        # (fresh: measured now, not the cached figure of the last second)
        self.reserved: Callable[[bool], int] = lambda fresh: 0
        # may (tenant) store (bytes) more? raises QuotaExceeded: set by the manager
        self.charge: Callable[[str, int], None] = lambda tenant, size: None
        self.blobs.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.blobs / "tmp").mkdir(mode=0o700, exist_ok=True)

    def blob_path(self, sha256: str) -> Path:
        return self.blobs / sha256[:2] / sha256

    def free(self) -> int:
        """Bytes free for lci in the filesystem that holds LCI_HOME."""
        st = os.statvfs(self.blobs)
        return st.f_bavail * st.f_frsize

    def room(self, needed: int = 1) -> int:
        """Bytes that may still be written before LCI_HOME reaches its floor (LCI_MIN_FREE),
        the space promised to live sandboxes' disks kept aside. Short of ``needed``, the
        promise is measured again before the answer is believed (disks fill up, and the
        cached figure may be a second old)."""
        room = self.free() - self.reserved(False) - self.min_free
        if room < needed:
            room = self.free() - self.reserved(True) - self.min_free
        return room

    def check_floor(self) -> None:
        """Raise StorageFull when LCI_HOME is below its floor itself (running sessions' work
        may use the room promised to them, never the floor)."""
        free = self.free()
        if free < self.min_free:
            raise StorageFull(free, self.min_free)

    def check_room(self, needed: int = 0) -> None:
        """Raise StorageFull when ``needed`` more bytes would take LCI_HOME below its floor."""
        if self.room(needed) < needed:
            raise StorageFull(self.free(), self.min_free)

    # -- writing -------------------------------------------------------------------

    def ingest(self, read: Callable[[int], bytes], limit: int, what: str) -> tuple[str, int]:
        """Stream ``read`` into a blob; return (sha256, size). Blocking."""
        digest, size = hashlib.sha256(), 0
        room = self.room()
        if room <= 0:
            raise StorageFull(self.free(), self.min_free)
        tmp = self.blobs / "tmp" / secrets.token_hex(8)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with open(fd, "wb") as out:
                while chunk := read(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise FileTooLarge(what, size, limit)
                    if size > room:
                        raise StorageFull(self.free(), self.min_free)
                    digest.update(chunk)
                    out.write(chunk)
            sha = digest.hexdigest()
            self.adopt(tmp, sha)
            return sha, size
        finally:
            tmp.unlink(missing_ok=True)

    def adopt(self, tmp: Path, sha: str) -> None:
        """Move a finished temporary file (under blobs/tmp) into place as blob ``sha``."""
        final = self.blob_path(sha)
        final.parent.mkdir(mode=0o700, exist_ok=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, final)

    def record(
        self,
        filename: str,
        sha: str,
        size: int,
        purpose: str,
        tenant: str = "",
        **where: str | None,
    ) -> FileInfo:
        """Describe a stored blob as a file of ``tenant``; over its quota, the file is not
        kept (its blob goes too, unless another file shares it) and QuotaExceeded raised."""
        try:
            self.charge(tenant, size)
        except QuotaExceeded:
            if not self.store.blob_used(sha):
                self.blob_path(sha).unlink(missing_ok=True)
            raise
        info = FileInfo(
            id=new_file_id(),
            filename=filename,
            bytes=size,
            mime_type=guess_mime(filename),
            sha256=sha,
            purpose=purpose,
            created_at=time.time(),
            **where,
        )
        self.store.add_file(info, tenant=tenant)
        return info

    async def upload(
        self,
        source: Source,
        filename: str | None = None,
        *,
        purpose: str = PURPOSE_UPLOAD,
        tenant: str = "",
        thread_id: str | None = None,
    ) -> str:
        """Store bytes, a binary file object or a path; return the new file's ID."""
        info = await self.upload_info(
            source, filename, purpose=purpose, tenant=tenant, thread_id=thread_id
        )
        return info.id

    async def upload_info(
        self,
        source: Source,
        filename: str | None = None,
        *,
        purpose: str = PURPOSE_UPLOAD,
        tenant: str = "",
        thread_id: str | None = None,
    ) -> FileInfo:
        name = filename or _name_of(source)
        safe = sanitize_filename(name)

        def work() -> FileInfo:
            if isinstance(source, bytes):
                view = memoryview(source)
                pos = [0]

                def read(n: int) -> bytes:
                    chunk = bytes(view[pos[0] : pos[0] + n])
                    pos[0] += n
                    return chunk

                sha, size = self.ingest(read, self.max_upload_bytes, safe)
            elif isinstance(source, (str, os.PathLike)):
                with open(source, "rb") as f:
                    sha, size = self.ingest(f.read, self.max_upload_bytes, safe)
            else:
                sha, size = self.ingest(source.read, self.max_upload_bytes, safe)
            return self.record(safe, sha, size, purpose, tenant, thread_id=thread_id)

        return await anyio.to_thread.run_sync(work)

    # -- reading -------------------------------------------------------------------

    def info(self, file_id: str, tenant: str | None = None) -> FileInfo:
        info = self.store.get_file(file_id, tenant)
        if info is None:
            raise NoSuchFile(file_id)
        return info

    async def get(self, file_id: str, tenant: str | None = None) -> FileInfo:
        return self.info(file_id, tenant)

    def path(self, file_id: str, tenant: str | None = None) -> Path:
        """Where the contents are on disk (read-only use)."""
        return self.blob_path(self.info(file_id, tenant).sha256)

    async def content(self, file_id: str, tenant: str | None = None) -> bytes:
        path = self.path(file_id, tenant)
        return await anyio.to_thread.run_sync(path.read_bytes)

    async def list(self, tenant: str | None = None, thread_id: str | None = None) -> list[FileInfo]:
        return self.store.list_files(tenant=tenant, thread_id=thread_id)

    async def delete(self, file_id: str, tenant: str | None = None) -> None:
        self.info(file_id, tenant)
        orphan = self.store.delete_file(file_id)
        if orphan:
            self.blob_path(orphan).unlink(missing_ok=True)


def _name_of(source: Source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    name = getattr(source, "name", None)
    if isinstance(name, str) and name:
        return Path(name).name
    raise ValueError("filename= is required when uploading bytes or an unnamed stream")
