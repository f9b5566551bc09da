"""Threads and their messages under ``/v1/threads`` (``client.beta.threads`` and
``client.beta.threads.messages``), plus create-thread-and-run (``POST /v1/threads/runs``,
declared before ``/v1/threads/{thread_id}`` so that it is not taken for a thread id).

A thread is one lci session: the files of its messages' code_interpreter attachments
are placed in /mnt/data when a run first runs code.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from ..common import WholeNumber
from ..openapi import NEW_WORK, answers
from ..pages import After, Before, Limit
from ..problems import ApiError
from ..schemas import Deleted, Message, Page, Run, Thread
from .beta import (
    CONTENT,
    NO_STREAM,
    TOOL_CHOICE,
    TOOLS,
    Beta,
    Body,
    Order,
    beta,
    listing,
)

__all__ = ["MessageCreate", "RunOptions", "router"]

router = APIRouter(prefix="/v1", tags=["OpenAI threads"])


class Attachment(Body):
    file_id: str
    tools: list[dict[str, Any]] = Field(default_factory=lambda: [{"type": "code_interpreter"}])


class MessageCreate(Body):
    role: str = Field("user", json_schema_extra={"enum": ["user", "assistant"]})
    content: str | list[dict[str, Any]] = Field(json_schema_extra=CONTENT)
    attachments: list[Attachment] | None = None
    metadata: dict[str, str] | None = None


class ThreadCreate(Body):
    messages: list[MessageCreate] = Field(default_factory=list)
    tool_resources: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None


class Modify(Body):
    metadata: dict[str, str] | None = None
    tool_resources: dict[str, Any] | None = None


class RunOptions(Body):
    """What a run may override of its assistant (shared by both ways to create a run)."""

    assistant_id: str
    model: str | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = Field(None, max_length=128, json_schema_extra=TOOLS)
    tool_choice: Any = Field(None, json_schema_extra=TOOL_CHOICE)
    metadata: dict[str, str] | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    parallel_tool_calls: bool | None = None
    response_format: Any = None
    max_prompt_tokens: WholeNumber | None = None
    max_completion_tokens: WholeNumber | None = None
    truncation_strategy: dict[str, Any] | None = None
    stream: bool | None = Field(None, json_schema_extra=NO_STREAM)

    def options(self) -> dict[str, Any]:
        if self.stream:
            raise ApiError(
                400,
                "Streaming runs are not supported by lci: poll the run instead.",
                None,
                "stream",
            )
        known = set(RunOptions.model_fields) - {"stream"}
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if k in known}


class ThreadAndRun(RunOptions):
    thread: ThreadCreate | None = None
    tool_resources: dict[str, Any] | None = None


MESSAGE_KEYS = {"role", "content", "attachments", "metadata", "file_ids"}  # file_ids: v1
THREAD_KEYS = {"messages", "tool_resources", "metadata"}  # not the fields clients add


def message_params(m: MessageCreate) -> dict[str, Any]:
    return {k: v for k, v in m.model_dump(exclude_unset=True).items() if k in MESSAGE_KEYS}


@router.post(
    "/threads/runs",
    summary="Create a thread and run it",
    response_model=None,
    responses=answers(Run, 400, 404, *NEW_WORK),
)
async def create_thread_and_run(body: ThreadAndRun, b: Beta = beta) -> dict[str, Any]:
    thread = None
    if body.thread is not None:
        thread = body.thread.model_dump(exclude_unset=True, include=THREAD_KEYS)
        thread["messages"] = [message_params(m) for m in body.thread.messages]
    return await b.api.create_thread_and_run(
        tenant=b.tenant, thread=thread, tool_resources=body.tool_resources, **body.options()
    )


@router.post(
    "/threads",
    summary="Create a thread",
    response_model=None,
    responses=answers(Thread, 400, 404),
)
async def create_thread(body: ThreadCreate | None = None, b: Beta = beta) -> dict[str, Any]:
    body = body or ThreadCreate()
    return await b.api.create_thread(
        tenant=b.tenant,
        messages=[message_params(m) for m in body.messages],
        tool_resources=body.tool_resources,
        metadata=body.metadata,
    )


@router.get(
    "/threads/{thread_id}",
    summary="Retrieve a thread",
    response_model=None,
    responses=answers(Thread, 404),
)
async def retrieve_thread(thread_id: str, b: Beta = beta) -> dict[str, Any]:
    return await b.api.get_thread(thread_id, tenant=b.tenant)


@router.post(
    "/threads/{thread_id}",
    summary="Modify a thread",
    response_model=None,
    responses=answers(Thread, 400, 404),
)
async def modify_thread(thread_id: str, body: Modify, b: Beta = beta) -> dict[str, Any]:
    return await b.api.update_thread(
        thread_id, tenant=b.tenant, metadata=body.metadata, tool_resources=body.tool_resources
    )


@router.delete(
    "/threads/{thread_id}",
    summary="Delete a thread (and stop its session)",
    response_model=None,
    responses=answers(Deleted, 404, 503),
)
async def delete_thread(thread_id: str, b: Beta = beta) -> dict[str, Any]:
    return await b.api.delete_thread(thread_id, tenant=b.tenant)


# -- messages --------------------------------------------------------------------------


@router.post(
    "/threads/{thread_id}/messages",
    summary="Add a message (refused during a run)",
    response_model=None,
    responses=answers(Message, 400, 404),
)
async def create_message(thread_id: str, body: MessageCreate, b: Beta = beta) -> dict[str, Any]:
    return await b.api.create_message(thread_id, tenant=b.tenant, **message_params(body))


@router.get(
    "/threads/{thread_id}/messages",
    summary="List a thread's messages",
    response_model=None,
    responses=answers(Page[Message], 404),
)
async def list_messages(
    thread_id: str,
    limit: int = Limit,
    order: Order = "desc",
    after: str | None = After,
    before: str | None = Before,
    run_id: str | None = None,
    b: Beta = beta,
) -> dict[str, Any]:
    msgs = await b.api.list_messages(thread_id, tenant=b.tenant, run_id=run_id)
    return listing(msgs, limit, order, after, before)


@router.get(
    "/threads/{thread_id}/messages/{message_id}",
    summary="Retrieve a message",
    response_model=None,
    responses=answers(Message, 404),
)
async def retrieve_message(thread_id: str, message_id: str, b: Beta = beta) -> dict[str, Any]:
    return await b.api.get_message(thread_id, message_id, tenant=b.tenant)


@router.post(
    "/threads/{thread_id}/messages/{message_id}",
    summary="Modify a message",
    response_model=None,
    responses=answers(Message, 400, 404),
)
async def modify_message(
    thread_id: str, message_id: str, body: Modify, b: Beta = beta
) -> dict[str, Any]:
    return await b.api.update_message(
        thread_id, message_id, tenant=b.tenant, metadata=body.metadata
    )
