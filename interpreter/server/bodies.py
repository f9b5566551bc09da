"""Request bodies at the edge, after the key check and before any handler.

JSON bodies are small: one over the limit is refused before it is read into memory,
and one whose text UTF-8 cannot carry (a lone surrogate, as a ``\\ud800`` escape or as
raw bytes) is refused with a 400 that names the field, on every face: ``/v1``, the
Azure dialects, ``/v1/lci``, the Assistants routes and the MCP tool arguments (a
JSON-RPC error there). Uploads (multipart, streamed to disk) have their own limit and
other bodies (the ``/ui`` forms) are only counted.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import problems
from .utf8 import BadText, unencodable

__all__ = ["BodyGuard"]

# the only ways a decoded JSON string can hold a surrogate: an escape, or the bytes
# ED A0..BF (which Python's JSON decoder lets through). A cheap scan before a parse.
_SUSPECT = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


class BodyGuard:
    def __init__(self, app: ASGIApp, limit: int, mcp_limit: int) -> None:
        self.app, self.limit, self.mcp_limit = app, limit, mcp_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD") or _is_upload(scope):
            await self.app(scope, receive, send)
            return
        mcp = scope["path"] == problems.MCP
        limit = self.mcp_limit if mcp else self.limit
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await self._too_large(scope, limit)(scope, receive, send)
            return
        if b"json" in headers.get(b"content-type", b"").lower():
            await self._json(scope, receive, send, limit)
        elif mcp:
            await self.app(scope, receive, send)  # not JSON: the MCP SDK says 415
        else:
            await self.app(scope, self._counted(receive, limit), send)

    async def _json(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                return  # the client went away before it sent the body
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(scope, limit)(scope, receive, send)
                return
            chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        refusal = _check_text(scope, body)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # after the body: the disconnect, when it comes
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _counted(self, receive: Receive, limit: int) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > limit:
                raise problems.ApiError(413, _too_large_message(limit), "request_too_large")
            return msg

        return counted

    def _too_large(self, scope: Scope, limit: int) -> Any:
        return problems.render(scope["path"], 413, _too_large_message(limit), "request_too_large")


def _too_large_message(limit: int) -> str:
    return f"The request body is over {limit} bytes (see LCI_MAX_CODE_BYTES)."


def _check_text(scope: Scope, body: bytes) -> Any:
    """A 400 for a body whose text is not valid UTF-8, or None."""
    suspect = _SUSPECT.search(body) is not None
    broken = not suspect and not body.isascii() and not _utf8(body)
    if not (suspect or broken):
        return None
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        decoded = None  # not JSON: the handler says so, unless the bytes are the problem
    bad = unencodable(decoded) if decoded is not None else None
    if bad is None and not broken:
        return None
    message = bad.message() if bad else _not_utf8_message(body)
    return _refusal(scope, bad, message, decoded)


def _refusal(scope: Scope, bad: BadText | None, message: str, decoded: Any) -> Any:
    if scope["path"] == problems.MCP:
        request_id = decoded.get("id") if isinstance(decoded, dict) else None
        return problems.jsonrpc_error(400, message, problems.JSONRPC_INVALID_PARAMS, request_id)
    code = "invalid_unicode" if problems.is_openai(scope["path"]) else "InvalidUnicode"
    return problems.render(scope["path"], 400, message, code, bad.field if bad else None)


def _utf8(body: bytes) -> bool:
    if json.detect_encoding(body) != "utf-8":
        return True  # UTF-16/32 JSON: decoded as such downstream
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _not_utf8_message(body: bytes) -> str:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            f"The request body is not valid UTF-8 (byte 0x{body[exc.start]:02x} at offset"
            f" {exc.start}). Send JSON as UTF-8."
        )
    return "The request body is not valid UTF-8. Send JSON as UTF-8."


def _is_upload(scope: Scope) -> bool:
    """A multipart upload: streamed to disk by its route, under LCI_MAX_UPLOAD_BYTES.
    ``/v1/containers/{id}/files`` with a JSON body (``{"file_id": ...}``) is guarded like
    any JSON; Azure's paths are not, since Semantic Kernel sends its multipart uploads
    labelled ``application/json``."""
    path: str = scope["path"].rstrip("/")
    if scope["method"] != "POST" or not (path.endswith("/files") or path.endswith("/upload")):
        return False
    ctype = dict(scope.get("headers", [])).get(b"content-type", b"").lower()
    return not (path.startswith("/v1/containers/") and b"json" in ctype)
