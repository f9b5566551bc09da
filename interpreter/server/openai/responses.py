"""The Responses API under ``/v1/responses`` (``client.responses``), with the hosted
``code_interpreter`` tool running in lci containers.

Wire: openai-python 3.3.1 (``resources/responses/responses.py``, ``input_items.py``,
``types/responses/``, ``_streaming.py``). The SDK sends
``Accept: application/json`` even when streaming, so ``stream`` comes from the body.
Requests are checked before anything starts (a JSON 4xx, never half a stream); a
stream is ``event: <type>`` + ``data: <json with type and sequence_number>`` frames,
no ``id:`` lines (the SDK never resets its last event id, so any would make later
blank lines dispatch empty events), ending after ``response.completed`` /
``response.failed``. The lci extension event ``lci.code_interpreter_call.output``
carries what running code prints.
``background`` is refused (400): wait for the answer or stream it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import ConfigDict, Field, StringConstraints, WithJsonSchema

from ...responses import Responses
from ..common import WholeNumber
from ..openapi import NEW_WORK, answers, sse
from ..pages import After, Limit, page
from ..problems import ApiError
from ..schemas import Deleted, Page, ResponseItem, ResponseObject
from .beta import Body

__all__ = ["router"]

EVENTS = sse(
    [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.delta",
        "response.output_text.annotation.added",
        "response.output_text.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call_code.delta",
        "response.code_interpreter_call_code.done",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
        "lci.code_interpreter_call.output",
        "response.completed",
        "response.failed",
    ],
    "The Responses stream events, each with type and sequence_number; the lci extension"
    " lci.code_interpreter_call.output ({item_id, output_index, stream, text}) carries what"
    " running code prints while it runs",
)
# what the core (interpreter/responses/request.py) accepts, for the document: the core
# checks the same and names what is wrong (a 400, or a 404 for what is not there)
NO_REPLAY: list[Any] = [False]
_STR, _NULL_STR = {"type": "string"}, {"type": ["string", "null"]}
_ID = {"id": _STR}


def _kind(kind: str, required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    props = {"type": {"const": kind}, **properties}
    return {"type": "object", "required": ["type", *required], "properties": props}


_PART = {
    "oneOf": [
        _kind("input_text", ("text",), text=_STR),
        _kind("output_text", ("text",), text=_STR),
        _kind("refusal", ("refusal",), refusal=_STR),
        _kind("input_file", file_id=_NULL_STR),
        _kind("input_image", file_id=_NULL_STR, image_url=_NULL_STR),
    ]
}
_ROLES = {"enum": ["user", "assistant", "system", "developer"]}
_CONTENT = {"anyOf": [_STR, {"type": "array", "items": _PART}]}
INPUT: dict[str, Any] = {
    "anyOf": [
        {"type": "null"},
        _STR,
        {
            "type": "array",
            "items": {
                "anyOf": [
                    {  # a message, its type optional
                        "type": "object",
                        "required": ["role", "content"],
                        "properties": {
                            "type": {"const": "message"}, "role": _ROLES, "content": _CONTENT, **_ID
                        },
                    },
                    _kind("function_call", ("call_id", "name", "arguments"), call_id=_STR,
                          name=_STR, arguments=_STR, id=_STR),
                    _kind("function_call_output", ("call_id", "output"), call_id=_STR,
                          output={"anyOf": [_STR, {"type": "array", "items": _PART}]}, id=_STR),
                    _kind("code_interpreter_call", code=_NULL_STR, id=_STR,
                          outputs={"type": ["array", "null"], "items": {"type": "object"}}),
                    _kind("reasoning"),
                    {  # an item reference, its type optional
                        "type": "object",
                        "required": ["id"],
                        "properties": {"type": {"enum": ["item_reference", None]}, **_ID},
                        "not": {"required": ["role"]},
                    },
                ]
            },
        },
    ]
}  # fmt: skip
_FUNCTION = _kind(
    "function",
    ("name",),
    name={**_STR, "pattern": "^[A-Za-z0-9_-]{1,64}$", "not": {"const": "code_interpreter"}},
    parameters={"type": ["object", "null"]},
    description=_NULL_STR,
    strict={"type": ["boolean", "null"]},
)
_AUTO = _kind(
    "auto",
    file_ids={"type": ["array", "null"], "items": _STR},
    memory_limit={"enum": ["1g", "4g", "16g", "64g", None]},
    network_policy={"anyOf": [{"type": "null"}, _kind("disabled")]},
)
_CONTAINER = {"anyOf": [{"const": "auto"}, {**_STR, "pattern": "^cntr_"}, _AUTO]}
TOOLS: dict[str, Any] = {
    "anyOf": [
        {"type": "null"},
        {
            "type": "array",
            "maxItems": 128,
            "items": {"oneOf": [_FUNCTION, _kind("code_interpreter", ("container",),
                                                 container=_CONTAINER)]},
        },
    ]
}  # fmt: skip
TOOL_CHOICE: dict[str, Any] = {
    "anyOf": [
        {"enum": ["none", "auto", "required", None]},
        _kind("code_interpreter"),
        _kind("function", ("name",), name=_STR),
    ],
    "description": "a named tool must be among the tools (else a 404 naming it)",
}
_FORMAT: dict[str, Any] = {
    "anyOf": [
        {"type": "null"},
        {"type": "object", "required": ["type"],
         "properties": {"type": {"enum": ["text", "json_object"]}}},
        _kind("json_schema", ("schema",), schema={"type": "object"}),
    ]
}  # fmt: skip
Key = Annotated[str, StringConstraints(max_length=64)]
Value = Annotated[str, StringConstraints(max_length=512)]
INCLUDABLE: list[Any] = [
    "code_interpreter_call.outputs",
    "message.output_text.logprobs",
    "reasoning.encrypted_content",
]
Includable = Literal[
    "code_interpreter_call.outputs", "message.output_text.logprobs", "reasoning.encrypted_content"
]


# whole numbers (20.0 is 20, as JSON Schema counts it), their bounds in the document
Positive = Annotated[WholeNumber, Field(ge=1), WithJsonSchema({"type": "integer", "minimum": 1})]


class ResponseCreate(Body):
    """The body of ``POST /v1/responses``; the core checks the items, tools and tool
    choice and says what is wrong (a 400 naming the field)."""

    model_config = ConfigDict(
        extra="allow", strict=True, json_schema_extra={"additionalProperties": False}
    )
    model: str = Field(..., min_length=1)
    input: Any = Field(None, json_schema_extra=INPUT)
    instructions: str | None = None
    tools: Any = Field(None, json_schema_extra=TOOLS)
    tool_choice: Any = Field(None, json_schema_extra=TOOL_CHOICE)
    parallel_tool_calls: bool | None = None
    previous_response_id: str | None = None
    include: list[str] | None = Field(None, json_schema_extra={"items": {"enum": INCLUDABLE}})
    store: bool | None = None
    metadata: dict[Key, Value] | None = Field(None, max_length=16)
    max_output_tokens: Positive | None = None
    max_tool_calls: Positive | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    stream: bool | None = None
    background: bool | None = Field(None, json_schema_extra={"enum": [False, None]})
    text: dict[str, Any] | None = Field(None, json_schema_extra={"properties": {"format": _FORMAT}})
    reasoning: dict[str, Any] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    stream_options: dict[str, Any] | None = None
    service_tier: str | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    top_logprobs: (
        Annotated[
            WholeNumber,
            Field(ge=0, le=20),
            WithJsonSchema({"type": "integer", "minimum": 0, "maximum": 20}),
        ]
        | None
    ) = None


@dataclass(frozen=True)
class Face:
    api: Responses
    tenant: str


def _responses(app: FastAPI) -> Responses:
    api: Responses | None = getattr(app.state, "responses", None)
    if api is None or api.manager is not app.state.manager:
        api = app.state.responses = Responses.from_manager(app.state.manager)
    return api


async def _face(request: Request) -> Face:
    return Face(_responses(request.app), request.state.tenant)


face: Any = Depends(_face)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Nested inside the app's lifespan: the model client is closed at shutdown."""
    api = _responses(app)
    try:
        yield
    finally:
        await api.close()
        app.state.responses = None


