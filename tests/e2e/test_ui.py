"""The web inspector as a person uses it: Debian's Chromium, driven by Playwright,
against a real ``lci serve`` with real sandboxes. Screenshots of the main pages go to
tests/artifacts/ (the README shows them)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import nbformat
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Dialog,
    Page,
    expect,
    sync_playwright,
)

from .conftest import LiveServer

pytestmark = pytest.mark.docker

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PLOT = """\
import matplotlib.pyplot as plt
import numpy as np
x = np.linspace(0, 4 * np.pi, 200)
plt.figure(figsize=(6, 3))
plt.plot(x, np.sin(x), label="sin")
plt.plot(x, np.cos(x), label="cos")
plt.legend(); plt.title("waves")
plt.show()
with open("/mnt/data/report.csv", "w") as f:
    f.write("x,y\\n1,2\\n")
print("rows written: 1")
print("<script>alert('xss')</script>")
{"points": len(x), "peak": round(float(np.sin(x).max()), 3)}
"""
HOSTILE_HTML = (
    "from IPython.display import HTML\nHTML('<b id=pwn>bold</b><img src=x onerror=alert(1)>')"
)
LOOP = "import time\nprint('looping', flush=True)\nn = 0\nwhile True:\n    n += 1\n"


@dataclass
class Made:
    container: str
    session: str
    image: str  # file id of the plot
    report: str  # file id of /mnt/data/report.csv


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    ctx.set_default_timeout(20_000)
    dialogs: list[str] = []

    def watch(dialog: Dialog) -> None:  # a confirm() is the test's to answer
        if dialog.type != "confirm":
            dialogs.append(dialog.message)
            dialog.dismiss()

    ctx.on("page", lambda page: page.on("dialog", watch))
    yield ctx
    ctx.close()
    assert not dialogs, f"a dialog opened: {dialogs}"  # nothing the sandbox printed ran


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, headers=live_server.headers(), timeout=60) as c:
        yield c


def new_container(http: httpx.Client, name: str) -> str:
    r = http.post("/v1/containers", json={"name": name})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def run(http: httpx.Client, cid: str, code: str) -> dict:
    r = http.post(f"/v1/containers/{cid}/executions", json={"code": code})
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.fixture(scope="module")
def made(live_server: LiveServer) -> Made:
    """A session with a plot, a file in /mnt/data, an error and HTML output."""
    with httpx.Client(base_url=live_server.url, headers=live_server.headers(), timeout=60) as c:
        cid = new_container(c, "ui-plot")
        exe = run(c, cid, PLOT)
        assert exe["status"] == "ok", exe
        image = next(o["file_id"] for o in exe["transcript"] if o["type"] == "image")
        report = next(f["file_id"] for f in exe["files"] if f["path"].endswith("report.csv"))
        assert run(c, cid, "1 / 0")["status"] == "error"
        assert run(c, cid, HOSTILE_HTML)["status"] == "ok"
        return Made(cid, exe["session_id"], image, report)


def log_in(page: Page, server: LiveServer, key: str, target: str = "/ui") -> None:
    page.goto(server.url + target)
    page.fill("#key", key)
    page.click("form button[type=submit]")
    expect(page.locator("header .who")).to_be_visible()


# -- acceptance 3/4: login ----------------------------------------------------------------


def test_login_refuses_a_wrong_key_and_guards_every_page(
    live_server: LiveServer, context: BrowserContext, made: Made
) -> None:
    page = context.new_page()
    page.goto(f"{live_server.url}/ui/sessions/{made.session}")
    assert "/ui/login?next=" in page.url  # unauthenticated: sent to log in
    for path in ("/ui", "/ui/sessions.json", f"/ui/files/{made.image}"):
        r = httpx.get(live_server.url + path)
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login"), path
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 520})
    page.screenshot(path=str(ARTIFACTS / "ui-login.png"))

    page.fill("#key", "key-mallory")
    page.click("form button[type=submit]")
    expect(page.locator(".alert")).to_contain_text("not known")
    assert not any(c["name"] == "lci_ui" for c in context.cookies())

    page.fill("#key", live_server.key)
    page.click("form button[type=submit]")
    page.wait_for_url(f"**/ui/sessions/{made.session}")  # back where it was going
    cookie = next(c for c in context.cookies() if c["name"] == "lci_ui")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    csp = page.request.get(f"{live_server.url}/ui").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp

    page.click("text=Log out")  # a form: a POST with the CSRF token, from this origin
    page.wait_for_url("**/ui/login")
    assert not any(c["name"] == "lci_ui" for c in context.cookies())
    context.add_cookies([cookie])  # replay the cookie from before: ended on the server
    page.goto(f"{live_server.url}/ui")
    assert "/ui/login" in page.url


# -- acceptance 3/4: sessions page, live ------------------------------------------------------


def test_a_new_session_appears_without_a_reload(
    live_server: LiveServer, context: BrowserContext, http: httpx.Client, made: Made
) -> None:
    page = context.new_page()
    log_in(page, live_server, live_server.key)
    page.evaluate("window.__same_page = true")
    cid = new_container(http, "ui-live")
    sid = run(http, cid, "print('hello from the sandbox')")["session_id"]
    row = page.locator(f"#sessions tr[data-id='{sid}']")
    expect(row).to_be_visible(timeout=10_000)
    assert page.evaluate("window.__same_page") is True  # polled in, not reloaded
    expect(row.locator(".state")).to_have_text("idle")
    expect(row.locator("td").nth(8)).to_have_text("1")  # executions
    assert "MiB" in row.locator("td").nth(6).inner_text()  # memory now
    expect(page.locator(f"#sessions tr[data-id='{made.session}']")).to_be_visible()
    page.set_viewport_size({"width": 1280, "height": 400})
    page.screenshot(path=str(ARTIFACTS / "ui-sessions.png"))


# -- acceptance 3/4: a session's timeline, image, files, export -------------------------------


def test_session_page_shows_the_timeline_image_and_files(
    live_server: LiveServer, context: BrowserContext, made: Made, tmp_path: Path
) -> None:
    page = context.new_page()
    log_in(page, live_server, live_server.key)
    page.click(f"#sessions a[href='/ui/sessions/{made.session}']")
    page.wait_for_url(f"**/ui/sessions/{made.session}")

    first = page.locator("article.exe").first
    expect(first.locator(".badge")).to_have_text("ok")
    expect(first.locator(".code .hl .kn").first).to_have_text("import")  # highlighted
    expect(first.locator("pre.out.stdout")).to_contain_text("rows written: 1")
    expect(first.locator("pre.out.stdout")).to_contain_text("<script>alert('xss')</script>")
    expect(first.locator("pre.out.result")).to_contain_text("'points': 200")
    assert page.locator("script").count() == 1  # only ui.js: printed markup stayed text

    img = first.locator(f"img[src='/ui/files/{made.image}']")
    img.scroll_into_view_if_needed()
    page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=img.element_handle())
    assert img.evaluate("i => i.naturalWidth") > 100
    r = page.request.get(f"{live_server.url}/ui/files/{made.image}")
    assert r.status == 200 and r.headers["content-type"] == "image/png"
    assert r.body()[:8] == b"\x89PNG\r\n\x1a\n"

    failed = page.locator("article.exe.failed")
    expect(failed.locator(".badge")).to_have_text("error")
    expect(failed.locator(".error .ename")).to_have_text("ZeroDivisionError: division by zero")
    expect(failed.locator(".error pre.tb")).to_contain_text("----> 1 1 / 0")

    frame = page.frame_locator("article.exe iframe.html")  # HTML output: sandboxed
    expect(frame.locator("#pwn")).to_have_text("bold")
    assert page.locator("#pwn").count() == 0
    height = page.evaluate("document.body.scrollHeight")  # not full_page: it drops frames
    page.set_viewport_size({"width": 1280, "height": min(height, 2400)})
    expect(frame.locator("#pwn")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "ui-session.png"))

    with page.expect_download() as got:
        page.locator("#files tr", has_text="report.csv").locator("a").click()
    assert got.value.suggested_filename == "report.csv"
    assert Path(got.value.path()).read_bytes() == b"x,y\n1,2\n"

    with page.expect_download() as got:
        page.click("#export")
    assert got.value.suggested_filename == f"{made.session}.ipynb"
    nb = nbformat.reads(Path(got.value.path()).read_text(), as_version=4)
    nbformat.validate(nb)
    outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert json.loads(nbformat.writes(nb))["nbformat"] == 4


# -- acceptance 3/4: interrupt a running loop ---------------------------------------------------


def test_interrupt_stops_a_running_loop(
    live_server: LiveServer, context: BrowserContext, http: httpx.Client
) -> None:
    cid = new_container(http, "ui-loop")
    sid = run(http, cid, "x = 41")["session_id"]
    page = context.new_page()
    log_in(page, live_server, live_server.key, f"/ui/sessions/{sid}")

    result: dict = {}
    looping = threading.Thread(target=lambda: result.update(run(http, cid, LOOP)))
    looping.start()
    running = page.locator("article.exe[data-status='running']")
    expect(running).to_be_visible(timeout=15_000)  # appeared live
    expect(running.locator("pre.out")).to_contain_text("looping")
    expect(page.locator("#state")).to_have_text("busy")
    page.click("#interrupt")

    looping.join(30)
    assert not looping.is_alive() and result["status"] == "error"
    loop = page.locator(f"#exe-{result['id']}")
    expect(loop).to_have_attribute("data-status", "error")
    expect(loop.locator(".error .ename")).to_contain_text("KeyboardInterrupt")
    expect(page.locator(".flash")).to_have_text("Session interrupted.")

    after = run(http, cid, "x + 1")  # the session still works, its state kept
    assert after["status"] == "ok"
    expect(page.locator(f"#exe-{after['id']} pre.out.result")).to_have_text("42")


def test_stop_needs_confirmation_and_a_form_token(
    live_server: LiveServer, context: BrowserContext, http: httpx.Client
) -> None:
    cid = new_container(http, "ui-stop")
    sid = run(http, cid, "1")["session_id"]
    page = context.new_page()
    log_in(page, live_server, live_server.key, f"/ui/sessions/{sid}")
    forged = page.request.post(f"{live_server.url}/ui/sessions/{sid}/stop", form={"csrf": "x"})
    assert forged.status == 403

    page.once("dialog", lambda d: d.accept())
    page.click("#stop")
    expect(page.locator("#state")).to_have_text("expired")
    expect(page.locator("#interrupt")).to_be_disabled()
    expect(page.locator(".flash")).to_have_text("Session stopped.")


# -- acceptance 3: tenants ------------------------------------------------------------------------


def test_another_tenant_sees_nothing_of_alice(
    live_server: LiveServer, context: BrowserContext, made: Made
) -> None:
    page = context.new_page()
    log_in(page, live_server, live_server.other_key)
    expect(page.locator("header .who")).to_have_text("bob")
    time.sleep(2.5)  # one poll of the table too
    assert made.session not in page.content()
    data = page.request.get(f"{live_server.url}/ui/sessions.json?all=1").json()
    assert made.session not in [s["id"] for s in data["sessions"]]
    for path in (
        f"/ui/sessions/{made.session}",
        f"/ui/sessions/{made.session}/live",
        f"/ui/sessions/{made.session}/notebook",
        f"/ui/files/{made.image}",
        f"/ui/files/{made.report}",
    ):
        r = page.request.get(live_server.url + path)
        assert r.status == 404, path
        assert made.container not in r.text() and "report.csv" not in r.text()
    response = page.goto(f"{live_server.url}/ui/sessions/{made.session}")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
