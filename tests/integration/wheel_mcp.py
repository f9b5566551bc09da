"""One ``execute_python`` call over streamable HTTP with the official MCP client, mcp 2.x.

test_wheel.py runs it with the python of the venv the wheel was installed into, so
the client is the mcp that ``pip install lci`` resolved, and no checkout is on the path.
Prints the result as one JSON object: its text, its images' MIME types, is_error.

    python wheel_mcp.py URL KEY CODE
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx2
import mcp
from mcp.client.streamable_http import streamable_http_client


async def execute(url: str, key: str, code: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout) as http,
        mcp.Client(streamable_http_client(url, http_client=http)) as client,
    ):
        result = await client.call_tool("execute_python", {"code": code})
    return {
        "text": "".join(c.text for c in result.content if c.type == "text"),
        "images": [c.mime_type for c in result.content if c.type == "image"],
        "is_error": result.is_error,
    }


def main() -> None:
    url, key, code = sys.argv[1:4]
    print(json.dumps(asyncio.run(execute(url, key, code))))


if __name__ == "__main__":
    main()
