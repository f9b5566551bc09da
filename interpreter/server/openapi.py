"""The OpenAPI document (``/openapi.json``): FastAPI's, completed so that it tells the truth.

FastAPI documents what a handler returns, and a 422 that lci never sends. Around every
handler sit layers that answer on their own, the same way on every route; ``document``
adds their answers to every operation, by the rules those layers follow:

- the HTTP protocol (``protocol.py``): 408, 414 and 431 in plain text, before anything;
- the key check (``auth.py``): 401 and 429 everywhere but ``/healthz``;
- the body guard (``bodies.py``): 413, and 400 for text UTF-8 cannot carry, on every
  method but GET;
- request validation (``problems.py``): 400 where there is a parameter or a body;
- the last resort: 500, with a reference to the server log.

What a handler (or the core under it) refuses is declared on its route, with
``responses=answers(Model, 404, *NEW_WORK)``. Every error gets the body of its dialect,
decided by the path as ``problems.render`` decides it: OpenAI's under ``/v1``, Azure's
elsewhere. A 405 is no operation's answer (it is the answer to a method that is not an
operation) and so is in no operation; every 405 carries ``Allow``.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.types import Scope

from . import problems
from .auth import PUBLIC
from .problems import AzureError, OpenAIError, is_openai

__all__ = ["NEW_WORK", "allowed_methods", "answers", "binary", "install", "multipart", "sse"]

WHY = {
    400: "Bad request: a parameter or the body is invalid (the error names it).",
    401: "No API key, or a wrong one (WWW-Authenticate: Bearer).",
    404: "No such object (for this key's tenant).",
    408: "The request head took over 30 s (sent by the HTTP layer, in plain text).",
    409: "The object is in a state that does not allow this (ended, closed).",
    413: "The body (or the code, or the upload) is over its limit.",
    414: "The request target is over 8 KiB (sent by the HTTP layer, in plain text).",
    415: "The body is not multipart/form-data.",
    429: "Too many requests: this address sent wrong keys (Retry-After), or a tenant quota.",
    431: "The request headers are over 64 KiB (sent by the HTTP layer, in plain text).",
    500: "An internal error; the message names the reference in the server log.",
    503: "The sandbox engine is unavailable or the sandbox did not start.",
    507: "LCI_HOME is below its free-space floor (LCI_MIN_FREE): new work is refused.",
}
# the refusals wherever new work is accepted (a session started, an upload, an execution)
NEW_WORK = (409, 429, 503, 507)
PLAIN = (408, 414, 431)  # answered by the HTTP protocol layer, before the app
AZURE_CODE = {"schema": {"type": "string"}, "description": "The error's code, as in the body"}
HEADERS = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    429: {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait"}},
}


def answers(
    model: type[BaseModel] | None = None,
    *errors: int,
    media: dict[str, Any] | None = None,
    stream: dict[str, Any] | None = None,
    description: str = "Successful Response",
) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=``: its 200 (JSON of ``model``; or ``media``, from
    ``binary``; ``stream``: also a ``text/event-stream``, from ``sse``) and the error
    statuses its handler can answer."""
    out: dict[int | str, dict[str, Any]] = {}
    if model is not None or media is not None:
        ok: dict[str, Any] = {"description": description}
        if model is not None:
            ok["model"] = model
        content = dict(media or {})
        if stream is not None:
            content["text/event-stream"] = {"schema": stream}
        if content:
            ok["content"] = content
        out[200] = ok
    out.update({code: {"description": WHY[code]} for code in errors})
    return out


def binary(media_type: str = "*/*") -> dict[str, Any]:
    """A download: the file's bytes, under its own media type (``*/*``) or a given one."""
    return {media_type: {"schema": {"type": "string", "format": "binary"}}}


