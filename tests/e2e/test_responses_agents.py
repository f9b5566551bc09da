"""The OpenAI Agents SDK (``openai-agents``) against a real ``lci serve``: an Agent with
its ``CodeInterpreterTool`` and a function tool, pointed at lci through its client
settings and unchanged otherwise (tracing off: its exporter posts to api.openai.com).
The Agents runner replays our output items as its next input (no previous_response_id),
so this also checks that lci takes its own items back. The model is the scripted
chat-completions server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from openai import AsyncOpenAI

from ..scripted_model import ScriptedModel, call, calls, code, say
from .conftest import LiveServer, model_server

agents: Any = pytest.importorskip("agents")  # the dev extra has it (openai-agents)
pytestmark = [pytest.mark.docker]


@pytest.fixture(scope="module")
def server(sandbox_image: str, docker_client: object, model: ScriptedModel) -> Iterator[LiveServer]:
    with model_server(sandbox_image, model, "lci-ag-") as s:
        yield s


def _agent(client: AsyncOpenAI, name: str) -> Any:
    agents.set_tracing_disabled(True)

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    ci = agents.CodeInterpreterTool(
        tool_config={"type": "code_interpreter", "container": {"type": "auto"}}
    )
    return agents.Agent(
        name="analyst",
        instructions="Compute with code; ask get_weather for the weather.",
        model=agents.OpenAIResponsesModel(model=name, openai_client=client),
        tools=[ci, get_weather],
    )


def _script(model: ScriptedModel, name: str) -> None:
    model.script(
        name,
        code("x = 6 * 7\nprint(x)"),
        calls(call("get_weather", {"city": "Paris"})),
        code("print(x + 1)"),
        say("43, and it is sunny in Paris."),
    )


@pytest.mark.parametrize("streamed", [False, True])
def test_agent_with_code_interpreter_and_a_function(
    server: LiveServer, model: ScriptedModel, streamed: bool
) -> None:
    name = f"m-agents-{streamed}"
    _script(model, name)
    client = AsyncOpenAI(base_url=f"{server.url}/v1", api_key=server.key, max_retries=0)
    agent = _agent(client, name)

    async def main() -> Any:
        # closed on this loop: left to the garbage collector, the client's finaliser
        # schedules its close on whichever loop runs then (a later test's, long after
        # this one closed), and that test fails with "Event loop is closed"
        async with client:
            if not streamed:
                return await agents.Runner.run(agent, "6 * 7 + 1, and the weather in Paris?")
            result = agents.Runner.run_streamed(agent, "6 * 7 + 1, and the weather in Paris?")
            kinds = [
                e.data.type async for e in result.stream_events() if e.type == "raw_response_event"
            ]
            assert "response.code_interpreter_call.interpreting" in kinds
            return result

    result = anyio.run(main)
    assert result.final_output == "43, and it is sunny in Paris."
    kinds = [item.type for item in result.new_items]
    assert kinds.count("tool_call_item") == 3  # two code calls and the function call
    assert "tool_call_output_item" in kinds  # the function ran on the client
    # the second request replayed our items; lci gave the model what it read then, and
    # the code ran in the same container (x survived)
    second = model.requests[name][2]["messages"]
    assert any(m["role"] == "tool" and "42" in m["content"] for m in second)
    assert {"role": "tool", "tool_call_id": "call_x", "content": "x"} not in second
    fed = model.requests[name][3]["messages"][-1]["content"]
    assert "43" in fed, fed
