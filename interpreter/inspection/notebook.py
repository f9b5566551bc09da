"""A session's executions as a Jupyter notebook (nbformat v4), images embedded.

Pure: takes history entries (``Execution.to_dict()`` shapes) and a function that
returns an image's bytes by file ID; knows nothing of sessions or HTTP.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

__all__ = ["build_notebook"]

ImageLoader = Callable[[str], bytes | None]


def build_notebook(
    entries: Iterable[dict[str, Any]], load_image: ImageLoader, title: str = ""
) -> NotebookNode:
    """One code cell per execution, with its outputs in the order they came."""
    cells = []
    if title:
        exported = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        cells.append(new_markdown_cell(f"# {title}\n\nExported by lci on {exported}."))
    for entry in entries:
        cell = new_code_cell(entry.get("code", ""), execution_count=entry.get("execution_count"))
        cell.outputs = [o for o in _outputs(entry, load_image) if o is not None]
        cell.metadata["lci"] = {
            k: entry.get(k) for k in ("id", "status", "started_at", "duration_ms")
        }
        cells.append(cell)
    nb = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    nbformat.validate(nb)
    return nb


def _outputs(entry: dict[str, Any], load_image: ImageLoader) -> list[NotebookNode | None]:
    transcript = entry.get("transcript")
    if transcript is None:  # still running, or abandoned: what is known
        transcript = [{"type": "error", **entry["error"]}] if entry.get("error") else []
    return [_output(item, entry, load_image) for item in transcript]


def _output(
    item: dict[str, Any], entry: dict[str, Any], load_image: ImageLoader
) -> NotebookNode | None:
    kind = item.get("type")
    if kind == "stream":
        return new_output("stream", name=item["name"], text=item["text"])
    if kind == "image":
        data = load_image(item["file_id"])
        if data is None:
            return new_output("stream", name="stderr", text=f"[image {item['file_id']} purged]\n")
        return new_output(
            "display_data", data={item["mime"]: base64.b64encode(data).decode("ascii")}
        )
    if kind == "execute_result":
        count = item.get("execution_count") or entry.get("execution_count")
        return new_output("execute_result", data=_bundle(item), execution_count=count)
    if kind == "display_data":
        return new_output("display_data", data=_bundle(item))
    if kind == "error":
        return new_output(
            "error",
            ename=item.get("ename", "Error"),
            evalue=item.get("evalue", ""),
            traceback=item.get("traceback") or [],
        )
    return None


def _bundle(item: dict[str, Any]) -> dict[str, Any]:
    """Mime bundles as nbformat wants them (JSON values for JSON types, text otherwise)."""
    return {
        mime: value if isinstance(value, str) or mime.endswith("json") else str(value)
        for mime, value in (item.get("data") or {}).items()
    }
