"""The HTTP service: one FastAPI app over one SessionManager.

Faces: the OpenAI-compatible ``/v1`` (files, containers, executions), the Azure
dynamic-sessions API (at ``/`` and under the pool path), MCP at ``/mcp``, plus
``/healthz``, ``/metrics`` and the OpenAPI docs at ``/docs``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..config import Settings
from ..errors import BackendError
from ..inspector import Inspector
from ..manager import SessionManager
from . import assistants, azure, containers, inspect, openai_files, problems, runs, threads, ui
from .auth import AuthMiddleware, KeyRing, load_keys
from .mcp import create_mcp, http_route
from .metrics import Metrics
from .running import ClientGone
from .uploads import cleanup_tmp

__all__ = ["create_app"]

log = logging.getLogger("lci.server")


class BodyLimit:
    """JSON bodies are small: refuse ones far over the code limit before reading them
    into memory. Uploads (multipart, streamed to disk) have their own limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or _is_upload(scope)
            or scope["method"] in ("GET", "HEAD")
            or scope["path"] == "/mcp"  # MCP has its own request limit
        ):
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > self.limit:
                raise problems.ApiError(413, self._message(), "request_too_large")
            return msg

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return f"The request body is over {self.limit} bytes (see LCI_MAX_CODE_BYTES)."

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problems.render(scope["path"], 413, self._message(), "request_too_large")
        await response(scope, receive, send)


def _is_upload(scope: Scope) -> bool:
    path: str = scope["path"].rstrip("/")
    return scope["method"] == "POST" and (path.endswith("/files") or path.endswith("/upload"))


def create_app(
    settings: Settings | None = None,
    *,
    manager: SessionManager | None = None,
    keys: KeyRing | None = None,
) -> FastAPI:
    """The service app. Without ``manager`` it opens one (from ``settings``) for its lifetime."""
    settings = manager.settings if manager is not None else (settings or Settings.from_env())
    ring = keys or load_keys(settings)
    metrics = Metrics()
    mcp = create_mcp(lambda: app.state.manager, observe=metrics.observe)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = manager is None
        m = manager or SessionManager(settings)
        if own:
            try:
                await m.open()
            except BackendError as exc:  # serve anyway: /healthz and 503s say what is wrong
                log.warning("starting without the sandbox engine: %s", exc)
                await m.open(sweep=False)
        app.state.manager = m
        app.state.inspector = Inspector(m)  # the /v1/lci routes and the /ui pages
        metrics.watch(m)
        await anyio.to_thread.run_sync(cleanup_tmp, m.files.blobs / "tmp")
        try:
            async with mcp.session_manager.run():
                yield
        finally:
            if own:
                await m.close()  # sandboxes keep running: a restarted service re-attaches

    app = FastAPI(
        title="lci",
        version=__version__,
        description="A local, sandboxed code interpreter: OpenAI-compatible files, containers"
        " and executions under /v1, the Azure Container Apps dynamic-sessions API at / and"
        " under /subscriptions/{s}/resourceGroups/{rg}/sessionPools/{pool}/, MCP at /mcp."
        " Every route but /healthz and these docs needs `Authorization: Bearer <key>`.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.keys = ring
    problems.install(app)

    @app.exception_handler(ClientGone)
    async def gone(request: Request, exc: ClientGone) -> Response:
        return Response(status_code=499)

    @app.get("/healthz", tags=["service"], summary="Is the engine up and the store readable?")
    async def healthz(request: Request) -> Response:
        m: SessionManager = request.app.state.manager
        checks: dict[str, Any] = {}
        try:
            await m.backend.ping()
            checks["engine"] = "ok"
        except Exception as exc:
            checks["engine"] = f"error: {exc}"
        try:
            await anyio.to_thread.run_sync(m.store.ping)
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"error: {exc}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503
        )

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics")
    async def metrics_route() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    app.router.routes.append(http_route(mcp))  # exactly /mcp (a mount would redirect)
    app.include_router(openai_files.router)
    app.include_router(containers.router)
    app.include_router(inspect.router)
    app.include_router(assistants.router)
    app.include_router(threads.router)
    app.include_router(runs.router)
    app.include_router(azure.router, prefix=azure.POOL_PREFIX)
    app.include_router(azure.router)
    ui.install(app)  # the web inspector at /ui (its own cookie login)

    app.add_middleware(BodyLimit, limit=6 * settings.max_code_bytes + 64 * 1024)
    app.add_middleware(AuthMiddleware, ring=lambda: ring, refuse=problems.refuse)
    return app
