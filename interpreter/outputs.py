"""Turn a finished execution into stored outputs: the complete log, images, produced files.

The log is spooled to disk as it arrives (``LogSpool``), so a flood of output never
sits in memory; logs in the result are cut (head and tail) with a marker that names
the log file. Produced files are what changed under /mnt/data, read safely.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread

from .files import PURPOSE_OUTPUT, FileStore
from .messaging import OutputFold
from .results import Execution, FileInfo, ProducedFile
from .workspace import MOUNT, FileStat, Workspace

__all__ = ["LogSpool", "OutputCollector", "cut_marker", "transcript"]

UNLIMITED = 1 << 62


class LogSpool:
    """The complete log of one execution, on disk, created on the first write."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / ("log-" + secrets.token_hex(8))
        self._f: Any = None
        self.size = 0

    def write(self, kind: str, text: str) -> None:
        if self._f is None:
            self._f = open(self.path, "w", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._f.write(text)
        self._f.flush()  # a follower (lci logs -f) tails this file while the code runs
        self.size += len(text)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def cut_marker(log_file_id: str | None) -> Callable[[int], str]:
    where = f"the complete log is file {log_file_id}" if log_file_id else "the log was cut"
    return lambda n: f"\n\n[... {n} characters cut here; {where} ...]\n\n"


def transcript(
    exe: Execution, fold: OutputFold, image_ids: list[str], note: Callable[[int], str]
) -> list[dict[str, Any]]:
    """The fold's ordered outputs with image file IDs, a cut marker, and the error the
    host added (a timeout, a dead kernel) when the kernel sent none."""
    items = []
    for item in fold.transcript:
        if item["type"] == "image":
            items.append(
                {"type": "image", "file_id": image_ids[item["index"]], "mime": item["mime"]}
            )
        else:
            items.append(dict(item))
    if fold.transcript_cut:
        items.append({"type": "stream", "name": "stderr", "text": note(fold.transcript_cut)})
    if exe.error is not None and not any(i["type"] == "error" for i in items):
        items.append({"type": "error", **exe.error.to_dict()})
    return items


class OutputCollector:
    """Stores what one session's executions produce, as files with IDs."""

    def __init__(
        self,
        files: FileStore,
        workspace: Workspace,
        owner: str,
        max_file_bytes: int,
        on_file: Callable[[str, FileStat, FileInfo], None] | None = None,
    ):
        self.files, self.workspace = files, workspace
        self.owner, self.max_file_bytes = owner, max_file_bytes
        self.on_file = on_file  # (relative path, stat before reading, stored file)

    async def finish(
        self, exe: Execution, fold: OutputFold, spool: LogSpool, before: dict[str, FileStat]
    ) -> None:
        """Fill ``exe``: log file, cut logs and streams, results, images, produced files."""
        where = {"thread_id": exe.thread_id, "session_id": exe.session_id, "execution_id": exe.id}
        if spool.size:
            info = await anyio.to_thread.run_sync(self._store_spool, spool, exe.id, where)
            exe.log_file_id = info.id
        else:
            spool.discard()
        note = cut_marker(exe.log_file_id)
        exe.stdout, exe.stderr = fold.stdout.value(note), fold.stderr.value(note)
        exe.logs_truncated = fold.logs.cut > 0
        exe.results, exe.execution_count = fold.results, fold.execution_count
        logs = fold.logs.value(note)
        exe.outputs = [{"type": "logs", "logs": logs}] if logs else []
        image_ids = []
        for n, (ext, data) in enumerate(fold.images, 1):
            name = f"image-{exe.id[5:13]}-{n}.{ext}"
            info = await anyio.to_thread.run_sync(self._store_bytes, data, name, where)
            exe.outputs.append({"type": "image", "image": {"file_id": info.id}})
            image_ids.append(info.id)
        exe.transcript = transcript(exe, fold, image_ids, note)
        exe.files = await anyio.to_thread.run_sync(self._collect_files, before, where)

    def _store_spool(self, spool: LogSpool, exe_id: str, where: dict[str, str]) -> FileInfo:
        spool.close()
        with open(spool.path, "rb") as f:
            sha, size = self.files.ingest(f.read, UNLIMITED, "log")
        spool.discard()
        return self.files.record(f"{exe_id}.log", sha, size, PURPOSE_OUTPUT, self.owner, **where)

    def _store_bytes(self, data: bytes, name: str, where: dict[str, str]) -> FileInfo:
        chunks = [data]
        sha, size = self.files.ingest(lambda n: chunks.pop() if chunks else b"", UNLIMITED, name)
        return self.files.record(name, sha, size, PURPOSE_OUTPUT, self.owner, **where)

    def _collect_files(
        self, before: dict[str, FileStat], where: dict[str, str]
    ) -> list[ProducedFile]:
        """Every regular file created or modified under /mnt/data since ``before``."""
        produced = []
        for rel, st in sorted(self.workspace.scan().items()):
            if before.get(rel) == st:
                continue
            path = f"{MOUNT}/{rel}"
            try:
                with self.workspace.open_regular(rel) as fd:
                    read = functools.partial(os.read, fd)
                    sha, size = self.files.ingest(read, self.max_file_bytes, path)
            except (OSError, ValueError):
                continue  # vanished, not a regular file any more, or over the size limit
            name = rel.rsplit("/", 1)[-1]
            info = self.files.record(
                name, sha, size, PURPOSE_OUTPUT, self.owner, path=path, **where
            )
            if self.on_file is not None:
                self.on_file(rel, st, info)
            produced.append(ProducedFile(info.id, path, size))
        return produced
