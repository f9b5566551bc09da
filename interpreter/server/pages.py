"""Cursor pages as the OpenAI SDK reads them: ``has_more`` always set, ``after`` honoured."""

from __future__ import annotations

from typing import Any

from .problems import ApiError

__all__ = ["page"]


def page(
    items: list[dict[str, Any]], limit: int, order: str, after: str | None, d: int = 100
) -> dict[str, Any]:
    """``items`` oldest first; returns the list envelope of one page."""
    if not 1 <= limit <= max(d, 100):
        raise ApiError(400, f"limit must be between 1 and {max(d, 100)}.", param="limit")
    ordered = sorted(items, key=lambda x: (x.get("created_at", 0), x["id"]))
    if order == "desc":
        ordered.reverse()
    if after is not None:
        ids = [x["id"] for x in ordered]
        if after not in ids:
            raise ApiError(400, f"Invalid value for 'after': no item {after!r}.", param="after")
        ordered = ordered[ids.index(after) + 1 :]
    data = ordered[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(ordered) > limit,
    }
