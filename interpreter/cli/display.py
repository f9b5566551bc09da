"""Plain text for the terminal: tables, durations, sizes, and executions as a log.

Pure: takes the dicts the inspector gives (``SessionView.to_dict()``, history entries)
and returns strings; the CLI prints them. Everything here can hold what a sandbox or a
tenant wrote, so whatever reaches the terminal goes through ``safe``: control
characters (escape sequences that retitle a window, move the cursor, or hide text)
are shown escaped, never sent raw.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..config import format_bytes, format_duration, milliseconds

__all__ = [
    "SESSION_HEADER",
    "execution_footer",
    "execution_header",
    "execution_text",
    "safe",
    "session_details",
    "session_rows",
    "table",
    "took",
]

SESSION_HEADER = (  # thread first, state third: as `lci sessions` always printed
    "THREAD",
    "SESSION",
    "STATE",
    "AGE",
    "IDLE",
    "EXPIRES",
    "MEMORY",
    "CPU",
    "EXECS",
    "FILES",
    "TENANT",
)


# C0 and C1 controls but newline and tab, lone surrogates, and the invisible characters
# that reorder or split a line on screen (bidi overrides and isolates, line separators)
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def safe(text: str) -> str:
    """``text`` with every control character but newline and tab (and any lone surrogate)
    written as an escape: ``\\x1b``."""
    return _CONTROL.sub(_escape, text)


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    rows = [[safe(str(c)).replace("\n", "\\n").replace("\t", "\\t") for c in r] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = (
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in (header, *rows)
    )
    return "\n".join(line.rstrip() for line in lines)


def compact(text: str) -> str:
    """A table cell without spaces (``1m05s``, ``80MiB``), so a row splits into its columns."""
    return text.replace(" ", "")


def session_rows(views: Iterable[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (
            v["thread_id"],
            v["id"],
            v["state"],
            compact(format_duration(v["age_s"])),
            compact(format_duration(v["idle_s"])),
            compact(format_duration(v["expires_in_s"])),
            compact(format_bytes(v["memory_bytes"])),
            "-" if v["cpu_percent"] is None else f"{v['cpu_percent']:.1f}%",
            str(v["executions"]),
            str(v["files"]),
            v["tenant"] or "-",
        )
        for v in views
    ]


def session_details(v: Mapping[str, Any]) -> str:
    pairs = [
        ("session", v["id"]),
        ("thread", v["thread_id"]),
        ("tenant", v["tenant"] or "-"),
        ("state", v["state"] + (f" ({v['end_reason']})" if v.get("end_reason") else "")),
        ("created", stamp(v["created_at"])),
        ("age", format_duration(v["age_s"])),
        ("idle for", format_duration(v["idle_s"])),
        ("expires in", format_duration(v["expires_in_s"])),
        ("ended", stamp(v["ended_at"]) if v.get("ended_at") else "-"),
        ("memory now", format_bytes(v["memory_bytes"])),
        ("cpu now", "-" if v["cpu_percent"] is None else f"{v['cpu_percent']:.1f}% of one core"),
        ("executions", str(v["executions"])),
        ("files", f"{v['files']} in /mnt/data"),
        ("container", v["container"] or "-"),
        ("limits", limits(v)),
    ]
    return safe("\n".join(f"{k + ':':<12} {val}" for k, val in pairs))


def limits(v: Mapping[str, Any]) -> str:
    return (
        f"memory {format_bytes(v['memory_limit'])}, {v['cpus']:g} CPUs, {v['pids_limit']} pids,"
        f" network {v['network']}, idle timeout {format_duration(v['idle_timeout'])}"
    )


def stamp(ts: float | None) -> str:
    if not ts:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def took(e: Mapping[str, Any]) -> str:
    """How long an execution took (its ``duration_ms``)."""
    return format_duration(milliseconds(e.get("duration_ms")))


# -- executions ---------------------------------------------------------------------


def execution_header(e: Mapping[str, Any]) -> str:
    """``── 2025-01-02 10:00:00  exec_…  ok  0.12 s`` then the code as the REPL shows it."""
    status = e.get("status", "?")
    spent = "" if status == "running" else f"  {took(e)}"
    head = f"── {stamp(e.get('started_at'))}  {e.get('id')}  {status.upper()}{spent}"
    return head + "\n" + code_block(e.get("code") or "")


def code_block(code: str) -> str:
    lines = code.rstrip("\n").split("\n")
    return "\n".join(("... " if i else ">>> ") + line for i, line in enumerate(lines))


def execution_text(e: Mapping[str, Any], saved: Mapping[str, str] | None = None) -> str:
    """An execution whole: its header and code, then its outputs in the order they came.
    ``saved`` maps file IDs to local paths where images were written."""
    parts = [execution_header(e)]
    transcript = e.get("transcript")
    if transcript is None:  # still running, or lost: what is known
        transcript = [{"type": "error", **e["error"]}] if e.get("error") else []
    body = "".join(output_text(item, saved) for item in transcript)
    if body:
        parts.append(body.rstrip("\n"))
    for f in e.get("files") or []:
        parts.append(f"[file {f['path']} {f['file_id']}]")
    if e.get("logs_truncated"):
        parts.append("[output cut; the complete log is file " + str(e.get("log_file_id")) + "]")
    for f in e.get("skipped_files") or []:
        parts.append(f"[not collected: {f.get('path')}: {f.get('reason')}]")
    return safe("\n".join(parts) + "\n")


def output_text(item: Mapping[str, Any], saved: Mapping[str, str] | None = None) -> str:
    kind = item.get("type")
    if kind == "stream":
        return str(item.get("text", ""))
    if kind == "image":
        where = (saved or {}).get(item["file_id"])
        return f"[image {item.get('mime', '')} {where or item['file_id']}]\n"
    if kind in ("execute_result", "display_data"):
        data = item.get("data") or {}
        plain = data.get("text/plain")
        text = plain if isinstance(plain, str) else f"[{kind}: {', '.join(sorted(data))}]"
        return text.rstrip("\n") + "\n"
    if kind == "error":
        return error_text(item)
    return ""


def error_text(err: Mapping[str, Any]) -> str:
    """An error, clearly marked: ``!! ZeroDivisionError: ...`` with the traceback indented."""
    lines = [f"!! {err.get('ename', 'Error')}: {err.get('evalue', '')}"]
    tb = "\n".join(err.get("traceback") or []).rstrip("\n")
    lines += [("!! " + line).rstrip() for line in tb.split("\n")] if tb else []
    return "\n".join(lines) + "\n"


def execution_footer(e: Mapping[str, Any], saved: Mapping[str, str] | None = None) -> str:
    """What ``logs -f`` prints when an execution finishes (its text was streamed already):
    images and files, then the status."""
    lines = [
        output_text(i, saved).rstrip("\n")
        for i in e.get("transcript") or []
        if i.get("type") == "image"
    ]
    lines += [f"[file {f['path']} {f['file_id']}]" for f in e.get("files") or []]
    status = str(e.get("status", "?"))
    mark = "!!" if status != "ok" else "──"
    what = ""
    if status != "ok" and e.get("error"):
        what = f": {e['error'].get('ename')}: {e['error'].get('evalue')}"
    lines.append(f"{mark} {e.get('id')} {status.upper()}{what}  {took(e)}")
    return safe("\n".join(lines) + "\n")
