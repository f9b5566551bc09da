"""The MCP face through the official MCP client (the ``mcp`` package), nothing mocked.

stdio: ``python -m interpreter mcp`` spawned by ``mcp.client.stdio.stdio_client``.
HTTP: the real ``lci serve`` (``mcp_server``), streamable HTTP at ``/mcp``, two tenants.

The client is mcp 1.x or 2.x, whichever the test's venv has (``mcp_client`` hides the
difference); the servers run under the same interpreter, unless LCI_MCP_SERVER_PYTHON
names another one (a venv with the other generation): a cross-version run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import StdioServerParameters
from mcp.types import (
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

from interpreter import Settings

from ..conftest import _HOMES
from . import mcp_client
from .conftest import LiveServer, start_server, stop_server
from .mcp_client import MCPError, wire

pytestmark = [pytest.mark.docker, pytest.mark.anyio]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [3, 1, 2])\nplt.show()"
TOOLS = {"execute_python", "upload_file", "list_files", "download_file"}


# -- clients ---------------------------------------------------------------------------


SERVER_PYTHON = os.environ.get("LCI_MCP_SERVER_PYTHON") or sys.executable


@asynccontextmanager
async def stdio_session(settings: Settings) -> AsyncIterator[Any]:
    """``lci mcp`` as an MCP client host would start it, with a test home."""
    env = {**os.environ, "LCI_HOME": str(settings.home), "LCI_IMAGE": str(settings.sandbox.image)}
    params = StdioServerParameters(
        command=SERVER_PYTHON, args=["-m", "interpreter", "mcp"], env=env
    )
    errlog = settings.home / "mcp-stderr.log"  # the server's stderr, for a failing test
    with open(errlog, "w") as err:
        async with mcp_client.stdio_session(params, err) as session:
            yield session


@asynccontextmanager
async def http_session(server: LiveServer, key: str) -> AsyncIterator[Any]:
    headers = {"Authorization": f"Bearer {key}"}
    async with mcp_client.http_session(f"{server.url}/mcp", headers) as session:
        yield session


async def call(client: Any, tool: str, /, **arguments: Any) -> CallToolResult:
    result = await client.call_tool(tool, arguments)
    assert isinstance(result, CallToolResult)
    return result


def is_error(result: CallToolResult) -> bool:
    return bool(wire(result, "isError"))


def structured(result: CallToolResult) -> Any:
    return wire(result, "structuredContent")


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


async def run_ok(client: Any, code: str, /, **arguments: Any) -> CallToolResult:
    result = await call(client, "execute_python", code=code, **arguments)
    assert not is_error(result), text_of(result)
    return result


def png_images(result: CallToolResult) -> list[bytes]:
    images = [c for c in result.content if isinstance(c, ImageContent)]
    assert all(wire(i, "mimeType") == "image/png" for i in images)
    return [base64.b64decode(i.data) for i in images]


def embedded_bytes(result: CallToolResult) -> bytes:
    [resource] = [c.resource for c in result.content if isinstance(c, EmbeddedResource)]
    return resource_bytes(resource)


def resource_bytes(resource: TextResourceContents | BlobResourceContents) -> bytes:
    if isinstance(resource, TextResourceContents):
        return resource.text.encode()
    return base64.b64decode(resource.blob)


# -- stdio -----------------------------------------------------------------------------


async def test_stdio_keeps_state_and_reports_code_errors(settings, manager):
    async with stdio_session(settings) as mcp:
        listed = await mcp.list_tools()
        assert {t.name for t in listed.tools} == TOOLS
        described = {t.name: t.description or "" for t in listed.tools}
        assert "/mnt/data" in described["execute_python"]

        await run_ok(mcp, "import json\nsecret = 41")
        result = await run_ok(mcp, "print(json.dumps({'answer': secret + 1}))")
        assert text_of(result).strip() == '{"answer": 42}'
        assert structured(result) and structured(result)["status"] == "ok"

        failed = await call(mcp, "execute_python", code="secret / 0")
        assert is_error(failed)
        report = text_of(failed)
        assert "ZeroDivisionError: division by zero" in report and "Status: error" in report
        assert structured(failed)
        assert structured(failed)["error"]["ename"] == "ZeroDivisionError"
        slow = await call(mcp, "execute_python", code="import time; time.sleep(60)", timeout=1)
        assert is_error(slow) and "Status: timeout" in text_of(slow)
        assert structured(slow) and structured(slow)["status"] == "timeout"
        # an error in the code is a result: the session and its state go on
        assert text_of(await run_ok(mcp, "secret")).strip() == "41"

        # a separate session is a separate kernel
        other = await call(mcp, "execute_python", code="secret", session="elsewhere")
        assert is_error(other) and "NameError" in text_of(other)

        # an engine-side refusal is a tool error with a message, not a traceback
        bad = await call(mcp, "upload_file", filename="../escape.txt", content_base64="aGk=")
        assert is_error(bad)
        assert "InvalidFilename" in text_of(bad) and "Traceback" not in text_of(bad)


async def test_stdio_plot_comes_back_as_png_image(settings, manager):
    async with stdio_session(settings) as mcp:
        result = await run_ok(mcp, PLOT)
        [png] = png_images(result)
        assert png.startswith(PNG_MAGIC) and len(png) > 1000


async def test_stdio_files_round_trip_with_exact_bytes(settings, manager):
    blob = bytes(range(256)) * 64  # not UTF-8: comes back as a blob
    async with stdio_session(settings) as mcp:
        # produced by code: a resource link per file, listed, downloadable, readable
        result = await run_ok(
            mcp,
            "data = bytes(range(256)) * 64\n"
            "open('/mnt/data/out.bin', 'wb').write(data)\n"
            "open('/mnt/data/notes.txt', 'w').write('héllo\\nwörld\\n')",
        )
        links = {c.name: c for c in result.content if isinstance(c, ResourceLink)}
        assert set(links) == {"out.bin", "notes.txt"}
        assert links["out.bin"].size == len(blob) and str(links["out.bin"].uri).startswith(
            "lci://files/file-"
        )
        assert wire(links["notes.txt"], "mimeType") == "text/plain"

        listed = json.loads(text_of(await call(mcp, "list_files")))
        by_path = {f["path"]: f for f in listed}
        assert by_path["/mnt/data/out.bin"]["bytes"] == len(blob)
        assert by_path["/mnt/data/out.bin"]["source"] == "assistant"

        download = await call(mcp, "download_file", path="/mnt/data/out.bin")
        assert not is_error(download) and embedded_bytes(download) == blob
        text = await call(mcp, "download_file", path="notes.txt")
        [embedded] = [c for c in text.content if isinstance(c, EmbeddedResource)]
        assert isinstance(embedded.resource, TextResourceContents)
        assert embedded.resource.text == "héllo\nwörld\n"
        by_id = await call(mcp, "download_file", path=by_path["/mnt/data/out.bin"]["file_id"])
        assert embedded_bytes(by_id) == blob

        read = await mcp.read_resource(links["out.bin"].uri)
        [contents] = read.contents
        assert resource_bytes(contents) == blob
        assert wire(contents, "mimeType") == "application/octet-stream"
        templates = await mcp.list_resource_templates()
        uri_templates = [wire(t, "uriTemplate") for t in wire(templates, "resourceTemplates")]
        assert uri_templates == ["lci://files/{file_id}"]

        # uploaded by the client: readable from code at the path it names
        upload = await call(
            mcp,
            "upload_file",
            filename="in/data.bin",
            content_base64=base64.b64encode(blob).decode(),
        )
        assert not is_error(upload) and structured(upload)
        assert structured(upload)["path"] == "/mnt/data/in/data.bin"
        digest = await run_ok(
            mcp,
            "import hashlib\nprint(hashlib.sha256(open('/mnt/data/in/data.bin','rb').read())"
            ".hexdigest())",
        )
        assert text_of(digest).strip() == hashlib.sha256(blob).hexdigest()
        listed = json.loads(text_of(await call(mcp, "list_files")))
        assert {"path": "/mnt/data/in/data.bin", "source": "user"}.items() <= next(
            f for f in listed if f["path"] == "/mnt/data/in/data.bin"
        ).items()

        missing = await call(mcp, "download_file", path="nope.txt")
        assert is_error(missing) and "list_files" in text_of(missing)
        with pytest.raises(MCPError):
            await mcp.read_resource("lci://files/file-000000000000000000000000")


# -- streamable HTTP on the service ------------------------------------------------------


@pytest.fixture(scope="module")
def mcp_server(request: pytest.FixtureRequest, sandbox_image: str) -> Iterator[LiveServer]:
    """The shared ``lci serve``; in a cross-version run, one of its own under SERVER_PYTHON."""
    if sys.executable == SERVER_PYTHON:
        yield request.getfixturevalue("live_server")
        return
    home = Path(tempfile.mkdtemp(prefix="lci-e-", dir="/tmp"))
    _HOMES.append(Settings(home=home, image=sandbox_image))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "executable", SERVER_PYTHON)  # what start_server runs
        server = start_server(home, sandbox_image)
    yield server
    stop_server(server)
    shutil.rmtree(home, ignore_errors=True)


def executions_ok(server: LiveServer) -> float:
    """alice's count of executions that ended ok, from /metrics."""
    text = httpx.get(f"{server.url}/metrics", headers=server.headers()).text
    key = 'lci_executions_total{status="ok",tenant="alice"}'
    return float(next(line for line in text.splitlines() if line.startswith(key)).split()[-1])


