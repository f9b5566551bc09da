"""Cursor pages as the OpenAI SDK reads them: ``has_more`` always set, ``after`` and
``before`` honoured. An empty cursor (``after=``) is no cursor; one that names no item
of the list is a 404 naming the parameter."""

from __future__ import annotations

from typing import Any

from fastapi import Query

from .problems import ApiError

__all__ = ["After", "Before", "Limit", "page"]

After: Any = Query(None, description="The id of an item: the page starts after it")
Before: Any = Query(None, description="The id of an item: the page ends before it")
Limit: Any = Query(20, ge=1, le=100, description="Items per page")


def page(
    items: list[dict[str, Any]],
    limit: int,
    order: str,
    after: str | None,
    d: int = 100,
    *,
    before: str | None = None,
    sort: bool = True,
) -> dict[str, Any]:
    """``items`` oldest first (``sort``: by ``created_at``, then id; else as given);
    returns the list envelope of one page."""
    if not 1 <= limit <= max(d, 100):
        raise ApiError(400, f"limit must be between 1 and {max(d, 100)}.", param="limit")
    ordered = sorted(items, key=lambda x: (x.get("created_at", 0), x["id"])) if sort else items
    ordered = list(reversed(ordered)) if order == "desc" else list(ordered)
    for cursor, name in ((after, "after"), (before, "before")):
        if not cursor:
            continue
        ids = [x["id"] for x in ordered]
        if cursor not in ids:
            raise ApiError(
                404, f"No item {cursor!r} to page {name}: it is not in this list.", param=name
            )
        at = ids.index(cursor)
        ordered = ordered[at + 1 :] if name == "after" else ordered[:at]
    data = ordered[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(ordered) > limit,
    }
