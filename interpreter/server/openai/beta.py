"""What the Assistants routers (assistants.py, threads.py, runs.py) share.

- ``beta``: the per-request dependency (the ``Assistants`` core and the tenant);
- ``lifespan``: one ``Assistants`` per app, closed (its runs stopped) at shutdown;
- ``listing``: cursor pages over objects kept in creation order;
- ``TOOLS``, ``TOOL_CHOICE``, ``CONTENT``: what the core accepts there, for the
  document (the core checks them and says what is wrong; the models take any dict).

Clients send ``OpenAI-Beta: assistants=v2``; it is accepted and not required.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict

from ...assistants.api import Assistants
from ..pages import page

__all__ = [
    "CONTENT",
    "NO_STREAM",
    "TOOLS",
    "TOOL_CHOICE",
    "Beta",
    "Body",
    "Order",
    "beta",
    "lifespan",
    "listing",
]

Order = Literal["asc", "desc"]


def _kind(kind: str, required: dict[str, Any] | None = None, **optional: Any) -> dict[str, Any]:
    """An object of ``"type": kind`` with these fields (``required`` ones, and others)."""
    must = required or {}
    properties = {"type": {"const": kind}, **must, **optional}
    return {"type": "object", "required": ["type", *must], "properties": properties}


_NAME: dict[str, Any] = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
TOOLS: dict[
    str, Any
] = {  # conversation.check_tools; function names unique and not code_interpreter
    "maxItems": 128,
    "items": {
        "oneOf": [
            _kind("code_interpreter"),
            _kind("file_search"),
            _kind(
                "function",
                {
                    "function": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {**_NAME, "not": {"const": "code_interpreter"}}},
                    }
                },
            ),
        ]
    },
}
TOOL_CHOICE: dict[str, Any] = {  # conversation.check_tool_choice; the tool must be among the run's
    "anyOf": [
        {"enum": ["none", "auto", "required", None]},
        _kind("code_interpreter"),
        _kind(
            "function",
            {"function": {"type": "object", "required": ["name"], "properties": {"name": _NAME}}},
        ),
    ]
}
CONTENT: dict[str, Any] = {  # conversation.content_blocks
    "anyOf": [
        {"type": "string"},
        {
            "type": "array",
            "minItems": 1,
            "items": {
                "oneOf": [
                    _kind("text", text={"description": "a string, or {'value': ...}"}),
                    _kind("image_file", {"image_file": {"type": "object"}}),
                    _kind("image_url", {"image_url": {"type": "object"}}),
                ]
            },
        },
    ]
}
NO_STREAM: dict[str, Any] = {
    "enum": [False, None],
    "description": "Streaming is not supported: poll.",
}


class Body(BaseModel):
    """Request bodies: unknown fields are accepted (newer SDKs send more); the known
    ones must have their JSON type (no ``"1"`` for a number, no ``false`` for 0)."""

    model_config = ConfigDict(extra="allow", strict=True)


@dataclass(frozen=True)
class Beta:
    api: Assistants
    tenant: str


def _assistants(app: FastAPI) -> Assistants:
    api: Assistants | None = getattr(app.state, "assistants", None)
    if api is None or api.manager is not app.state.manager:  # no lifespan ran (in-process tests)
        api = app.state.assistants = Assistants.from_manager(app.state.manager)
    return api


async def _beta(request: Request) -> Beta:
    return Beta(_assistants(request.app), request.state.tenant)


beta: Any = Depends(_beta)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Nested inside the app's lifespan: the manager is open before and after."""
    api = _assistants(app)
    try:
        yield
    finally:
        await api.close()
        app.state.assistants = None


def listing(
    items: list[dict[str, Any]],
    limit: int,
    order: Order,
    after: str | None,
    before: str | None,
) -> dict[str, Any]:
    """``items`` oldest first, in thread order -> one page of the list envelope."""
    return page(items, limit, order, after, before=before, sort=False)
