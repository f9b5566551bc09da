"""Text on the wire is UTF-8, both ways.

In: JSON allows ``"\\ud800"``, an escape for half of a surrogate pair, and Python's
JSON decoder turns it (or the raw bytes ``ED A0 80``) into a ``str`` that cannot be
encoded as UTF-8, which would break the kernel protocol, the store and every later
answer. ``unencodable`` finds the first such string in a decoded body and names its
field, so the edge can refuse the request with a 400 (see ``bodies.py``).

Out: whatever was stored earlier (by an older version, or read from a file name the
sandbox chose) must not make an answer fail to serialise. ``JSONResponse`` and
``scrub`` replace a lone surrogate with U+FFFD instead of raising.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse as _JSONResponse

__all__ = ["BadText", "JSONResponse", "clean", "scrub", "unencodable"]


@dataclass(frozen=True)
class BadText:
    """Where a decoded JSON body holds text that is not valid Unicode."""

    field: str  # "properties.code", "messages[0].content"; "" for the body itself
    char: str  # the lone surrogate
    index: int  # its position in that string

    def message(self) -> str:
        where = f"{self.field!r}" if self.field else "The body"
        return (
            f"{where} holds a lone surrogate (U+{ord(self.char):04X}) at character "
            f"{self.index}, which is not text that UTF-8 can carry. Send UTF-8 text; a JSON "
            "\\uD800-\\uDFFF escape must be one half of a surrogate pair."
        )


def _bad(text: str) -> tuple[str, int] | None:
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return text[exc.start], exc.start
    return None


def unencodable(value: Any) -> BadText | None:
    """The first string (key or value, depth first) in decoded JSON that UTF-8 cannot
    encode. Iterative: as deep as the decoder went, no deeper recursion here."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            found = _bad(item)
            if found:
                return BadText(path, *found)
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                where = f"{path}.{key}" if path else str(key)
                found = _bad(str(key))
                if found:
                    return BadText(f"{path} (a key)" if path else "(a key)", *found)
                children.append((where, child))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child) for i, child in reversed(list(enumerate(item))))
    return None


def scrub(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (pairs are joined)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def clean(value: Any) -> Any:
    """``scrub`` over the strings of JSON-like data (dict keys included)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


class JSONResponse(_JSONResponse):
    """Starlette's JSONResponse that never fails on a lone surrogate: it is sent as
    U+FFFD. (The fast path is the plain one; the fallback only runs for bad text.)"""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            text = json.dumps(
                content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
            )
            return scrub(text).encode("utf-8")