def sse(events: list[str], what: str) -> dict[str, Any]:
    """The schema of one event of a ``text/event-stream`` (OpenAPI 3.1 describes a
    stream by its events): its name and its JSON ``data``."""
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"type": "string", "enum": events},
            "data": {"type": "string", "contentMediaType": "application/json"},
        },
        "description": what,
    }


def multipart(**parts: str | tuple[str, list[str]]) -> dict[str, Any]:
    """A route's ``openapi_extra`` for a multipart body (read by ``uploads.py``, not by
    FastAPI): a required binary ``file`` and, keyword by keyword, other text parts
    (``name="description"``; a tuple ``(description, [allowed values])`` for an enum)."""
    properties: dict[str, Any] = {}
    for name, what in parts.items():
        if isinstance(what, tuple):
            properties[name] = {"type": "string", "description": what[0], "enum": what[1]}
        elif name == "file":
            properties[name] = {"type": "string", "format": "binary", "description": what}
        else:
            properties[name] = {"type": "string", "description": what}
    schema = {"type": "object", "required": sorted(parts), "properties": properties}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def allowed_methods(app: Starlette, scope: Scope) -> str:
    """The ``Allow`` of a 405: the methods of the path the document gives this request
    (a concrete path before a templated one, as OpenAPI matches them), else of every
    route that answers it (``/mcp``, ``/ui``, names with a ``/``)."""
    assert isinstance(app, FastAPI)
    templates = _templates(app)
    path = scope["path"]
    matches = [(literal, methods) for pattern, literal, methods in templates if pattern.match(path)]
    if not matches:
        return problems.allowed_methods(app, scope)
    best = max(literal for literal, _ in matches)
    found = {m for literal, methods in matches if literal == best for m in methods}
    return ", ".join(m for m in problems.METHODS if m in found)


def _templates(app: FastAPI) -> list[tuple[re.Pattern[str], int, frozenset[str]]]:
    """The document's paths as patterns (a parameter is one segment), with how many
    characters of each are literal, and their methods; built once."""
    cached: list[tuple[re.Pattern[str], int, frozenset[str]]] | None = getattr(
        app.state, "openapi_templates", None
    )
    if cached is None:
        cached = []
        for path, item in app.openapi()["paths"].items():
            pieces = re.split(r"(\{[^}]+\})", path)
            regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in pieces)
            literal = sum(len(p) for p in pieces if not p.startswith("{"))
            methods = frozenset(m.upper() for m in item if m.upper() in problems.METHODS)
            cached.append((re.compile(f"^{regex}$"), literal, methods))
        app.state.openapi_templates = cached
    return cached


def document(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in (OpenAIError, AzureError):
        found = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(found.pop("$defs", {}))
        schemas[model.__name__] = found
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (LCI_API_KEYS, or LCI_HOME/api_keys); it names the tenant.",
        }
    }
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            _complete(path, method, operation)
    for unused in ("HTTPValidationError", "ValidationError"):  # the 422 lci never sends
        schemas.pop(unused, None)
    return doc


def _complete(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    edge = {500, *PLAIN}
    if path in PUBLIC:
        operation["security"] = []
    else:
        operation["security"] = [{"bearer": []}]
        edge |= {401, 429}
    if method != "get":
        edge |= {400, 413}
    if "requestBody" in operation or any(
        p["in"] != "path" for p in operation.get("parameters", [])
    ):
        edge.add(400)
    for status in edge:
        responses.setdefault(str(status), {"description": WHY[status]})
    for key, response in responses.items():
        status = int(key)
        if status >= 400 and "content" not in response:
            response["content"] = _error_content(path, status)
            headers = dict(HEADERS.get(status, {}))
            if status not in PLAIN and not is_openai(path):
                headers["x-ms-error-code"] = AZURE_CODE
            if headers:
                response["headers"] = headers


def _error_content(path: str, status: int) -> dict[str, Any]:
    if status in PLAIN:
        return {"text/plain": {"schema": {"type": "string"}}}
    model = OpenAIError if is_openai(path) else AzureError
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
