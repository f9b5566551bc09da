"""Failed authentication throttled per client address, on every face, against a real
``lci serve`` of its own. Other loopback addresses (127.0.0.x) stand for other hosts."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from interpreter import Settings

from ..conftest import _HOMES
from .conftest import ALICE, BOB, LiveServer, start_server, stop_server

pytestmark = pytest.mark.docker

WRONG = "not-the-key-" + "x" * 30
ACA = "api-version=2024-02-02-preview"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    },
}
MCP_ACCEPT = {"Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def server(sandbox_image: str, docker_client: object) -> Iterator[LiveServer]:
    home = Path(tempfile.mkdtemp(prefix="lci-th-", dir="/tmp"))
    _HOMES.append(Settings.of(home=home, image=sandbox_image))
    live = start_server(home, sandbox_image)
    yield live
    stop_server(live)
    shutil.rmtree(home, ignore_errors=True)


def client(server: LiveServer, address: str, key: str | None) -> httpx.Client:
    """A client whose connections come from ``address``."""
    return httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {key}"} if key else {},
        transport=httpx.HTTPTransport(local_address=address),
        timeout=30,
    )


def retry_after(r: httpx.Response) -> int:
    assert r.status_code == 429, (r.status_code, r.text)
    return int(r.headers["retry-after"])


def test_wrong_keys_are_throttled_on_every_face_and_known_keys_go_on(
    server: LiveServer,
) -> None:
    here = "127.0.0.2"
    alice, wrong = client(server, here, ALICE), client(server, here, WRONG)
    assert alice.get("/v1/files").status_code == 200  # alice has worked from here

    started = time.monotonic()
    codes = [wrong.get("/v1/files").status_code for _ in range(40)]
    took = time.monotonic() - started
    print(f"\n40 wrong keys in {took * 1000:.0f} ms: {codes.count(401)} x 401, then 429s")
    assert codes[:11] == [401] * 11 and set(codes[11:]) == {429}

    r = wrong.get("/v1/files")  # OpenAI dialect
    assert retry_after(r) >= 1
    err = r.json()["error"]
    assert err["code"] == "rate_limit_exceeded" and err["type"] == "requests"
    assert "Retry after" in err["message"]
    for r in (  # Azure dialect, both pool paths and both API versions
        wrong.get(f"/files?identifier=x&{ACA}"),
        wrong.post(f"{server.pool}/code/execute?identifier=x&{ACA}", json={}),
        wrong.post("/executions?identifier=x&api-version=2025-10-02-preview", json={}),
    ):
        retry_after(r)
        assert r.json()["error"]["code"] == "TooManyRequests"
        assert r.headers["x-ms-error-code"] == "TooManyRequests"
    for path in ("/v1/lci/sessions", "/v1/assistants", "/v1/containers"):
        retry_after(wrong.get(path))
        assert wrong.get(path).json()["error"]["code"] == "rate_limit_exceeded"
    retry_after(wrong.get("/metrics"))
    mcp = wrong.post("/mcp", json=INIT, headers=MCP_ACCEPT)
    retry_after(mcp)
    assert mcp.json()["jsonrpc"] == "2.0" and "Retry after" in mcp.json()["error"]["message"]
    ui = wrong.post("/ui/login", data={"key": BOB, "next": "/ui"})  # a right key, new here
    retry_after(ui)
    assert "text/html" in ui.headers["content-type"] and "try again in" in ui.text
    ui = wrong.post("/ui/login", data={"key": ALICE, "next": "/ui"})  # known here: let in
    assert ui.status_code == 303 and "lci_ui" in ui.cookies
    spoofed = wrong.get("/v1/files", headers={"X-Forwarded-For": "10.9.8.7"})
    retry_after(spoofed)  # a forwarded-for header from a client does not change its address

    # a key that worked from here goes on; a key new here waits; elsewhere nothing changed
    assert alice.get("/v1/files").status_code == 200
    assert alice.post("/mcp", json=INIT, headers=MCP_ACCEPT).status_code == 200
    bob_here, bob_elsewhere = client(server, here, BOB), client(server, "127.0.0.3", BOB)
    wait = retry_after(bob_here.get("/v1/files"))
    assert bob_elsewhere.get("/v1/files").status_code == 200
    assert client(server, "127.0.0.3", WRONG).get("/v1/files").status_code == 401

    # backoff: after the wait one more guess is checked (401) and locks for longer
    time.sleep(wait + 0.1)
    assert wrong.get("/v1/files").status_code == 401
    locks = []
    for _ in range(3):
        started = time.monotonic()
        lock = retry_after(wrong.get("/v1/files"))
        while (code := wrong.get("/v1/files").status_code) == 429:
            time.sleep(0.05)
        assert code == 401  # the first guess after the lock is checked, and locks again
        locks.append((lock, round(time.monotonic() - started, 2)))
    print(f"locks after the burst (Retry-After, seconds until a guess was checked): {locks}")
    assert [lock for lock, _ in locks] == sorted({lock for lock, _ in locks})  # growing
    assert locks[-1][0] >= 6 and all(waited >= lock - 1 for lock, waited in locks)
    time.sleep(retry_after(bob_here.get("/v1/files")) + 0.1)
    assert bob_here.get("/v1/files").status_code == 200  # after the wait, checked and fine


def test_ui_login_failures_count_like_bearer_ones(server: LiveServer) -> None:
    here = "127.0.0.4"
    browser = client(server, here, None)
    origin = {"Origin": server.url}
    pages = [
        browser.post("/ui/login", data={"key": WRONG, "next": "/ui"}, headers=origin)
        for _ in range(12)
    ]
    assert [p.status_code for p in pages[:11]] == [401] * 11
    assert "not known" in pages[0].text
    assert retry_after(pages[11]) >= 1 and "try again in" in pages[11].text
    assert "lci_ui" not in browser.cookies
    retry_after(client(server, here, BOB).get("/v1/files"))  # one count per address
    empty = browser.post("/ui/login", data={"key": "", "next": "/ui"}, headers=origin)
    assert empty.status_code in (401, 429)  # an empty key is never a guess


def test_forwarded_for_does_not_move_the_address_but_the_scheme_still_comes_through(
    server: LiveServer,
) -> None:
    """From 127.0.0.1, the address uvicorn trusts for X-Forwarded-* (a local proxy): the
    forwarded scheme is believed (the inspector's cookie turns Secure), the forwarded
    address is not used for the throttle (any local client could forge it)."""
    local = client(server, "127.0.0.1", None)
    login = local.post(
        "/ui/login",
        data={"key": ALICE},
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
    )
    assert login.status_code == 303 and "secure" in login.headers["set-cookie"].lower()
    codes = [
        local.get(
            "/v1/files",
            headers={"Authorization": f"Bearer {WRONG}", "X-Forwarded-For": f"198.51.100.{n}"},
        ).status_code
        for n in range(13)
    ]
    assert codes[:11] == [401] * 11 and codes[11:] == [429, 429]  # one address all along
