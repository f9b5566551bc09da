"""What ``POST /v1/responses`` accepts, checked and put in one shape (no I/O).

Wire source: openai-python 3.3.1, ``types/responses/response_create_params.py`` (the
body's fields), ``tool_param.py`` (``CodeInterpreter``: ``container`` is a container id or
``{"type": "auto", "file_ids", "memory_limit"}``; ``FunctionToolParam``: ``name``,
``parameters``, ``strict``, ``description``), ``response_input_param.py`` (input items:
a message may come without ``type``; the Agents SDK replays our own output items as
input, extra keys and all) and ``response_includable.py``. The SDK sends an explicit
``None`` as JSON ``null``, so absent and ``null`` mean the same here.

What lci cannot do is refused with an ``InvalidRequest`` naming the field or tool:
hosted tools other than ``code_interpreter`` (``web_search``, ``file_search``, ...),
``background``, ``conversation``, ``prompt``, and fields it does not know.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidRequest
from .objects import OUTPUTS, new_id

__all__ = ["check_request", "input_items"]

# accepted; some only echoed (reasoning, service_tier ...), as a chat-completions model has
# no such knob
KNOWN = {
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls",
    "previous_response_id", "include", "store", "metadata", "max_output_tokens",
    "temperature", "top_p", "stream", "stream_options", "text", "reasoning", "truncation",
    "user", "safety_identifier", "prompt_cache_key", "prompt_cache_retention",
    "prompt_cache_options", "service_tier", "top_logprobs", "max_tool_calls", "background",
}  # fmt: skip
REFUSED = {
    "conversation": "conversations are not supported: chain responses with previous_response_id",
    "prompt": "stored prompts are not supported: send instructions and input",
    "context_management": "context management (compaction) is not supported",
    "moderation": "moderation is not supported",
}
INCLUDABLE = {OUTPUTS, "message.output_text.logprobs", "reasoning.encrypted_content"}
INPUT_TYPES = {"message", "function_call", "function_call_output", "code_interpreter_call"}
FORMATS = ("text", "json_object", "json_schema")
IGNORED_INPUT = {"reasoning", "item_reference"}
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # as the document's pattern reads
FUNCTION_KEYS: dict[str, tuple[type, ...]] = {
    "parameters": (dict, type(None)),
    "description": (str, type(None)),
    "strict": (bool, type(None)),
}


def check_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """The request with absent and ``null`` alike (dropped), or InvalidRequest."""
    params = {k: v for k, v in body.items() if v is not None}
    for key in params:
        if key in REFUSED:
            raise InvalidRequest(f"{key!r} is not supported by lci: {REFUSED[key]}.", key)
        if key not in KNOWN:
            raise InvalidRequest(f"Unknown or unsupported parameter {key!r}.", key)
    if params.get("background"):
        raise InvalidRequest(
            "background responses are not supported by lci: send background=false (or leave"
            " it out) and wait for the answer, or stream it with stream=true.",
            "background",
        )
    if not isinstance(params.get("model"), str) or not params["model"]:
        raise InvalidRequest("'model' is required: the name of a model.", "model")
    for key in ("instructions", "previous_response_id"):
        if key in params and not isinstance(params[key], str):
            raise InvalidRequest(f"{key!r} must be a string.", key)
    _check_metadata(params.get("metadata"))
    _check_text(params.get("text"))
    _check_include(params.get("include", []))
    _check_tools(params.get("tools", []))
    _check_tool_choice(params.get("tool_choice"), params.get("tools", []))
    params["input"] = input_items(params.get("input", []))
    return params


def _check_metadata(metadata: Any) -> None:
    if metadata is None:
        return
    ok = isinstance(metadata, dict) and len(metadata) <= 16
    ok = ok and all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
        for k, v in metadata.items()
    )
    if not ok:
        raise InvalidRequest(
            "metadata is at most 16 string pairs (keys up to 64 characters, values up to 512).",
            "metadata",
        )


def _check_text(text: Any) -> None:
    fmt: Any = text.get("format") if isinstance(text, dict) else None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if text is not None and (
        not isinstance(text, dict) or (fmt is not None and kind not in FORMATS)
    ):
        raise InvalidRequest(
            "text.format is {'type': 'text' | 'json_object' | 'json_schema'}.", "text"
        )
    if kind == "json_schema" and not isinstance(fmt.get("schema"), dict):
        raise InvalidRequest("A json_schema format needs its 'schema'.", "text.format.schema")


def _check_include(include: Any) -> None:
    if not isinstance(include, list) or not all(isinstance(i, str) for i in include):
        raise InvalidRequest("'include' must be a list of strings.", "include")
    for value in include:
        if value not in INCLUDABLE:
            raise InvalidRequest(
                f"include value {value!r} is not supported by lci; it supports {OUTPUTS!r}.",
                "include",
            )


def _check_tools(tools: Any) -> None:
    if not isinstance(tools, list) or len(tools) > 128:
        raise InvalidRequest("'tools' must be a list of at most 128 tools.", "tools")
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            name = tool.get("name")
            if not isinstance(name, str) or not _NAME.match(name) or name == "code_interpreter":
                raise InvalidRequest(
                    "A function tool needs a name of letters, digits, _ or - (at most 64),"
                    " other than code_interpreter.",
                    f"tools[{i}].name",
                )
            for key, types in FUNCTION_KEYS.items():
                if not isinstance(tool.get(key), types):
                    raise InvalidRequest(f"{key!r} has the wrong type.", f"tools[{i}].{key}")
        elif kind == "code_interpreter":
            _check_container(tool.get("container"), i)
        else:
            raise InvalidRequest(
                f"The tool {kind!r} is not supported by lci: it offers code_interpreter and"
                " function tools.",
                f"tools[{i}].type",
            )


def _check_container(container: Any, i: int) -> None:
    param = f"tools[{i}].container"
    if isinstance(container, str) and (container == "auto" or container.startswith("cntr_")):
        return
    if not isinstance(container, dict) or container.get("type") != "auto":
        raise InvalidRequest(
            "container must be a container id (cntr_...), 'auto' or {'type': 'auto', ...}.",
            param,
        )
    ids = container.get("file_ids")
    if ids is None:
        ids = []
    if not isinstance(ids, list) or not all(isinstance(f, str) for f in ids):
        raise InvalidRequest("file_ids must be a list of file ids.", f"{param}.file_ids")
    memory = container.get("memory_limit")
    if memory is not None and memory not in ("1g", "4g", "16g", "64g"):
        raise InvalidRequest(
            f"memory_limit must be 1g, 4g, 16g or 64g, not {memory!r}.", f"{param}.memory_limit"
        )
    policy = container.get("network_policy")
    if policy is not None and (not isinstance(policy, dict) or policy.get("type") != "disabled"):
        raise InvalidRequest(
            "network_policy must be {'type': 'disabled'}: lci sandboxes have no network.",
            f"{param}.network_policy",
        )


def _check_tool_choice(choice: Any, tools: list[dict[str, Any]]) -> None:
    if choice is None or choice in ("auto", "none", "required"):
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "code_interpreter" and any(t["type"] == kind for t in tools):
        return
    names = {t["name"] for t in tools if t["type"] == "function"}
    name = choice.get("name") if kind == "function" else None
    if isinstance(name, str) and name in names:
        return
    if isinstance(name, str):  # a 400, as OpenAI answers it (and the Assistants face)
        raise InvalidRequest(
            f"tool_choice names a function the request does not have: {name!r}.", "tool_choice"
        )
    raise InvalidRequest(
        f"Invalid tool_choice {choice!r}: use auto, none, required, {{'type': 'function',"
        " 'name': ...}} naming one of the tools, or {'type': 'code_interpreter'} with that"
        " tool given.",
        "tool_choice",
    )


def input_items(value: Any) -> list[dict[str, Any]]:
    """``input`` as a list of items, each with an ``id`` (the input_items list needs
    one): a string is one user message; a message without ``type`` is a message."""
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise InvalidRequest("'input' must be a string or a list of items.", "input")
    out = []
    for i, raw in enumerate(value):
        if not isinstance(raw, dict):
            raise InvalidRequest("An input item must be an object.", f"input[{i}]")
        kind = _item_kind(raw)
        if kind == "item_reference" and ("role" in raw or not isinstance(raw.get("id"), str)):
            raise InvalidRequest("An item reference has an 'id' and no 'role'.", f"input[{i}]")
        if not isinstance(kind, str) or kind not in INPUT_TYPES | IGNORED_INPUT:
            raise InvalidRequest(
                f"Input items of type {kind!r} are not supported by lci.", f"input[{i}].type"
            )
        if kind in IGNORED_INPUT:
            continue
        item = {**raw, "type": kind}
        item = _message(item, i) if kind == "message" else _call_item(item, i)
        if not isinstance(item.setdefault("id", new_id("item")), str):
            raise InvalidRequest("An item's id is a string.", f"input[{i}].id")
        out.append(item)
    return out


# the keys of each item kind the conversation reads, and their JSON types
_CALL_KEYS: dict[str, dict[str, tuple[type, ...]]] = {
    "function_call": {"call_id": (str,), "name": (str,), "arguments": (str,)},
    "function_call_output": {"call_id": (str,), "output": (str, list)},
    "code_interpreter_call": {"code": (str, type(None)), "outputs": (list, type(None))},
}


def _call_item(item: dict[str, Any], i: int) -> dict[str, Any]:
    kind = item["type"]
    for key, types in _CALL_KEYS[kind].items():
        if not isinstance(item.get(key), types):
            raise InvalidRequest(
                f"A {kind} item needs {key!r} of the right type.", f"input[{i}].{key}"
            )
    parts = item.get("output") if kind == "function_call_output" else item.get("outputs")
    if isinstance(parts, list) and not all(isinstance(p, dict) for p in parts):
        raise InvalidRequest(f"The parts of a {kind} item are objects.", f"input[{i}]")
    if kind == "function_call_output" and isinstance(parts, list):
        _parts(parts, i)
    return item


def _item_kind(raw: dict[str, Any]) -> Any:
    """A message may come without ``type``; an item reference without it or with null."""
    if "type" in raw:
        return "item_reference" if raw["type"] is None else raw["type"]
    return "message" if "role" in raw else "item_reference"


def _message(item: dict[str, Any], i: int) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise InvalidRequest(
            f"Invalid role {role!r}: use user, assistant, system or developer.", f"input[{i}].role"
        )
    content = item.get("content")
    if isinstance(content, str):
        kind = "output_text" if role == "assistant" else "input_text"
        content = [{"type": kind, "text": content}]
    if not isinstance(content, list):
        raise InvalidRequest("A message's content is a string or a list of parts.", f"input[{i}]")
    _parts(content, i)
    item = {**item, "content": content}
    item.setdefault("status", "completed")
    item.setdefault("id", new_id("message"))
    return item


PARTS = {  # a content part's kind -> its key the conversation reads, and that key's types
    "input_text": ("text", (str,)),
    "output_text": ("text", (str,)),
    "refusal": ("refusal", (str,)),
    "input_file": ("file_id", (str, type(None))),
    "input_image": ("file_id", (str, type(None))),
}


def _parts(parts: list[Any], i: int) -> None:
    for j, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(kind, str) or kind not in PARTS:
            raise InvalidRequest(
                f"Content parts of type {kind!r} are not supported by lci.",
                f"input[{i}].content[{j}].type",
            )
        key, types = PARTS[kind]
        if not isinstance(part.get(key), types) or (
            kind == "input_image" and not isinstance(part.get("image_url"), (str, type(None)))
        ):
            raise InvalidRequest(
                f"A {kind} part's {key!r} has the wrong type.", f"input[{i}].content[{j}]"
            )
