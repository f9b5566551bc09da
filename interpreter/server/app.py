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
from fastapi.responses import Response

from .. import __version__
from ..config import Settings
from ..errors import BackendError, StorageFull
from ..inspection.local import LocalInspector
from ..manager import SessionManager
from ..quotas import Quotas
from . import lci, openapi, problems
from .auth import AuthMiddleware, KeyRing, load_keys
from .azure import files as azure_files
from .azure import routes as azure
from .bodies import BodyGuard
from .execution import ClientGone
from .mcp import MAX_REQUEST_BYTES, create_mcp, http_route
from .metrics import Metrics
from .openai import assistants, containers, files, responses, runs, threads
from .openapi import answers
from .schemas import Health
from .throttle import Throttle
from .ui import routes as ui
from .uploads import cleanup_tmp
from .utf8 import JSONResponse

__all__ = ["create_app"]

log = logging.getLogger("lci.server")


def create_app(
    settings: Settings | None = None,
    *,
    manager: SessionManager | None = None,
    keys: KeyRing | None = None,
) -> FastAPI:
    """The service app. Without ``manager`` it opens one (from ``settings``) for its lifetime."""
    settings = manager.settings if manager is not None else (settings or Settings.from_env())
    ring = keys or load_keys(settings)
    metrics = Metrics(ring.tenants)
    mcp = create_mcp(lambda: app.state.manager)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = manager is None
        m = manager or SessionManager(settings, quotas=Quotas.from_settings(settings), pool=True)
        if own:
            try:
                await m.open()
            except BackendError as exc:  # serve anyway: /healthz and 503s say what is wrong
                log.warning("starting without the sandbox engine: %s", exc)
                await m.open(sweep=False)
        app.state.manager = m
        app.state.inspector = LocalInspector(m)  # the /v1/lci routes and the /ui pages
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
        default_response_class=JSONResponse,  # a stored lone surrogate is sent as U+FFFD
    )
    app.state.metrics = metrics
    app.state.keys = ring
    app.state.throttle = throttle = Throttle()
    problems.install(app, allow=openapi.allowed_methods)
    openapi.install(app)

    @app.exception_handler(ClientGone)
    async def gone(request: Request, exc: ClientGone) -> Response:
        return Response(status_code=499)

    @app.get(
        "/healthz",
        tags=["service"],
        summary="Is the engine up, the store readable, and LCI_HOME above its free-space floor?",
        response_model=None,
        responses={
            **answers(Health),
            503: {"model": Health, "description": "Something is wrong: the fields say what."},
        },
    )
    async def healthz(request: Request) -> Response:
        m: SessionManager = request.app.state.manager
        checks: dict[str, Any] = {}
        try:
            await m.backend.ping()
            checks["engine"] = "ok"
        except Exception as exc:
            checks["engine"] = f"error: {exc}"
        try:
            await anyio.to_thread.run_sync(m.ping)
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"error: {exc}"
        checks["disk"] = await anyio.to_thread.run_sync(disk_check, m)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503
        )

    @app.get(
        "/metrics",
        tags=["service"],
        summary="Prometheus metrics: the key's tenant's series (an admin key: every tenant's)",
        response_class=Response,
        responses=answers(
            media={"text/plain": {"schema": {"type": "string"}}},
            description="The Prometheus text format, version 0.0.4",
        ),
    )
    async def metrics_route(request: Request) -> Response:
        state = request.state
        text = metrics.render(None if state.admin else state.tenant)
        return Response(text, media_type="text/plain; version=0.0.4")

    app.router.routes.append(http_route(mcp))  # exactly /mcp (a mount would redirect)
    app.include_router(files.router)
    app.include_router(containers.router)
    app.include_router(lci.router)
    app.include_router(assistants.router)
    app.include_router(threads.router)
    app.include_router(runs.router)
    app.include_router(responses.router)
    for router in (azure.router, azure_files.router):
        app.include_router(router, prefix=azure.POOL_PREFIX, dependencies=[azure.pool])
        app.include_router(router)
    ui.install(app)  # the web inspector at /ui (its own cookie login)

    limit = 6 * settings.limits.max_code_bytes + 64 * 1024
    app.add_middleware(BodyGuard, limit=limit, mcp_limit=MAX_REQUEST_BYTES)
    app.add_middleware(
        AuthMiddleware,
        ring=lambda: ring,
        refuse=problems.refuse,
        throttled=problems.throttled,
        throttle=throttle,
    )
    return app


def disk_check(m: SessionManager) -> str:
    """``ok``, or why new work is refused: LCI_HOME cannot hold one more sandbox's disk
    above its floor (LCI_MIN_FREE)."""
    try:
        m.files.check_room(m.settings.sandbox.disk_limit)
    except StorageFull as exc:
        return f"low: {exc}"
    except OSError as exc:
        return f"error: {exc}"
    return "ok"
