"""Jupyter messaging, pure: parse what a kernel sends, fold one request's output.

No I/O here. Everything a kernel sends is hostile input:

* ``parse_message`` checks a message's signature, parses its JSON with bounded depth
  (lone surrogates replaced), and checks the types of the fields anyone reads;
* ``OutputFold.feed(msg)`` keeps what an Execution needs and no more: log text (head
  and tail when long), images (handed to ``on_image`` as they come, so a caller can
  put them on disk), rich results and the error, and a ``transcript`` (the outputs in
  order, as a notebook cell shows them). Each kind of output has a budget; what goes
  over it is dropped and counted (``dropped``), never kept in memory.

Text is handed to ``on_text`` as it arrives, so the caller can keep the complete log
on disk and stream it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .results import ErrorInfo

__all__ = [
    "IMAGE_TYPES",
    "Budget",
    "OutputFold",
    "TextBuffer",
    "clean_text",
    "parse_message",
    "strip_ansi",
]

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_SURROGATE = re.compile("[\ud800-\udfff]")
IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg"}
DELIM = b"<IDS|MSG>"
MAX_DEPTH = 32  # nesting of a message's JSON; deeper is refused
# JSON values outside strings (numbers, objects, lists...) a message may hold: parsing
# 15 MB of `[{},{},...]` would make 5 million objects, so such a message is refused
# unparsed (a big string, an image or a page of HTML, is one value)
MAX_VALUES = 100_000
_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
MAX_ERROR_CHARS = 64_000  # an error's name, value and traceback together


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def clean_text(text: str) -> str:
    """``text`` with lone surrogates (from JSON ``\\udXXX`` escapes) replaced by U+FFFD."""
    if text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)


# -- parsing ------------------------------------------------------------------------


def parse_message(
    frames: list[bytes], sign: Callable[[list[bytes]], bytes]
) -> dict[str, Any] | None:
    """A signed Jupyter message as plain data, or None when it is not one.

    ``{"msg_type", "header": {"msg_id", "msg_type"}, "parent_header": {"msg_id"},
    "content": dict, "size": bytes of the content frame}``."""
    try:
        parts = frames[frames.index(DELIM) + 1 :]
    except ValueError:
        return None
    if len(parts) < 5 or not hmac.compare_digest(parts[0], sign(parts[1:5])):
        return None
    if any(_values(parts[n]) > MAX_VALUES for n in (1, 2, 4)):
        return None
    try:
        header, parent, content = (_clean(json.loads(parts[n])) for n in (1, 2, 4))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not (isinstance(header, dict) and isinstance(parent, dict) and isinstance(content, dict)):
        return None
    msg_type, msg_id, parent_id = header.get("msg_type"), header.get("msg_id"), parent.get("msg_id")
    if not isinstance(msg_type, str):
        return None
    return {
        "msg_type": msg_type,
        "header": {"msg_id": msg_id if isinstance(msg_id, str) else "", "msg_type": msg_type},
        "parent_header": {"msg_id": parent_id if isinstance(parent_id, str) else None},
        "content": content,
        "size": len(parts[4]),
    }


def _values(raw: bytes) -> int:
    """About how many JSON values ``raw`` holds (its strings, and a comma, bracket or brace
    outside them each), counted without parsing it and giving up past MAX_VALUES."""
    if raw.count(b",") + raw.count(b"[") + raw.count(b"{") <= MAX_VALUES:
        return 0  # the common case: counted in C, and few even with strings' commas
    gaps, prev, strings = [], 0, 0
    for m in _STRINGS.finditer(raw):
        strings += 1
        if strings > MAX_VALUES:
            return strings
        gaps.append(raw[prev : m.start()])
        prev = m.end()
    rest = b"".join([*gaps, raw[prev:]])
    return strings + rest.count(b",") + rest.count(b"[") + rest.count(b"{")


def _clean(value: Any) -> Any:
    """Check nesting depth and replace lone surrogates in every string, in place."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    if isinstance(value, str):
        return clean_text(value)
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError("nested too deeply")
        items = node.items() if isinstance(node, dict) else enumerate(node)
        fixes = []
        for key, item in items:
            if isinstance(item, str):
                if not item.isascii():
                    fixes.append((key, clean_text(item)))
            elif isinstance(item, (dict, list)):
                stack.append((item, depth + 1))
            if isinstance(key, str) and not key.isascii() and clean_text(key) != key:
                raise ValueError("a key is not valid text")
        for key, item in fixes:
            node[key] = item
    return value


