"""The Azure Container Apps dynamic-sessions face (PROTOCOLS.md section 1).

Both dialects: the legacy ``2024-02-02-preview`` one every Python client speaks
(``code/execute``, ``files/upload``, ``files``, ``files/content/{name}``) and the
newer one (``executions`` with ``code`` or ``shellCommand``, ``files/{name}/content``,
``session``). Served under ``/`` and under the pool path; ``?identifier=`` names the
session (get-or-create), the same thread id a ``/v1/containers`` id names.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ...session import Session
from ..common import Deps, deps, iso, python_result, stderr_with_error
from ..execution import check_code, execute
from ..openapi import NEW_WORK, answers
from ..problems import ApiError
from ..schemas import (
    AzureExecution,
    AzureLegacyExecution,
    AzureSession,
    AzureSessionList,
)
from ..utf8 import JSONResponse
from . import shell

__all__ = ["POOL_PREFIX", "Identifier", "pool", "router", "session_for"]

POOL_PREFIX = "/subscriptions/{subscription}/resourceGroups/{group}/sessionPools/{pool}"

router = APIRouter(tags=["Azure dynamic sessions"])
Identifier = Query(
    ...,
    min_length=1,
    max_length=256,
    description="The session: any string of 1-256 characters but control characters,"
    " created on first use.",
    json_schema_extra={"pattern": "^[^\\x00-\\x1f]+$"},  # _session says why, naming it
)
Timeout = Field(None, gt=0, le=86400, description="Seconds; the default is LCI_EXEC_TIMEOUT")


async def _pool(
    subscription: str = Path(min_length=1),
    group: str = Path(min_length=1),
    pool: str = Path(min_length=1),
) -> None:
    """The pool path's parameters: accepted and not used (one pool per service)."""


pool: Any = Depends(_pool)


