"""The real Azure Container Apps dynamic-sessions clients against a real ``lci serve``.

Each client is the installed library, called the way its users call it; only the
endpoint and the token source change (PROTOCOLS.md 1.3 and section 5). Nothing is
mocked. The raw-HTTP tests at the end pin the wire quirks that not every client
exercises (PROTOCOLS.md 1.2, 1.5).

Every test uses a fresh identifier, so tests never share a session.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from interpreter import Settings

from ..conftest import _HOMES
from .conftest import LiveServer, start_server, stop_server

pytestmark = pytest.mark.docker

LEGACY = "2024-02-02-preview"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [3, 1, 2])\nplt.show()"
TIMEOUT = httpx.Timeout(120.0)


def new_id() -> str:
    return str(uuid.uuid4())


def endpoints(server: LiveServer) -> dict[str, str]:
    return {"pool": server.pool, "root": server.url + "/"}


def url(
    base: str,
    op: str,
    identifier: str | None,
    api: str | None = LEGACY,
    *,
    encode: bool = True,
    identifier_first: bool = True,
) -> str:
    """``{base}/{op}?identifier=..&api-version=..`` the way a client builds it."""
    if not base.endswith("/"):
        base += "/"
    parts = []
    if identifier is not None:
        parts.append(f"identifier={quote(identifier, safe='') if encode else identifier}")
    if api is not None:
        parts.append(f"api-version={api}")
    if not identifier_first:
        parts.reverse()
    return base + op + ("?" + "&".join(parts) if parts else "")


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(headers=live_server.headers(), timeout=TIMEOUT) as client:
        yield client


def execute(http: httpx.Client, base: str, identifier: str, code: str, **kw: Any) -> dict[str, Any]:
    r = http.post(
        url(base, "code/execute", identifier, **kw),
        json={
            "properties": {"codeInputType": "inline", "executionType": "synchronous", "code": code}
        },
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    props = r.json()["properties"]
    assert isinstance(props["stdout"], str), props  # never null (AutoGen concatenates)
    assert isinstance(props["stderr"], str), props
    assert props["status"] in ("Success", "Failure"), props
    assert isinstance(props["executionTimeInMilliseconds"], int), props
    return props  # type: ignore[no-any-return]


def upload_raw(
    http: httpx.Client, base: str, identifier: str, filename: str, data: bytes, **kw: Any
) -> httpx.Response:
    return http.post(
        url(base, "files/upload", identifier, **kw),
        files={"file": (filename, data, "application/octet-stream")},
    )


def listing(http: httpx.Client, base: str, identifier: str) -> dict[str, dict[str, Any]]:
    r = http.get(url(base, "files", identifier))
    assert r.status_code == 200, r.text
    return {e["properties"]["filename"]: e for e in r.json()["value"]}


def assert_azure_error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) >= {"error"}, body
    err = body["error"]
    assert isinstance(err["code"], str) and err["code"], body
    assert isinstance(err["message"], str) and err["message"], body
    assert r.headers.get("x-ms-error-code") == err["code"], dict(r.headers)
    return err  # type: ignore[no-any-return]


def assert_png(b64: str) -> None:
    raw = base64.b64decode(b64, validate=True)
    assert raw.startswith(PNG_MAGIC), raw[:16]


# ---------------------------------------------------------------------------
# 1. langchain-azure-dynamic-sessions
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["pool", "root"])
def test_langchain_protocols_snippet(live_server: LiveServer, which: str) -> None:
    """PROTOCOLS.md section 5, unchanged but for the endpoint and the key."""
    from langchain_azure_dynamic_sessions import SessionsBashTool, SessionsPythonREPLTool

    EP = endpoints(live_server)[which]
    key = live_server.key

    tool = SessionsPythonREPLTool(pool_management_endpoint=EP, access_token_provider=lambda: key)
    assert json.loads(tool.run("print('hello world')\n1 + 1")) == {
        "result": 2,
        "stdout": "hello world\n",
        "stderr": "",
    }
    meta = tool.upload_file(remote_file_path="test1.txt", data=io.BytesIO(b"hello world!!!!!"))
    assert (meta.filename, meta.size_in_bytes, meta.full_path) == (
        "test1.txt",
        16,
        "/mnt/data/test1.txt",
    )
    assert tool.download_file(remote_file_path="test1.txt").read() == b"hello world!!!!!"
    assert [f.filename for f in tool.list_files()] == ["test1.txt"]
    r = tool.execute("import matplotlib.pyplot as plt; plt.plot([1,2]); plt.show()")
    assert (
        r["result"]["type"] == "image"
        and r["result"]["format"] == "png"
        and r["result"]["base64_data"]
    )
    tool._delete_session_sync(tool.session_id)  # DELETE /session?...&api-version=2025-10-02-preview
    bash = SessionsBashTool(pool_management_endpoint=EP, access_token_provider=lambda: key)
    assert json.loads(bash.run("echo hi")) == {"stdout": "hi\n", "stderr": "", "exitCode": 0}

    # beyond the snippet: the image is a real PNG
    assert_png(r["result"]["base64_data"])


def test_langchain_delete_session(live_server: LiveServer) -> None:
    """DELETE /session (api-version 2025-10-02-preview) destroys the session: the same
    identifier then names a fresh one, with no variables and an empty /mnt/data."""
    from langchain_azure_dynamic_sessions import SessionsPythonREPLTool

    key = live_server.key
    tool = SessionsPythonREPLTool(
        pool_management_endpoint=live_server.pool,
        access_token_provider=lambda: key,
        session_id=new_id(),
    )
    tool.upload_file(remote_file_path="test1.txt", data=io.BytesIO(b"hello world!!!!!"))
    assert tool.execute("kept = 1")["status"] == "Success"
    tool._delete_session_sync(tool.session_id)  # raises unless 2xx
    after = tool.execute("kept")
    assert after["status"] == "Failure" and "NameError" in after["stderr"], after
    assert tool.list_files() == []


def test_langchain_python_tool_details(live_server: LiveServer) -> None:
    from langchain_azure_dynamic_sessions import SessionsPythonREPLTool

    key = live_server.key
    tool = SessionsPythonREPLTool(
        pool_management_endpoint=live_server.pool,
        access_token_provider=lambda: key,
        session_id=new_id(),
    )
    # the docstring example; the tool strips the ```python fence before sending
    assert json.loads(tool.invoke("6 * 7")) == {"result": 42, "stdout": "", "stderr": ""}
    assert json.loads(tool.run("```python\nx = 20\nx + 22\n```")) == {
        "result": 42,
        "stdout": "",
        "stderr": "",
    }
    # state persists; the image loses its base64 in the content, keeps it in the artifact
    content = json.loads(tool.run(PLOT))
    assert content["result"] == {"type": "image", "format": "png"}, content
    artifact = tool.execute(PLOT)
    assert_png(artifact["result"]["base64_data"])
    # an exception: Failure, traceback in stderr
    failed = tool.execute("print('before')\nraise ValueError('boom')")
    assert failed["status"] == "Failure", failed
    assert failed["stdout"] == "before\n"
    assert "ValueError: boom" in failed["stderr"] and "Traceback" in failed["stderr"]
    # upload from a local path (the basename becomes the remote name), then read it in code
    with tempfile.TemporaryDirectory() as d:
        local = Path(d, "my data.csv")
        local.write_bytes(b"a,b\n1,2\n")
        meta = tool.upload_file(local_file_path=str(local))
        assert (meta.filename, meta.size_in_bytes) == ("my data.csv", 8)
        out = Path(d, "back.csv")
        tool.download_file(remote_file_path="my data.csv", local_file_path=str(out))
        assert out.read_bytes() == b"a,b\n1,2\n"
    assert tool.execute("open('/mnt/data/my data.csv').read()")["result"] == "a,b\n1,2\n"
    # files written by code show up in the listing
    tool.execute("open('/mnt/data/made.txt', 'w').write('xyz')")
    assert sorted((f.filename, f.size_in_bytes) for f in tool.list_files()) == [
        ("made.txt", 3),
        ("my data.csv", 8),
    ]
    tool._delete_session_sync(tool.session_id)


def test_langchain_bash_tool_files(live_server: LiveServer) -> None:
    """The Bash tool speaks the new dialect: POST executions {shellCommand}, POST files,
    GET files (flat items), GET files/{name}/content."""
    from langchain_azure_dynamic_sessions import SessionsBashTool

    key = live_server.key
    bash = SessionsBashTool(
        pool_management_endpoint=live_server.pool,
        access_token_provider=lambda: key,
        session_id=new_id(),
    )
    meta = bash.upload_file(remote_file_path="notes.txt", data=io.BytesIO(b"line1\nline2\n"))
    assert (meta.filename, meta.size_in_bytes) == ("notes.txt", 12)
    assert [(f.filename, f.size_in_bytes) for f in bash.list_files()] == [("notes.txt", 12)]
    assert bash.download_file(remote_file_path="notes.txt").read() == b"line1\nline2\n"
    # runs in /mnt/data; state on disk carries across calls
    assert json.loads(bash.run("pwd && wc -l < notes.txt")) == {
        "stdout": "/mnt/data\n2\n",
        "stderr": "",
        "exitCode": 0,
    }
    assert json.loads(bash.run("echo out; echo err >&2; exit 3")) == {
        "stdout": "out\n",
        "stderr": "err\n",
        "exitCode": 3,
    }
    bash.run("echo made > made.txt")
    assert sorted(f.filename for f in bash.list_files()) == ["made.txt", "notes.txt"]
    bash._delete_session_sync(bash.session_id)


def test_langchain_cross_surface(live_server: LiveServer) -> None:
    """A file uploaded through /v1/containers is visible to the Azure surface under the
    container id: both surfaces share one session store."""
    from langchain_azure_dynamic_sessions import SessionsPythonREPLTool

    with httpx.Client(
        base_url=live_server.url, headers=live_server.headers(), timeout=TIMEOUT
    ) as c:
        r = c.post("/v1/containers", json={"name": "x"})
        assert r.status_code == 200, r.text
        cid = r.json()["id"]
        r = c.post(
            f"/v1/containers/{cid}/files",
            files={"file": ("cross surface.csv", b"k,v\n1,2\n", "text/csv")},
        )
        assert r.status_code == 200, r.text
        assert r.json()["path"] == "/mnt/data/cross surface.csv", r.json()

    key = live_server.key
    tool = SessionsPythonREPLTool(
        pool_management_endpoint=live_server.pool, access_token_provider=lambda: key, session_id=cid
    )
    out = json.loads(tool.run("print(open('/mnt/data/cross surface.csv').read(), end='')"))
    assert out == {"result": "", "stdout": "k,v\n1,2\n", "stderr": ""}
    assert "cross surface.csv" in [f.filename for f in tool.list_files()]


# ---------------------------------------------------------------------------
# 2. llama-index-tools-azure-code-interpreter
# ---------------------------------------------------------------------------


def test_llamaindex_tool_spec(live_server: LiveServer, tmp_path: Path) -> None:
    from azure.core.credentials import AccessToken
    from llama_index.tools.azure_code_interpreter import AzureCodeInterpreterToolSpec

    saves = tmp_path / "saves"
    saves.mkdir()
    spec = AzureCodeInterpreterToolSpec(
        pool_management_endpoint=live_server.pool, session_id=new_id(), local_save_path=str(saves)
    )
    # PROTOCOLS.md 1.3(c): the constructor takes no token; replace the cached one
    spec.access_token = AccessToken(live_server.key, int(time.time()) + 10**6)

    body = spec.code_interpreter("print('hi')\n6 * 7")
    assert body["properties"]["status"] == "Success", body
    assert body["properties"]["result"] == 42
    assert body["properties"]["stdout"] == "hi\n"
    assert body["properties"]["stderr"] == ""

    # upload via local_file_path: the client sends filename="/mnt/data/local data.csv"
    local = tmp_path / "local data.csv"
    local.write_bytes(b"x,y\n3,4\n")
    metas = spec.upload_file(local_file_path=str(local))
    assert [(m.filename, m.size_in_bytes, m.file_full_path) for m in metas] == [
        ("local data.csv", 8, "/mnt/data/local data.csv")
    ]
    assert [(m.filename, m.size_in_bytes) for m in spec.list_files()] == [("local data.csv", 8)]
    body = spec.code_interpreter("open('/mnt/data/local data.csv').read()")
    assert body["properties"]["result"] == "x,y\n3,4\n", body

    # a plot: the client writes {local_save_path}/{session_id}_{ts}.png
    body = spec.code_interpreter(PLOT)
    result = body["properties"]["result"]
    assert result["type"] == "image" and result["format"] == "png", result
    assert result["saved_to_local_path"] is True, result
    saved = list(saves.glob(f"{spec.session_id}_*.png"))
    assert len(saved) == 1, list(saves.iterdir())
    assert saved[0].read_bytes().startswith(PNG_MAGIC)

    # download, by absolute and by relative name, to a file and to memory
    out = tmp_path / "downloaded.csv"
    assert spec.download_file_to_local("/mnt/data/local data.csv", str(out)) is None
    assert out.read_bytes() == b"x,y\n3,4\n"
    buf = spec.download_file_to_local("local data.csv")
    assert buf is not None and buf.read() == b"x,y\n3,4\n"


def test_llamaindex_root_endpoint_and_token_provider(live_server: LiveServer) -> None:
    from llama_index.tools.azure_code_interpreter import AzureCodeInterpreterToolSpec

    spec = AzureCodeInterpreterToolSpec(pool_management_endpoint=live_server.url + "/")
    key = live_server.key
    spec.access_token_provider = lambda: key  # the other override PROTOCOLS.md names
    assert spec.list_files() == []
    body = spec.code_interpreter(PLOT)  # no local_save_path: base64 blanked by the client
    assert body["properties"]["result"]["type"] == "image"
    assert body["properties"]["result"]["base64_data"] == ""
    # the tools the spec exposes to an agent
    names = [t.metadata.name for t in spec.to_tool_list()]
    assert names == ["code_interpreter", "list_files"]


# ---------------------------------------------------------------------------
# 3. autogen-ext[azure]
# ---------------------------------------------------------------------------


def _autogen_executor_class() -> Any:
    """autogen-ext 0.7.5's ``code_executors/__init__`` imports the Docker executor and
    only catches ImportError; with the ``docker`` package present (lci needs it) but
    ``asyncio-atexit`` missing, that import raises RuntimeError, so even the Azure
    executor cannot be imported unless ``autogen-ext[azure,docker]`` is installed."""
    try:
        from autogen_ext.code_executors.azure import ACADynamicSessionsCodeExecutor
    except RuntimeError as e:  # pragma: no cover - an environment problem, said plainly
        pytest.fail(f"install autogen-ext[azure,docker] (asyncio-atexit is missing): {e}")
    return ACADynamicSessionsCodeExecutor


class _KeyCredential:
    """PROTOCOLS.md 1.3(d): any object with get_token(*scopes) -> .token."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken(self.key, int(time.time()) + 10**6)


