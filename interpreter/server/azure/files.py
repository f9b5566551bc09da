"""The Azure dynamic-sessions face's files (both dialects): upload, list, content,
metadata, delete, in the session's /mnt/data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, Response

from ...catalog import SandboxFile
from ...files import guess_mime
from ...workspace import MOUNT, name_problem, sanitize_filename
from ..common import Deps, blob_response, deps, iso
from ..openapi import NEW_WORK, answers, binary, multipart
from ..problems import ApiError
from ..schemas import AzureFile, AzureFileList, AzureUpload
from ..uploads import receive_upload
from .routes import Identifier, session_for

__all__ = ["router"]

router = APIRouter(tags=["Azure dynamic sessions"])
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


# -- files --------------------------------------------------------------------------


async def _upload(request: Request, d: Deps, identifier: str, folder: str) -> SandboxFile:
    session = await session_for(d, identifier)
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
    session = await session_for(d, identifier)
    folder = _folder(path)
    items: list[dict[str, Any]] = []
    for f in await session.list_files():
        parent = f.path.rpartition("/")[0]
        inside = parent == folder or (recursive and (not folder or parent.startswith(folder + "/")))
        if inside:
            items.append(_item(f, len(items) * 2))
    return {"$id": "1", "value": items, "nextLink": None}


async def _find(d: Deps, identifier: str, name: str) -> SandboxFile:
    session = await session_for(d, identifier)
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
    session = await session_for(d, identifier)
    await session.remove_file(name)
    return Response(status_code=204)