class ExecuteProperties(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    code: str
    timeoutInSeconds: float | None = Timeout
    codeInputType: str | None = None
    executionType: str | None = None


class ExecuteRequest(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    properties: ExecuteProperties


class ExecutionRequest(BaseModel):
    """New dialect: Python ``code`` or a ``shellCommand`` (which wins when both are sent)."""

    model_config = ConfigDict(
        extra="allow",
        strict=True,
        json_schema_extra={
            "anyOf": [
                {"required": ["code"], "properties": {"code": {"type": "string"}}},
                {"required": ["shellCommand"], "properties": {"shellCommand": {"type": "string"}}},
            ]
        },
    )
    code: str | None = None
    shellCommand: str | None = None
    timeoutInSeconds: float | None = Timeout
    codeInputType: str | None = None
    executionType: str | None = None


async def session_for(d: Deps, identifier: str) -> Session:
    """The identifier's session (get-or-create; a container's as the containers face has it)."""
    if any(ord(c) < 32 for c in identifier):
        raise ApiError(400, "The identifier contains control characters.", param="identifier")
    return await d.manager.threads.session(d.tenant, identifier)


def _timeout(value: float | None) -> float | None:
    if value is None:
        return None
    if not 0 < value <= 86400:
        raise ApiError(400, "timeoutInSeconds must be between 0 and 86400.")
    return value


# -- execution ----------------------------------------------------------------------


@router.post(
    "/code/execute",
    summary="Run Python (legacy dialect)",
    response_model=None,
    responses=answers(AzureLegacyExecution, 400, 413, *NEW_WORK),
)
async def code_execute(
    body: ExecuteRequest, request: Request, identifier: str = Identifier, d: Deps = deps
) -> JSONResponse:
    props = body.properties
    check_code(props.code, d.settings.limits.max_code_bytes, "properties.code")
    session = await session_for(d, identifier)
    exe = await execute(request, session, props.code, _timeout(props.timeoutInSeconds))
    result = await python_result(d, exe)
    return JSONResponse(
        {
            "$id": "1",
            "properties": {
                "$id": "2",
                "status": "Success" if exe.ok else "Failure",
                "stdout": exe.stdout,
                "stderr": stderr_with_error(exe),
                "result": "" if result is None else result,
                "executionTimeInMilliseconds": exe.duration_ms,
            },
        }
    )


@router.post(
    "/executions",
    summary="Run Python code or a shell command (new dialect)",
    response_model=None,
    responses=answers(AzureExecution, 400, 413, *NEW_WORK),
)
async def executions(
    body: ExecutionRequest,
    request: Request,
    response: Response,
    identifier: str = Identifier,
    d: Deps = deps,
) -> dict[str, Any]:
    timeout = _timeout(body.timeoutInSeconds)
    if body.shellCommand is not None:
        check_code(body.shellCommand, d.settings.limits.max_code_bytes, "shellCommand")
        session = await session_for(d, identifier)
        exe = await execute(request, session, shell.snippet(body.shellCommand), timeout)
        code, stdout, stderr = shell.outcome(exe)
        return {
            "id": exe.id,
            "identifier": identifier,
            "executionType": "Synchronous",
            "status": str(code),
            "result": {
                "stdout": stdout,
                "stderr": stderr,
                "executionTimeInMilliseconds": exe.duration_ms,
            },
        }
    if body.code is None:
        raise ApiError(400, "Missing required parameter: 'code' (or 'shellCommand').", param="code")
    check_code(body.code, d.settings.limits.max_code_bytes)
    session = await session_for(d, identifier)
    exe = await execute(request, session, body.code, timeout)
    result = await python_result(d, exe)
    response.headers["operation-id"] = exe.id
    return {
        "id": exe.id,
        "identifier": identifier,
        "executionType": "Synchronous",
        "status": "Succeeded" if exe.ok else "Failed",
        "result": {
            "stdout": exe.stdout,
            "stderr": stderr_with_error(exe),
            "executionResult": result,
            "executionTimeInMilliseconds": exe.duration_ms,
        },
    }


@router.get(
    "/executions/{execution_id}",
    summary="An asynchronous execution (unsupported: always 404)",
    status_code=404,
    response_class=Response,
    responses=answers(None, 404),
)
async def execution_status(execution_id: str, d: Deps = deps) -> None:
    raise ApiError(
        404,
        f"No execution {execution_id!r}: lci runs executions synchronously, so there is"
        " nothing to poll.",
    )


# -- the session --------------------------------------------------------------------


@router.get(
    "/session",
    summary="The session resource",
    response_model=None,
    responses=answers(AzureSession, 404),
)
async def session_get(identifier: str = Identifier, d: Deps = deps) -> dict[str, Any]:
    rec = d.manager.live_record(d.tenant, identifier)
    if rec is None:
        raise ApiError(404, f"No live session {identifier!r}.", "SessionNotFound")
    return {
        "identifier": identifier,
        "createdAt": iso(rec.created_at),
        "lastAccessedAt": iso(rec.last_activity),
        "expireAt": iso(rec.expires_at()),
        "etag": f'"{rec.id}-{rec.executions}"',
    }


@router.delete(
    "/session",
    status_code=204,
    summary="Shut a session down",
    response_class=Response,
    responses=answers(None, 404, 503),
)
async def session_delete(identifier: str = Identifier, d: Deps = deps) -> Response:
    if d.manager.live_record(d.tenant, identifier) is None:
        raise ApiError(404, f"No live session {identifier!r}.", "SessionNotFound")
    # the identifier names a new, empty session next time
    await d.manager.threads.forget(d.tenant, identifier, reason="deleted through the API")
    return Response(status_code=204)


@router.get(
    "/listSessions",
    summary="The tenant's live sessions",
    response_model=None,
    responses=answers(AzureSessionList),
)
async def list_sessions(d: Deps = deps) -> dict[str, Any]:
    sessions = []
    for rec in d.manager.records(tenant=d.tenant):
        sessions.append(
            {
                "identifier": rec.thread_id,
                "createdAt": iso(rec.created_at),
                "lastAccessedAt": iso(rec.last_activity),
                "expireAt": iso(rec.expires_at()),
            }
        )
    return {"sessions": sessions, "nextLink": None}
