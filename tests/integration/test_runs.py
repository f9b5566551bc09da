"""The run loop and the code_interpreter tool used from Python, without HTTP, on the
real engine: the application brings its own model (here a plain async function, and
the HTTP client against a scripted chat-completions server)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from interpreter import SessionManager
from interpreter.assistants.api import Assistants
from interpreter.chat import HttpChatModel
from interpreter.tool import DEFINITION, CodeInterpreterTool

from ..scripted_model import call, code, say, scripted_model

pytestmark = [pytest.mark.docker, pytest.mark.anyio]


class OwnModel:
    """An application's own model client: any async callable taking the request."""

    def __init__(self, *turns: dict[str, Any]) -> None:
        self.turns = list(turns)
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(json.loads(json.dumps(request)))
        turn = self.turns.pop(0)
        return {"role": "assistant", **turn}


async def test_library_run_retries_in_the_same_session(manager: SessionManager) -> None:
    model = OwnModel(
        code("data = [3, 1, 2]\nprint(sorted(dat))"),  # a typo: NameError
        code(
            "import pandas as pd\nprint(sorted(data))\n"
            "pd.DataFrame({'v': data}).to_csv('/mnt/data/out.csv')"
        ),
        say("Sorted: [1, 2, 3]. [Download](sandbox:/mnt/data/out.csv)"),
    )
    async with Assistants(manager, model) as api:
        asst = await api.create_assistant(
            model="my-model", instructions="Be brief.", tools=[{"type": "code_interpreter"}]
        )
        thread = await api.create_thread(messages=[{"role": "user", "content": "Sort 3 1 2"}])
        run = await api.create_run(thread["id"], assistant_id=asst["id"])
        run = await api.wait(thread["id"], run["id"], timeout=120)
        assert run["status"] == "completed", run["last_error"]
        steps = await api.list_steps(thread["id"], run["id"])
        msgs = await api.list_messages(thread["id"])

    # every attempt is a step; the retry saw `data`, defined by the failed attempt
    calls = [s["step_details"]["tool_calls"][0] for s in steps if s["type"] == "tool_calls"]
    assert [c["code_interpreter"]["input"][:8] for c in calls] == ["data = [", "import p"]
    first_logs = calls[0]["code_interpreter"]["outputs"][0]["logs"]
    assert "NameError" in first_logs
    assert calls[1]["code_interpreter"]["outputs"] == [{"type": "logs", "logs": "[1, 2, 3]\n"}]
    # the model read the error, shortened, in the tool message of its second turn
    tool_msg = model.requests[1]["messages"][-1]
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == calls[0]["id"]
    assert "error: NameError: name 'dat' is not defined" in tool_msg["content"]
    assert "Cell In[" in tool_msg["content"] and "Traceback" not in tool_msg["content"]
    assert model.requests[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert model.requests[0]["tools"] == [DEFINITION]
    assert "sandbox:/mnt/data/out.csv" in model.requests[2]["messages"][-1]["content"]
    # the answer's link is annotated with the produced file, readable from the store
    text = msgs[-1]["content"][0]["text"]
    [note] = text["annotations"]
    assert text["value"][note["start_index"] : note["end_index"]] == "sandbox:/mnt/data/out.csv"
    data = await manager.files.content(note["file_path"]["file_id"])
    assert data.startswith(b",v\n0,3\n")


async def test_library_tool_call_cap(manager: SessionManager) -> None:
    model = OwnModel(*[code(f"x = {i}") for i in range(5)])
    async with Assistants(manager, model, max_tool_calls=3) as api:
        asst = await api.create_assistant(model="m", tools=[{"type": "code_interpreter"}])
        thread = await api.create_thread(messages=[{"role": "user", "content": "loop"}])
        run = await api.create_run(thread["id"], assistant_id=asst["id"])
        run = await api.wait(thread["id"], run["id"], timeout=120)
        steps = await api.list_steps(thread["id"], run["id"])
    assert run["status"] == "failed" and run["failed_at"]
    assert "after 3 tool calls" in run["last_error"]["message"]
    assert "LCI_MAX_TOOL_CALLS=3" in run["last_error"]["message"]
    assert len(steps) == 3 and {s["status"] for s in steps} == {"completed"}


async def test_http_model_client_against_a_chat_server(manager: SessionManager) -> None:
    with scripted_model("sk-m") as server:
        server.script("served-name", code("print(6 * 7)"), say("42"))
        model = HttpChatModel(server.url, "sk-m", model_map={"gpt-4o": "served-name"})
        async with Assistants(manager, model) as api:
            asst = await api.create_assistant(model="gpt-4o", tools=[{"type": "code_interpreter"}])
            thread = await api.create_thread()
            await api.create_message(thread["id"], content="6 times 7?")
            run = await api.create_run(thread["id"], assistant_id=asst["id"])
            run = await api.wait(thread["id"], run["id"], timeout=120)
        await model.aclose()
    assert run["status"] == "completed" and run["usage"]["total_tokens"] == 30
    assert server.auth == ["Bearer sk-m", "Bearer sk-m"]
    second = server.requests["served-name"][1]["messages"]
    assert second[-1]["content"].startswith("status: ok\noutput:\n42")


async def test_standalone_tool(manager: SessionManager) -> None:
    tool = CodeInterpreterTool(manager, "agent-thread")
    assert tool.definition["function"]["name"] == "code_interpreter"
    assert tool.definition["function"]["parameters"]["required"] == ["code"]
    out = await tool(json.dumps({"code": "import json\nx = 20\nopen('r.json','w').write('{}')"}))
    assert out.startswith("status: ok") and "file written: sandbox:/mnt/data/r.json" in out
    failed = await tool.handle('{"code": "def f():\\n    return x / 0\\nf()"}')
    assert failed.execution is not None and failed.execution.status.value == "error"
    assert "error: ZeroDivisionError: division by zero" in failed.text
    assert "return x / 0" in failed.text  # the frame that raised is kept
    again = await tool({"code": "print(x + 1)"})  # a dict works too; state kept
    assert "output:\n21" in again
    assert (await tool("not json, just code: 1 +")).startswith("status: error")
    assert "no code ran" in await tool("{}")


async def test_library_run_without_a_model_or_the_tool(manager: SessionManager) -> None:
    async with Assistants(manager) as api:  # no model configured
        asst = await api.create_assistant(model="m")
        thread = await api.create_thread(messages=[{"role": "user", "content": "hi"}])
        run = await api.create_run(thread["id"], assistant_id=asst["id"])
        run = await api.wait(thread["id"], run["id"], timeout=30)
    assert run["status"] == "failed" and "LCI_MODEL_BASE_URL" in run["last_error"]["message"]

    model = OwnModel(
        {"content": "Let me check.", "tool_calls": [call("code_interpreter", {"code": "1"})]},
        say("I cannot run code here."),
    )
    async with Assistants(manager, model) as api:
        asst = await api.create_assistant(model="m", tools=[])  # no code_interpreter
        thread = await api.create_thread(messages=[{"role": "user", "content": "run 1"}])
        run = await api.create_run(thread["id"], assistant_id=asst["id"])
        run = await api.wait(thread["id"], run["id"], timeout=30)
        steps = await api.list_steps(thread["id"], run["id"])
        texts = [m["content"][0]["text"]["value"] for m in await api.list_messages(thread["id"])]
    assert run["status"] == "completed"
    assert [s["type"] for s in steps] == ["message_creation", "message_creation"]
    assert texts == ["run 1", "Let me check.", "I cannot run code here."]
    assert "tools" not in model.requests[0]
    assert model.requests[1]["messages"][-1]["content"] == (
        "error: there is no tool 'code_interpreter'."
    )
    assert await manager.find(thread["id"]) is None  # no sandbox was started
