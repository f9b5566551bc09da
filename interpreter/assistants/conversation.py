"""Pure translations between the Assistants objects and chat completions (no I/O).

- message content as created (a string or parts) -> Assistants content blocks;
- a thread (its messages and the tool-call turns of earlier runs) -> chat ``messages``;
- an assistant's tools and a run's ``tool_choice`` -> chat ``tools`` / ``tool_choice``;
- the model's final text -> content blocks: ``image_file`` for the images the run's
  code showed, then the text, whose ``sandbox:/mnt/data/<name>`` links carry
  ``file_path`` annotations naming the produced file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from ..errors import InvalidRequest
from ..tool import DEFINITION, NAME

__all__ = [
    "annotate",
    "assistant_content",
    "chat_messages",
    "chat_tool_choice",
    "chat_tools",
    "check_tool_choice",
    "check_tools",
    "content_blocks",
    "message_text",
    "system_prompt",
]

MAX_TOOLS = 128
_SANDBOX = re.compile(r"sandbox:(/mnt/data/[^\s()\[\]<>\"'`]+)")
_TRAILING = ".,;:!?"


# -- content ---------------------------------------------------------------------------


def text_block(value: str, annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "text", "text": {"value": value, "annotations": annotations or []}}


def content_blocks(content: str | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A message's ``content`` as sent (string or parts) -> stored content blocks."""
    if isinstance(content, str):
        return [text_block(content)]
    blocks = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            value = text.get("value", "") if isinstance(text, Mapping) else str(text or "")
            blocks.append(text_block(value))
        elif kind in ("image_file", "image_url") and isinstance(part.get(kind), Mapping):
            blocks.append({"type": kind, kind: dict(part[kind])})
        else:
            raise InvalidRequest(
                f"Invalid content part type {kind!r}: use text, image_file or image_url.",
                "content",
            )
    if not blocks:
        raise InvalidRequest("A message needs some content.", "content")
    return blocks


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a stored message, images named in brackets."""
    out = []
    for block in message.get("content", []):
        if block["type"] == "text":
            out.append(block["text"]["value"])
        elif block["type"] == "image_file":
            out.append(f"[image {block['image_file']['file_id']}]")
    return "\n".join(out)


def _user_content(message: Mapping[str, Any]) -> str | list[dict[str, Any]]:
    urls = [b["image_url"] for b in message.get("content", []) if b["type"] == "image_url"]
    text = message_text(message)
    if not urls:
        return text
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    return parts + [{"type": "image_url", "image_url": dict(u)} for u in urls]


# -- the conversation --------------------------------------------------------------------


def system_prompt(instructions: str, files: Iterable[str] = ()) -> str:
    """The run's instructions, plus the files the code can read."""
    names = sorted(set(files))
    if not names:
        return instructions
    listing = "\n".join(f"- /mnt/data/{n}" for n in names)
    return f"{instructions}\n\nFiles available to the code_interpreter tool:\n{listing}".strip()


