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
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from ...catalog import SandboxFile
from ...files import guess_mime
from ...session import Session
from ...workspace import MOUNT, name_problem, sanitize_filename
from ..common import Deps, blob_response, deps, iso, python_result, stderr_with_error
from ..execution import check_code, execute
from ..openapi import NEW_WORK, answers, binary, multipart
from ..problems import ApiError
from ..schemas import (
    AzureExecution,
    AzureFile,
    AzureFileList,
    AzureLegacyExecution,
    AzureSession,
    AzureSessionList,
    AzureUpload,
)
from ..uploads import receive_upload
from ..utf8 import JSONResponse
from . import shell

__all__ = ["POOL_PREFIX", "pool", "router"]

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
# workspace.sanitize_filename says why anything else is refused
_NAME = r"^(?!\.{1,2}$)[^\x00-\x1f\x7f-\x9f/]{1,255}$"
_FOLDER = r"^(?!\s*(?:.*/)?\.\.(?:/|\s*$))[^\x00-\x1f\x7f-\x9f]*$"  # _folder strips
Name = Path(
    description="A file in /mnt/data (a name with a '/', percent-encoded, is in a folder)",
    json_schema_extra={"pattern": _NAME},
)
Folder = Query(
    None,
    description="A folder under /mnt/data (an upload makes it when it is missing)",
    json_schema_extra={"pattern": _FOLDER},
)
UPLOAD = multipart(file="The file; its name (a path under /mnt/data or not) names it there")


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


async def _session(d: Deps, identifier: str) -> Session:
    if any(ord(c) < 32 for c in identifier):
        raise ApiError(400, "The identifier contains control characters.", param="identifier")
    if (
        d.manager.threads.container(d.tenant, identifier) is not None
    ):  # an OpenAI-face container: it keeps its settings and expiry
        session = await d.manager.find(identifier, owner=d.tenant)
        if session is None:
            raise ApiError(
                400,
                f"Container {identifier} has expired; an expired container stays expired."
                " Create a new one or use another identifier.",
                "ContainerExpired",
            )
        return session
    return await d.manager.session(identifier, owner=d.tenant)


def _timeout(value: float | None) -> float | None:
    if value is None:
        return None
    if not 0 < value <= 86400:
        raise ApiError(400, "timeoutInSeconds must be between 0 and 86400.")
    return value


def _item(f: SandboxFile, n: int = 0) -> dict[str, Any]:
    """A file in both dialects' shapes at once (PROTOCOLS.md 1.5 rule 2)."""
    directory, _, name = f.path.rpartition("/")
    modified = iso(f.modified_at or f.created_at)
    return {
        "$id": str(n + 2),
        "name": f.path,
        "type": "File",
        "contentType": guess_mime(name),
        "sizeInBytes": f.bytes,
        "lastModifiedAt": modified,
        "directory": directory,
        "properties": {"filename": f.path, "size": f.bytes, "lastModifiedTime": modified},
    }


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
    session = await _session(d, identifier)
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
        session = await _session(d, identifier)
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
    session = await _session(d, identifier)
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


# -- files --------------------------------------------------------------------------


async def _upload(request: Request, d: Deps, identifier: str, folder: str) -> SandboxFile:
    session = await _session(d, identifier)
    up = await receive_upload(request, d.manager.files, d.settings.limits.max_upload_bytes)
    try:
        name = (up.filename or "").strip()
        if not name:
            raise ApiError(400, "The 'file' part has no filename.", param="file")
        if folder and not name.startswith("/"):
            name = f"{folder.strip('/')}/{name}"
        rel = sanitize_filename(name)
        info = up.keep(d.manager.files, rel.rsplit("/", 1)[-1], "assistants", d.tenant, identifier)
        return await session.put_file(rel, info.id)
    finally:
        up.discard()


def _folder(path: str | None) -> str:
    if not path:
        return ""
    problem = name_problem(path)  # before strip(), which takes \x1c-\x1f for spaces
    if problem is not None:
        raise ApiError(400, f"Invalid path {path!r}: {problem}.", "InvalidFileName", "path")
    p = path.strip()
    if p == MOUNT or p.startswith(MOUNT + "/"):
        p = p[len(MOUNT) :]
    if ".." in p.split("/"):
        raise ApiError(400, f"Invalid path {path!r}: '..' would leave {MOUNT}.", param="path")
    return p.strip("/")


