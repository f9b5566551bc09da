"""Errors on the wire: one table from exception to status, one body per dialect.

The OpenAI face (``/v1``) answers ``{"error": {"message", "type", "param", "code"}}``;
the Azure dynamic-sessions face (and ``/metrics``) answers ``{"error": {"code",
"message"}}`` with an ``x-ms-error-code`` header; ``/mcp`` answers a JSON-RPC error
object. A Python traceback never reaches a client: unexpected exceptions are logged
with an id and answered with a 500 that names the id.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from ..errors import (
    AssistantsError,
    BackendError,
    ConfigError,
    ContainerExpired,
    FileTooLarge,
    HostBusy,
    InterpreterError,
    InvalidCode,
    InvalidFilename,
    InvalidRequest,
    NoSuchFile,
    NoSuchObject,
    NoSuchSession,
    QuotaExceeded,
    SessionClosed,
    SessionError,
    StorageFull,
)
from .utf8 import JSONResponse

__all__ = [
    "ApiError",
    "AzureError",
    "OpenAIError",
    "allowed_methods",
    "error_event",
    "install",
    "refuse",
    "status_of",
    "throttled",
]

log = logging.getLogger("lci.server")

NAME = "<the exception's class name>"
# every exception -> status, most specific first: (exception class, HTTP status,
# Azure-style code, OpenAI code: NAME for the class's name, None for none)
TABLE: list[tuple[type[InterpreterError], int, str, str | None]] = [
    (NoSuchFile, 404, "FileNotFound", NAME),
    (NoSuchSession, 404, "SessionNotFound", NAME),
    (NoSuchObject, 404, "NotFound", None),  # the Assistants objects, as OpenAI answers
    (InvalidFilename, 400, "InvalidFileName", NAME),
    (InvalidCode, 400, "InvalidCode", NAME),
    (InvalidRequest, 400, "BadRequest", None),
    (FileTooLarge, 413, "RequestEntityTooLarge", NAME),
    (QuotaExceeded, 429, "QuotaExceeded", "quota_exceeded"),
    (StorageFull, 507, "InsufficientStorage", NAME),
    (HostBusy, 503, "ServiceUnavailable", NAME),
    (SessionClosed, 409, "SessionClosed", NAME),
    (ContainerExpired, 400, "ContainerExpired", "container_expired"),
    (SessionError, 503, "SessionUnavailable", NAME),
    (BackendError, 503, "ServiceUnavailable", NAME),
    (AssistantsError, 500, "InternalServerError", None),
    (ConfigError, 500, "InternalServerError", NAME),
    (InterpreterError, 500, "InternalServerError", NAME),
]
AZURE_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "BadRequest",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
    507: "InsufficientStorage",
}
OPENAI_TYPES = {
    401: "invalid_request_error",
    429: "requests",  # as OpenAI's own rate limits
    500: "server_error",
    503: "server_error",
    507: "server_error",
}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
JSONRPC_INVALID_REQUEST, JSONRPC_INVALID_PARAMS = -32600, -32602
MCP = "/mcp"


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, server_error, requests")
    param: str | None = Field(description="the parameter at fault, if one is")
    code: str | None


class OpenAIError(BaseModel):
    """An error on the OpenAI face (``/v1``)."""

    error: OpenAIErrorDetail


class AzureErrorDetail(BaseModel):
    code: str = Field(description="also sent as the x-ms-error-code header")
    message: str


class AzureError(BaseModel):
    """An error on the Azure faces (and /metrics)."""

    error: AzureErrorDetail


class ApiError(HTTPException):
    """A refusal the handler decided on: status, message, and optional code/param.

    An HTTPException, so FastAPI passes it through untouched even when it is raised
    while the request body is read (the body limit)."""

    def __init__(
        self, status: int, message: str, code: str | None = None, param: str | None = None
    ) -> None:
        super().__init__(status, message)
        self.status, self.message, self.code, self.param = status, message, code, param


def is_openai(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def render(
    path: str, status: int, message: str, code: str | None = None, param: str | None = None
) -> JSONResponse:
    if path == MCP:
        return jsonrpc_error(status, message, JSONRPC_INVALID_PARAMS if param else None)
    if is_openai(path):
        kind = OPENAI_TYPES.get(status, "invalid_request_error")
        body: dict[str, Any] = {"message": message, "type": kind, "param": param, "code": code}
        return JSONResponse({"error": body}, status_code=status)
    azure = code if code and code[0].isupper() else AZURE_CODES.get(status, "Error")
    return JSONResponse(
        {"error": {"code": azure, "message": message}},
        status_code=status,
        headers={"x-ms-error-code": azure},
    )


def jsonrpc_error(
    status: int, message: str, code: int | None = None, request_id: Any = None
) -> JSONResponse:
    """An MCP refusal: a JSON-RPC error object (the id is null when the request's is
    not known) with an HTTP status, as the MCP SDK answers its own refusals."""
    error = {"code": code or JSONRPC_INVALID_REQUEST, "message": message}
    return JSONResponse({"jsonrpc": "2.0", "id": request_id, "error": error}, status_code=status)


def refuse(scope: Scope, message: str) -> Response:
    """The 401 of the auth middleware."""
    code = "invalid_api_key" if is_openai(scope["path"]) else "Unauthorized"
    response = render(scope["path"], 401, message, code)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def throttled(scope: Scope, seconds: float) -> Response:
    """The 429 of the auth middleware: this address failed to authenticate too often."""
    wait = max(1, math.ceil(seconds))
    message = (
        f"Too many requests with a wrong API key came from this address: the key was not"
        f" checked. Retry after {wait} s (the Retry-After header)."
    )
    code = "rate_limit_exceeded" if is_openai(scope["path"]) else "TooManyRequests"
    response = render(scope["path"], 429, message, code)
    response.headers["Retry-After"] = str(wait)
    return response


def allowed_methods(app: Starlette, scope: Scope) -> str:
    """The ``Allow`` of a 405 where the document does not say: every method some route
    answers on this path, found by asking the routes (Starlette names only the first
    route whose path matched, while GET and POST of one path are often two routes)."""
    allowed = [
        method
        for method in METHODS
        if any(r.matches({**scope, "method": method})[0] is Match.FULL for r in app.router.routes)
    ]
    return ", ".join(allowed)


def status_of(exc: InterpreterError) -> tuple[int, str, str | None]:
    """(HTTP status, Azure code, OpenAI code) of a core exception: the one table."""
    for cls, status, azure, openai in TABLE:
        if isinstance(exc, cls):
            return status, azure, type(exc).__name__ if openai is NAME else openai
    return 500, "InternalServerError", type(exc).__name__


def param_of(exc: InterpreterError) -> str | None:
    """OpenAI's ``param``: the parameter at fault, or for a quota refusal its name."""
    if isinstance(exc, QuotaExceeded):
        return exc.quota
    param = getattr(exc, "param", None)
    return param if isinstance(param, str) else None


