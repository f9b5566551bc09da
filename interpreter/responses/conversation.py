"""Responses items -> chat-completions messages (pure, no I/O).

The items of a ``previous_response_id`` chain (each response's input, then its output)
and the new input become the ``messages`` of a chat-completions request: messages stay
messages (``developer`` reads as ``system``, files as their /mnt/data path); a run of
``code_interpreter_call`` / ``function_call`` items becomes one assistant turn with
``tool_calls`` (a code call is a turn of its own, answered by what the model read back
then: ``reads``, else the call's logs); function calls of one turn stay together and
are answered by the ``function_call_output`` items.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..tool import NAME

__all__ = ["chat_messages", "file_ids", "system_prompt"]


def system_prompt(instructions: str, files: Iterable[str] = ()) -> str:
    names = sorted(set(files))
    if not names:
        return instructions
    listing = "\n".join(f"- /mnt/data/{n}" for n in names)
    return f"{instructions}\n\nFiles available to the code_interpreter tool:\n{listing}".strip()


def file_ids(items: Iterable[Mapping[str, Any]]) -> list[str]:
    """The file ids of the ``input_file`` / ``input_image`` parts of messages."""
    out = []
    for item in items:
        if item.get("type") == "message" and isinstance(item.get("content"), list):
            for part in item["content"]:
                if part.get("type") in ("input_file", "input_image") and part.get("file_id"):
                    out.append(part["file_id"])
    return list(dict.fromkeys(out))


class _Chat:
    def __init__(self, system: str, reads: Mapping[str, str], names: Mapping[str, str]) -> None:
        self.out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        self.reads, self.names = reads, names
        self.calls: list[dict[str, Any]] = []
        self.answers: list[dict[str, Any]] = []
        self.unanswered: list[str] = []

    def flush(self) -> None:
        if self.calls:
            self.out.append({"role": "assistant", "content": None, "tool_calls": self.calls})
            self.out += self.answers
        self.calls, self.answers = [], []

    def settle(self) -> None:
        """Function calls the caller never answered get an answer saying so."""
        self.flush()
        for call_id in self.unanswered:
            text = "error: no output was given for this call."
            self.out.append({"role": "tool", "tool_call_id": call_id, "content": text})
        self.unanswered = []

    def add(self, item: Mapping[str, Any]) -> None:
        kind = item["type"]
        if kind == "code_interpreter_call":  # a turn of its own, answered at once
            self.flush()
            arguments = json.dumps({"code": item.get("code") or ""})
            self.calls.append(_call(item["id"], NAME, arguments))
            text = self.reads.get(item["id"]) or _logs(item)
            self.answers.append({"role": "tool", "tool_call_id": item["id"], "content": text})
            self.flush()
        elif kind == "function_call":
            self.calls.append(_call(item["call_id"], item["name"], item.get("arguments") or "{}"))
            self.unanswered.append(item["call_id"])
        elif kind == "function_call_output":
            self.flush()
            text = _text(item.get("output"), self.names)
            if item["call_id"] in self.unanswered:
                self.unanswered.remove(item["call_id"])
                self.out.append({"role": "tool", "tool_call_id": item["call_id"], "content": text})
            else:  # an answer to a call this conversation never made
                self.out.append({"role": "user", "content": f"Output of {item['call_id']}: {text}"})
        else:
            self.settle()
            self.out.append(self._message(item))

    def _message(self, item: Mapping[str, Any]) -> dict[str, Any]:
        role = {"developer": "system"}.get(item["role"], item["role"])
        parts = item.get("content") or []
        images = [
            p["image_url"] for p in parts if p.get("type") == "input_image" and p.get("image_url")
        ]
        text = _text(parts, self.names)
        if role != "user" or not images:
            return {"role": role, "content": text}
        content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        return {
            "role": role,
            "content": content + [{"type": "image_url", "image_url": {"url": u}} for u in images],
        }


def chat_messages(
    system: str,
    items: Iterable[Mapping[str, Any]],
    reads: Mapping[str, str],
    names: Mapping[str, str],
) -> list[dict[str, Any]]:
    """``items`` in order -> chat messages (``names``: file id -> filename)."""
    chat = _Chat(system, reads, names)
    for item in items:
        chat.add(item)
    chat.flush()  # the calls of the last turn stay open: the new input answers them
    return chat.out


def _call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _logs(item: Mapping[str, Any]) -> str:
    logs = [o.get("logs", "") for o in item.get("outputs") or [] if o.get("type") == "logs"]
    return "output:\n" + "".join(logs) if logs else "status: completed"


def _text(content: Any, names: Mapping[str, str]) -> str:
    """A string, or parts (input_text, output_text, refusal, files by their path)."""
    if isinstance(content, str):
        return content
    out = []
    for part in content or []:
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            out.append(part.get("text") or "")
        elif kind == "refusal":
            out.append(part.get("refusal") or "")
        elif part.get("file_id"):
            name = names.get(part["file_id"], part["file_id"])
            out.append(f"[file /mnt/data/{name}]")
    return "\n".join(out)