@router.post(
    "/files/upload",
    summary="Upload a file to /mnt/data (legacy dialect)",
    response_model=None,
    responses=answers(AzureUpload, 400, 413, 415, *NEW_WORK),
    openapi_extra=UPLOAD,
)
async def files_upload(
    request: Request, identifier: str = Identifier, path: str | None = Folder, d: Deps = deps
) -> dict[str, Any]:
    f = await _upload(request, d, identifier, _folder(path))
    return {"$id": "1", "value": [_item(f)]}


@router.post(
    "/files",
    summary="Upload a file to /mnt/data (new dialect)",
    response_model=None,
    responses=answers(AzureFile, 400, 413, 415, *NEW_WORK),
    openapi_extra=UPLOAD,
)
async def files_post(
    request: Request, identifier: str = Identifier, path: str | None = Folder, d: Deps = deps
) -> dict[str, Any]:
    return _item(await _upload(request, d, identifier, _folder(path)))


@router.get(
    "/files",
    summary="List the files in /mnt/data",
    response_model=None,
    responses=answers(AzureFileList, *NEW_WORK),
)
async def files_list(
    identifier: str = Identifier,
    path: str | None = Folder,
    recursive: bool = False,
    d: Deps = deps,
) -> dict[str, Any]:
    session = await _session(d, identifier)
    folder = _folder(path)
    items: list[dict[str, Any]] = []
    for f in await session.list_files():
        parent = f.path.rpartition("/")[0]
        inside = parent == folder or (recursive and (not folder or parent.startswith(folder + "/")))
        if inside:
            items.append(_item(f, len(items) * 2))
    return {"$id": "1", "value": items, "nextLink": None}


async def _find(d: Deps, identifier: str, name: str) -> SandboxFile:
    session = await _session(d, identifier)
    rel = sanitize_filename(name)
    for f in await session.list_files():
        if f.path == rel:
            return f
    raise ApiError(404, f"No file {MOUNT}/{rel} in session {identifier!r}.", "FileNotFound")


def _download(d: Deps, f: SandboxFile) -> FileResponse:
    return blob_response(d, d.manager.files.info(f.file_id, d.tenant), "application/octet-stream")


@router.get(
    "/files/content/{name:path}",
    summary="Download a file (legacy dialect)",
    response_class=FileResponse,
    responses=answers(None, 404, *NEW_WORK, media=binary("application/octet-stream")),
)
async def files_content_legacy(
    name: str = Name, identifier: str = Identifier, d: Deps = deps
) -> FileResponse:
    return _download(d, await _find(d, identifier, name))


@router.get(
    "/files/{name:path}/content",
    summary="Download a file (new dialect)",
    response_class=FileResponse,
    responses=answers(None, 404, *NEW_WORK, media=binary("application/octet-stream")),
)
async def files_content(
    name: str = Name, identifier: str = Identifier, d: Deps = deps
) -> FileResponse:
    return _download(d, await _find(d, identifier, name))


@router.get(
    "/files/{name:path}",
    summary="A file's metadata",
    response_model=None,
    responses=answers(AzureFile, 404, *NEW_WORK),
)
async def file_meta(
    name: str = Name, identifier: str = Identifier, d: Deps = deps
) -> dict[str, Any]:
    return _item(await _find(d, identifier, name))


@router.delete(
    "/files/{name:path}",
    status_code=204,
    summary="Delete a file",
    response_class=Response,
    responses=answers(None, 404, *NEW_WORK),
)
async def file_delete(name: str = Name, identifier: str = Identifier, d: Deps = deps) -> Response:
    session = await _session(d, identifier)
    await session.remove_file(name)
    return Response(status_code=204)


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
    await d.manager.forget(d.tenant, identifier, reason="deleted through the API")
    return Response(status_code=204)


@router.get(
    "/listSessions",
    summary="The tenant's live sessions",
    response_model=None,
    responses=answers(AzureSessionList),
)
async def list_sessions(d: Deps = deps) -> dict[str, Any]:
    sessions = []
    for rec in d.manager.records(owner=d.tenant):
        sessions.append(
            {
                "identifier": rec.thread_id,
                "createdAt": iso(rec.created_at),
                "lastAccessedAt": iso(rec.last_activity),
                "expireAt": iso(rec.expires_at()),
            }
        )
    return {"sessions": sessions, "nextLink": None}
