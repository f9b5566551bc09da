"""What the web inspector shows, as plain data for its templates.

Everything here is pure: durations and sizes as short text, a session row, one
execution as a list of blocks in the order they happened. Code is highlighted by
Pygments (its output is escaped HTML); everything else the templates escape. HTML the
sandboxed code produced is never put into the page: it goes to a sandboxed iframe.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from ...config import format_bytes, format_duration, milliseconds

__all__ = [
    "FAILED",
    "code_css",
    "duration",
    "execution_view",
    "highlight_code",
    "session_row",
    "size",
]

FAILED = frozenset({"error", "timeout", "died", "cancelled", "lost"})
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_FORMATTER = HtmlFormatter(cssclass="hl", nowrap=False)
_TEXT_LIMIT = 200_000  # characters of one output block shown in the page


def duration(seconds: float | None) -> str:
    return format_duration(seconds, none="—")


def size(n: int | None) -> str:
    return format_bytes(n, none="—")


def clock(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def session_row(view: dict[str, Any]) -> dict[str, Any]:
    """One sessions-table row: raw fields plus their display text (JSON-safe)."""
    return {
        "id": view["id"],
        "url": f"/ui/sessions/{view['id']}",
        "thread": view["thread_id"],
        "state": view["state"],
        "age": duration(view["age_s"]),
        "idle": duration(view["idle_s"]),
        "expires": duration(view["expires_in_s"]),
        "memory": size(view["memory_bytes"]),
        "cpu": "—" if view["cpu_percent"] is None else f"{view['cpu_percent']:.1f}%",
        "executions": view["executions"],
        "files": view["files"],
    }


@lru_cache(maxsize=512)
def highlight_code(code: str) -> Markup:
    return Markup(highlight(code, PythonLexer(), _FORMATTER))  # Pygments escapes the code


def code_css() -> str:
    return str(_FORMATTER.get_style_defs(".hl"))


def plain(text: str) -> str:
    text = _ANSI.sub("", text)
    if len(text) > _TEXT_LIMIT:
        return text[:_TEXT_LIMIT] + f"\n… ({len(text) - _TEXT_LIMIT} more characters not shown)"
    return text


def execution_view(entry: dict[str, Any], live_text: str = "") -> dict[str, Any]:
    """One timeline entry: header fields, highlighted code and the output blocks."""
    status = entry.get("status", "running")
    blocks = _blocks(entry, live_text)
    sig = hashlib.sha256(
        repr((status, entry.get("duration_ms"), len(live_text), len(blocks))).encode()
    ).hexdigest()[:16]
    return {
        "id": entry["id"],
        "count": entry.get("execution_count"),
        "status": status,
        "failed": status in FAILED,
        "running": status == "running",
        "started": clock(entry.get("started_at")),
        "duration": duration(milliseconds(entry.get("duration_ms"))),
        "code": highlight_code(entry.get("code") or ""),
        "blocks": blocks,
        "files": entry.get("files") or [],
        "notice": entry.get("notice"),
        "sig": sig,
    }


def _blocks(entry: dict[str, Any], live_text: str) -> list[dict[str, Any]]:
    if entry.get("status") == "running":
        return [{"kind": "stream", "name": "stdout", "text": plain(live_text)}] if live_text else []
    items = enumerate(entry.get("transcript") or [])
    blocks = [b for b in (_block(item, entry["id"], n) for n, item in items) if b]
    blocks = _merge_streams(blocks)
    error = entry.get("error")
    if error and not any(b["kind"] == "error" for b in blocks):
        blocks.append(_error_block(error))
    return blocks


def _block(item: dict[str, Any], exe_id: str, index: int) -> dict[str, Any] | None:
    kind = item.get("type")
    if kind == "stream":
        return {"kind": "stream", "name": item.get("name", "stdout"), "text": plain(item["text"])}
    if kind == "image":
        return {"kind": "image", "file_id": item["file_id"], "mime": item.get("mime", "")}
    if kind == "error":
        return _error_block(item)
    if kind in ("execute_result", "display_data"):
        return _rich(item.get("data") or {}, f"/ui/executions/{exe_id}/html/{index}")
    return None


def _rich(data: dict[str, Any], html_url: str) -> dict[str, Any] | None:
    for mime in ("image/png", "image/jpeg", "image/gif"):
        if isinstance(data.get(mime), str):
            return {"kind": "inline_image", "src": f"data:{mime};base64,{data[mime].strip()}"}
    text = data.get("text/plain")
    html = data.get("text/html")  # shown from html_url, in a sandboxed frame
    if isinstance(html, str) and html.strip():
        return {"kind": "html", "url": html_url}
    if isinstance(text, str):
        return {"kind": "result", "text": plain(text)}
    if data:
        return {"kind": "result", "text": "(output of type " + ", ".join(sorted(data)) + ")"}
    return None


def _error_block(error: dict[str, Any]) -> dict[str, Any]:
    traceback = "\n".join(error.get("traceback") or [])
    return {
        "kind": "error",
        "ename": error.get("ename", "Error"),
        "evalue": plain(str(error.get("evalue", ""))),
        "traceback": plain(traceback),
    }


def _merge_streams(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for b in blocks:
        last = out[-1] if out else None
        if last and b["kind"] == "stream" == last["kind"] and b["name"] == last["name"]:
            out[-1] = {**last, "text": last["text"] + b["text"]}
        else:
            out.append(b)
    return out
