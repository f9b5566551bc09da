"""Text that UTF-8 cannot carry, against a real ``lci serve`` of its own: refused with a
400 naming the field on every face, and never a 500 when it was stored earlier.

``{"code": "print(\\"\\ud800\\")"}`` is valid JSON (an escape for half a surrogate
pair): the bodies below are sent as raw JSON text, so the escapes reach the service."""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from interpreter import Settings
from interpreter.history import History
from interpreter.results import Execution, ExecutionStatus
from interpreter.store import Store

from ..conftest import _HOMES
from .conftest import ALICE, LiveServer, start_server, stop_server

pytestmark = pytest.mark.docker

LONE = "\\ud800"  # as JSON text: a high surrogate with no low one after it
ACA = "api-version=2024-02-02-preview"
NEW = "api-version=2025-10-02-preview"
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def server(sandbox_image: str, docker_client: object) -> Iterator[LiveServer]:
    home = Path(tempfile.mkdtemp(prefix="lci-tx-", dir="/tmp"))
    _HOMES.append(Settings.of(home=home, image=sandbox_image))
    live = start_server(home, sandbox_image)
    yield live
    stop_server(live)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.headers(), timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def container(http: httpx.Client) -> tuple[str, str]:
    """(container id, session id) of a session that has run once."""
    cid = http.post("/v1/containers", json={"name": "text"}).json()["id"]
    exe = http.post(f"/v1/containers/{cid}/executions", json={"code": "x = 1"}).json()
    return cid, exe["session_id"]


def send(http: httpx.Client, path: str, text: str | bytes) -> httpx.Response:
    body = text.encode() if isinstance(text, str) else text
    return http.post(path, content=body, headers={"Content-Type": "application/json"})


def openai_refusal(r: httpx.Response, param: str) -> None:
    assert r.status_code == 400, (r.status_code, r.text)
    err = r.json()["error"]
    assert err["code"] == "invalid_unicode" and err["param"] == param, err
    assert f"'{param}'" in err["message"] and "U+D800" in err["message"]


def azure_refusal(r: httpx.Response, field: str) -> None:
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.json()["error"]["code"] == "InvalidUnicode" == r.headers["x-ms-error-code"]
    assert f"'{field}'" in r.json()["error"]["message"]


def test_every_face_refuses_a_lone_surrogate_naming_the_field(
    server: LiveServer, http: httpx.Client, container: tuple[str, str]
) -> None:
    cid, sid = container
    code = f'{{"code": "print(\\"{LONE}\\")"}}'
    openai_refusal(send(http, f"/v1/containers/{cid}/executions", code), "code")
    raw = b'{"code": "print(\'\xed\xa0\x80\')"}'  # the surrogate as bytes, not an escape
    openai_refusal(send(http, f"/v1/containers/{cid}/executions", raw), "code")
    stream = f'{{"code": "1", "stream": true, "x": ["ok", "{LONE}"]}}'
    openai_refusal(send(http, f"/v1/containers/{cid}/executions", stream), "x[1]")
    openai_refusal(send(http, "/v1/containers", f'{{"name": "n{LONE}"}}'), "name")
    openai_refusal(send(http, f"/v1/lci/sessions/{sid}/executions", code), "code")
    by_id = send(http, f"/v1/containers/{cid}/files", f'{{"file_id": "file-{LONE}"}}')
    assert by_id.status_code == 400  # a JSON file reference too
    not_utf8 = send(http, f"/v1/containers/{cid}/executions", b'{"code": "\xff"}')
    assert not_utf8.status_code == 400 and "not valid UTF-8" in not_utf8.json()["error"]["message"]

    legacy = f'{{"properties": {{"codeInputType": "inline", "code": "{LONE}"}}}}'
    azure_refusal(
        send(http, f"{server.pool}/code/execute?identifier=t&{ACA}", legacy), "properties.code"
    )
    azure_refusal(send(http, f"/executions?identifier=t&{NEW}", f'{{"code": "{LONE}"}}'), "code")
    shell = f'{{"shellCommand": "echo {LONE}"}}'
    azure_refusal(send(http, f"/executions?identifier=t&{NEW}", shell), "shellCommand")

    assistant = f'{{"model": "m", "instructions": "be {LONE}"}}'
    openai_refusal(send(http, "/v1/assistants", assistant), "instructions")
    thread = f'{{"messages": [{{"role": "user", "content": "hi {LONE}"}}]}}'
    openai_refusal(send(http, "/v1/threads", thread), "messages[0].content")
    tid = http.post("/v1/threads", json={}).json()["id"]
    message = f'{{"role": "user", "content": [{{"type": "text", "text": "{LONE}"}}]}}'
    openai_refusal(send(http, f"/v1/threads/{tid}/messages", message), "content[0].text")

    # nothing of it reached a session: the container works and its history reads back
    ok = http.post(f"/v1/containers/{cid}/executions", json={"code": "print(x + 1)"})
    assert ok.status_code == 200 and ok.json()["stdout"] == "2\n"
    assert http.get(f"/v1/lci/sessions/{sid}/executions").status_code == 200
    pair = send(http, f"/v1/containers/{cid}/executions", '{"code": "print(\\"\\ud83d\\ude00\\")"}')
    assert pair.status_code == 200 and pair.json()["stdout"] == "\U0001f600\n"  # a pair is fine


