"""The web inspector's session handling over plain HTTP, against a real ``lci serve`` of
its own (restarted once): Origin on log-in, logout as a POST that ends the cookie
for good, a signing secret that survives a restart, bytes of any kind failing closed.
The browser side of the same is in test_ui.py."""

from __future__ import annotations

import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from interpreter import Settings

from ..conftest import _HOMES
from .conftest import ALICE, LiveServer, start_server, stop_server

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def home(sandbox_image: str, docker_client: object) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="lci-us-", dir="/tmp"))
    _HOMES.append(Settings.of(home=path, image=sandbox_image))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def server(home: Path, sandbox_image: str) -> Iterator[LiveServer]:
    live = start_server(home, sandbox_image)
    yield live
    stop_server(live)


def log_in(server: LiveServer, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/ui/login",
        data={"key": ALICE, "next": "/ui"},
        headers={"Origin": server.url, **headers},
    )


def session(server: LiveServer) -> tuple[httpx.Client, str]:
    """A logged-in client and its CSRF token (read from a page, as a browser would)."""
    r = log_in(server)
    assert r.status_code == 303, r.text
    c = httpx.Client(base_url=server.url, cookies={"lci_ui": r.cookies["lci_ui"]})
    page = c.get("/ui")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    return c, csrf.group(1)


def test_login_accepts_only_its_own_origin(server: LiveServer) -> None:
    for origin in ("http://evil.example", "null", server.url + ".evil.example"):
        r = log_in(server, Origin=origin)
        assert r.status_code == 403 and "lci_ui" not in r.cookies, origin
    cross = httpx.post(  # no Origin, but the browser says the form came from elsewhere
        f"{server.url}/ui/login",
        data={"key": ALICE},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status_code == 403
    plain = httpx.post(f"{server.url}/ui/login", data={"key": ALICE})  # curl: no Origin
    assert plain.status_code == 303 and "lci_ui" in plain.cookies
    same = log_in(server, **{"Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 303 and same.headers["location"] == "/ui"
    page = httpx.get(f"{server.url}/ui/login")
    assert page.headers["referrer-policy"] == "same-origin"  # so our forms send an Origin


def test_logout_is_a_post_with_the_token_and_ends_that_cookie(server: LiveServer) -> None:
    c, csrf = session(server)
    other, _ = session(server)  # a second login of the same key
    old = c.cookies["lci_ui"]
    assert c.post("/ui/logout", data={}, headers={"Origin": server.url}).status_code == 403
    assert (
        c.post(
            "/ui/logout", data={"csrf": csrf}, headers={"Origin": "http://evil.example"}
        ).status_code
        == 403
    )
    assert c.get("/ui/logout").status_code == 404  # a link cannot log anyone out
    assert c.get("/ui").status_code == 200  # still logged in

    out = c.post("/ui/logout", data={"csrf": csrf}, headers={"Origin": server.url})
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert 'lci_ui=""' in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    replayed = httpx.get(f"{server.url}/ui", cookies={"lci_ui": old})
    assert replayed.status_code == 303 and replayed.headers["location"].startswith("/ui/login")
    assert other.get("/ui").status_code == 200  # the other login goes on


def raw_get(server: LiveServer, path: str, cookie: bytes) -> bytes:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            b"GET %s HTTP/1.1\r\nHost: x\r\nCookie: lci_ui=%s\r\nConnection: close\r\n\r\n"
            % (path.encode(), cookie)
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        return data


def test_any_bytes_in_a_cookie_or_a_form_fail_closed(server: LiveServer) -> None:
    for cookie in (
        "é|é|1|é|é".encode(),  # UTF-8
        b"\xe9\xff|a|99999999999|b|c",  # not UTF-8 at all
        b'"\\u00e9|a|1|b|c"',
    ):
        answer = raw_get(server, "/ui", cookie)
        assert answer.startswith(b"HTTP/1.1 303 "), answer[:200]
    c, csrf = session(server)
    ok = c.get("/ui")
    assert ok.status_code == 200
    for bad in ("é" * len(csrf), csrf[:-1] + "\u00e9", "\U0001f600"):
        r = c.post("/ui/sessions/sess_x/stop", data={"csrf": bad}, headers={"Origin": server.url})
        assert r.status_code in (403, 404) and r.status_code != 500
        assert (
            c.post("/ui/logout", data={"csrf": bad}, headers={"Origin": server.url}).status_code
            == 403
        )
    assert c.get("/ui").status_code == 200


def test_a_restart_keeps_logins_and_logouts(
    server: LiveServer, home: Path, sandbox_image: str
) -> None:
    kept, _ = session(server)
    ended, csrf = session(server)
    ended_cookie = ended.cookies["lci_ui"]
    assert (
        ended.post("/ui/logout", data={"csrf": csrf}, headers={"Origin": server.url}).status_code
        == 303
    )
    secret = home / "ui_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(secret.read_text().strip()) == 64
    before = secret.read_bytes()

    stop_server(server)
    again = start_server(home, sandbox_image)
    try:
        assert secret.read_bytes() == before
        r = httpx.get(f"{again.url}/ui", cookies={"lci_ui": kept.cookies["lci_ui"]})
        assert r.status_code == 200 and "alice" in r.text  # still logged in
        r = httpx.get(f"{again.url}/ui", cookies={"lci_ui": ended_cookie})
        assert r.status_code == 303  # logged out stays logged out
    finally:
        stop_server(again)
