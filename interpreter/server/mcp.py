"""The MCP face: a Model Context Protocol server over the session manager.

Tools run Python in a named session (a thread), upload, list and download the files
of its /mnt/data; stored files are also resources, ``lci://files/{file_id}``. Served
over stdio (``lci mcp``, the local tenant, like ``lci run``) and over streamable HTTP
on the service (``/mcp``), where every call acts for the tenant that lci's API-key
middleware put in ``scope["state"]["tenant"]``. This module knows MCP and calls the
manager; it holds no state of its own.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import (
    BlobResourceContents,
    CallToolResult,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
    ToolAnnotations,
)
from pydantic import AnyUrl, Field
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings, format_bytes
from ..errors import InterpreterError, NoSuchFile
from ..manager import SessionManager
from ..results import Execution, ExecutionStatus, FileInfo
from ..workspace import MOUNT
from .mcp_sdk import Context, ResourceError, Server, StreamableHTTPASGIApp, ToolError, resource_uri
from .utf8 import clean, scrub

__all__ = ["create_mcp", "http_route", "run_stdio"]

FILE_PREFIX = "lci://files/"
FILE_URI = FILE_PREFIX + "{file_id}"
FILE_ID = re.compile(r"file-[0-9a-f]{24}")
MAX_INLINE_BYTES = 16 * 1024**2  # a download bigger than this is refused, not inlined
MAX_REQUEST_BYTES = 48 * 1024**2  # one HTTP request (an upload_file call is most of it)
STRUCTURED = ("status", "thread_id", "id", "error", "files", "state_lost", "log_file_id")
TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "image/svg+xml")
Timeout = Annotated[float | None, Field(gt=0, le=86400)]
INSTRUCTIONS = (
    "Runs Python in sandboxed Jupyter kernels. A session (any name; 'default' unless you "
    f"pass one) keeps variables, imports and the files in {MOUNT} between calls, like a "
    "notebook. Upload inputs with upload_file, write results to "
    f"{MOUNT}, and fetch them with download_file."
)


class _Server(Server):
    """The SDK's server, answering ``lci://files/...`` reads with each file's own MIME type."""

    def __init__(self, tools: _Tools, **settings: Any) -> None:
        super().__init__(**settings)
        self.lci = tools

    async def read_resource(
        self, uri: AnyUrl | str, context: Context | None = None
    ) -> Iterable[ReadResourceContents]:
        if not str(uri).startswith(FILE_PREFIX):
            return await self.read_registered(uri, context)
        file_id = str(uri)[len(FILE_PREFIX) :]
        try:
            info, data = await self.lci.stored(self.context(context), file_id)
        except ToolError as exc:
            raise ResourceError(str(exc)) from exc
        text = _as_text(data, info)
        return [
            ReadResourceContents(content=data if text is None else text, mime_type=info.mime_type)
        ]


class _Tools:
    """The tools; their docstrings are the descriptions a model reads."""

    def __init__(self, get_manager: Callable[[], SessionManager]) -> None:
        self.manager = get_manager

    async def execute_python(
        self, code: str, ctx: Context, session: str = "default", timeout: Timeout = None
    ) -> CallToolResult:
        """Run Python code in a sandboxed Jupyter kernel and return what it printed.

        The session (default "default"; any other name is a separate sandbox) keeps
        variables, imports and files between calls, like a notebook. The value of the last
        expression is shown. Files live in /mnt/data: read uploads from there and save
        results there; each file the code writes comes back as a resource link
        (lci://files/<file_id>). Plots (matplotlib plt.show(), PIL images displayed) come
        back as images. Expect no internet access. If the code raises, the result is
        marked as an error and shows the traceback; the session keeps its state.
        timeout: seconds before the code is interrupted (default: the server's limit).
        """
        tenant, manager = _tenant(ctx), self.manager()
        if len(code.encode()) > manager.settings.limits.max_code_bytes:
            raise ToolError(f"The code is over {manager.settings.limits.max_code_bytes} bytes.")
        with _edge():
            sess = await manager.session(session, tenant=tenant)
            exe = await sess.execute(code, timeout=timeout)
            content: list[ContentBlock] = [TextContent(type="text", text=scrub(_report(exe)))]
            for file_id in exe.images:
                info, data = await self.stored(ctx, file_id)
                b64 = base64.b64encode(data).decode()
                content.append(ImageContent(type="image", data=b64, mimeType=info.mime_type))
            for f in exe.files:
                info = await manager.files.get(f.file_id, tenant)
                content.append(_link(info, f.path))
        return CallToolResult(
            content=content,
            structuredContent=clean({k: v for k, v in exe.to_dict().items() if k in STRUCTURED}),
            isError=exe.status is not ExecutionStatus.OK,
        )

    async def upload_file(
        self, filename: str, content_base64: str, ctx: Context, session: str = "default"
    ) -> CallToolResult:
        """Put a file into the session's /mnt/data so code can read it.

        filename: a name such as "data.csv" or "in/data.csv" (relative to /mnt/data; an
        existing file is overwritten). content_base64: the file's bytes, base64-encoded
        (up to about UPLOAD_LIMIT decoded). Returns the path to open from code and the
        file's id.
        """
        tenant, manager = _tenant(ctx), self.manager()
        try:
            data = base64.b64decode(content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ToolError("content_base64 is not valid base64.") from None
        with _edge():
            info = await manager.files.upload_info(data, filename, tenant=tenant, thread_id=session)
            sess = await manager.session(session, tenant=tenant)
            placed = await sess.put_file(filename, info.id)
        text = f"Uploaded {placed.full_path} ({placed.bytes} bytes, file id {info.id})."
        return CallToolResult(
            content=[TextContent(type="text", text=text)],
            structuredContent={"path": placed.full_path, "file_id": info.id, "bytes": info.bytes},
        )

    async def list_files(self, ctx: Context, session: str = "default") -> CallToolResult:
        """List the files in the session's /mnt/data (uploaded or written by code).

        Returns JSON: for each file its path, size in bytes, file_id (for download_file
        and lci://files/<file_id>) and source ("user" uploaded it, "assistant" = code wrote it).
        Starts the session's sandbox if it is not running.
        """
        tenant, manager = _tenant(ctx), self.manager()
        with _edge():
            sess = await manager.session(session, tenant=tenant)
            files = await sess.list_files()
        rows = [
            {"path": f.full_path, "bytes": f.bytes, "file_id": f.file_id, "source": f.source}
            for f in files
        ]
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(rows, indent=1))],
            structuredContent=clean({"files": rows}),
        )

    async def download_file(
        self, path: str, ctx: Context, session: str = "default"
    ) -> list[ContentBlock]:
        """Return a file's contents: text for text files, base64 (blob) otherwise.

        path: a path in the session's /mnt/data ("/mnt/data/out.csv" or "out.csv"), or a
        file id ("file-..."), e.g. one from execute_python or list_files. Files over 16 MiB
        are refused.
        """
        tenant, manager = _tenant(ctx), self.manager()
        with _edge():
            file_id = path
            if not FILE_ID.fullmatch(path):
                sess = await manager.session(session, tenant=tenant)
                rel = path.removeprefix(MOUNT + "/")
                found = [f for f in await sess.list_files() if f.path == rel]
                if not found:
                    raise NoSuchFile(f"{MOUNT}/{rel}")
                file_id = found[0].file_id
        info, data = await self.stored(ctx, file_id)
        note = scrub(f"{info.filename}: {info.bytes} bytes, {info.mime_type}, file id {info.id}")
        return [TextContent(type="text", text=note), _embedded(info, data)]

    async def stored_file(self, file_id: str, ctx: Context) -> bytes:
        """A stored file (uploaded, or written by code) by its id."""
        return (await self.stored(ctx, file_id))[1]

    async def stored(self, ctx: Context, file_id: str) -> tuple[FileInfo, bytes]:
        tenant, manager = _tenant(ctx), self.manager()
        with _edge():
            info = await manager.files.get(file_id, tenant)
            if info.bytes > MAX_INLINE_BYTES:
                raise ToolError(
                    f"{info.filename} is {info.bytes} bytes, over the {MAX_INLINE_BYTES} bytes "
                    "MCP returns inline; split or compress it in the sandbox first."
                )
            return info, await manager.files.content(file_id, tenant)


def create_mcp(
    get_manager: Callable[[], SessionManager],
    *,
    stateless: bool = False,
    max_request_bytes: int = MAX_REQUEST_BYTES,
) -> Server:
    """The MCP server. ``get_manager`` is called on each request (the service opens its
    manager in its lifespan, after this is built). Over HTTP the endpoint is exactly
    ``/mcp``: add ``http_route(server)`` to the app and run ``server.session_manager.run()``
    in its lifespan."""
    _quiet_sdk()
    tools = _Tools(get_manager)
    http = {
        "stateless_http": stateless,
        "streamable_http_path": "/mcp",
        "max_request_body_size": max_request_bytes,
        # Every HTTP request carries an API key the auth middleware checks, which a
        # DNS-rebinding page cannot send; the SDK's host allow-list would only refuse
        # legitimate clients that reach the service by name.
        "transport_security": TransportSecuritySettings(enable_dns_rebinding_protection=False),
    }
    server = _Server(
        tools,
        name="lci",
        instructions=INSTRUCTIONS,
        log_level="WARNING",  # the SDK configures the root logger: no louder than Python's default
        http=http,
    )
    upload_limit = format_bytes(max_request_bytes * 3 // 4 - 64 * 1024)
    writes = ToolAnnotations(readOnlyHint=False, destructiveHint=True)  # overwrites, runs code
    reads = ToolAnnotations(readOnlyHint=True, openWorldHint=False)
    for fn, title, hints in (
        (tools.execute_python, "Run Python", writes),
        (tools.upload_file, "Upload a file", writes),
        (tools.list_files, "List files", reads),
        (tools.download_file, "Download a file", reads),
    ):
        doc = (inspect.getdoc(fn) or "").replace("UPLOAD_LIMIT", upload_limit)
        server.add_tool(
            fn, title=title, description=doc, annotations=hints, structured_output=False
        )
    server.resource(FILE_URI, name="file", mime_type="application/octet-stream")(tools.stored_file)
    return server


def http_route(server: Server, path: str = "/mcp") -> Route:
    """The streamable HTTP endpoint at exactly ``path`` (a mount would redirect ``/mcp``
    to ``/mcp/``). Creates ``server.session_manager``."""
    server.http_app()
    return Route(path, endpoint=_TenantBound(StreamableHTTPASGIApp(server.session_manager)))


class _TenantBound:
    """Tell the MCP SDK who is calling: the tenant the key check found, as the
    authenticated user. The SDK binds each MCP session to the user that opened it and
    answers any other user's use of its ``mcp-session-id`` (POST, GET or DELETE) with
    404, exactly as for an unknown session."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tenant = (scope.get("state") or {}).get("tenant")
        if isinstance(tenant, str) and tenant:
            token = AccessToken(token="", client_id=f"lci-tenant:{tenant}", scopes=[])
            scope["user"] = AuthenticatedUser(token)
        await self.app(scope, receive, send)


async def run_stdio(settings: Settings) -> None:
    """Serve MCP on stdin/stdout until the client closes them (``lci mcp``)."""
    async with SessionManager(settings) as manager:
        await create_mcp(lambda: manager).run_stdio_async()


# -- helpers -----------------------------------------------------------------------------


class _ClosedStreamNoise(logging.Filter):
    """mcp 1.30 logs a traceback ("Error in standalone SSE writer": ClosedResourceError)
    each time a client ends its session with DELETE while its GET stream is open: a
    normal disconnect, not an error. Drop just those records."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, anyio.ClosedResourceError)


def _quiet_sdk() -> None:
    sdk = logging.getLogger("mcp.server.streamable_http")
    if not any(isinstance(f, _ClosedStreamNoise) for f in sdk.filters):
        sdk.addFilter(_ClosedStreamNoise())


def _tenant(ctx: Context) -> str:
    """The tenant of this request: from the auth middleware over HTTP, ``""`` over stdio."""
    try:
        request = ctx.request_context.request
    except ValueError:
        request = None
    if request is None:
        return ""  # stdio: the local tenant, the same as `lci run`
    tenant = getattr(getattr(request, "state", None), "tenant", None)
    if not isinstance(tenant, str) or not tenant:
        raise ToolError("This request carries no tenant: /mcp must sit behind the API-key check.")
    return tenant


@contextmanager
def _edge() -> Iterator[None]:
    """Core errors become tool errors with their own message (never a traceback)."""
    try:
        yield
    except NoSuchFile as exc:
        raise ToolError(
            f"No file {exc.file_id!r} here: list_files shows the files of a session."
        ) from exc
    except InterpreterError as exc:
        raise ToolError(f"{type(exc).__name__}: {exc}") from exc


def _report(exe: Execution) -> str:
    parts = [f"Notice: {exe.notice}"] if exe.notice else []
    parts.append(exe.logs.rstrip("\n") or "(no output)")
    err = exe.error
    if exe.status is ExecutionStatus.ERROR and err is not None:
        parts.append(
            f"Status: error. The code raised {err.ename}: {err.evalue}\n"
            "The session keeps its state: what was defined before the error still exists."
        )
    elif exe.status in (ExecutionStatus.TIMEOUT, ExecutionStatus.DIED, ExecutionStatus.CANCELLED):
        parts.append(f"Status: {exe.status}. {err.evalue if err else ''}".rstrip())
    if exe.files:
        lines = [f"- {f.path} ({f.bytes} bytes, file id {f.file_id})" for f in exe.files]
        parts.append(f"Files written to {MOUNT}:\n" + "\n".join(lines))
    return "\n\n".join(parts)


def _link(info: FileInfo, path: str) -> ResourceLink:
    return ResourceLink(
        type="resource_link",
        uri=resource_uri(FILE_URI.format(file_id=info.id)),
        name=scrub(info.filename),
        title=scrub(path),
        description=scrub(f"{path}, written by the code (file id {info.id})"),
        mimeType=info.mime_type,
        size=info.bytes,
    )


def _as_text(data: bytes, info: FileInfo) -> str | None:
    """The contents as text when the type is textual and the bytes are UTF-8."""
    if not (info.mime_type.startswith("text/") or info.mime_type in TEXT_TYPES):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _embedded(info: FileInfo, data: bytes) -> EmbeddedResource:
    at, mime = resource_uri(FILE_URI.format(file_id=info.id)), info.mime_type
    text = _as_text(data, info)
    if text is not None:
        return EmbeddedResource(
            type="resource", resource=TextResourceContents(uri=at, mimeType=mime, text=text)
        )
    blob = base64.b64encode(data).decode()
    return EmbeddedResource(
        type="resource", resource=BlobResourceContents(uri=at, mimeType=mime, blob=blob)
    )