def error_event(exc: InterpreterError) -> dict[str, Any]:
    """The ``error`` event of a stream that failed after it started (the status has been
    sent): the OpenAI error body, whichever face streams."""
    status, _, code = status_of(exc)
    kind = OPENAI_TYPES.get(status, "invalid_request_error")
    return {"error": {"message": str(exc), "type": kind, "param": param_of(exc), "code": code}}


def retry_after(exc: InterpreterError) -> int | None:
    """Seconds a client should wait before trying again, when that is known."""
    if isinstance(exc, QuotaExceeded):
        return exc.retry_after or 60
    if isinstance(exc, HostBusy):
        return 10
    return None


def _describe(errors: list[Any]) -> tuple[str, str | None]:
    first = errors[0] if errors else {}
    loc = list(first.get("loc", ()))
    if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
        loc = loc[1:]  # where it was is plain from the name: 'limit', not 'query.limit'
    where = [str(p) for p in loc]
    param = ".".join(where) or None
    if first.get("type") == "json_invalid":
        return "The request body is not valid JSON.", None
    if first.get("type") == "missing":
        return f"Missing required parameter: {param!r}.", param
    msg = first.get("msg", "invalid request")
    return (f"Invalid value for {param!r}: {msg}." if param else f"{msg}."), param


def install(app: FastAPI, allow: Callable[[Starlette, Scope], str] = allowed_methods) -> None:
    """The exception handlers; ``allow`` finds the ``Allow`` of a 405."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return render(request.url.path, exc.status, exc.message, exc.code, exc.param)

    @app.exception_handler(InterpreterError)
    async def core_error(request: Request, exc: InterpreterError) -> Response:
        status, azure, openai = status_of(exc)
        if status >= 500:
            log.warning("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        code = openai if is_openai(request.url.path) else azure
        response = render(request.url.path, status, str(exc), code, param_of(exc))
        retry = retry_after(exc)
        if retry is not None:
            response.headers["Retry-After"] = str(retry)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        message, param = _describe(list(exc.errors()))
        return render(request.url.path, 400, message, None, param)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "Request refused."
        headers = dict(exc.headers or {})
        if exc.status_code == 404 and exc.detail == "Not Found":
            message = f"No route {request.method} {request.url.path}."
        elif exc.status_code == 405:
            headers["Allow"] = allow(request.app, request.scope)
            message = (
                f"{request.method} is not allowed on {request.url.path}: use {headers['Allow']}."
            )
        response = render(request.url.path, exc.status_code, message)
        response.headers.update(headers)
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        ref = secrets.token_hex(4)
        log.exception("unexpected error %s on %s %s", ref, request.method, request.url.path)
        return render(
            request.url.path, 500, f"Internal error (reference {ref}); see the server log."
        )
