"""Jupyter messaging, pure: fold the iopub messages of one request into plain data.

No I/O here. ``OutputFold.feed(msg)`` takes the message dicts that jupyter_client
returns and keeps what an Execution needs: log text (head and tail when long),
images, rich results and the error, and a ``transcript``: the outputs in the order
they came (what a notebook cell shows), its stream text capped. Text is also handed
to an ``on_text`` callback as it arrives, so the caller can keep the complete log on
disk and stream it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .results import ErrorInfo

__all__ = ["IMAGE_TYPES", "OutputFold", "TextBuffer", "strip_ansi"]

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg"}


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


class TextBuffer:
    """Keeps the first and last ``limit // 2`` characters of a text of any length."""

    def __init__(self, limit: int) -> None:
        self.half = max(limit // 2, 1)
        self._head: list[str] = []
        self._head_len = 0
        self._tail = ""
        self.total = 0

    def add(self, text: str) -> None:
        self.total += len(text)
        room = self.half - self._head_len
        if room > 0:
            self._head.append(text[:room])
            self._head_len += min(room, len(text))
            text = text[room:]
        if text:
            self._tail = (self._tail + text)[-self.half :]

    @property
    def cut(self) -> int:
        """How many characters are not kept."""
        return self.total - self._head_len - len(self._tail)

    def value(self, marker: Callable[[int], str] | None = None) -> str:
        head = "".join(self._head)
        if self.cut <= 0:
            return head + self._tail
        note = marker(self.cut) if marker else f"\n[... {self.cut} characters cut ...]\n"
        return head + note + self._tail


@dataclass
class OutputFold:
    """The folded iopub output of one execute_request (its ``msg_id``)."""

    msg_id: str
    max_chars: int = 20_000
    on_text: Callable[[str, str], None] | None = (
        None  # (kind, text); kind: stdout|stderr|result|error
    )
    idle: bool = False
    error: ErrorInfo | None = None
    execution_count: int | None = None
    images: list[tuple[str, bytes]] = field(default_factory=list)  # (extension, data)
    results: list[dict[str, Any]] = field(default_factory=list)
    logs: TextBuffer = field(init=False)
    stdout: TextBuffer = field(init=False)
    stderr: TextBuffer = field(init=False)
    # ordered outputs: {"type": "stream", "name", "text"} | {"type": "image", "index", "mime"}
    # | {"type": "execute_result" | "display_data", "data"} | {"type": "error", ...}
    transcript: list[dict[str, Any]] = field(default_factory=list)
    transcript_cut: int = 0  # stream characters left out of the transcript

    def __post_init__(self) -> None:
        self.logs = TextBuffer(self.max_chars)
        self.stdout = TextBuffer(self.max_chars)
        self.stderr = TextBuffer(self.max_chars)
        self._stream_room = self.max_chars

    def feed(self, msg: dict[str, Any]) -> bool:
        """Take one iopub message; return True once the kernel is idle for our request."""
        if msg.get("parent_header", {}).get("msg_id") != self.msg_id:
            return self.idle
        kind = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
        content = msg.get("content", {})
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(content)
        return self.idle

    # -- one handler per message type -----------------------------------------------

    def _on_status(self, content: dict[str, Any]) -> None:
        if content.get("execution_state") == "idle":
            self.idle = True

    def _on_stream(self, content: dict[str, Any]) -> None:
        name = "stderr" if content.get("name") == "stderr" else "stdout"
        text = content.get("text", "")
        (self.stderr if name == "stderr" else self.stdout).add(text)
        self._transcribe_stream(name, text)
        self.note(name, text)

    def _on_execute_input(self, content: dict[str, Any]) -> None:
        self.execution_count = content.get("execution_count", self.execution_count)

    def _on_execute_result(self, content: dict[str, Any]) -> None:
        self.execution_count = content.get("execution_count", self.execution_count)
        self._bundle("execute_result", content)

    def _on_display_data(self, content: dict[str, Any]) -> None:
        self._bundle("display_data", content)

    _on_update_display_data = _on_display_data

    def _on_error(self, content: dict[str, Any]) -> None:
        tb = [strip_ansi(line) for line in content.get("traceback", [])]
        self.error = ErrorInfo(
            ename=str(content.get("ename", "Error")),
            evalue=strip_ansi(str(content.get("evalue", ""))),
            traceback=tb,
        )
        self.transcript.append({"type": "error", **self.error.to_dict()})
        text = "\n".join(tb) if tb else f"{self.error.ename}: {self.error.evalue}"
        self.note("error", text.rstrip("\n") + "\n")

    # -- helpers --------------------------------------------------------------------

    def _transcribe_stream(self, name: str, text: str) -> None:
        """Keep the first ``max_chars`` of stream text in order; the log file has the rest."""
        kept, self._stream_room = text[: self._stream_room], max(self._stream_room - len(text), 0)
        self.transcript_cut += len(text) - len(kept)
        if not kept:
            return
        last = self.transcript[-1] if self.transcript else None
        if last is not None and last["type"] == "stream" and last["name"] == name:
            last["text"] += kept
        else:
            self.transcript.append({"type": "stream", "name": name, "text": kept})

    def note(self, kind: str, text: str) -> None:
        """Add text to the logs (and hand it to on_text), as if the kernel had printed it."""
        self.logs.add(text)
        if self.on_text is not None:
            self.on_text(kind, text)

    def _bundle(self, kind: str, content: dict[str, Any]) -> None:
        data: dict[str, Any] = content.get("data", {})
        for mime, ext in IMAGE_TYPES.items():
            if isinstance(data.get(mime), str):
                try:
                    self.images.append((ext, base64.b64decode(data[mime])))
                except (binascii.Error, ValueError):
                    continue
                self.transcript.append(
                    {"type": "image", "index": len(self.images) - 1, "mime": mime}
                )
                return
        result = {"type": kind, "data": data, "execution_count": content.get("execution_count")}
        self.results.append(result)
        self.transcript.append(result)
        plain = data.get("text/plain")
        if isinstance(plain, str) and plain:
            self.note("result", plain + "\n")
