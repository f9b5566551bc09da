"""The Responses API objects as plain dicts, shaped as the wire has them.

Wire source: openai-python 3.3.1 (commit e43b4224), ``src/openai/types/responses/``:
``response.py`` (the Response: ``id, created_at, object, model, output, status, error,
incomplete_details, instructions, metadata, parallel_tool_calls, temperature, top_p,
tool_choice, tools, usage`` always present), ``response_output_message.py`` and
``response_output_text.py`` (a message's ``content`` is a list of ``output_text`` parts
with ``annotations`` and ``logprobs``), ``response_output_text.py``'s
``AnnotationContainerFileCitation`` (``container_id, file_id, filename, start_index,
end_index``), ``response_code_interpreter_tool_call.py`` (``id, code, container_id,
outputs`` — ``null`` unless ``include`` has ``code_interpreter_call.outputs`` — and
``status``; outputs are ``{"type": "logs", "logs"}`` and ``{"type": "image", "url"}``),
``response_function_tool_call.py`` and ``response_usage.py`` (every field an integer).
The SDK does not validate what it parses, so a wrong shape breaks only where it is read
(``output_text``, the stream helper, the Agents runner): every field here is sent.
"""

from __future__ import annotations

import posixpath
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from ..assistants.conversation import annotate
from ..results import Execution

__all__ = [
    "OUTPUTS",
    "citations",
    "code_call",
    "code_outputs",
    "function_call",
    "message",
    "new_id",
    "new_response",
    "usage",
]

OUTPUTS = "code_interpreter_call.outputs"
MAX_UNLINKED = 64  # zero-width citations of written files the text does not link
PREFIX = {"response": "resp_", "message": "msg_", "code": "ci_", "function": "fc_", "item": "item_"}


def new_id(kind: str) -> str:
    return PREFIX[kind] + secrets.token_hex(24)


def usage(chat: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Chat-completions token counts as a Response's ``usage``."""
    chat = chat or {}
    inp, out = int(chat.get("prompt_tokens", 0)), int(chat.get("completion_tokens", 0))
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": inp + out,
    }


def new_response(params: Mapping[str, Any]) -> dict[str, Any]:
    """A Response ``in_progress`` with no output yet, echoing the request's settings."""
    return {
        "id": new_id("response"),
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "background": False,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": params.get("instructions"),
        "max_output_tokens": params.get("max_output_tokens"),
        "max_tool_calls": params.get("max_tool_calls"),
        "metadata": dict(params.get("metadata") or {}),
        "model": params["model"],
        "output": [],
        "parallel_tool_calls": params.get("parallel_tool_calls", True) is not False,
        "previous_response_id": params.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": params.get("store", True) is not False,
        "temperature": params.get("temperature"),
        "text": params.get("text") or {"format": {"type": "text"}},
        "tool_choice": params.get("tool_choice") or "auto",
        "tools": list(params.get("tools") or []),
        "top_p": params.get("top_p"),
        "truncation": params.get("truncation") or "disabled",
        "usage": None,
        "user": params.get("user"),
    }


def message(
    text: str, annotations: list[dict[str, Any]], status: str = "completed"
) -> dict[str, Any]:
    """An assistant ``message`` item with one ``output_text`` part."""
    part = {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}
    return {
        "id": new_id("message"),
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [part],
    }


def code_call(code: str, container_id: str, status: str = "in_progress") -> dict[str, Any]:
    return {
        "id": new_id("code"),
        "type": "code_interpreter_call",
        "code": code,
        "container_id": container_id,
        "outputs": None,
        "status": status,
    }


def code_outputs(exe: Execution, image_url: Callable[[str], str]) -> list[dict[str, Any]]:
    """An execution's outputs on the wire: its logs (printed output, then the error) and
    its images as URLs a client can fetch."""
    logs = exe.stdout + exe.stderr
    if exe.error is not None:
        tb = "\n".join(exe.error.traceback) or f"{exe.error.ename}: {exe.error.evalue}"
        logs += ("" if not logs or logs.endswith("\n") else "\n") + tb
    for bundle in exe.results[-1:]:
        text = bundle.get("data", {}).get("text/plain")
        if bundle.get("type") == "execute_result" and isinstance(text, str):
            logs += ("" if not logs or logs.endswith("\n") else "\n") + text
    out: list[dict[str, Any]] = [{"type": "logs", "logs": logs}] if logs else []
    return out + [{"type": "image", "url": image_url(fid)} for fid in exe.images]


def function_call(call: Mapping[str, Any]) -> dict[str, Any]:
    """A chat tool call naming one of the caller's functions -> a ``function_call`` item."""
    return {
        "id": new_id("function"),
        "type": "function_call",
        "call_id": call["id"],
        "name": call["function"]["name"],
        "arguments": call["function"]["arguments"],
        "status": "completed",
    }


def citations(
    text: str, container_id: str | None, files: Mapping[str, str], written: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """``container_file_citation`` annotations: one per ``sandbox:/mnt/data/...`` link in
    ``text`` naming a file of the container (``files``: path -> file id), then one,
    zero-width at the end of the text, per file this response's code ``written`` that
    the text does not link (so the files are found even when the model does not say),
    at most ``MAX_UNLINKED`` of them (code writing thousands of files must not make
    thousands of annotations in the response, its stream and its stored row)."""
    if container_id is None:
        return []
    out, linked = [], set()
    for a in annotate(text, files):
        fid = a["file_path"]["file_id"]
        linked.add(fid)
        path = unquote(a["text"][len("sandbox:") :])
        out.append(_citation(container_id, fid, path, a["start_index"], a["end_index"]))
    by_id = {fid: path for path, fid in files.items()}
    unlinked = [f for f in dict.fromkeys(written) if f not in linked and f in by_id]
    for fid in unlinked[:MAX_UNLINKED]:
        out.append(_citation(container_id, fid, by_id[fid], len(text), len(text)))
    return out


def _citation(cid: str, fid: str, path: str, start: int, end: int) -> dict[str, Any]:
    return {
        "type": "container_file_citation",
        "container_id": cid,
        "file_id": fid,
        "filename": posixpath.basename(path),
        "start_index": start,
        "end_index": end,
    }
