"""Turn a finished execution into stored outputs: the log, images, produced files.

Nothing a kernel sends is held in memory for long: the log is spooled to disk as it
arrives (``LogSpool``, at most ``LCI_MAX_LOG_BYTES``), images are written to the blob
store the moment they are decoded (``OutputCollector.image``), and logs in the result
are cut (head and tail) with a marker that names the log file. Produced files are
found and stored by the catalog.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread

from .catalog import Catalog
from .errors import QuotaExceeded, StorageFull
from .files import PURPOSE_OUTPUT, FileStore
from .messaging import OutputFold
from .results import Execution, FileInfo
from .workspace import Scan

__all__ = ["LogSpool", "OutputCollector", "cut_marker", "transcript"]

UNLIMITED = 1 << 62


class LogSpool:
    """The log of one execution, on disk (0600), created on the first write, capped."""

    def __init__(self, directory: Path, limit: int = UNLIMITED) -> None:
        self.path = directory / ("log-" + secrets.token_hex(8))
        self.limit = limit
        self._f: Any = None
        self.size = 0
        self.dropped = 0  # bytes not written: over the limit

    def write(self, kind: str, text: str) -> None:
        data = text.encode("utf-8", "replace")
        room = self.limit - self.size
        if len(data) > room:
            self.dropped += len(data) - max(room, 0)
            data = data[: max(room, 0)]
        if not data:
            return
        if self._f is None:
            self._f = open(self.path, "xb", opener=_private)  # noqa: SIM115
        self._f.write(data)
        self._f.flush()  # a follower (lci logs -f) tails this file while the code runs
        self.size += len(data)

    def close(self) -> None:
        if self._f is not None:
            if self.dropped:
                marker = (
                    f"\n[lci: {self.dropped} more bytes of output were not kept: over"
                    f" LCI_MAX_LOG_BYTES ({self.limit})]\n".encode()
                )
                self._f.write(marker)
                self.size += len(marker)
            self._f.close()
            self._f = None

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def cut_marker(log_file_id: str | None) -> Callable[[int], str]:
    where = f"the complete log is file {log_file_id}" if log_file_id else "the log was cut"
    return lambda n: f"\n\n[... {n} characters cut here; {where} ...]\n\n"


def transcript(
    exe: Execution, fold: OutputFold, image_ids: list[str | None], note: Callable[[int], str]
) -> list[dict[str, Any]]:
    """The fold's ordered outputs with image file IDs, a cut marker, and the error the
    host added (a timeout, a dead kernel) when the kernel sent none."""
    items = []
    for item in fold.transcript:
        if item["type"] == "image":
            fid = image_ids[item["index"]]
            if fid is not None:
                items.append({"type": "image", "file_id": fid, "mime": item["mime"]})
        else:
            items.append(item)
    if fold.transcript_cut:
        items.append({"type": "stream", "name": "stderr", "text": note(fold.transcript_cut)})
    if exe.error is not None and not any(i["type"] == "error" for i in items):
        items.append({"type": "error", **exe.error.to_dict()})
    return items


class OutputCollector:
    """Stores what one session's executions produce, as files with IDs."""

    def __init__(self, files: FileStore, catalog: Catalog, tenant: str):
        self.files, self.catalog, self.tenant = files, catalog, tenant

    def image(self, ext: str, data: bytes) -> tuple[str, str, int] | None:
        """An image the kernel sent, written to the blob store now: (ext, sha, size)."""
        chunks = [data]
        try:
            sha, size = self.files.ingest(lambda n: chunks.pop() if chunks else b"", UNLIMITED, ext)
        except StorageFull:
            return None
        return ext, sha, size

    async def finish(
        self, exe: Execution, fold: OutputFold, spool: LogSpool, before: Scan
    ) -> tuple[Scan, int]:
        """Fill ``exe``: log file, cut logs and streams, results, images, produced files;
        return the scan of /mnt/data the produced files were found by (and the count of
        placements before it: ``Catalog.starting_scan``)."""
        where = {"thread_id": exe.thread_id, "session_id": exe.session_id, "execution_id": exe.id}
        spool.close()
        exe.dropped = [d.to_dict() for d in fold.dropped.values()]
        if spool.size:
            info = await anyio.to_thread.run_sync(self._store_spool, spool, exe.id, where)
            exe.log_file_id = info.id if info else None
            if info is None:
                exe.dropped.append(
                    {"what": "log", "count": 1, "bytes": spool.size, "limit": "storage quota"}
                )
        else:
            spool.discard()
        note = cut_marker(exe.log_file_id)
        exe.stdout, exe.stderr = fold.stdout.value(note), fold.stderr.value(note)
        exe.logs_truncated = fold.logs.cut > 0
        exe.results, exe.execution_count = fold.results, fold.execution_count
        logs = fold.logs.value(note)
        exe.outputs = [{"type": "logs", "logs": logs}] if logs else []
        image_ids: list[str | None] = []
        for n, handle in enumerate(fold.images, 1):
            image = None if handle is None else self._record_image(exe, n, handle, where)
            image_ids.append(image.id if image else None)  # None: LCI_HOME short, or quota
            if image is not None:
                exe.outputs.append({"type": "image", "image": {"file_id": image.id}})
        exe.transcript = transcript(exe, fold, image_ids, note)
        exe.files, skipped, now = await self.catalog.produced(before, where)
        exe.skipped_files = skipped
        if spool.dropped:
            exe.dropped.append(
                {"what": "log", "count": 1, "bytes": spool.dropped, "limit": "LCI_MAX_LOG_BYTES"}
            )
        if None in image_ids:
            lost = image_ids.count(None)
            exe.dropped.append(
                {"what": "image", "count": lost, "bytes": 0, "limit": "LCI_MIN_FREE"}
            )
        return now

    def _record_image(
        self, exe: Execution, n: int, handle: tuple[str, str, int], where: dict[str, str]
    ) -> FileInfo | None:
        ext, sha, size = handle
        name = f"image-{exe.id[5:13]}-{n}.{ext}"
        try:
            return self.files.record(name, sha, size, PURPOSE_OUTPUT, self.tenant, **where)
        except QuotaExceeded:
            return None

    def _store_spool(self, spool: LogSpool, exe_id: str, where: dict[str, str]) -> FileInfo | None:
        """The spool becomes the log's blob (renamed into place, not copied)."""
        digest = hashlib.sha256()
        with open(spool.path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        self.files.adopt(spool.path, digest.hexdigest())
        try:
            return self.files.record(
                f"{exe_id}.log", digest.hexdigest(), spool.size, PURPOSE_OUTPUT, self.tenant,
                **where,
            )  # fmt: skip
        except QuotaExceeded:
            return None
