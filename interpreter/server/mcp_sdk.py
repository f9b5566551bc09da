"""The MCP SDK's server as ``server/mcp.py`` uses it, for either generation of the SDK.

mcp 1.x and mcp 2.x agree on nearly everything the MCP face touches: the protocol
types (built with their wire names, ``mimeType=``), ``Context.request_context``,
tool errors becoming ``isError`` results, the streamable-HTTP session manager and
its binding of each session to the user that opened it, ``TransportSecuritySettings``.
They differ in four places, and this module is the only one that knows it:

- the server class: ``mcp.server.fastmcp.FastMCP`` (1.x), renamed
  ``mcp.server.mcpserver.MCPServer`` (2.x), with its ``Context`` and exceptions;
- the streamable-HTTP settings: constructor arguments in 1.x, arguments of
  ``streamable_http_app()`` in 2.x (``Server`` takes them once, as ``http``);
- a resource read's context: ambient (``get_context()``) in 1.x, passed to
  ``read_resource`` in 2.x (``Server.context``, ``Server.read_registered``);
- resource URIs: pydantic ``AnyUrl`` in 1.x, plain ``str`` in 2.x (``resource_uri``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mcp.server.lowlevel.helper_types import ReadResourceContents
from pydantic import AnyUrl
from starlette.applications import Starlette

try:  # mcp 1.x
    from mcp.server.fastmcp import Context
    from mcp.server.fastmcp import FastMCP as _SDKServer
    from mcp.server.fastmcp.exceptions import ResourceError, ToolError
    from mcp.server.fastmcp.server import StreamableHTTPASGIApp

    GENERATION = 1
except ModuleNotFoundError:  # mcp 2.x: mcp.server.fastmcp raises, pointing to the new name
    # (mypy checks against mcp 1.x: it sees these as redefinitions)
    from mcp.server.mcpserver import Context  # type: ignore[no-redef]
    from mcp.server.mcpserver import MCPServer as _SDKServer  # type: ignore[no-redef]
    from mcp.server.mcpserver.exceptions import (  # type: ignore[no-redef]
        ResourceError,
        ToolError,
    )
    from mcp.server.streamable_http_manager import (  # type: ignore[attr-defined,no-redef]
        StreamableHTTPASGIApp,
    )

    GENERATION = 2

__all__ = [
    "GENERATION",
    "Context",
    "ResourceError",
    "Server",
    "StreamableHTTPASGIApp",
    "ToolError",
    "resource_uri",
]


class Server(_SDKServer[Any]):
    """The SDK's high-level server (FastMCP, or MCPServer), built the same way for both:
    ``http`` holds the streamable-HTTP transport's settings (``streamable_http_path``,
    ``stateless_http``, ``max_request_body_size``, ``transport_security``, the same
    keywords in both generations), applied by ``http_app()``."""

    def __init__(self, *, http: dict[str, Any], **identity: Any) -> None:
        if GENERATION == 1:
            super().__init__(**identity, **http)
        else:
            super().__init__(**identity)
        self._http = http

    def http_app(self) -> Starlette:
        """The streamable-HTTP app; building it creates ``self.session_manager``."""
        if GENERATION == 1:
            return self.streamable_http_app()
        return self.streamable_http_app(**self._http)

    def context(self, given: Context | None) -> Context:
        """The context of the request being served, in a ``read_resource`` override."""
        return given if given is not None else self.get_context()

    async def read_registered(
        self, uri: AnyUrl | str, context: Context | None
    ) -> Iterable[ReadResourceContents]:
        """The SDK's own ``read_resource``: what ``resource()`` registered."""
        if GENERATION == 1:
            return await super().read_resource(uri)
        return await super().read_resource(uri, context)  # type: ignore[call-arg]


def resource_uri(text: str) -> AnyUrl:
    """A resource URI as the installed protocol types take it (a ``str`` in 2.x)."""
    return AnyUrl(text) if GENERATION == 1 else text  # type: ignore[return-value]