async def test_http_execute_returns_text_and_image(mcp_server):
    session = "mcp-" + uuid.uuid4().hex[:8]
    before = executions_ok(mcp_server)
    async with http_session(mcp_server, mcp_server.key) as mcp:
        assert {t.name for t in (await mcp.list_tools()).tools} == TOOLS
        await run_ok(mcp, "n = 20", session=session)
        result = await run_ok(mcp, "print(n + 1)\n" + PLOT, session=session)
        assert text_of(result).startswith("21")
        [png] = png_images(result)
        assert png.startswith(PNG_MAGIC)
    assert executions_ok(mcp_server) >= before + 2  # /metrics counts MCP executions


async def test_http_upload_past_the_sdk_default_body_limit(mcp_server):
    """The SDK refuses request bodies over 4 MiB unless told otherwise; lci tells it
    MAX_REQUEST_BYTES (a constructor argument in mcp 1.x, an HTTP-app one in 2.x)."""
    blob = os.urandom(5 * 1024**2)
    encoded = base64.b64encode(blob).decode()
    async with http_session(mcp_server, mcp_server.key) as mcp:
        upload = await call(mcp, "upload_file", filename="big.bin", content_base64=encoded)
        assert not is_error(upload), text_of(upload)
        assert structured(upload)["bytes"] == len(blob)