def chat_messages(system: str, items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Thread items in order -> chat messages. An item is a stored message
    (``object: thread.message``) or a tool-call turn (already a chat message)."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    unanswered: list[str] = []
    for item in items:
        if item.get("role") != "tool":
            out += [_no_output(call_id) for call_id in unanswered]
            unanswered = []
        if item.get("object") != "thread.message":
            turn = {k: v for k, v in item.items() if k not in ("id", "run_id")}
            out.append(turn)
            unanswered += [c["id"] for c in turn.get("tool_calls") or []]
            if turn["role"] == "tool" and turn["tool_call_id"] in unanswered:
                unanswered.remove(turn["tool_call_id"])
        elif item["role"] == "user":
            out.append({"role": "user", "content": _user_content(item)})
        else:
            out.append({"role": "assistant", "content": message_text(item)})
    return out + [_no_output(call_id) for call_id in unanswered]


def _no_output(call_id: str) -> dict[str, Any]:
    """A tool call of a run that ended before it was answered (cancelled, expired)."""
    text = "error: no output; the run ended (cancelled, expired or failed) before this call did."
    return {"role": "tool", "tool_call_id": call_id, "content": text}


# -- tools -----------------------------------------------------------------------------


def check_tools(tools: Sequence[Mapping[str, Any]]) -> None:
    """Refuse what the API refuses: over 128 tools, unknown types, unnamed functions."""
    if len(tools) > MAX_TOOLS:
        raise InvalidRequest(
            f"Too many tools: {len(tools)}; an assistant can have at most {MAX_TOOLS}.", "tools"
        )
    names = set()
    for i, tool in enumerate(tools):
        kind = tool.get("type")
        if kind == "function":
            fn = tool.get("function")
            name = fn.get("name") if isinstance(fn, Mapping) else None
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
                raise InvalidRequest(
                    "A function tool needs a name of letters, digits, _ or - (at most 64).",
                    f"tools[{i}].function.name",
                )
            if name == NAME or name in names:
                raise InvalidRequest(f"Duplicate tool name {name!r}.", f"tools[{i}]")
            names.add(name)
        elif kind not in ("code_interpreter", "file_search"):
            raise InvalidRequest(
                f"Invalid tool type {kind!r}: use code_interpreter, function or file_search.",
                f"tools[{i}].type",
            )


def chat_tools(tools: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Assistant tools -> chat tools; code_interpreter becomes a function taking code.
    file_search has no backend here and is not offered."""
    out = []
    for tool in tools:
        if tool["type"] == "code_interpreter":
            out.append(DEFINITION)
        elif tool["type"] == "function":
            out.append({"type": "function", "function": dict(tool["function"])})
    return out


def check_tool_choice(choice: Any, tools: Iterable[Mapping[str, Any]]) -> None:
    if choice is None or choice in ("auto", "none", "required"):
        return
    kinds = {t["type"] for t in tools}
    names = {t["function"]["name"] for t in tools if t["type"] == "function"}
    kind = choice.get("type") if isinstance(choice, Mapping) else None
    if kind == "code_interpreter" and kind in kinds:
        return
    if kind == "function":
        fn = choice.get("function")
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str) and fn["name"] in names:
            return
        raise InvalidRequest(
            f"tool_choice names a function the run does not have: {fn!r}.", "tool_choice"
        )
    raise InvalidRequest(
        f"Invalid tool_choice {choice!r}: use auto, none, required, {{'type': 'function', "
        "'function': {'name': ...}} or {'type': 'code_interpreter'} with that tool enabled.",
        "tool_choice",
    )


def chat_tool_choice(choice: Any, first_turn: bool) -> Any:
    """A run's tool_choice for one model turn. ``none`` holds for the whole run; a forced
    choice (``required``, a named tool) holds for the first turn only, so the model can
    answer once the tool has run."""
    if choice is None or choice == "auto":
        return "auto"
    if choice == "none":
        return "none"
    if not first_turn:
        return "auto"
    if choice == "required":
        return "required"
    if choice.get("type") == "code_interpreter":
        return {"type": "function", "function": {"name": NAME}}
    return {"type": "function", "function": {"name": choice["function"]["name"]}}


# -- the answer ------------------------------------------------------------------------


def annotate(text: str, files: Mapping[str, str]) -> list[dict[str, Any]]:
    """``file_path`` annotations for the ``sandbox:/mnt/data/...`` links in ``text``
    whose path is a known file (``files``: path -> file id)."""
    out = []
    for m in _SANDBOX.finditer(text):
        link = m.group(0).rstrip(_TRAILING)
        path = unquote(link[len("sandbox:") :])
        file_id = files.get(path)
        if file_id is None:
            continue
        out.append(
            {
                "type": "file_path",
                "text": link,
                "start_index": m.start(),
                "end_index": m.start() + len(link),
                "file_path": {"file_id": file_id},
            }
        )
    return out


def assistant_content(
    text: str, image_ids: Iterable[str], files: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The blocks of an assistant message: the images first, then the annotated text."""
    blocks: list[dict[str, Any]] = [
        {"type": "image_file", "image_file": {"file_id": fid}} for fid in image_ids
    ]
    if text or not blocks:
        blocks.append(text_block(text, annotate(text, files)))
    return blocks