@pytest.mark.anyio
async def test_autogen_executor(live_server: LiveServer, tmp_path: Path) -> None:
    from autogen_core import CancellationToken
    from autogen_core.code_executor import CodeBlock

    ACADynamicSessionsCodeExecutor = _autogen_executor_class()
    cred = _KeyCredential(live_server.key)
    work = tmp_path / "work"
    ex = ACADynamicSessionsCodeExecutor(
        pool_management_endpoint=live_server.pool,
        credential=cred,
        timeout=120,
        work_dir=work,
        session_id=new_id(),
    )
    token = CancellationToken()
    await ex.start()
    try:
        # first call: `import pkg_resources` + os.chdir('/mnt/data'), then the block
        r = await ex.execute_code_blocks(
            [CodeBlock(code="x = 21\nprint('hello')", language="python")], token
        )
        assert (r.exit_code, r.output) == (0, "hello\n")  # str(result "") adds nothing
        assert cred.scopes == [("https://dynamicsessions.io/.default",)]
        assert ex._available_packages  # the pkg_resources call worked and was parsed

        # state across calls, the working directory the setup chose, several blocks
        r = await ex.execute_code_blocks(
            [
                CodeBlock(code="import os\nprint(os.getcwd())", language="python"),
                CodeBlock(code="x * 2", language="python"),
            ],
            token,
        )
        assert (r.exit_code, r.output) == (0, "/mnt/data\n42")

        # a failing block: exit code 1, traceback in the output
        r = await ex.execute_code_blocks([CodeBlock(code="1/0", language="python")], token)
        assert r.exit_code == 1
        assert "ZeroDivisionError" in r.output

        # upload: percent-encoded filename, chunked body; then visible to code and the list
        (work / "local data.csv").write_bytes(b"p,q\n5,6\n")
        await ex.upload_files(["local data.csv"], token)
        assert "local data.csv" in await ex.get_file_list(token)
        r = await ex.execute_code_blocks(
            [CodeBlock(code="print(open('local data.csv').read(), end='')", language="python")],
            token,
        )
        assert (r.exit_code, r.output) == (0, "p,q\n5,6\n")

        # download: a file the code wrote (relative to the cwd /mnt/data)
        r = await ex.execute_code_blocks(
            [
                CodeBlock(
                    code="with open('test1.txt', 'w') as f:\n    f.write('from sandbox')",
                    language="python",
                )
            ],
            token,
        )
        assert r.exit_code == 0, r.output
        assert sorted(await ex.get_file_list(token)) == ["local data.csv", "test1.txt"]
        (work / "local data.csv").unlink()
        paths = await ex.download_files(["test1.txt", "local data.csv"], token)
        assert paths == [str(work / "test1.txt"), str(work / "local data.csv")]
        assert (work / "test1.txt").read_text() == "from sandbox"
        assert (work / "local data.csv").read_bytes() == b"p,q\n5,6\n"
    finally:
        await ex.stop()


