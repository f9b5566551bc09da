"""The Assistants API objects, built as plain dicts in the shape clients read (pure).

Shapes follow the openai SDK's ``types/beta`` (Assistant, Thread, Message, Run,
RunStep); timestamps are whole seconds, as on the wire.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import InvalidRequest
from .conversation import check_tool_choice, check_tools
from .store import new_id

__all__ = [
    "ASSISTANT_FIELDS",
    "new_assistant",
    "new_message",
    "new_run",
    "new_step",
    "new_thread",
    "now",
    "resource_files",
    "resources",
    "stamp",
]

ASSISTANT_FIELDS = (
    "name",
    "description",
    "model",
    "instructions",
    "tools",
    "metadata",
    "temperature",
    "top_p",
    "response_format",
)


def now() -> int:
    return int(time.time())


def stamp(obj: dict[str, Any], status: str, field: str | None = None) -> dict[str, Any]:
    """Set ``status`` and, when given, the ``<field>`` timestamp."""
    obj["status"] = status
    if field:
        obj[field] = now()
    return obj


def resources(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """tool_resources with its file ids; ``"code interpreter"`` (a typo in Azure's docs) too."""
    value = value or {}
    ci = value.get("code_interpreter") or value.get("code interpreter") or {}
    return {"code_interpreter": {"file_ids": list(ci.get("file_ids") or [])}}


def resource_files(holder: Mapping[str, Any]) -> list[str]:
    """``tool_resources.code_interpreter.file_ids`` of an assistant or a thread."""
    return list(resources(holder.get("tool_resources"))["code_interpreter"]["file_ids"])


def new_assistant(
    model: str, tools: list[dict[str, Any]], tool_resources: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    check_tools(tools)
    body: dict[str, Any] = {
        "id": new_id("assistant"),
        "object": "assistant",
        "created_at": now(),
        "name": None,
        "description": None,
        "instructions": None,
        "metadata": {},
        "temperature": None,
        "top_p": None,
        "response_format": "auto",
    }
    body.update({k: v for k, v in fields.items() if k in ASSISTANT_FIELDS and v is not None})
    body.update(model=model, tools=tools, tool_resources=tool_resources)
    return body


def new_thread(
    tool_resources: dict[str, Any], metadata: Mapping[str, str] | None
) -> dict[str, Any]:
    return {
        "id": new_id("thread"),
        "object": "thread",
        "created_at": now(),
        "metadata": dict(metadata or {}),
        "tool_resources": tool_resources,
    }


def new_message(
    thread_id: str,
    role: str,
    content: list[dict[str, Any]],
    *,
    attachments: Iterable[Mapping[str, Any]] = (),
    metadata: Mapping[str, str] | None = None,
    run: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A message; one written by ``run`` names the run and its assistant."""
    if role not in ("user", "assistant"):
        raise InvalidRequest(f"Invalid role {role!r}: use user or assistant.", "role")
    return {
        "id": new_id("message"),
        "object": "thread.message",
        "created_at": now(),
        "thread_id": thread_id,
        "status": "completed",
        "incomplete_details": None,
        "completed_at": now() if run else None,
        "incomplete_at": None,
        "role": role,
        "content": content,
        "assistant_id": run["assistant_id"] if run else None,
        "run_id": run["id"] if run else None,
        "attachments": [dict(a) for a in attachments],
        "metadata": dict(metadata or {}),
    }


def new_run(
    thread_id: str, assistant: Mapping[str, Any], options: Mapping[str, Any], expiry: float
) -> dict[str, Any]:
    """A queued run of ``assistant``; ``options`` override the assistant's settings."""
    tools = options.get("tools")
    tools = [dict(t) for t in tools] if tools is not None else assistant["tools"]
    check_tools(tools)
    check_tool_choice(options.get("tool_choice"), tools)
    instructions = options.get("instructions") or assistant.get("instructions") or ""
    if options.get("additional_instructions"):
        instructions = f"{instructions}\n\n{options['additional_instructions']}".strip()

    def pick(key: str, default: Any = None) -> Any:
        return default if options.get(key) is None else options[key]

    created = now()
    return {
        "id": new_id("run"),
        "object": "thread.run",
        "created_at": created,
        "assistant_id": assistant["id"],
        "thread_id": thread_id,
        "status": "queued",
        "started_at": None,
        "expires_at": int(created + expiry),
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "required_action": None,
        "last_error": None,
        "incomplete_details": None,
        "model": pick("model", assistant["model"]),
        "instructions": instructions,
        "tools": tools,
        "tool_choice": pick("tool_choice", "auto"),
        "parallel_tool_calls": pick("parallel_tool_calls", True),
        "metadata": pick("metadata", {}),
        "usage": None,
        "temperature": pick("temperature", assistant.get("temperature")),
        "top_p": pick("top_p", assistant.get("top_p")),
        "response_format": pick("response_format", assistant.get("response_format")),
        "max_prompt_tokens": pick("max_prompt_tokens"),
        "max_completion_tokens": pick("max_completion_tokens"),
        "truncation_strategy": pick("truncation_strategy", {"type": "auto", "last_messages": None}),
    }


def new_step(run: Mapping[str, Any], details: dict[str, Any], status: str) -> dict[str, Any]:
    return {
        "id": new_id("step"),
        "object": "thread.run.step",
        "created_at": now(),
        "assistant_id": run["assistant_id"],
        "thread_id": run["thread_id"],
        "run_id": run["id"],
        "type": details["type"],
        "status": status,
        "step_details": details,
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": now() if status == "completed" else None,
        "metadata": {},
        "usage": None,
    }
