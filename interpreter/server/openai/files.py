"""OpenAI-compatible Files API under ``/v1/files`` (PROTOCOLS.md 2.2)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from ...results import FileInfo
from ...workspace import sanitize_filename
from ..common import Deps, blob_response, deps
from ..openapi import NEW_WORK, answers, binary, multipart
from ..pages import After, page
from ..problems import ApiError
from ..schemas import Deleted, FileObject, Page
from ..uploads import receive_upload

__all__ = ["file_object", "router"]

router = APIRouter(prefix="/v1", tags=["OpenAI files"])

PURPOSES = {
    "assistants",
    "assistants_output",
    "batch",
    "batch_output",
    "fine-tune",
    "fine-tune-results",
    "vision",
    "user_data",
    "evals",
}


def file_object(info: FileInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "object": "file",
        "bytes": info.bytes,
        "created_at": int(info.created_at),
        "filename": info.filename,
        "purpose": info.purpose,
        "status": "processed",
        "expires_at": None,
        "status_details": None,
    }


@router.post(
    "/files",
    summary="Upload a file (multipart: purpose, file)",
    response_model=None,
    responses=answers(FileObject, 400, 413, 415, *NEW_WORK),
    openapi_extra=multipart(
        file="The file; the last part of its name is its filename",
        purpose=("What the file is for", sorted(PURPOSES)),
    ),
)
async def create_file(request: Request, d: Deps = deps) -> dict[str, Any]:
    up = await receive_upload(request, d.manager.files, d.settings.limits.max_upload_bytes)
    try:
        purpose = up.fields.get("purpose", "").strip()
        if not purpose:
            raise ApiError(400, "Missing required parameter: 'purpose'.", param="purpose")
        if purpose not in PURPOSES:
            raise ApiError(
                400,
                f"Invalid value for 'purpose': {purpose!r}; use one of {sorted(PURPOSES)}.",
                param="purpose",
            )
        name = sanitize_filename((up.filename or "").rsplit("/", 1)[-1] or "upload")
        return file_object(up.keep(d.manager.files, name, purpose, d.tenant))
    finally:
        up.discard()


@router.get(
    "/files",
    summary="List files",
    response_model=None,
    responses=answers(Page[FileObject], 404),
)
async def list_files(
    purpose: str | None = None,
    limit: int = Query(10000, ge=1, le=10000),
    order: Literal["asc", "desc"] = "desc",
    after: str | None = After,
    d: Deps = deps,
) -> dict[str, Any]:
    infos = await d.manager.files.list(tenant=d.tenant)
    if purpose:
        infos = [i for i in infos if i.purpose == purpose]
    return page([file_object(i) for i in infos], limit, order, after, d=10000)


@router.get(
    "/files/{file_id}",
    summary="Retrieve a file's metadata",
    response_model=None,
    responses=answers(FileObject, 404),
)
async def retrieve_file(file_id: str, d: Deps = deps) -> dict[str, Any]:
    return file_object(await d.manager.files.get(file_id, d.tenant))


@router.get(
    "/files/{file_id}/content",
    summary="Download a file's contents",
    response_class=FileResponse,
    responses=answers(None, 404, media=binary()),
)
async def file_content(file_id: str, d: Deps = deps) -> FileResponse:
    return blob_response(d, await d.manager.files.get(file_id, d.tenant))


@router.delete(
    "/files/{file_id}",
    summary="Delete a file",
    response_model=None,
    responses=answers(Deleted, 404),
)
async def delete_file(file_id: str, d: Deps = deps) -> dict[str, Any]:
    await d.manager.files.delete(file_id, d.tenant)
    return {"id": file_id, "object": "file", "deleted": True}
