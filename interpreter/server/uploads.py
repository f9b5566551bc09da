"""Multipart uploads streamed to disk, never held whole in memory.

One parser for every face and every client quirk (PROTOCOLS.md 1.2.2): a ``file``
part whose filename may be ``/mnt/data/x``, percent-encoded or given as
``filename*``; chunked bodies; and multipart bodies sent under a JSON content type
(Semantic Kernel), whose boundary is read from the first line. Over the limit the
rest of the body is read and dropped, so the client gets its 413 instead of a broken
pipe.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from ..errors import StorageFull
from ..files import FileStore
from ..results import FileInfo
from .problems import ApiError

__all__ = ["Upload", "cleanup_tmp", "receive_upload"]

MAX_FIELD = 64 * 1024
DRAIN_LIMIT = 1024**3  # past limit + this, stop reading and let the connection drop
_EXT = re.compile(r"filename\*\s*=\s*([\w-]+)'[^']*'([^;\s]+)", re.IGNORECASE)


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None  # as sent, percent-decoded; not yet sanitised
    content_type: str | None = None
    size: int = 0
    sha256: str = ""
    tmp: Path | None = None  # the bytes; the caller adopts or discards it

    def keep(
        self,
        files: FileStore,
        name: str,
        purpose: str,
        tenant: str,
        thread_id: str | None = None,
    ) -> FileInfo:
        """Store the received bytes as file ``name``: the temporary file becomes its blob."""
        assert self.tmp is not None, "nothing received to keep"
        files.adopt(self.tmp, self.sha256)
        self.tmp = None
        return files.record(name, self.sha256, self.size, purpose, tenant, thread_id=thread_id)

    def discard(self) -> None:
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
            self.tmp = None


class _Parts:
    """python-multipart callbacks: text fields in memory, the first file to disk."""

    def __init__(self, tmp_dir: Path, limit: int, file_field: str) -> None:
        self.tmp_dir, self.limit, self.file_field = tmp_dir, limit, file_field
        self.upload = Upload()
        self.too_large = False
        self._headers: dict[bytes, bytes] = {}
        self._hname = self._hvalue = b""
        self._field: str | None = None
        self._buf = bytearray()
        self._out: BinaryIO | None = None
        self._digest: Any = None
        self._writing = False

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: setattr(self, "_hname", self._hname + d[s:e]),
            "on_header_value": lambda d, s, e: setattr(self, "_hvalue", self._hvalue + d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._headers, self._field, self._buf = {}, None, bytearray()
        self._writing = False

    def _header_end(self) -> None:
        self._headers[self._hname.strip().lower()] = self._hvalue.strip()
        self._hname = self._hvalue = b""

    def _headers_done(self) -> None:
        raw = self._headers.get(b"content-disposition", b"")
        _, params = parse_options_header(raw)
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = _filename(raw, params)
        if filename is not None and self._out is None and name in (self.file_field, ""):
            u = self.upload
            u.filename = filename
            u.content_type = self._headers.get(b"content-type", b"").decode("latin-1") or None
            u.tmp = self.tmp_dir / f"upload-{secrets.token_hex(8)}"
            self._out = open(u.tmp, "wb")  # noqa: SIM115 - closed in finish()
            self._digest = hashlib.sha256()
            self._writing = True
        elif filename is None:
            self._field = name

    def _data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._writing and not self.too_large:
            self.upload.size += len(chunk)
            if self.upload.size > self.limit:
                self.too_large = True
                return
            assert self._out is not None
            self._out.write(chunk)
            self._digest.update(chunk)
        elif self._field is not None and len(self._buf) < MAX_FIELD:
            self._buf += chunk

    def _end(self) -> None:
        if self._writing:
            self._writing = False
            self.finish()
        elif self._field is not None:
            self.upload.fields[self._field] = self._buf.decode("utf-8", "replace")

    def finish(self) -> None:
        if self._out is not None and not self._out.closed:
            self._out.close()
            self.upload.sha256 = self._digest.hexdigest()


def _filename(raw: bytes, params: dict[bytes, bytes]) -> str | None:
    m = _EXT.search(raw.decode("latin-1"))
    if m:  # RFC 8187: UTF-8 or ISO-8859-1; anything else is read as UTF-8, never as a codec
        latin = m.group(1).lower() in ("iso-8859-1", "latin-1", "latin1")
        return unquote(m.group(2), encoding="latin-1" if latin else "utf-8", errors="replace")
    if b"filename" not in params:
        return None
    text = params[b"filename"].decode("utf-8", "replace")
    return unquote(text) if "%" in text else text  # aiohttp percent-encodes (AutoGen)


def _boundary(content_type: str, first: bytes) -> bytes | None:
    ctype, params = parse_options_header(content_type)
    if ctype.startswith(b"multipart/") and params.get(b"boundary"):
        return params[b"boundary"]
    # a multipart body under another content type (Semantic Kernel's leaked JSON header)
    if first.startswith(b"--"):
        line = first[2:].split(b"\r\n", 1)[0].strip()
        if 0 < len(line) <= 200:
            return line
    return None


async def receive_upload(
    request: Request, files: FileStore, limit: int, file_field: str = "file"
) -> Upload:
    """Read a multipart body; the file part goes to a temporary file in the blob store's
    ``tmp``. Refused (StorageFull) when LCI_HOME is below its floor, before or while
    reading: an upload never takes the disk past it."""
    room = files.room()
    if room <= 0:
        raise StorageFull(files.free(), files.min_free)
    parts = _Parts(files.blobs / "tmp", limit, file_field)
    parser: MultipartParser | None = None
    stream = request.stream()
    total = 0
    try:
        async for chunk in stream:
            if not chunk:
                continue
            total += len(chunk)
            if total > room:
                raise StorageFull(files.free(), files.min_free)
            if parser is None:
                boundary = _boundary(request.headers.get("content-type", ""), chunk)
                if boundary is None:
                    raise ApiError(
                        415,
                        "Expected a multipart/form-data body with a 'file' part.",
                        param="file",
                    )
                parser = MultipartParser(boundary, parts.callbacks())  # type: ignore[arg-type]
            if parts.too_large:
                if total > limit + DRAIN_LIMIT:
                    break
                continue
            try:
                parser.write(chunk)
            except MultipartParseError as exc:
                raise ApiError(400, f"The multipart body is malformed: {exc}") from None
        if parser is not None and not parts.too_large:
            parser.finalize()
    except BaseException:
        parts.finish()
        parts.upload.discard()
        raise
    parts.finish()
    if parts.too_large:
        parts.upload.discard()
        what = repr(parts.upload.filename) if parts.upload.filename else "The upload"
        raise ApiError(
            413,
            f"{what} is over the upload limit of {limit} bytes (LCI_MAX_UPLOAD_BYTES).",
            "file_too_large",
            "file",
        )
    if parts.upload.tmp is None:
        raise ApiError(400, f"The multipart body has no '{file_field}' part.", param=file_field)
    return parts.upload


def cleanup_tmp(tmp_dir: Path) -> None:
    """Remove uploads a killed process left behind."""
    for p in tmp_dir.glob("upload-*"):
        p.unlink(missing_ok=True)
