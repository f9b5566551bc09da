"""What every route needs: the per-request dependencies and small wire helpers."""

from __future__ import annotations

import ast
import base64
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import FileResponse
from pydantic import BeforeValidator

from ..config import Settings
from ..manager import SessionManager
from ..results import Execution, FileInfo
from .metrics import Metrics
from .utf8 import scrub

__all__ = [
    "Deps",
    "WholeNumber",
    "blob_response",
    "deps",
    "iso",
    "python_result",
    "stderr_with_error",
]

_NUMPY_SCALAR = re.compile(
    r"^np\.(?:u?int\d+|float\d+|complex\d+|str_|bytes_)\((.*)\)$|^np\.(True|False)_$"
)


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# an integer of a strict request body: JSON Schema counts 20.0 as one, so it is taken as 20
# (a string or a boolean is still refused)
WholeNumber = Annotated[int, BeforeValidator(_whole)]


@dataclass(frozen=True)
class Deps:
    manager: SessionManager
    settings: Settings
    metrics: Metrics
    tenant: str


async def _deps(request: Request) -> Deps:  # async: no thread-pool hop
    state = request.app.state
    return Deps(state.manager, state.manager.settings, state.metrics, request.state.tenant)


deps: Any = Depends(_deps)


def blob_response(d: Deps, info: FileInfo, media_type: str | None = None) -> FileResponse:
    """A stored file's bytes, streamed from its blob."""
    return FileResponse(
        d.manager.files.blob_path(info.sha256),
        media_type=media_type or info.mime_type,
        filename=scrub(info.filename),
    )


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def stderr_with_error(exe: Execution) -> str:
    """stderr, with the traceback (or the timeout / death message) after it."""
    if exe.error is None:
        return exe.stderr
    tb = "\n".join(exe.error.traceback) or f"{exe.error.ename}: {exe.error.evalue}"
    sep = "" if not exe.stderr or exe.stderr.endswith("\n") else "\n"
    return f"{exe.stderr}{sep}{tb.rstrip()}\n"


async def python_result(d: Deps, exe: Execution) -> Any:
    """The value of the last expression as its JSON type, the last image as a dict,
    or None (PROTOCOLS.md 1.2.1 "result")."""
    images = exe.images
    if images:
        info = await d.manager.files.get(images[-1], d.tenant)
        data = await d.manager.files.content(images[-1], d.tenant)
        fmt = info.filename.rsplit(".", 1)[-1]
        return {"type": "image", "format": fmt, "base64_data": base64.b64encode(data).decode()}
    for bundle in reversed(exe.results):
        if bundle.get("type") == "execute_result":
            return json_value(bundle.get("data", {}))
    return None


MAX_LITERAL = 64 * 1024  # characters of a result's repr turned into a JSON value


def json_value(data: dict[str, Any]) -> Any:
    if "application/json" in data:
        return data["application/json"]
    text = data.get("text/plain")
    if not isinstance(text, str):
        return None
    if len(text) > MAX_LITERAL:  # parsing a long repr costs the service far more than it
        return text  # is worth (a 7 MB list took 3 GB): the text is the value
    scalar = _NUMPY_SCALAR.match(text)  # numpy 2 reprs: np.int64(1), np.True_
    if scalar:
        text = scalar.group(1) or scalar.group(2)
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    if isinstance(value, float) and not math.isfinite(value):
        return text
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return text
    return value
