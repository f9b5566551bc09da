"""The web inspector at ``/ui``: server-rendered pages over the Inspector.

``/ui`` lists the tenant's sessions (live; the page polls ``/ui/sessions.json``),
``/ui/sessions/{id}`` shows one session's limits, files and execution timeline (the
page polls ``/ui/sessions/{id}/live``, an HTML fragment), with buttons to interrupt,
restart and stop it and to export it as a notebook; ``/ui/files/{id}`` serves files.

The bearer-key middleware lets ``/ui`` through: these pages log in with an API key
once and then carry a signed cookie (see ``cookie.py``). Every POST must come from a
page of this origin (``Origin``); the log-in form's wrong keys are throttled per
address like bearer keys; "Log out" is a POST with the CSRF token and ends that
cookie for good. The pages are strict about what runs in them: no inline script, a
Content-Security-Policy that allows only this origin's script and style,
model-produced HTML only in a sandboxed iframe.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Any

import anyio.to_thread
import nbformat
from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from ...errors import NoSuchFile, NoSuchSession
from ...inspection.local import LocalInspector
from ..auth import digest
from ..throttle import Throttle, client_address
from ..utf8 import JSONResponse, scrub
from .cookie import COOKIE, LIFETIME, Login, Logouts, Signer, load_secret
from .timeline import clock, code_css, duration, execution_view, session_row, size

__all__ = ["install", "router"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'none';"
    " base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    # not no-referrer: with it, a browser sends "Origin: null" on our own forms' POSTs
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
FILE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
FRAME_CSP = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
)
FRAME_STYLE = (
    "body{margin:8px;font:13px/1.4 system-ui,sans-serif;color:#1f2328}"
    "table{border-collapse:collapse}th,td{border:1px solid #d8dee4;padding:3px 8px}"
    "thead th{background:#f6f8fa}"
)
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
STATIC = {"ui.css": "text/css", "ui.js": "text/javascript"}
ACTIONS = {"interrupt": "interrupted", "restart": "restarted", "stop": "stopped"}
HISTORY_SHOWN = 200  # newest executions on a session page

router = APIRouter(prefix="/ui", include_in_schema=False)
_env = Environment(
    loader=PackageLoader("interpreter.server.ui", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals.update(duration=duration, size=size, clock=clock)


class PageExit(Exception):
    """Leave a /ui handler with this response (a redirect to log in, a 404 page)."""

    def __init__(self, response: Response) -> None:
        self.response = response


def install(app: FastAPI) -> None:
    """Add the pages to the service (the key ring is read when the first page is asked)."""

    async def exit_page(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageExit)
        return exc.response

    app.add_exception_handler(PageExit, exit_page)
    app.include_router(router)


# -- plumbing ---------------------------------------------------------------------------


def _signer(request: Request) -> Signer:
    state = request.app.state
    if getattr(state, "ui_signer", None) is None:
        manager = state.manager
        secret = load_secret(manager.settings.ui_secret_file)
        state.ui_signer = Signer(state.keys, secret, Logouts(manager))
    signer: Signer = state.ui_signer
    return signer


def _same_origin(request: Request) -> bool:
    """Does this POST come from one of our own pages? Browsers send ``Origin`` with every
    POST (these pages keep their referrer to this origin, so it is never ``null``); a
    foreign or ``null`` one is refused. Without ``Origin`` the request is not a
    browser's cross-site form, which carries it today, so it may go on unless its
    ``Sec-Fetch-Site`` says it came from another site."""
    origin = request.headers.get("origin")
    if origin is None:
        return request.headers.get("sec-fetch-site") in (None, "same-origin", "none")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    return origin.lower() == own.lower()


def _forbidden(login: Login | None) -> HTMLResponse:
    return page("missing.html", 403, login=login, what=None, forbidden=True)


def _login(request: Request) -> Login:
    login = _signer(request).check(request.cookies.get(COOKIE))
    if login is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(f"/ui/login?next={_quote(target)}", status_code=303)
        raise PageExit(response)
    return login


def _inspector(request: Request) -> LocalInspector:
    inspector: LocalInspector = request.app.state.inspector
    return inspector


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = scrub(_env.get_template(name).render(**context))  # stored text may be broken
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _not_found(login: Login | None, what: str) -> PageExit:
    return PageExit(page("missing.html", 404, login=login, what=what))


def _safe_next(target: str | None) -> str:
    """Only a path inside /ui: never another site (an open redirect)."""
    if not target or not target.startswith("/ui") or target.startswith("//") or "\\" in target:
        return "/ui"
    return target


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


# -- login --------------------------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    if _signer(request).check(request.cookies.get(COOKIE)):
        return RedirectResponse(_safe_next(next), status_code=303)
    return page("login.html", next=_safe_next(next), error=None)


@router.post("/login")
async def login(request: Request, key: str = Form(""), next: str = Form("/ui")) -> Response:
    if not _same_origin(request):
        return _forbidden(None)
    key = key.strip()
    throttle: Throttle = request.app.state.throttle
    address, key_digest = client_address(request.scope), digest(key)
    wait = throttle.wait(address, key_digest)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        error = f"Too many wrong keys came from your address: try again in {seconds} s."
        refused = page("login.html", 429, next=_safe_next(next), error=error)
        refused.headers["Retry-After"] = str(seconds)
        return refused
    granted = _signer(request).issue(key)
    if granted is None:
        if key:
            throttle.failed(address)
        error = "That API key is not known here." if key else "Enter an API key."
        return page("login.html", 401, next=_safe_next(next), error=error)
    throttle.succeeded(address, key_digest)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        granted.token,
        max_age=int(LIFETIME),
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(request: Request, csrf: str = Form("")) -> Response:
    """End this login: the cookie is deleted here and refused from now on anywhere."""
    login = _login(request)
    signer = _signer(request)
    if not _same_origin(request) or not signer.csrf_ok(login, csrf):
        return _forbidden(login)
    signer.end(login)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
    return response


# -- sessions -----------------------------------------------------------------------------


async def _rows(request: Request, tenant: str, all: bool) -> list[dict[str, Any]]:
    views = await _inspector(request).sessions(tenant, all=all)
    return [session_row(v.to_dict()) for v in views]


@router.get("")
async def sessions_page(request: Request, all: bool = False) -> Response:
    login = _login(request)
    rows = await _rows(request, login.tenant, all)
    return page("sessions.html", login=login, rows=rows, all=all)


@router.get("/sessions.json")
async def sessions_json(request: Request, all: bool = False) -> Response:
    login = _login(request)
    rows = await _rows(request, login.tenant, all)
    return JSONResponse({"sessions": rows, "all": all}, headers={"Cache-Control": "no-store"})


async def _session_context(request: Request, session_id: str, login: Login) -> dict[str, Any]:
    inspector = _inspector(request)
    try:
        view = (await inspector.session(session_id, login.tenant)).to_dict()
        entries = await inspector.executions(session_id, login.tenant, last=HISTORY_SHOWN)
    except NoSuchSession:
        raise _not_found(login, f"session {session_id}") from None
    files = await inspector.files(session_id, login.tenant)
    timeline = await anyio.to_thread.run_sync(_timeline, entries)
    return {
        "login": login,
        "s": view,
        "live": view["state"] in ("starting", "idle", "busy"),
        "files": files,
        "executions": timeline,
        "shown": len(entries),
    }


def _timeline(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [execution_view(e, _live_text(e)) for e in entries]


def _live_text(entry: dict[str, Any]) -> str:
    """What a running execution printed so far (its spool file on this machine)."""
    path = entry.get("live_log")
    if entry.get("status") != "running" or not path:
        return ""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


@router.get("/sessions/{session_id}")
async def session_page(request: Request, session_id: str, did: str | None = None) -> Response:
    login = _login(request)
    context = await _session_context(request, session_id, login)
    done = did if did in ACTIONS.values() or did == "ended" else None
    return page("session.html", did=done, **context)


@router.get("/sessions/{session_id}/live")
async def session_live(request: Request, session_id: str) -> Response:
    login = _login(request)
    context = await _session_context(request, session_id, login)
    return page("_live.html", **context)


@router.post("/sessions/{session_id}/{action}")
async def session_action(
    request: Request, session_id: str, action: str, csrf: str = Form("")
) -> Response:
    login = _login(request)
    if action not in ACTIONS:
        raise _not_found(login, f"action {action}")
    if not _same_origin(request) or not _signer(request).csrf_ok(login, csrf):
        return _forbidden(login)
    inspector = _inspector(request)
    try:
        await getattr(inspector, action)(session_id, login.tenant)
        did = ACTIONS[action]
    except NoSuchSession:
        try:
            await inspector.session(session_id, login.tenant)  # it exists, but has ended
        except NoSuchSession:
            raise _not_found(login, f"session {session_id}") from None
        did = "ended"
    return RedirectResponse(f"/ui/sessions/{session_id}?did={did}", status_code=303)


@router.get("/sessions/{session_id}/notebook")
async def export_notebook(request: Request, session_id: str) -> Response:
    login = _login(request)
    try:
        nb = await _inspector(request).notebook(session_id, login.tenant)
    except NoSuchSession:
        raise _not_found(login, f"session {session_id}") from None
    return Response(
        scrub(nbformat.writes(nb)),
        media_type="application/x-ipynb+json",
        headers={
            "Content-Disposition": f'attachment; filename="{session_id}.ipynb"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@router.get("/executions/{exe_id}/html/{index}")
async def html_output(request: Request, exe_id: str, index: int) -> Response:
    """One HTML output of an execution, for a sandboxed frame: the code that made it is
    untrusted, so the response is a sandbox of its own (no script, opaque origin)."""
    login = _login(request)
    entry = _inspector(request).manager.history.get(exe_id, login.tenant)
    transcript = (entry or {}).get("transcript") or []
    item = transcript[index] if 0 <= index < len(transcript) else {}
    html = (item.get("data") or {}).get("text/html")
    if not isinstance(html, str):
        raise _not_found(login, f"HTML output {index} of {exe_id}")
    body = scrub(f"<!doctype html><meta charset=utf-8><style>{FRAME_STYLE}</style>{html}")
    headers = {"Content-Security-Policy": FRAME_CSP, "X-Content-Type-Options": "nosniff"}
    return HTMLResponse(body, headers={**headers, "Cache-Control": "private, max-age=3600"})


# -- files and static -----------------------------------------------------------------------


@router.get("/files/{file_id}")
async def file_download(request: Request, file_id: str, download: bool = False) -> Response:
    login = _login(request)
    files = _inspector(request).manager.files
    try:
        info = files.info(file_id, login.tenant)
    except NoSuchFile:
        raise _not_found(login, f"file {file_id}") from None
    inline = info.mime_type in INLINE_TYPES and not download
    return FileResponse(
        files.blob_path(info.sha256),
        media_type=info.mime_type,
        filename=scrub(info.filename),
        content_disposition_type="inline" if inline else "attachment",
        headers={
            "Content-Security-Policy": FILE_CSP,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=3600",
        },
    )


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name == "code.css":
        return Response(code_css(), media_type="text/css", headers={"Cache-Control": "no-cache"})
    if name not in STATIC:
        return Response("not found", status_code=404, media_type="text/plain")
    body = resources.files("interpreter.server.ui").joinpath("static", name).read_bytes()
    return Response(body, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})


@router.get("/{rest:path}")
async def unknown(request: Request, rest: str) -> Response:
    raise _not_found(_login(request), f"page /ui/{rest}")