router = APIRouter(prefix="/v1/responses", tags=["OpenAI responses"], lifespan=lifespan)
IncludeQuery: Any = Query(None, alias="include[]", description="code_interpreter_call.outputs")


def _frame(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


@router.post(
    "",
    summary="Create a response (stream=true for its events)",
    response_model=None,
    responses=answers(ResponseObject, 400, 404, *NEW_WORK, stream=EVENTS),
)
async def create_response(
    body: ResponseCreate, request: Request, f: Face = face
) -> dict[str, Any] | StreamingResponse:
    base = str(request.base_url).rstrip("/")
    tenant = f.tenant

    def image_url(file_id: str) -> str:
        return f"{base}/v1/files/{file_id}/content"

    loop = f.api.prepare(body.model_dump(exclude_unset=True), tenant=tenant, image_url=image_url)
    if not body.stream:
        return await f.api.run(loop)

    async def frames() -> AsyncIterator[bytes]:
        async for event in f.api.stream(loop):
            yield _frame(event)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/{response_id}",
    summary="Retrieve a stored response",
    response_model=None,
    responses=answers(ResponseObject, 400, 404),
)
async def retrieve_response(
    response_id: str,
    include: list[Includable] | None = IncludeQuery,
    stream: bool = Query(False, json_schema_extra={"enum": NO_REPLAY}),
    f: Face = face,
) -> dict[str, Any]:
    body = f.api.get(response_id, tenant=f.tenant, include=include or [])
    if stream:
        raise ApiError(
            400, "Replaying a response's stream is not supported by lci: retrieve it.", "stream"
        )
    return body


@router.delete(
    "/{response_id}",
    summary="Delete a stored response",
    response_model=None,
    responses=answers(Deleted, 404),
)
async def delete_response(response_id: str, f: Face = face) -> dict[str, Any]:
    return f.api.delete(response_id, tenant=f.tenant)


@router.get(
    "/{response_id}/input_items",
    summary="List a stored response's input items",
    response_model=None,
    responses=answers(Page[ResponseItem], 400, 404),
)
async def list_input_items(
    response_id: str,
    limit: int = Limit,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = After,
    include: list[Includable] | None = IncludeQuery,
    f: Face = face,
) -> dict[str, Any]:
    items = f.api.input_items(response_id, tenant=f.tenant)
    return page(items, limit, order, after, sort=False)