def mcp_post(http: httpx.Client, body: str, sid: str | None = None) -> httpx.Response:
    headers = {**MCP_HEADERS, "Content-Type": "application/json"}
    if sid:
        headers["mcp-session-id"] = sid
    return http.post("/mcp", content=body.encode(), headers=headers)


def test_mcp_tool_arguments_are_refused_with_a_json_rpc_error(http: httpx.Client) -> None:
    init = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"},
            },
        }
    )
    opened = mcp_post(http, init)
    assert opened.status_code == 200
    sid = opened.headers["mcp-session-id"]
    assert (
        mcp_post(http, '{"jsonrpc": "2.0", "method": "notifications/initialized"}', sid).status_code
        == 202
    )
    call = (
        '{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name":'
        f' "execute_python", "arguments": {{"code": "print(\\"{LONE}\\")"}}}}}}'
    )
    r = mcp_post(http, call, sid)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["jsonrpc"] == "2.0" and body["id"] == 7 and body["error"]["code"] == -32602
    assert "'params.arguments.code'" in body["error"]["message"]
    good = call.replace(LONE, "ok")
    r = mcp_post(http, good, sid)
    assert r.status_code == 200 and '"isError":false' in r.text and "ok" in r.text


def stored_with_a_lone_surrogate(server: LiveServer, cid: str, sid: str) -> str:
    """An execution whose code and output hold a lone surrogate, recorded in the
    service's store the way an older version (or a broken kernel) could have."""
    exe = Execution(
        id="exec_" + secrets.token_hex(8),
        session_id=sid,
        thread_id=cid,
        code="print('\ud800')",
        status=ExecutionStatus.OK,
        outputs=[{"type": "logs", "logs": "\ud800\n"}],
        transcript=[{"type": "stream", "name": "stdout", "text": "\ud800\n"}],
        stdout="\ud800\n",
        started_at=time.time(),
    )
    store = Store(server.home / "lci.db")
    try:
        history = History(store)
        history.started(exe, "alice", server.home / "no-such-log")
        history.finished(exe)
    finally:
        store.close()
    return exe.id


def test_text_stored_earlier_is_answered_not_a_500(
    server: LiveServer, http: httpx.Client, container: tuple[str, str]
) -> None:
    cid, sid = container
    stored_with_a_lone_surrogate(server, cid, sid)
    for path in (f"/v1/lci/sessions/{sid}", f"/v1/lci/sessions/{sid}/executions"):
        r = http.get(path)
        assert r.status_code == 200, (path, r.text)
        assert "print('\ufffd')" in r.text, path  # replaced, and valid UTF-8 JSON
    notebook = http.get(f"/v1/lci/sessions/{sid}/notebook")
    assert notebook.status_code == 200 and json.loads(notebook.content)["nbformat"] == 4
    with http.stream("GET", f"/v1/lci/sessions/{sid}/events?last=5") as events:
        first = next(line for line in events.iter_lines() if line.startswith("data:"))
        json.loads(first[5:])

    login = httpx.post(
        f"{server.url}/ui/login", data={"key": ALICE}, headers={"Origin": server.url}
    )
    ui = httpx.Client(base_url=server.url, cookies={"lci_ui": login.cookies["lci_ui"]})
    for path in (
        f"/ui/sessions/{sid}",
        f"/ui/sessions/{sid}/live",
        f"/ui/sessions/{sid}/notebook",
        "/ui/sessions.json",
    ):
        r = ui.get(path)
        assert r.status_code == 200, (path, r.status_code)
        r.content.decode("utf-8")  # strictly valid
    assert '<pre class="out stdout">\ufffd\n' in ui.get(f"/ui/sessions/{sid}").text


def test_odd_upload_file_names_are_never_surrogates(http: httpx.Client) -> None:
    def upload(disposition: bytes) -> httpx.Response:
        body = (
            b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
            b'--b\r\nContent-Disposition: form-data; name="file"; ' + disposition + b"\r\n"
            b"Content-Type: text/plain\r\n\r\nhello\r\n--b--\r\n"
        )
        return http.post(
            "/v1/files", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
        )

    for disposition in (
        b"filename*=raw_unicode_escape''%5Cud800.txt",  # a codec that makes surrogates
        b"filename*=no-such-charset''a.txt",  # was a LookupError: a 500
        b"filename*=UTF-8''%ED%A0%80.txt",  # the bytes of a surrogate
        b'filename="\xed\xa0\x80.txt"',
    ):
        r = upload(disposition)
        assert r.status_code == 200, (disposition, r.text)
        name = r.json()["filename"]
        name.encode("utf-8")  # never a lone surrogate
        assert http.get(f"/v1/files/{r.json()['id']}").status_code == 200
    assert http.get("/v1/files").status_code == 200