# -- folding ------------------------------------------------------------------------


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


@dataclass(frozen=True, kw_only=True)
class Budget:
    """What one execution may keep of each kind of output."""

    chars: int = 20_000  # log text in the result (head and tail), and transcript text
    result_bytes: int = 8 * 1024**2  # rich results (HTML, JSON, ...) and errors kept
    image_bytes: int = 64 * 1024**2  # decoded images, handed to on_image
    items: int = 2000  # images, rich results and errors kept, together


@dataclass
class Dropping:
    """One kind of output that went over its budget: how much was left out."""

    what: str  # "message", "image", "result"
    count: int = 0
    bytes: int = 0
    limit: str = ""  # the setting that decided it

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "count": self.count, "bytes": self.bytes, "limit": self.limit}


def _keep_image(ext: str, data: bytes) -> Any:
    return (ext, data)


@dataclass
class OutputFold:
    """The folded iopub output of one execute_request (its ``msg_id``)."""

    msg_id: str
    max_chars: int = 20_000
    on_text: Callable[[str, str], None] | None = None  # (kind, text): stdout|stderr|result|error
    on_image: Callable[[str, bytes], Any] = _keep_image  # (ext, data) -> what images keeps
    budget: Budget | None = None
    idle: bool = False
    error: ErrorInfo | None = None
    execution_count: int | None = None
    images: list[Any] = field(default_factory=list)  # what on_image returned, in order
    results: list[dict[str, Any]] = field(default_factory=list)  # rich mime bundles
    logs: TextBuffer = field(init=False)
    stdout: TextBuffer = field(init=False)
    stderr: TextBuffer = field(init=False)
    # ordered outputs: {"type": "stream", "name", "text"} | {"type": "image", "index", "mime"}
    # | {"type": "execute_result" | "display_data", "data"} | {"type": "error", ...}
    transcript: list[dict[str, Any]] = field(default_factory=list)
    transcript_cut: int = 0  # stream characters left out of the transcript
    dropped: dict[str, Dropping] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.budget = self.budget or Budget(chars=self.max_chars)
        self.logs = TextBuffer(self.max_chars)
        self.stdout = TextBuffer(self.max_chars)
        self.stderr = TextBuffer(self.max_chars)
        self._stream_room = self.max_chars
        self._result_room = self.budget.result_bytes
        self._image_room = self.budget.image_bytes
        self._items = self.budget.items

    def feed(self, msg: dict[str, Any]) -> bool:
        """Take one iopub message; return True once the kernel is idle for our request."""
        parent = msg.get("parent_header")
        if not isinstance(parent, dict) or parent.get("msg_id") != self.msg_id:
            return self.idle
        kind = msg.get("msg_type")
        content = msg.get("content")
        handler = getattr(self, f"_on_{kind}", None) if isinstance(kind, str) else None
        if handler is not None and isinstance(content, dict):
            handler(content, int(msg.get("size") or 0))
        return self.idle

    def drop(self, what: str, size: int, limit: str) -> None:
        """Count output that was left out, and say so where it happened: the first time
        in the logs and stderr (what every API shows), then only in the count."""
        d = self.dropped.setdefault(what, Dropping(what, limit=limit))
        d.count, d.bytes = d.count + 1, d.bytes + size
        if d.count > 1:
            return
        text = f"[lci: {_KINDS[what]} of {size} bytes was dropped: over {limit}"
        text += "; more may follow, Execution.dropped counts them]\n"
        self.stderr.add(text)
        self._transcribe_stream("stderr", text)
        self.note("stderr", text)

    # -- one handler per message type -----------------------------------------------

    def _on_status(self, content: dict[str, Any], size: int) -> None:
        if content.get("execution_state") == "idle":
            self.idle = True

    def _on_stream(self, content: dict[str, Any], size: int) -> None:
        text = content.get("text")
        if not isinstance(text, str):
            return
        name = "stderr" if content.get("name") == "stderr" else "stdout"
        (self.stderr if name == "stderr" else self.stdout).add(text)
        self._transcribe_stream(name, text)
        self.note(name, text)

    def _on_execute_input(self, content: dict[str, Any], size: int) -> None:
        self._count(content)

    def _on_execute_result(self, content: dict[str, Any], size: int) -> None:
        self._count(content)
        self._bundle("execute_result", content, size)

    def _on_display_data(self, content: dict[str, Any], size: int) -> None:
        self._bundle("display_data", content, size)

    _on_update_display_data = _on_display_data

    def _on_error(self, content: dict[str, Any], size: int) -> None:
        if not self._take("error", size):
            return
        room = MAX_ERROR_CHARS
        ename, evalue = _text(content.get("ename"), "Error")[:200], _text(content.get("evalue"))
        evalue = strip_ansi(evalue[: room // 2])
        room -= len(evalue)
        tb = []
        raw = content.get("traceback")
        for line in raw if isinstance(raw, list) else []:
            if isinstance(line, str) and room > 0:
                tb.append(strip_ansi(line[:room]))
                room -= len(tb[-1])
        self.error = ErrorInfo(ename=ename, evalue=evalue, traceback=tb)
        self.transcript.append({"type": "error", **self.error.to_dict()})
        text = "\n".join(tb) if tb else f"{ename}: {evalue}"
        self.note("error", text.rstrip("\n") + "\n")

    # -- helpers --------------------------------------------------------------------

    def _take(self, what: str, size: int) -> bool:
        """Room for one more rich result or error of ``size``? If not, it is dropped."""
        if size > self._result_room or self._items <= 0:
            limit = "LCI_MAX_RESULT_BYTES" if self._items > 0 else f"{self._budget.items} outputs"
            self.drop(what, size, f"{limit} (rich results and errors of one execution)")
            return False
        self._result_room -= size
        self._items -= 1
        return True

    def _count(self, content: dict[str, Any]) -> None:
        n = content.get("execution_count")
        if isinstance(n, int) and not isinstance(n, bool):
            self.execution_count = n

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

    def _bundle(self, kind: str, content: dict[str, Any], size: int) -> None:
        data = content.get("data")
        if not isinstance(data, dict):
            return
        for mime, ext in IMAGE_TYPES.items():
            if isinstance(data.get(mime), str) and self._image(ext, mime, data[mime]):
                return
        if not self._take("result", size):
            return
        count = content.get("execution_count")
        result = {
            "type": kind,
            "data": data,
            "execution_count": count if isinstance(count, int) else None,
        }
        self.results.append(result)
        self.transcript.append(result)
        plain = data.get("text/plain")
        if isinstance(plain, str) and plain:
            self.note("result", plain + "\n")

    @property
    def _budget(self) -> Budget:
        assert self.budget is not None
        return self.budget

    def _image(self, ext: str, mime: str, encoded: str) -> bool:
        """Decode and hand over one image; False when it is not valid base64."""
        try:
            raw = base64.b64decode(encoded)
        except (binascii.Error, ValueError):
            return False
        if len(raw) > self._image_room or self._items <= 0:
            limit = "LCI_MAX_IMAGE_BYTES" if self._items > 0 else f"{self._budget.items} outputs"
            self.drop("image", len(raw), f"{limit} (images of one execution)")
            return True
        self._image_room -= len(raw)
        self._items -= 1
        self.images.append(self.on_image(ext, raw))
        self.transcript.append({"type": "image", "index": len(self.images) - 1, "mime": mime})
        return True


_KINDS = {
    "message": "a message from the kernel",
    "image": "an image",
    "result": "a rich result",
    "error": "an error message",
}


def _text(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default
