"""OpenAI-compatible Containers under ``/v1/containers`` (PROTOCOLS.md 2.1), plus the
lci extension that runs code in one: ``POST /v1/containers/{id}/executions``.

A container is a thread: its id names the session, the same one an Azure
``?identifier=`` of that value reaches. ``expires_after.minutes`` is the idle timeout
and ``memory_limit`` the sandbox's memory. As on OpenAI, an expired container stays
expired (status ``expired``): create a new one.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...catalog import SandboxFile
from ...config import parse_bytes
from ...errors import ConfigError
from ...results import Execution
from ...session import Session
from ...threads import ContainerRecord, ThreadState
from ...workspace import sanitize_filename
from ..common import Deps, WholeNumber, blob_response, deps
from ..execution import EVENT, ExecutionCreate, check_code, execute, stream
from ..openapi import NEW_WORK, answers, binary, multipart, sse
from ..pages import After, Limit, page
from ..problems import ApiError
from ..schemas import Container, ContainerExecution, ContainerFile, Deleted, Page
from ..uploads import receive_upload
from ..utf8 import JSONResponse

__all__ = ["router"]

router = APIRouter(prefix="/v1/containers", tags=["OpenAI containers"])
NOT_FOUND = "No container {!r}."
LIVE, RESUMABLE = ThreadState.LIVE, ThreadState.RESUMABLE


class ExpiresAfter(BaseModel):
    model_config = ConfigDict(strict=True)
    anchor: Literal["last_active_at"] = "last_active_at"
    minutes: WholeNumber = Field(20, ge=1, le=7 * 24 * 60)


class NetworkPolicy(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    type: str = Field("disabled", json_schema_extra={"enum": ["disabled"]})  # others: a 400


# whole megabytes from 128m (a kernel under gVisor does not start in 96m) or gigabytes,
# below 1 PiB (the quotas may clamp it lower)
MEMORY = r"^(?:(?:12[89]|1[3-9][0-9]|[2-9][0-9]{2}|[1-9][0-9]{3,8})[mM]|[1-9][0-9]{0,5}[gG])$"


class ContainerCreate(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)  # JSON types, no coercion
    name: str = Field(..., min_length=1, max_length=256)
    expires_after: ExpiresAfter | None = None
    file_ids: list[str] = Field(default_factory=list, max_length=1000)
    memory_limit: str | None = Field(
        None,
        description="The sandbox's memory: 1g, 4g, 16g, 64g (or any whole NNNm from 128m, or"
        " NNg); default LCI_MEMORY",
        json_schema_extra={"pattern": MEMORY},
    )
    network_policy: NetworkPolicy | None = None
    # lci extension: the OCI runtime of its sandboxes (runsc: gVisor); default LCI_RUNTIME
    runtime: Literal["runc", "runsc"] | None = None

    @field_validator("memory_limit")
    @classmethod
    def _memory_syntax(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(MEMORY, value):
            raise ValueError(f"use 1g, 4g, 16g or 64g (or NNNm from 128m), not {value!r}")
        return value


class FileRef(BaseModel):
    model_config = ConfigDict(strict=True)
    file_id: str


FILE_BODY = multipart(file="The file; its name (a path under /mnt/data or not) names it there")
FILE_BODY["requestBody"]["content"]["application/json"] = {
    "schema": {
        "type": "object",
        "required": ["file_id"],
        "properties": {"file_id": {"type": "string", "description": "A file of /v1/files"}},
    }
}
EVENTS = sse(
    [*EVENT.values(), "execution", "error"],
    "stdout, stderr, result and traceback chunks as they come ({'text'}), then the"
    " execution (a ContainerExecution), or an error ({'error'}) if the engine failed",
)


# -- containers -----------------------------------------------------------------------


def _memory(value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        n = parse_bytes(value, "memory_limit")
    except ConfigError:
        raise ApiError(
            400, f"Invalid memory_limit {value!r}: use 1g, 4g, 16g or 64g.", param="memory_limit"
        ) from None
    return n  # its form (and so its floor, 128m) is checked by ContainerCreate


def _short(n: int) -> str:
    """``4g``, ``1536m``: a memory_limit as the API takes it (whole megabytes, rounded down)."""
    if n % 1024**3 == 0:
        return f"{n // 1024**3}g"
    return f"{n // 1024**2}m"


def _view(d: Deps, rec: ContainerRecord) -> dict[str, Any]:
    state = d.manager.threads.state(d.tenant, rec.id)
    last = d.manager.threads.last(d.tenant, rec.id)
    return {
        "id": rec.id,
        "object": "container",
        "created_at": int(rec.created_at),
        "status": "running" if state in (LIVE, RESUMABLE) else "expired",
        "expires_after": {"anchor": "last_active_at", "minutes": round(rec.idle_timeout / 60)},
        "last_active_at": int(last.last_activity if last else rec.created_at),
        "memory_limit": _short(rec.memory),
        "name": rec.name,
        "network_policy": {"type": "disabled"},
        "runtime": (last.runtime if last else d.settings.sandbox.runtime),  # lci extension
    }


def _record(d: Deps, container_id: str) -> ContainerRecord:
    """The container, or the thread of a live session under that id (an Azure identifier)."""
    rec = d.manager.threads.container(d.tenant, container_id)
    if rec is not None:
        return rec
    live = d.manager.live_record(d.tenant, container_id)
    if live is None:
        raise ApiError(404, NOT_FOUND.format(container_id), param="container_id")
    return ContainerRecord(
        container_id, d.tenant, container_id, live.created_at, live.idle_timeout, live.memory
    )


async def _session(d: Deps, container_id: str) -> Session:
    _record(d, container_id)  # 404 for no container
    return await d.manager.threads.session(d.tenant, container_id)


@router.post(
    "",
    summary="Create a container (starts its sandbox)",
    response_model=None,
    responses=answers(Container, 400, 404, *NEW_WORK),
)
async def create_container(body: ContainerCreate, d: Deps = deps) -> dict[str, Any]:
    if body.network_policy is not None and body.network_policy.type != "disabled":
        raise ApiError(
            400,
            f"network_policy {body.network_policy.type!r} is not supported: lci sandboxes"
            " have no network. Use {'type': 'disabled'}.",
            param="network_policy",
        )
    if body.runtime not in (None, d.settings.sandbox.runtime, "runsc"):
        raise ApiError(
            400,
            f"runtime {body.runtime!r} is not allowed here: this service runs sandboxes"
            f" under {d.settings.sandbox.runtime!r} (LCI_RUNTIME), and a container may ask only"
            " for that or for stronger isolation ('runsc').",
            param="runtime",
        )
    for fid in body.file_ids:
        d.manager.files.info(fid, d.tenant)  # 404 before anything starts
    minutes = body.expires_after.minutes if body.expires_after else 20
    rec = await d.manager.threads.open_container(
        d.tenant,
        body.name,
        idle_timeout=minutes * 60.0,
        memory=_memory(body.memory_limit, d.settings.sandbox.memory),
        file_ids=body.file_ids,
        runtime=body.runtime,
    )
    return _view(d, rec)


@router.get(
    "",
    summary="List containers",
    response_model=None,
    responses=answers(Page[Container], 404),
)
async def list_containers(
    limit: int = Limit,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = After,
    name: str | None = None,
    d: Deps = deps,
) -> dict[str, Any]:
    recs = d.manager.threads.containers(d.tenant)
    known = {r.id for r in recs}
    for thread in d.manager.threads.live(d.tenant):
        if thread not in known:
            recs.append(_record(d, thread))
    views = [_view(d, r) for r in recs if name is None or r.name == name]
    return page(views, limit, order, after)


@router.get(
    "/{container_id}",
    summary="Retrieve a container",
    response_model=None,
    responses=answers(Container, 404),
)
async def retrieve_container(container_id: str, d: Deps = deps) -> dict[str, Any]:
    return _view(d, _record(d, container_id))


@router.delete(
    "/{container_id}",
    summary="Delete a container (stops its sandbox)",
    response_model=None,
    responses=answers(Deleted, 404, 409, 503),
)
async def delete_container(container_id: str, d: Deps = deps) -> dict[str, Any]:
    _record(d, container_id)
    await d.manager.threads.forget(d.tenant, container_id, reason="container deleted")
    d.manager.threads.delete_container(d.tenant, container_id)
    return {"id": container_id, "object": "container.deleted", "deleted": True}


# -- container files ------------------------------------------------------------------


def _file_view(container_id: str, f: SandboxFile) -> dict[str, Any]:
    return {
        "id": f.file_id,
        "object": "container.file",
        "created_at": int(f.created_at),
        "bytes": f.bytes,
        "container_id": container_id,
        "path": f.full_path,
        "source": f.source,
    }


async def _files(d: Deps, container_id: str) -> list[SandboxFile]:
    rec = _record(d, container_id)
    return await d.manager.threads.files(d.tenant, rec.id)


async def _file(d: Deps, container_id: str, file_id: str) -> SandboxFile:
    for f in await _files(d, container_id):
        if f.file_id == file_id:
            return f
    raise ApiError(404, f"No file {file_id!r} in container {container_id!r}.", param="file_id")


@router.post(
    "/{container_id}/files",
    summary="Add a file: multipart 'file' or JSON file_id",
    response_model=None,
    responses=answers(ContainerFile, 400, 404, 413, 415, *NEW_WORK),
    openapi_extra=FILE_BODY,
)
async def create_container_file(
    container_id: str, request: Request, d: Deps = deps
) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "")
    session = await _session(d, container_id)
    if ctype.startswith("application/json"):
        try:
            ref = FileRef.model_validate_json(await request.body())
        except ValueError:
            raise ApiError(
                400, "Send a JSON body {'file_id': ...} or a multipart 'file'.", param="file_id"
            ) from None
        info = await d.manager.files.get(ref.file_id, d.tenant)
        placed = await session.put_file(info.filename, info.id)
        return _file_view(container_id, placed)
    up = await receive_upload(request, d.manager.files, d.settings.limits.max_upload_bytes)
    try:
        rel = sanitize_filename((up.filename or "").strip() or "upload")
        info = up.keep(
            d.manager.files, rel.rsplit("/", 1)[-1], "assistants", d.tenant, container_id
        )
        placed = await session.put_file(rel, info.id)
    finally:
        up.discard()
    return _file_view(container_id, placed)


@router.get(
    "/{container_id}/files",
    summary="List a container's files",
    response_model=None,
    responses=answers(Page[ContainerFile], 404, 409, 503),
)
async def list_container_files(
    container_id: str,
    limit: int = Limit,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = After,
    d: Deps = deps,
) -> dict[str, Any]:
    views = [_file_view(container_id, f) for f in await _files(d, container_id)]
    return page(views, limit, order, after)


@router.get(
    "/{container_id}/files/{file_id}",
    summary="Retrieve a container file",
    response_model=None,
    responses=answers(ContainerFile, 404, 409, 503),
)
async def retrieve_container_file(
    container_id: str, file_id: str, d: Deps = deps
) -> dict[str, Any]:
    return _file_view(container_id, await _file(d, container_id, file_id))


@router.get(
    "/{container_id}/files/{file_id}/content",
    summary="Download a container file",
    response_class=FileResponse,
    responses=answers(None, 404, 409, 503, media=binary()),
)
async def container_file_content(container_id: str, file_id: str, d: Deps = deps) -> FileResponse:
    f = await _file(d, container_id, file_id)
    return blob_response(d, await d.manager.files.get(f.file_id, d.tenant))


@router.delete(
    "/{container_id}/files/{file_id}",
    summary="Delete a container file",
    response_model=None,
    responses=answers(Deleted, 400, 404, 409, 503),
)
async def delete_container_file(container_id: str, file_id: str, d: Deps = deps) -> dict[str, Any]:
    f = await _file(d, container_id, file_id)
    session = await _session(d, container_id)
    await session.remove_file(f.path)
    return {"id": file_id, "object": "container.file.deleted", "deleted": True}


# -- executions (lci extension) -------------------------------------------------------


def execution_view(container_id: str, exe: Execution) -> dict[str, Any]:
    return {"object": "container.execution", "container_id": container_id, **exe.to_dict()}


@router.post(
    "/{container_id}/executions",
    summary="Run Python in the container (lci extension; stream=true for SSE)",
    response_model=None,
    responses=answers(ContainerExecution, 400, 404, 413, *NEW_WORK, stream=EVENTS),
)
async def create_execution(
    container_id: str, body: ExecutionCreate, request: Request, d: Deps = deps
) -> dict[str, Any] | Response:
    check_code(body.code, d.settings.limits.max_code_bytes)
    session = await _session(d, container_id)
    if body.stream:
        return stream(
            session,
            body.code,
            body.timeout,
            lambda exe: execution_view(container_id, exe),
        )
    exe = await execute(request, session, body.code, body.timeout)
    return JSONResponse(execution_view(container_id, exe))  # skips jsonable_encoder
