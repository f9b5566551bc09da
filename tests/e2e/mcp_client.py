"""The official MCP client (the ``mcp`` package) of whichever generation is installed.

The MCP tests drive lci with the real client, mcp 1.x or mcp 2.x; this module is
where the two differ, so the tests read the same under both:

- opening a session: over stdio a ``ClientSession`` with the ``initialize``
  handshake (both generations); over HTTP mcp 1.x does the same, while mcp 2.x uses
  its high-level ``Client``, which probes ``server/discover`` and speaks the
  2026-07-28 protocol to a 2.x server (one self-contained POST per request, no MCP
  session) and falls back to the handshake with a 1.x server;
- the HTTP client the transport takes: ``httpx`` (1.x), ``httpx2`` (2.x);
- the protocol error: ``McpError`` (1.x), ``MCPError`` (2.x);
- field names: camelCase attributes in 1.x, snake_case in 2.x; read them here by
  their wire (camelCase) names.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any, TextIO

import mcp
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

GENERATION = int(version("mcp").split(".")[0])

if GENERATION == 1:
    import httpx as http

    MCPError: type[Exception] = mcp.McpError
else:
    import httpx2 as http

    MCPError = mcp.MCPError

TIMEOUT = http.Timeout(30.0, read=300.0)  # the SDK's own defaults for streamable HTTP


@asynccontextmanager
async def stdio_session(params: StdioServerParameters, errlog: TextIO) -> AsyncIterator[Any]:
    async with stdio_client(params, errlog=errlog) as (r, w), ClientSession(r, w) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def http_session(url: str, headers: dict[str, str]) -> AsyncIterator[Any]:
    """A session with the streamable-HTTP endpoint ``url``."""
    async with http.AsyncClient(headers=headers, timeout=TIMEOUT) as client:
        if GENERATION == 1:
            async with (
                streamable_http_client(url, http_client=client) as (r, w, _),
                ClientSession(r, w) as session,
            ):
                await session.initialize()
                yield session
        else:
            async with mcp.Client(streamable_http_client(url, http_client=client)) as session:
                yield session


def refused(exc: BaseException, status: int, message: str) -> bool:
    """Whether the client gave up on the server's refusal: mcp 1.x raises the HTTP error
    (``status``), mcp 2.x the JSON-RPC error in the refusal's body (``message``)."""
    if isinstance(exc, BaseExceptionGroup):
        return any(refused(e, status, message) for e in exc.exceptions)
    if GENERATION == 1:
        return isinstance(exc, http.HTTPStatusError) and exc.response.status_code == status
    return isinstance(exc, MCPError) and message in str(exc)


def wire(obj: Any, name: str) -> Any:
    """The field a protocol type calls ``name`` on the wire (``isError``, ``mimeType``...)."""
    if GENERATION == 1:
        return getattr(obj, name)
    return getattr(obj, re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower())
