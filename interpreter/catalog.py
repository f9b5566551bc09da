"""The files of a thread's /mnt/data, each with a file ID: the one tenant of that mapping.

The sandboxed code can create, change and delete files at any time, so the catalog
is the directory as it is now, matched against an index (``Index``: the
``thread_files`` rows) of the IDs it last had. A file whose size or mtime moved since it was indexed
is stored again and gets a new ID. Uploads are placed here (``put``), and what an
execution produced is found and stored here (``collect``).

What the sandbox wrote is read defensively, and the host's work is bounded by what
the sandbox could really store: a name that is not valid UTF-8 or holds control
characters, a sparse file (whose length is mostly holes), a file over
``LCI_MAX_OUTPUT_FILE_BYTES``, files that together exceed the session's disk, or a
host short of space are skipped, each with the reason, never stored. Hard links to
one file are read once. Blocking: call it from a worker thread.
"""

from __future__ import annotations

import builtins
import functools
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread

from .config import Settings
from .errors import FileTooLarge, InvalidFilename, NoSuchFile, QuotaExceeded, StorageFull
from .files import PURPOSE_OUTPUT, FileStore
from .layout import kernel_uid
from .results import FileInfo, ProducedFile
from .store import SessionRecord, Store
from .workspace import MOUNT, FileStat, Scan, Workspace, sanitize_filename

__all__ = ["Catalog", "Index", "IndexEntry", "SandboxFile"]

USER, ASSISTANT = "user", "assistant"
SLACK = 65536  # what a file may hold beyond its allocated blocks (a small tail)
QUICK = 256  # entries a scan may read on the event loop; a larger tree goes to a thread
QUICK_DIR_BYTES = 64 * 1024  # ... and the largest directory it reads there (ext4: ~1,000 names)


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


@dataclass(frozen=True)
class IndexEntry:
    file_id: str
    size: int | None
    mtime_ns: int | None
    source: str


class Index:
    """The ``thread_files`` rows: which file ID each path of a thread's /mnt/data had."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def attach(
        self,
        tenant: str,
        thread_id: str,
        path: str,
        file_id: str,
        *,
        size: int | None = None,
        mtime_ns: int | None = None,
        source: str = "user",
    ) -> None:
        """Record that ``path`` in the thread's /mnt/data holds ``file_id`` (``source``:
        ``user`` placed it, ``assistant`` code made it); size and mtime tell later
        listings whether the file changed since."""
        with self.store.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO thread_files"
                " (tenant, thread_id, path, file_id, size, mtime_ns, source)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (tenant, thread_id, path, file_id, size, mtime_ns, source),
            )

    def detach(self, tenant: str, thread_id: str, path: str) -> None:
        with self.store.transaction() as db:
            db.execute(
                "DELETE FROM thread_files WHERE tenant = ? AND thread_id = ? AND path = ?",
                (tenant, thread_id, path),
            )

    def forget(self, tenant: str, thread_id: str) -> None:
        """The thread's /mnt/data starts empty next time (stored files stay in the store)."""
        with self.store.transaction() as db:
            db.execute(
                "DELETE FROM thread_files WHERE tenant = ? AND thread_id = ?", (tenant, thread_id)
            )

    def entries(self, tenant: str, thread_id: str) -> dict[str, IndexEntry]:
        """Every known file of the thread's /mnt data, by relative path."""
        rows = self.store.query(
            "SELECT path, file_id, size, mtime_ns, source FROM thread_files"
            " WHERE tenant = ? AND thread_id = ? ORDER BY path",
            (tenant, thread_id),
        )
        return {r[0]: IndexEntry(r[1], r[2], r[3], r[4]) for r in rows}

    def attachments(self, tenant: str, thread_id: str) -> list[tuple[str, str]]:
        rows = self.store.query(
            "SELECT path, file_id FROM thread_files"
            " WHERE tenant = ? AND thread_id = ? ORDER BY path",
            (tenant, thread_id),
        )
        return [(r[0], r[1]) for r in rows]


