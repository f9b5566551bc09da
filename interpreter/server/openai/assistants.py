"""Assistants under ``/v1/assistants`` (the openai SDK's ``client.beta.assistants``).

An assistant has a model (mapped by ``LCI_MODEL_MAP`` to what the chat-completions
server calls it), instructions and up to 128 tools: ``code_interpreter`` (lci) and
``function`` (run by the client through ``requires_action``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from ..openapi import answers
from ..pages import After, Before, Limit
from ..schemas import Assistant, Deleted, Page
from .beta import TOOLS, Beta, Body, Order, beta, lifespan, listing

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["OpenAI assistants"], lifespan=lifespan)


class AssistantCreate(Body):
    model: str = Field(..., min_length=1)
    name: str | None = Field(None, max_length=256)
    description: str | None = Field(None, max_length=512)
    instructions: str | None = Field(None, max_length=256_000)
    tools: list[dict[str, Any]] = Field(default_factory=list, json_schema_extra=TOOLS)
    tool_resources: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    response_format: Any = None


class AssistantUpdate(AssistantCreate):
    model: str | None = None  # type: ignore[assignment]
    tools: list[dict[str, Any]] | None = Field(None, json_schema_extra=TOOLS)  # type: ignore[assignment]


def _fields(body: Body) -> dict[str, Any]:
    return {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}


@router.post(
    "/assistants",
    summary="Create an assistant",
    response_model=None,
    responses=answers(Assistant, 400, 404),
)
async def create_assistant(body: AssistantCreate, b: Beta = beta) -> dict[str, Any]:
    return await b.api.create_assistant(tenant=b.tenant, **_fields(body))


@router.get(
    "/assistants",
    summary="List assistants",
    response_model=None,
    responses=answers(Page[Assistant], 404),
)
async def list_assistants(
    limit: int = Limit,
    order: Order = "desc",
    after: str | None = After,
    before: str | None = Before,
    b: Beta = beta,
) -> dict[str, Any]:
    return listing(await b.api.list_assistants(tenant=b.tenant), limit, order, after, before)


@router.get(
    "/assistants/{assistant_id}",
    summary="Retrieve an assistant",
    response_model=None,
    responses=answers(Assistant, 404),
)
async def retrieve_assistant(assistant_id: str, b: Beta = beta) -> dict[str, Any]:
    return await b.api.get_assistant(assistant_id, tenant=b.tenant)


@router.post(
    "/assistants/{assistant_id}",
    summary="Modify an assistant",
    response_model=None,
    responses=answers(Assistant, 400, 404),
)
async def modify_assistant(
    assistant_id: str, body: AssistantUpdate, b: Beta = beta
) -> dict[str, Any]:
    return await b.api.update_assistant(assistant_id, tenant=b.tenant, **_fields(body))


@router.delete(
    "/assistants/{assistant_id}",
    summary="Delete an assistant",
    response_model=None,
    responses=answers(Deleted, 404),
)
async def delete_assistant(assistant_id: str, b: Beta = beta) -> dict[str, Any]:
    return await b.api.delete_assistant(assistant_id, tenant=b.tenant)