async def test_http_without_a_key_is_refused(mcp_server):
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"},
        },
    }
    accept = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=30) as http:
        bare = await http.post(f"{mcp_server.url}/mcp", json=init, headers=accept)
        assert bare.status_code == 401
        wrong = await http.post(
            f"{mcp_server.url}/mcp",
            json=init,
            headers={**accept, "Authorization": "Bearer not-a-key-at-all"},
        )
        assert wrong.status_code == 401
        good = await http.post(
            f"{mcp_server.url}/mcp", json=init, headers={**accept, **mcp_server.headers()}
        )
        assert good.status_code == 200  # the endpoint is exactly /mcp: no redirect
    with pytest.raises(BaseException) as refused:  # the official client gives up too
        async with http_session(mcp_server, "not-a-key-at-all"):
            pass
    assert mcp_client.refused(refused.value, 401, "wrong API key"), repr(refused.value)


async def test_http_tenants_are_isolated(mcp_server):
    session = "shared-" + uuid.uuid4().hex[:8]  # the same name for both tenants
    async with http_session(mcp_server, mcp_server.key) as alice:
        made = await run_ok(
            alice, "secret = 7\nopen('/mnt/data/alice.txt', 'w').write('mine')", session=session
        )
        [link] = [c for c in made.content if isinstance(c, ResourceLink)]
        file_id = str(link.uri).rsplit("/", 1)[-1]
        assert embedded_bytes(await call(alice, "download_file", path=file_id)) == b"mine"

    async with http_session(mcp_server, mcp_server.other_key) as bob:
        same_name = await call(bob, "execute_python", code="secret", session=session)
        assert is_error(same_name) and "NameError" in text_of(same_name)
        assert json.loads(text_of(await call(bob, "list_files", session=session))) == []
        stolen = await call(bob, "download_file", path=file_id)
        assert is_error(stolen) and "mine" not in text_of(stolen)
        by_path = await call(bob, "download_file", path="alice.txt", session=session)
        assert is_error(by_path)
        with pytest.raises(MCPError):
            await bob.read_resource(link.uri)

    async with http_session(mcp_server, mcp_server.key) as alice:
        # alice's session is untouched by bob's calls
        assert text_of(await run_ok(alice, "secret", session=session)).strip() == "7"


async def test_an_mcp_session_belongs_to_the_tenant_that_opened_it(mcp_server):
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"},
        },
    }
    tools = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    alice = {**accept, **mcp_server.headers()}
    bob = {**accept, **mcp_server.headers(mcp_server.other_key)}
    async with httpx.AsyncClient(base_url=mcp_server.url, timeout=30) as http:
        opened = await http.post("/mcp", json=init, headers=alice)
        sid = opened.headers["mcp-session-id"]
        done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        mine = {**alice, "mcp-session-id": sid}
        assert (await http.post("/mcp", json=done, headers=mine)).status_code == 202
        theirs = {**bob, "mcp-session-id": sid}
        for method, body in (("POST", tools), ("POST", done), ("GET", None), ("DELETE", None)):
            r = await http.request(method, "/mcp", json=body, headers=theirs)
            assert r.status_code == 404, (method, r.status_code, r.text)
            assert "Session not found" in r.text  # exactly as for an unknown session
        listed = await http.post("/mcp", json=tools, headers=mine)  # alice's goes on
        assert listed.status_code == 200 and "execute_python" in listed.text
        assert (await http.request("DELETE", "/mcp", headers=mine)).status_code == 200
        gone = await http.post("/mcp", json=tools, headers=mine)
        assert gone.status_code == 404