class Catalog:
    def __init__(
        self,
        store: Store,
        files: FileStore,
        workspace: Workspace | None,
        tenant: str,
        thread_id: str,
        max_file_bytes: int,
        max_total_bytes: int = 0,
    ) -> None:
        self.store, self.files, self.workspace = store, files, workspace
        self.index = Index(store)
        self.tenant, self.thread_id = tenant, thread_id
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes or 1 << 62  # the disk: 0 for uncapped
        # the scan the last execution ended with, and the count of placements then (an
        # execution in another process drops it: Session._exec_lock)
        self.last: tuple[Scan, int] | None = None
        # the count of uploads and removals, in any process: a file that grows a byte each
        # (appended after the change, so a scan that missed the change sees an older count)
        self.placements: Path | None = None

    @classmethod
    def of(
        cls, record: SessionRecord, store: Store, files: FileStore, settings: Settings
    ) -> Catalog:
        """The catalogue of a live session's /mnt/data (read as its kernel's uid)."""
        uid = kernel_uid(record)
        catalog = cls(
            store, files, Workspace(Path(record.data_dir), (uid, uid)), record.tenant,
            record.thread_id, settings.limits.max_output_file_bytes, settings.sandbox.disk_limit,
        )  # fmt: skip
        catalog.placements = Path(record.runtime_dir) / "placements"
        return catalog

    def list(self) -> list[SandboxFile]:
        """Every regular file, sorted by path. Without a live workspace, the last known."""
        index = self.index.entries(self.tenant, self.thread_id)
        if self.workspace is None:
            out = [self._known(rel, e.file_id, e.source, e.mtime_ns) for rel, e in index.items()]
            return [f for f in out if f is not None]
        found = []
        reader = _Reader(self, {"thread_id": self.thread_id})
        for rel, st in sorted(self.workspace.scan().files.items()):
            entry = index.get(rel)
            if entry and (entry.size, entry.mtime_ns) == (st.size, st.mtime_ns):
                known = self._known(rel, entry.file_id, entry.source, st.mtime_ns)
                if known is not None:
                    found.append(known)
                    continue
            info = reader.store(rel, st)
            if info is not None:
                source = entry.source if entry else ASSISTANT
                self._index(rel, st, info, source)
                found.append(
                    SandboxFile(
                        info.id, rel, info.bytes, source, info.created_at, st.mtime_ns / 1e9
                    )
                )
        for gone in index.keys() - {f.path for f in found}:
            self.index.detach(self.tenant, self.thread_id, gone)
        return found

    def scan(self, quick: bool = False) -> Scan:
        """The directory now (what an execution compares against when it ends); ``quick``:
        at most QUICK entries from directories of at most QUICK_DIR_BYTES, else truncated."""
        assert self.workspace is not None
        return self.workspace.scan(QUICK, QUICK_DIR_BYTES) if quick else self.workspace.scan()

    async def scan_now(self) -> Scan:
        """``scan()`` without a worker thread's round trip when the tree is small (the
        usual case); a larger tree is scanned again in a thread, so the event loop never
        reads more than QUICK entries or a directory of more than QUICK_DIR_BYTES."""
        quick = self.scan(quick=True)
        return quick if not quick.truncated else await anyio.to_thread.run_sync(self.scan)

    async def starting_scan(self) -> Scan:
        """What an execution compares against when it ends: the scan the last one ended
        with, if no upload or removal came since (then nothing but the kernel can have
        changed the directory, and what it changed meanwhile counts as the next
        execution's), else the directory now."""
        last, self.last = self.last, None  # until this execution ends normally
        if last is not None and last[1] == self._placements():
            return last[0]
        return await self.scan_now()

    async def produced(
        self, before: Scan, where: dict[str, str]
    ) -> tuple[builtins.list[ProducedFile], builtins.list[dict[str, str]], tuple[Scan, int]]:
        """``collect`` in a worker thread, skipped when a scan shows nothing changed; with
        the scan it compared against ``before`` and the count of placements before it."""
        count = self._placements()
        now = await self.scan_now()
        if before.same(now):
            return [], [], (now, count)
        produced, skipped = await anyio.to_thread.run_sync(self.collect, before, where, now)
        return produced, skipped, (now, count)

    def _placements(self) -> int:
        try:
            return os.stat(self.placements).st_size if self.placements else 0
        except FileNotFoundError:
            return 0  # none yet
        except OSError:
            return -time.monotonic_ns()  # never equal to a count seen: scanned again

    def _placed(self) -> None:
        """Count one upload or removal (after it happened)."""
        self.last = None
        if self.placements is None:
            return
        fd = os.open(self.placements, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, b".")
        finally:
            os.close(fd)

    def collect(
        self, before: Scan, where: dict[str, str], now: Scan | None = None
    ) -> tuple[builtins.list[ProducedFile], builtins.list[dict[str, str]]]:
        """Store every file created or modified since ``before``; return the produced
        files and the ones skipped, each ``{"path", "reason"}``."""
        assert self.workspace is not None
        now = self.workspace.scan() if now is None else now
        reader = _Reader(self, where)
        old = set(before.rejected)
        reader.skipped += [
            {"path": f"{MOUNT}/{path}", "reason": why}
            for path, why in now.rejected
            if (path, why) not in old
        ]
        if now.truncated:
            reader.skipped.append(
                {"path": MOUNT, "reason": "it holds too many entries: only the first were read"}
            )
        produced = []
        for rel, st in sorted(now.files.items()):
            if before.files.get(rel) == st:
                continue
            info = reader.store(rel, st)
            if info is not None:
                self._index(rel, st, info, ASSISTANT)
                produced.append(ProducedFile(info.id, f"{MOUNT}/{rel}", info.bytes))
        return produced, reader.skipped

    def put(self, name: str, info: FileInfo, source: str = USER) -> SandboxFile:
        """Place a stored file at ``name`` (overwriting) and index it."""
        rel = sanitize_filename(name)
        assert self.workspace is not None, "placing files needs a live session"
        try:
            self.workspace.place(rel, self.files.blob_path(info.sha256))
        finally:  # counted even when it failed halfway: the directory may have changed
            self._placed()
        st = self.workspace.stat(rel)
        self.index.attach(
            self.tenant,
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
        try:
            present = self.workspace.remove(rel) if self.workspace is not None else False
        finally:
            self._placed()
        known = rel in self.index.entries(self.tenant, self.thread_id)
        self.index.detach(self.tenant, self.thread_id, rel)
        if not (present or known):
            raise NoSuchFile(f"{MOUNT}/{rel}")

    # -- helpers ------------------------------------------------------------------

    def _index(self, rel: str, st: FileStat, info: FileInfo, source: str) -> None:
        self.index.attach(
            self.tenant, self.thread_id, rel, info.id, size=info.bytes, mtime_ns=st.mtime_ns,
            source=source,
        )  # fmt: skip

    def _known(
        self, rel: str, file_id: str, source: str, mtime_ns: int | None
    ) -> SandboxFile | None:
        info = self.store.get_file(file_id)
        if info is None:
            return None
        return SandboxFile(file_id, rel, info.bytes, source, info.created_at, (mtime_ns or 0) / 1e9)


class _Reader:
    """Stores files of one pass over /mnt/data within its budget; notes what it skips."""

    def __init__(self, catalog: Catalog, where: dict[str, str]) -> None:
        self.catalog, self.where = catalog, where
        self.left = catalog.max_total_bytes
        self.inodes: dict[int, tuple[str, int]] = {}  # hard links: read once
        self.skipped: list[dict[str, str]] = []

    def store(self, rel: str, st: FileStat) -> FileInfo | None:
        c = self.catalog
        why = self._refuse(st)
        if why is None and st.ino not in self.inodes:
            try:
                c.files.check_room(st.size)
                assert c.workspace is not None
                with c.workspace.open_regular(rel) as fd:
                    now = FileStat.of(os.fstat(fd))  # what is read, not what was scanned:
                    why = self._refuse(now)  # the file may have been swapped since
                    if why is None:  # and it is read no further than it was on disk
                        limit = min(c.max_file_bytes, self.left, now.blocks * 512 + SLACK)
                        read = functools.partial(os.read, fd)
                        self.inodes[st.ino] = c.files.ingest(read, limit, rel)
                if why is None:
                    self.left -= self.inodes[st.ino][1]
            except FileTooLarge:
                why = self._too_large(st.size, grew=True)
            except StorageFull:
                why = "LCI_HOME is short of space (LCI_MIN_FREE): the file was not stored"
            except QuotaExceeded as exc:
                why = f"over the tenant's storage quota ({exc.limit} bytes): not stored"
            except (OSError, InvalidFilename):
                return None  # vanished, or not a regular file any more
        if why is not None:
            self.skipped.append({"path": f"{MOUNT}/{rel}", "reason": why})
            return None
        sha, size = self.inodes[st.ino]
        name = rel.rsplit("/", 1)[-1]
        try:
            return c.files.record(
                name, sha, size, PURPOSE_OUTPUT, c.tenant, path=f"{MOUNT}/{rel}", **self.where
            )
        except QuotaExceeded as exc:
            why = f"over the tenant's storage quota ({exc.limit} bytes): not stored"
            self.skipped.append({"path": f"{MOUNT}/{rel}", "reason": why})
            return None

    def _refuse(self, st: FileStat) -> str | None:
        if st.sparse:
            return (
                f"it is a sparse file: {st.size} bytes long but only {st.blocks * 512} on disk;"
                " write its data out in full to have it collected"
            )
        if st.size > self.catalog.max_file_bytes or st.size > self.left:
            return self._too_large(st.size)
        return None

    def _too_large(self, size: int, grew: bool = False) -> str:
        if size > self.catalog.max_file_bytes:
            return f"it is larger than LCI_MAX_OUTPUT_FILE_BYTES ({self.catalog.max_file_bytes})"
        if grew:
            return "it changed while it was read (it grew past what it held on disk)"
        return "the files of this execution together are larger than the session's disk"
