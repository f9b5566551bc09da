"""Runs and run steps under ``/v1/threads/{thread_id}/runs`` (``client.beta.threads.runs``
and ``.runs.steps``).

A run is created ``queued`` and goes on in the background; clients poll it (the
``openai-poll-after-ms`` header tells the SDK's ``create_and_poll`` how often). While
it is active the thread is locked. ``requires_action`` waits for
``submit_tool_outputs``; ``cancel`` interrupts the code it runs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import Field

from ..openapi import NEW_WORK, answers
from ..pages import After, Before, Limit
from ..problems import ApiError
from ..schemas import Page, Run, RunStep
from .beta import NO_STREAM, Beta, Body, Order, beta, listing
from .threads import MessageCreate, RunOptions, message_params

__all__ = ["router"]

router = APIRouter(prefix="/v1/threads/{thread_id}/runs", tags=["OpenAI runs"])
POLL_MS = "200"


class RunCreate(RunOptions):
    additional_instructions: str | None = None
    additional_messages: list[MessageCreate] | None = None


class ToolOutput(Body):
    tool_call_id: str
    output: str = ""


class ToolOutputs(Body):
    tool_outputs: list[ToolOutput]
    stream: bool | None = Field(None, json_schema_extra=NO_STREAM)


class Modify(Body):
    metadata: dict[str, str] | None = None


@router.post(
    "",
    summary="Create a run (it goes on in the background)",
    response_model=None,
    responses=answers(Run, 400, 404, *NEW_WORK),
)
async def create_run(thread_id: str, body: RunCreate, b: Beta = beta) -> dict[str, Any]:
    extra = [message_params(m) for m in body.additional_messages or []]
    return await b.api.create_run(
        thread_id,
        tenant=b.tenant,
        additional_messages=extra,
        additional_instructions=body.additional_instructions,
        **body.options(),
    )


@router.get(
    "",
    summary="List a thread's runs",
    response_model=None,
    responses=answers(Page[Run], 404),
)
async def list_runs(
    thread_id: str,
    limit: int = Limit,
    order: Order = "desc",
    after: str | None = After,
    before: str | None = Before,
    b: Beta = beta,
) -> dict[str, Any]:
    return listing(await b.api.list_runs(thread_id, tenant=b.tenant), limit, order, after, before)


@router.get(
    "/{run_id}",
    summary="Retrieve a run",
    response_model=None,
    responses=answers(Run, 404),
)
async def retrieve_run(
    thread_id: str, run_id: str, response: Response, b: Beta = beta
) -> dict[str, Any]:
    response.headers["openai-poll-after-ms"] = POLL_MS
    return await b.api.get_run(thread_id, run_id, tenant=b.tenant)


@router.post(
    "/{run_id}",
    summary="Modify a run's metadata",
    response_model=None,
    responses=answers(Run, 400, 404),
)
async def modify_run(thread_id: str, run_id: str, body: Modify, b: Beta = beta) -> dict[str, Any]:
    return await b.api.update_run(thread_id, run_id, tenant=b.tenant, metadata=body.metadata)


@router.post(
    "/{run_id}/cancel",
    summary="Cancel a run (its running code is interrupted)",
    response_model=None,
    responses=answers(Run, 400, 404),
)
async def cancel_run(thread_id: str, run_id: str, b: Beta = beta) -> dict[str, Any]:
    return await b.api.cancel_run(thread_id, run_id, tenant=b.tenant)


@router.post(
    "/{run_id}/submit_tool_outputs",
    summary="Submit function outputs; the run goes on",
    response_model=None,
    responses=answers(Run, 400, 404, *NEW_WORK),
)
async def submit_tool_outputs(
    thread_id: str, run_id: str, body: ToolOutputs, b: Beta = beta
) -> dict[str, Any]:
    if body.stream:
        raise ApiError(400, "Streaming is not supported by lci: poll the run.", None, "stream")
    outputs = [o.model_dump() for o in body.tool_outputs]
    return await b.api.submit_tool_outputs(thread_id, run_id, tenant=b.tenant, tool_outputs=outputs)


# -- steps -----------------------------------------------------------------------------


@router.get(
    "/{run_id}/steps",
    summary="List a run's steps",
    response_model=None,
    responses=answers(Page[RunStep], 404),
)
async def list_steps(
    thread_id: str,
    run_id: str,
    limit: int = Limit,
    order: Order = "desc",
    after: str | None = After,
    before: str | None = Before,
    b: Beta = beta,
) -> dict[str, Any]:
    steps = await b.api.list_steps(thread_id, run_id, tenant=b.tenant)
    return listing(steps, limit, order, after, before)


@router.get(
    "/{run_id}/steps/{step_id}",
    summary="Retrieve a run step",
    response_model=None,
    responses=answers(RunStep, 404),
)
async def retrieve_step(
    thread_id: str, run_id: str, step_id: str, b: Beta = beta
) -> dict[str, Any]:
    return await b.api.get_step(thread_id, run_id, step_id, tenant=b.tenant)
