"""The Responses loop from Python, without HTTP, on the real engine, with the
application's own model (a plain async function): a code call in an auto container, its
outputs as data URLs, the chain keeping the container, the events of a stream, and the
history and quotas seeing the executions as they see every face's."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from interpreter import Responses, SessionManager

from ..scripted_model import code, say

pytestmark = [pytest.mark.docker, pytest.mark.anyio]
CI = [{"type": "code_interpreter", "container": "auto"}]


class OwnModel:
    def __init__(self, *turns: dict[str, Any]) -> None:
        self.turns = list(turns)
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(json.loads(json.dumps(request)))
        return {"role": "assistant", **self.turns.pop(0)}


async def test_library_responses_chain_and_stream(manager: SessionManager) -> None:
    model = OwnModel(
        code("import matplotlib.pyplot as plt\nx = 41\nplt.plot([1, 2])\nplt.show()"),
        say("Plotted."),
        code("print(x + 1)"),
        say("42"),
    )
    async with Responses(manager, model) as api:
        r1 = await api.create(
            {
                "model": "mine",
                "input": "plot",
                "tools": CI,
                "include": ["code_interpreter_call.outputs"],
            },
            tenant="t1",
        )
        ci = r1["output"][0]
        assert ci["type"] == "code_interpreter_call" and ci["container_id"].startswith("cntr_")
        assert ci["outputs"][0]["url"].startswith("data:image/png;base64,")
        follow_up = {
            "model": "mine",
            "input": "x + 1?",
            "tools": CI,
            "previous_response_id": r1["id"],
            "include": ["code_interpreter_call.outputs"],
        }
        events = [e async for e in api.stream(api.prepare(follow_up, tenant="t1"))]
        done = events[-1]
        assert done["type"] == "response.completed"
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        ci2 = done["response"]["output"][0]
        assert ci2["container_id"] == ci["container_id"]
        assert ci2["outputs"] == [{"type": "logs", "logs": "42\n"}]
        assert api.get(r1["id"], tenant="t1")["output"][0]["outputs"] is None
    # the executions are the manager's, as every face's: in the history, under the tenant
    history = manager.history.entries(tenant="t1")
    assert [h["code"] for h in history] == [ci["code"], "print(x + 1)"]
    assert {h["thread_id"] for h in history} == {ci["container_id"]}


async def test_a_tenant_quota_fails_the_response_saying_so(settings: Any) -> None:
    from interpreter.quotas import Quotas

    from ..conftest import make_settings

    s = make_settings(settings, quotas="executions=1")
    model = OwnModel(code("print(1)"), code("print(2)"), say("never"))
    async with SessionManager(s, quotas=Quotas.from_settings(s)) as manager:
        async with Responses(manager, model) as api:
            r = await api.create({"model": "m", "input": "go", "tools": CI}, tenant="t1")
        await manager.stop_all()
    assert r["status"] == "failed" and r["error"]["code"] == "server_error"
    assert "executions" in r["error"]["message"]
    assert [(o["type"], o["status"]) for o in r["output"]] == [
        ("code_interpreter_call", "completed"),
        ("code_interpreter_call", "failed"),  # the call the quota refused
    ]


async def test_a_slow_reader_skips_live_output_not_the_documented_events(
    manager: SessionManager,
) -> None:
    from interpreter.responses.api import LIVE_QUEUE
    from interpreter.responses.loop import LIVE_OUTPUT

    printing = (
        "import time\nfor i in range(3000):\n    print(i, flush=True)\n    time.sleep(0.0005)"
    )
    model = OwnModel(code(printing), say("Printed."))
    async with Responses(manager, model) as api:
        body = {"model": "mine", "input": "print", "tools": CI}
        events = api.stream(api.prepare(body, tenant="t-slow"))
        first = await events.__anext__()  # the work has started; now read nothing for a while
        await asyncio.sleep(6)
        rest = [e async for e in events]
    assert first["type"] == "response.created" and rest[-1]["type"] == "response.completed"
    live = [e for e in rest if e["type"] == LIVE_OUTPUT]
    # waiting events were bounded (unbounded, this was 3,001: one per print)
    assert len(live) <= LIVE_QUEUE + 1 <= 300
    assert "response.code_interpreter_call.completed" in {e["type"] for e in rest}
    assert rest[-1]["response"]["output"][-1]["content"][0]["text"] == "Printed."