@pytest.mark.anyio
async def test_autogen_restart_gets_fresh_session(live_server: LiveServer, tmp_path: Path) -> None:
    from autogen_core import CancellationToken
    from autogen_core.code_executor import CodeBlock

    ACADynamicSessionsCodeExecutor = _autogen_executor_class()
    ex = ACADynamicSessionsCodeExecutor(
        pool_management_endpoint=live_server.url,
        credential=_KeyCredential(live_server.key),
        timeout=120,
        work_dir=tmp_path,
    )
    token = CancellationToken()
    r = await ex.execute_code_blocks([CodeBlock(code="y = 5\ny", language="python")], token)
    assert (r.exit_code, r.output) == (0, "5")
    await ex.restart()  # a new session id: y is gone
    r = await ex.execute_code_blocks([CodeBlock(code="y", language="python")], token)
    assert r.exit_code == 1 and "NameError" in r.output, r.output
    await ex.stop()


# ---------------------------------------------------------------------------
# 4. semantic-kernel (Python)
# ---------------------------------------------------------------------------


class _HttpsToHttp(httpx.AsyncHTTPTransport):
    """SK accepts only https:// endpoints; the real server speaks plain http."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http")
        return await super().handle_async_request(request)


def _sk_tool(live_server: LiveServer, upload_dir: Path, session_id: str) -> Any:
    from semantic_kernel.core_plugins.sessions_python_tool import SessionsPythonTool
    from semantic_kernel.core_plugins.sessions_python_tool.sessions_python_settings import (
        SessionsPythonSettings,
    )

    key = live_server.key
    return SessionsPythonTool(
        pool_management_endpoint=live_server.pool.replace("http://", "https://", 1),
        auth_callback=lambda: key,
        http_client=httpx.AsyncClient(transport=_HttpsToHttp(), timeout=120),
        settings=SessionsPythonSettings(session_id=session_id),
        enable_dangerous_file_uploads=True,
        allowed_upload_directories=[str(upload_dir)],
    )


@pytest.mark.anyio
async def test_semantic_kernel_sessions_tool(live_server: LiveServer, tmp_path: Path) -> None:
    tool = _sk_tool(live_server, tmp_path, new_id())
    try:
        out = await tool.execute_code("x = 6 * 7\nprint('hi')\nx")
        assert out == "Status:\nSuccess\nResult:\n42\nStdout:\nhi\n\nStderr:\n"
        out = await tool.execute_code("x + 1")  # state kept
        assert out == "Status:\nSuccess\nResult:\n43\nStdout:\n\nStderr:\n"
        out = await tool.execute_code("raise KeyError('nope')")
        assert out.startswith("Status:\nFailure\n"), out
        assert "KeyError: 'nope'" in out

        # after execute_code the shared client carries Content-Type: application/json,
        # so the multipart upload goes out under that header (PROTOCOLS.md 1.2.2)
        assert tool.http_client.headers["Content-Type"] == "application/json"
        local = tmp_path / "local data.csv"
        local.write_bytes(b"m,n\n7,8\n")
        meta = await tool.upload_file(local_file_path=str(local))
        assert (meta.filename, meta.size_in_bytes, meta.full_path) == (
            "local data.csv",
            8,
            "/mnt/data/local data.csv",
        )
        # an explicit remote path
        meta = await tool.upload_file(local_file_path=str(local), remote_file_path="copy.csv")
        assert meta.full_path == "/mnt/data/copy.csv"

        files = await tool.list_files()
        assert sorted((f.filename, f.size_in_bytes) for f in files) == [
            ("copy.csv", 8),
            ("local data.csv", 8),
        ]
        out = await tool.execute_code("open('/mnt/data/local data.csv').read()")
        assert out.startswith("Status:\nSuccess\nResult:\nm,n\n7,8\n"), out

        buf = await tool.download_file(remote_file_name="local data.csv")
        assert buf is not None and buf.read() == b"m,n\n7,8\n"
        dest = tmp_path / "out.csv"
        assert (
            await tool.download_file(remote_file_name="copy.csv", local_file_path=str(dest)) is None
        )
        assert dest.read_bytes() == b"m,n\n7,8\n"
    finally:
        await tool.http_client.aclose()


@pytest.mark.anyio
async def test_semantic_kernel_upload_first(live_server: LiveServer, tmp_path: Path) -> None:
    """Upload before any execute (proper multipart Content-Type), image result."""
    tool = _sk_tool(live_server, tmp_path, new_id())
    try:
        assert await tool.list_files() == []
        (tmp_path / "a.txt").write_text("alpha")
        meta = await tool.upload_file(local_file_path=str(tmp_path / "a.txt"))
        assert (meta.filename, meta.size_in_bytes) == ("a.txt", 5)
        out = await tool.execute_code(PLOT)
        assert out.startswith("Status:\nSuccess\nResult:\n{"), out[:200]
        assert "'type': 'image'" in out and "'format': 'png'" in out
    finally:
        await tool.http_client.aclose()


# ---------------------------------------------------------------------------
# 5. raw HTTP: the quirks not every client exercises
# ---------------------------------------------------------------------------


def test_raw_unencoded_identifier(live_server: LiveServer, http: httpx.Client) -> None:
    """SK and AutoGen put the identifier into the query without encoding it."""
    ident = f"user {new_id()} |a:b;c(d)[e]{{f}}<g>@h!i~j*k,l.m'n"
    base = live_server.pool
    # raw (httpx escapes only what it must, e.g. the spaces), identifier first
    raw = f"{base}/code/execute?identifier={ident}&api-version={LEGACY}"
    r = http.post(raw, json={"properties": {"code": "v = 41"}})
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["status"] == "Success"
    # fully percent-encoded, api-version first: the same session
    props = execute(http, base, ident, "v + 1", identifier_first=False)
    assert props["result"] == 42, props
    # AutoGen's order, unencoded
    raw2 = f"{base}/code/execute?api-version={LEGACY}&identifier={ident}"
    r = http.post(raw2, json={"properties": {"code": "v + 2"}})
    assert r.status_code == 200 and r.json()["properties"]["result"] == 43, r.text


def test_raw_identifier_order_and_api_versions(live_server: LiveServer, http: httpx.Client) -> None:
    ident = new_id()
    base = live_server.url
    assert execute(http, base, ident, "z = 1")["status"] == "Success"
    assert execute(http, base, ident, "z + 1", identifier_first=False)["result"] == 2
    # unknown api-version values are not rejected (PROTOCOLS.md 1.5.4); 2024-08 is legacy too
    assert execute(http, base, ident, "z + 2", api="2099-01-01-preview")["result"] == 3
    assert execute(http, base, ident, "z + 3", api="2024-08-02-preview")["result"] == 4
    # the root and the pool path reach the same session
    assert execute(http, live_server.pool, ident, "z + 4")["result"] == 5


def test_raw_new_identifier_lists_empty(live_server: LiveServer, http: httpx.Client) -> None:
    for base in endpoints(live_server).values():
        r = http.get(url(base, "files", new_id()))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["value"] == [], body
    r = http.get(url(live_server.pool, "files", new_id(), api="2025-10-02-preview"))
    assert r.status_code == 200 and r.json()["value"] == [], r.text


def test_raw_capitalised_enums_and_extra_fields(
    live_server: LiveServer, http: httpx.Client
) -> None:
    """.NET sends Inline/Synchronous; SK Python adds timeoutInSeconds."""
    r = http.post(
        url(live_server.pool, "code/execute", new_id()),
        json={
            "properties": {
                "codeInputType": "Inline",
                "executionType": "Synchronous",
                "timeoutInSeconds": 100,
                "code": "print('ok')",
            }
        },
    )
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert (props["status"], props["stdout"], props["result"]) == ("Success", "ok\n", "")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("6*7", 42),
        ("1.5 + 1", 2.5),
        ("'hello'", "hello"),
        ("[1, 2, 'x']", [1, 2, "x"]),
        ("{'a': 1}", {"a": 1}),
        ("True", True),
        ("print('only prints')", ""),
        ("x = 3", ""),
        ("None", ""),
        ("float('nan')", "nan"),
    ],
    ids=["int", "float", "str", "list", "dict", "bool", "prints", "assign", "none", "nan"],
)
def test_raw_result_typing(
    live_server: LiveServer, http: httpx.Client, code: str, expected: Any
) -> None:
    props = execute(http, live_server.pool, new_id(), code)
    assert props["status"] == "Success", props
    assert props["result"] == expected and type(props["result"]) is type(expected), props
    assert props["stderr"] == ""
    if code.startswith("print"):
        assert props["stdout"] == "only prints\n"
    else:
        assert props["stdout"] == ""


def test_raw_image_result(live_server: LiveServer, http: httpx.Client) -> None:
    props = execute(http, live_server.pool, new_id(), PLOT)
    assert props["status"] == "Success", props
    result = props["result"]
    assert set(result) == {"type", "format", "base64_data"}, result
    assert (result["type"], result["format"]) == ("image", "png")
    assert_png(result["base64_data"])


def test_raw_streams_and_failure(live_server: LiveServer, http: httpx.Client) -> None:
    ident = new_id()
    props = execute(
        http, live_server.pool, ident, "import sys\nprint('out')\nprint('err', file=sys.stderr)"
    )
    assert (props["status"], props["stdout"], props["stderr"], props["result"]) == (
        "Success",
        "out\n",
        "err\n",
        "",
    )
    props = execute(http, live_server.pool, ident, "print('before')\nundefined_name")
    assert props["status"] == "Failure", props
    assert props["stdout"] == "before\n"
    assert "Traceback" in props["stderr"], props
    assert "NameError: name 'undefined_name' is not defined" in props["stderr"], props
    assert "\x1b[" not in props["stderr"], props  # ANSI colour codes stripped
    assert props["result"] == ""
    # a syntax error is a Failure too, and the session survives both
    props = execute(http, live_server.pool, ident, "def (")
    assert props["status"] == "Failure" and "SyntaxError" in props["stderr"], props
    assert execute(http, live_server.pool, ident, "2 + 2")["result"] == 4


def test_raw_upload_list_download_names(live_server: LiveServer, http: httpx.Client) -> None:
    ident = new_id()
    base = live_server.pool
    name = "odd name &=;,@$()^#.txt"
    data = b"\x00\x01binary\xff"

    # upload with an absolute /mnt/data/ filename (llama-index, SK): stored relative
    r = upload_raw(http, base, ident, "/mnt/data/" + name, data)
    assert r.status_code == 200, r.text
    (item,) = r.json()["value"]
    assert item["properties"]["filename"] == name, item
    assert item["properties"]["size"] == len(data) and type(item["properties"]["size"]) is int
    assert isinstance(item["properties"]["lastModifiedTime"], str)

    # the listing carries the superset item (PROTOCOLS.md 1.5.2)
    entry = listing(http, base, ident)[name]
    assert entry["name"] == name and entry["type"] == "File" and entry["sizeInBytes"] == len(data)
    assert entry["properties"]["size"] == len(data)
    assert isinstance(entry["lastModifiedAt"], str)

    # download: percent-encoded, with and without the /mnt/data/ prefix
    for path in (quote(name), quote("/mnt/data/" + name)):
        r = http.get(url(base, f"files/content/{path}", ident))
        assert r.status_code == 200, (path, r.status_code, r.text)
        assert r.content == data, path

    # the new dialect reads the same file
    r = http.get(
        url(base, f"files/{quote(name, safe='')}/content", ident, api="2025-02-02-preview")
    )
    assert r.status_code == 200 and r.content == data, r.text

    # a file in a subdirectory written by code: '/' inside {name}
    props = execute(
        http,
        base,
        ident,
        "import os\nos.makedirs('/mnt/data/sub dir', exist_ok=True)\n"
        "open('/mnt/data/sub dir/in side.txt', 'w').write('nested')",
    )
    assert props["status"] == "Success", props
    r = http.get(url(base, "files/content/" + quote("sub dir/in side.txt"), ident))
    assert r.status_code == 200 and r.content == b"nested", r.text
    # the legacy listing holds regular files only, no directories
    assert "sub dir" not in listing(http, base, ident)

    # overwrite: a second upload replaces the bytes
    r = upload_raw(http, base, ident, name, b"new")
    assert r.status_code == 200, r.text
    assert listing(http, base, ident)[name]["properties"]["size"] == 3

    # user code sees the uploaded name
    props = execute(http, base, ident, f"open('/mnt/data/{name}', 'rb').read() == b'new'")
    assert props["result"] is True, props


def test_raw_upload_rejects_escapes(live_server: LiveServer, http: httpx.Client) -> None:
    ident = new_id()
    for bad in ("../escape.txt", "/etc/passwd", "/mnt/data/../../x.txt"):
        r = upload_raw(http, live_server.pool, ident, bad, b"no")
        assert_azure_error(r, 400)
    assert listing(http, live_server.pool, ident) == {}


def test_raw_sk_json_content_type_multipart(live_server: LiveServer, http: httpx.Client) -> None:
    """SK after an execute: a multipart body under Content-Type: application/json."""
    ident = new_id()
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="/mnt/data/sk file.txt"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
        "semantic kernel\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    r = http.post(
        url(live_server.pool, "files/upload", ident),
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["value"][0]["properties"]["filename"] == "sk file.txt"
    assert listing(http, live_server.pool, ident)["sk file.txt"]["properties"]["size"] == 15


def test_raw_autogen_chunked_percent_encoded(live_server: LiveServer, http: httpx.Client) -> None:
    """AutoGen (aiohttp): filename="local%20data.csv", Transfer-Encoding: chunked."""
    ident = new_id()
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="local%20data.csv"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks() -> Iterator[bytes]:
        yield head
        yield b"a" * 70_000
        yield b"b" * 30_000
        yield tail

    r = http.post(
        url(live_server.pool, "files/upload", ident, identifier_first=False),
        content=chunks(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["value"][0]["properties"]["filename"] == "local data.csv"
    r = http.get(
        url(
            live_server.pool,
            "files/content/local data.csv",
            ident,
            encode=False,
            identifier_first=False,
        )
    )
    assert r.status_code == 200 and r.content == b"a" * 70_000 + b"b" * 30_000


def test_raw_upload_over_limit_413(sandbox_image: str, docker_client: object) -> None:
    home = Path(tempfile.mkdtemp(prefix="lci-e-", dir="/tmp"))
    _HOMES.append(Settings.of(home=home, image=sandbox_image))
    server = start_server(home, sandbox_image, env={"LCI_MAX_UPLOAD_BYTES": "1m"})
    try:
        with httpx.Client(headers=server.headers(), timeout=TIMEOUT) as http:
            ident = new_id()
            r = upload_raw(http, server.pool, ident, "small.bin", b"s" * 500_000)
            assert r.status_code == 200, r.text
            r = upload_raw(http, server.pool, ident, "big.bin", b"b" * (1024**2 + 1024))
            err = assert_azure_error(r, 413)
            assert err["code"] == "RequestEntityTooLarge", err

            # chunked, no Content-Length (AutoGen)
            boundary = uuid.uuid4().hex

            def chunks() -> Iterator[bytes]:
                yield (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                    'filename="chunked.bin"\r\n\r\n'
                ).encode()
                for _ in range(20):
                    yield b"c" * 65_536
                yield f"\r\n--{boundary}--\r\n".encode()

            r = http.post(
                url(server.pool, "files/upload", ident),
                content=chunks(),
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            assert_azure_error(r, 413)
            # nothing half-written is left behind; the session still works
            assert set(listing(http, server.pool, ident)) == {"small.bin"}
            assert execute(http, server.pool, ident, "1 + 1")["result"] == 2
    finally:
        stop_server(server)
        shutil.rmtree(home, ignore_errors=True)


def test_raw_error_bodies(live_server: LiveServer, http: httpx.Client) -> None:
    base = live_server.pool
    ident = new_id()
    op = url(base, "code/execute", ident)
    body = {"properties": {"code": "1"}}
    # 401: no token, a wrong token, a non-Bearer scheme
    with httpx.Client(timeout=TIMEOUT) as anon:
        err = assert_azure_error(anon.post(op, json=body), 401)
        assert err["code"] == "Unauthorized"
        err = assert_azure_error(
            anon.post(op, json=body, headers={"Authorization": "Bearer wrong-key-123"}), 401
        )
        assert err["code"] == "Unauthorized"
        assert_azure_error(
            anon.get(url(base, "files", ident), headers={"Authorization": "Bearer wrong-key-123"}),
            401,
        )
        assert_azure_error(anon.get(url(live_server.url, "files", ident)), 401)
    # 404: a missing file, in both dialects
    assert_azure_error(http.get(url(base, "files/content/nope.txt", ident)), 404)
    assert_azure_error(
        http.get(url(base, "files/nope.txt/content", ident, api="2025-02-02-preview")), 404
    )
    # 400: no identifier; no code
    assert_azure_error(http.post(url(base, "code/execute", None), json=body), 400)
    assert_azure_error(http.get(url(base, "files", None)), 400)
    assert_azure_error(http.post(op, json={"properties": {"codeInputType": "inline"}}), 400)
    assert_azure_error(
        http.post(op, content=b"not json", headers={"Content-Type": "application/json"}), 400
    )
    # an upload without a file part
    assert_azure_error(http.post(url(base, "files/upload", ident), files={"other": b"x"}), 400)


def test_raw_tenants_are_isolated(live_server: LiveServer, http: httpx.Client) -> None:
    ident = new_id()
    base = live_server.pool
    assert upload_raw(http, base, ident, "secret.txt", b"alice only").status_code == 200
    assert execute(http, base, ident, "secret = 'alice'")["status"] == "Success"
    with httpx.Client(headers=live_server.headers(live_server.other_key), timeout=TIMEOUT) as bob:
        r = bob.get(url(base, "files", ident))
        if r.status_code == 200:
            assert r.json()["value"] == [], r.text
        else:
            assert_azure_error(r, 404)
        r = bob.get(url(base, "files/content/secret.txt", ident))
        assert r.status_code == 404, r.text
        r = bob.post(url(base, "code/execute", ident), json={"properties": {"code": "secret"}})
        if r.status_code == 200:
            assert r.json()["properties"]["status"] == "Failure", r.text
        else:
            assert_azure_error(r, 404)
    # alice's session is untouched
    assert execute(http, base, ident, "secret")["result"] == "alice"


def test_raw_new_dialect_executions(live_server: LiveServer, http: httpx.Client) -> None:
    ident = new_id()
    base = live_server.pool
    op = url(base, "executions", ident, api="2024-10-02-preview")
    r = http.post(
        op,
        json={
            "codeInputType": "Inline",
            "executionType": "Synchronous",
            "timeoutInSeconds": 100,
            "code": "print(63)\n6*7",
        },
    )
    assert r.status_code in (200, 202), r.text
    body = r.json()
    assert body["status"] == "Succeeded", body
    assert body["identifier"] == ident and isinstance(body["id"], str) and body["id"]
    assert body["executionType"] == "Synchronous"
    res = body["result"]
    assert (res["stdout"], res["stderr"], res["executionResult"]) == ("63\n", "", 42), res
    assert isinstance(res["executionTimeInMilliseconds"], int)
    # None is null in the new dialect, '' in the legacy one; nan is "nan"
    op25 = url(base, "executions", ident, api="2025-10-02-preview")
    r = http.post(
        op25,
        json={
            "codeInputType": "Inline",
            "executionType": "Synchronous",
            "timeoutInSeconds": 60,
            "code": "a = None; a",
        },
    )
    assert r.status_code in (200, 202) and r.json()["result"]["executionResult"] is None, r.text
    r = http.post(
        op25,
        json={
            "codeInputType": "Inline",
            "executionType": "Synchronous",
            "timeoutInSeconds": 60,
            "code": "float('nan')",
        },
    )
    assert r.json()["result"]["executionResult"] == "nan", r.text
    # both dialects share the session
    assert execute(http, base, ident, "a is None")["result"] is True


def test_raw_new_dialect_shell_command(live_server: LiveServer, http: httpx.Client) -> None:
    ident = new_id()
    op = url(live_server.pool, "executions", ident, api="2025-02-02-preview")
    r = http.post(op, json={"shellCommand": "echo hi"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "0", body
    assert (body["result"]["stdout"], body["result"]["stderr"]) == ("hi\n", "")
    r = http.post(op, json={"shellCommand": "pwd; echo oops >&2; exit 7"})
    body = r.json()
    assert body["status"] == "7", body
    assert (body["result"]["stdout"], body["result"]["stderr"]) == ("/mnt/data\n", "oops\n")


def test_raw_session_delete(live_server: LiveServer, http: httpx.Client) -> None:
    ident = new_id()
    base = live_server.pool
    assert upload_raw(http, base, ident, "gone.txt", b"bye").status_code == 200
    assert execute(http, base, ident, "kept = 1")["status"] == "Success"
    r = http.delete(url(base, "session", ident, api="2025-10-02-preview"))
    assert r.status_code in (200, 202, 204), r.text
    # the identifier now names a fresh session: no variables, an empty /mnt/data
    props = execute(http, base, ident, "kept")
    assert props["status"] == "Failure" and "NameError" in props["stderr"], props
    assert listing(http, base, ident) == {}
    # deleting a session that is not there: 404 with an error body
    r = http.delete(url(base, "session", new_id(), api="2025-10-02-preview"))
    assert_azure_error(r, 404)
