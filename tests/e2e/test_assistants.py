"""The Assistants API with the official openai SDK against a real ``lci serve``, the model
being a scripted chat-completions server (a real HTTP server, tests/scripted_model.py).

One server for the module; a second one with ``LCI_RUN_EXPIRY=3`` for expiry."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI

from ..scripted_model import ScriptedModel, call, calls, code, say
from .conftest import MODEL_KEY, LiveServer, model_server

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
warnings.filterwarnings("ignore", category=DeprecationWarning, module="openai")

SINE = """import numpy as np
import matplotlib.pyplot as plt
x = np.linspace(0, 4 * np.pi, 1000)
y = np.sin(x)
plt.plot(x, y)
plt.title('Sine Wave')
plt.grid(True)
plt.savefig('/mnt/data/sinewave.png')
plt.show()
"""
SEED_INSTRUCTIONS = (
    "You are a helpful AI assistant who makes interesting visualizations based on data."
    "You have access to a sandboxed environment for writing and testing code."
)
WEATHER_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "getCurrentWeather",
            "description": "Get the weather in location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "The city and state"},
                    "unit": {"type": "string", "enum": ["c", "f"]},
                },
                "required": ["location"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "getNickname",
            "description": "Get the nickname of a city",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
            },
        },
    },
]
TERMINAL = {"completed", "cancelled", "expired", "failed"}


@pytest.fixture(scope="module")
def server(sandbox_image: str, docker_client: object, model: ScriptedModel) -> Iterator[LiveServer]:
    with model_server(
        sandbox_image, model, "lci-a-", LCI_MODEL_MAP="gpt-4-1106-preview=scripted-seed"
    ) as s:
        yield s


@pytest.fixture(scope="module")
def short_server(
    sandbox_image: str, docker_client: object, model: ScriptedModel
) -> Iterator[LiveServer]:
    with model_server(sandbox_image, model, "lci-x-", LCI_RUN_EXPIRY="3") as s:
        yield s


def _client(server: LiveServer, key: str | None = None) -> OpenAI:
    return OpenAI(api_key=key or server.key, base_url=f"{server.url}/v1", max_retries=0)


@pytest.fixture
def client(server: LiveServer) -> OpenAI:
    return _client(server)


def poll(client: OpenAI, thread_id: str, run_id: str, until: set[str] = TERMINAL) -> Any:
    """The seed's polling loop, faster."""
    deadline = time.monotonic() + 120
    run = client.beta.threads.runs.retrieve(thread_id=thread_id, run_id=run_id)
    while run.status not in until:
        assert time.monotonic() < deadline, run
        time.sleep(0.1)
        run = client.beta.threads.runs.retrieve(thread_id=thread_id, run_id=run_id)
    return run


def _assistant(client: OpenAI, model: str, tools: list[Any] | None = None) -> Any:
    return client.beta.assistants.create(
        name=model, model=model, tools=tools or [{"type": "code_interpreter"}]
    )


# -- the seed's walkthrough ----------------------------------------------------------------


def test_sinewave_walkthrough(client: OpenAI, model: ScriptedModel) -> None:
    model.script(
        "scripted-seed",
        code(SINE),
        say(
            "Here is the visualization of a sine wave. "
            "[Download the PNG](sandbox:/mnt/data/sinewave.png)."
        ),
        say("Certainly, here is the code I used:\n```python\n" + SINE + "```"),
    )
    assistant = client.beta.assistants.create(
        name="Data Visualization",
        instructions=SEED_INSTRUCTIONS,
        tools=[{"type": "code_interpreter"}],
        model="gpt-4-1106-preview",
    )
    assert assistant.object == "assistant" and assistant.name == "Data Visualization"
    assert assistant.id.startswith("asst_") and [t.type for t in assistant.tools] == [
        "code_interpreter"
    ]
    thread = client.beta.threads.create()
    assert thread.object == "thread" and thread.id.startswith("thread_")
    client.beta.threads.messages.create(
        thread_id=thread.id, role="user", content="Create a visualization of a sinewave"
    )
    listed = client.beta.threads.messages.list(thread.id)
    assert [m.content[0].text.value for m in listed.data] == [  # type: ignore[union-attr]
        "Create a visualization of a sinewave"
    ]
    assert listed.data[0].role == "user" and listed.data[0].assistant_id is None
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status in ("queued", "in_progress") and run.expires_at == run.created_at + 600
    run = poll(client, thread.id, run.id)
    assert run.status == "completed" and run.completed_at and run.started_at
    assert run.usage is not None and run.usage.total_tokens == 30

    messages = client.beta.threads.messages.list(thread_id=thread.id)
    answer, question = messages.data
    assert (answer.role, question.role) == ("assistant", "user")
    assert answer.run_id == run.id and answer.assistant_id == assistant.id
    image, text = answer.content
    assert image.type == "image_file" and text.type == "text"
    png = client.files.content(image.image_file.file_id).read()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # the sandbox link carries a file_path annotation to the file the code wrote
    [note] = text.text.annotations
    assert note.type == "file_path" and note.text == "sandbox:/mnt/data/sinewave.png"
    assert text.text.value[note.start_index : note.end_index] == note.text
    saved = client.files.content(note.file_path.file_id).read()  # type: ignore[union-attr]
    assert saved.startswith(b"\x89PNG")
    assert client.files.retrieve(note.file_path.file_id).filename == "sinewave.png"  # type: ignore[union-attr]

    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
    tool_step, message_step = steps.data
    assert tool_step.type == "tool_calls" and tool_step.status == "completed"
    [ci] = tool_step.step_details.tool_calls  # type: ignore[union-attr]
    assert ci.type == "code_interpreter" and ci.code_interpreter.input == SINE  # type: ignore[union-attr]
    outputs = ci.code_interpreter.outputs  # type: ignore[union-attr]
    assert [o.type for o in outputs] == ["image"]
    assert outputs[0].image.file_id == image.image_file.file_id  # type: ignore[union-attr]
    assert message_step.step_details.message_creation.message_id == answer.id  # type: ignore[union-attr]
    one = client.beta.threads.runs.steps.retrieve(
        step_id=tool_step.id, thread_id=thread.id, run_id=run.id
    )
    assert one.id == tool_step.id and one.run_id == run.id

    # what the model was given: the mapped name, the key, instructions, tools, thread
    first = model.requests["scripted-seed"][0]
    assert first["messages"][0] == {"role": "system", "content": SEED_INSTRUCTIONS}
    assert first["messages"][1] == {
        "role": "user",
        "content": "Create a visualization of a sinewave",
    }
    [tool] = first["tools"]
    assert tool["function"]["name"] == "code_interpreter"
    assert tool["function"]["parameters"]["required"] == ["code"]
    assert model.auth[-1] == f"Bearer {MODEL_KEY}"

    # the follow-up question, same thread: the model sees the code it ran before
    client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content="Show me the code you used to generate the sinewave",
    )
    run2 = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run2.status == "completed"
    latest = client.beta.threads.messages.list(thread_id=thread.id).data
    assert len(latest) == 4 and latest[0].content[0].text.value.startswith("Certainly")  # type: ignore[union-attr]
    history = model.requests["scripted-seed"][2]["messages"]
    assert [m["role"] for m in history] == [
        "system", "user", "assistant", "tool", "assistant", "user"
    ]  # fmt: skip
    assert json.loads(history[2]["tool_calls"][0]["function"]["arguments"]) == {"code": SINE}
    assert "images: 1 image displayed" in history[3]["content"]


def test_retry_after_a_failure_keeps_the_session(client: OpenAI, model: ScriptedModel) -> None:
    model.script(
        "scripted-retry",
        code("values = [4, 8, 15]\ntotal = sum(value)", call_id="call_bad"),
        code("total = sum(values)\nprint(total, len(values))", call_id="call_good"),
        say("The total is 27."),
    )
    assistant = _assistant(client, "scripted-retry")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Sum 4, 8, 15"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
    assert [s.type for s in steps.data] == ["tool_calls", "tool_calls", "message_creation"]
    bad, good = (s.step_details.tool_calls[0] for s in steps.data[:2])  # type: ignore[union-attr]
    assert bad.id == "call_bad" and "NameError" in bad.code_interpreter.outputs[0].logs  # type: ignore[union-attr]
    assert good.code_interpreter.outputs[0].logs == "27 3\n"  # type: ignore[union-attr]
    fed_back = model.requests["scripted-retry"][1]["messages"][-1]
    assert fed_back["tool_call_id"] == "call_bad"
    assert "error: NameError: name 'value' is not defined" in fed_back["content"]
    assert "----> 2 total = sum(value)" in fed_back["content"]


# -- function calling, the thread lock, tool_choice ------------------------------------


def test_parallel_function_calls(client: OpenAI, model: ScriptedModel) -> None:
    model.script(
        "scripted-weather",
        calls(
            call("getCurrentWeather", {"location": "San Francisco"}, "call_abc123"),
            call("getNickname", {"location": "Los Angeles"}, "call_abc456"),
        ),
        say("It is 22C in San Francisco, and Los Angeles is called LA."),
    )
    assistant = client.beta.assistants.create(
        instructions="You are a weather bot. Use the provided functions to answer questions.",
        model="scripted-weather",
        tools=WEATHER_TOOLS,
    )
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(thread.id, role="user", content="Weather in SF? LA?")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action" and run.required_action is not None
    assert run.required_action.type == "submit_tool_outputs"
    tool_calls = run.required_action.submit_tool_outputs.tool_calls
    assert [(c.id, c.function.name) for c in tool_calls] == [
        ("call_abc123", "getCurrentWeather"),
        ("call_abc456", "getNickname"),
    ]
    assert tool_calls[0].function.arguments == '{"location": "San Francisco"}'

    # the thread is locked while the run waits
    with pytest.raises(BadRequestError) as refused:
        client.beta.threads.messages.create(thread.id, role="user", content="hello?")
    assert f"Can't add messages to {thread.id} while a run {run.id} is active." in str(
        refused.value
    )
    with pytest.raises(BadRequestError, match=f"while a run {run.id} is active"):
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    with pytest.raises(BadRequestError, match="Expected tool outputs for call_ids"):
        client.beta.threads.runs.submit_tool_outputs(
            thread_id=thread.id,
            run_id=run.id,
            tool_outputs=[{"tool_call_id": "call_abc123", "output": "22C"}],
        )

    run = client.beta.threads.runs.submit_tool_outputs(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[
            {"tool_call_id": tool_calls[0].id, "output": "22C"},
            {"tool_call_id": tool_calls[1].id, "output": "LA"},
        ],
    )
    assert run.status in ("queued", "in_progress", "completed")
    run = poll(client, thread.id, run.id)
    assert run.status == "completed" and run.required_action is None
    answer = client.beta.threads.messages.list(thread.id).data[0]
    assert answer.content[0].text.value.startswith("It is 22C")  # type: ignore[union-attr]
    sent = model.requests["scripted-weather"][1]["messages"][-2:]
    assert sent == [
        {"role": "tool", "tool_call_id": "call_abc123", "content": "22C"},
        {"role": "tool", "tool_call_id": "call_abc456", "content": "LA"},
    ]
    step = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
    fn = step.data[0].step_details.tool_calls  # type: ignore[union-attr]
    assert [(c.type, c.function.output) for c in fn] == [("function", "22C"), ("function", "LA")]  # type: ignore[union-attr]
    client.beta.threads.messages.create(thread.id, role="user", content="thanks")  # unlocked


def test_tool_choice_reaches_the_model(client: OpenAI, model: ScriptedModel) -> None:
    name = "scripted-choice"
    model.script(name, forever=say("ok"))
    tools = [{"type": "code_interpreter"}, *WEATHER_TOOLS]
    assistant = _assistant(client, name, tools)
    choices: list[Any] = [
        "none",
        "required",
        {"type": "function", "function": {"name": "getNickname"}},
        {"type": "code_interpreter"},
    ]
    for choice in choices:
        run = client.beta.threads.create_and_run_poll(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": "hi"}]},
            tool_choice=choice,
        )
        assert run.status == "completed"
    sent = [r["tool_choice"] for r in model.requests[name]]
    assert sent == [
        "none",
        "required",
        {"type": "function", "function": {"name": "getNickname"}},
        {"type": "function", "function": {"name": "code_interpreter"}},
    ]
    with pytest.raises(BadRequestError, match="tool_choice"):
        client.beta.threads.create_and_run(
            assistant_id=assistant.id, tool_choice={"type": "function", "function": {"name": "x"}}
        )


def test_thread_lock_and_cancel_interrupt_running_code(
    client: OpenAI, model: ScriptedModel
) -> None:
    model.script(
        "scripted-cancel",
        code("import time\nstarted = True\ntime.sleep(60)\nfinished = True"),
        code("print('finished' in globals(), started)"),
        say("done"),
    )
    assistant = _assistant(client, "scripted-cancel")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "sleep"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    deadline = time.monotonic() + 60
    while not client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id).data:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1.5)  # the code is sleeping now
    assert client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id).status == (
        "in_progress"
    )
    with pytest.raises(BadRequestError, match="Can't add messages to"):
        client.beta.threads.messages.create(thread.id, role="user", content="more")
    with pytest.raises(BadRequestError, match="is active"):
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)

    started = time.monotonic()
    cancelled = client.beta.threads.runs.cancel(thread_id=thread.id, run_id=run.id)
    assert cancelled.status == "cancelling"
    run = poll(client, thread.id, run.id)
    assert run.status == "cancelled" and run.cancelled_at
    assert time.monotonic() - started < 20
    [step] = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id).data
    assert step.status == "cancelled" and step.cancelled_at
    with pytest.raises(BadRequestError, match="Cannot cancel run with status 'cancelled'"):
        client.beta.threads.runs.cancel(thread_id=thread.id, run_id=run.id)

    # the kernel was interrupted (not busy for a minute), its earlier state kept
    client.beta.threads.messages.create(thread.id, role="user", content="state?")
    again = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert again.status == "completed" and time.monotonic() - started < 40
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=again.id, order="asc")
    logs = steps.data[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs  # type: ignore[union-attr]
    assert logs == "False True\n"


def test_tool_call_cap_fails_a_looping_run(client: OpenAI, model: ScriptedModel) -> None:
    model.script("scripted-loop", forever=code("x = 1"))
    assistant = _assistant(client, "scripted-loop")
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "loop"}]}
    )
    assert run.status == "failed" and run.failed_at and run.last_error is not None
    assert run.last_error.code == "server_error"
    assert "stopped after 20 tool calls" in run.last_error.message
    assert "LCI_MAX_TOOL_CALLS=20" in run.last_error.message
    steps = client.beta.threads.runs.steps.list(thread_id=run.thread_id, run_id=run.id, limit=100)
    assert len(steps.data) == 20 and not steps.has_more
    assert len(model.requests["scripted-loop"]) == 21


# -- the endpoints, files, tenancy ---------------------------------------------------------


def test_endpoints_and_files(client: OpenAI, model: ScriptedModel) -> None:
    model.script(
        "scripted-files",
        code("print(open('/mnt/data/a.csv').read() + open('/mnt/data/b.txt').read())"),
        say("read both"),
    )
    a = client.files.create(file=("a.csv", b"x,y\n1,2\n"), purpose="assistants")
    b = client.files.create(file=("b.txt", b"from the message"), purpose="assistants")
    asst = client.beta.assistants.create(
        model="scripted-files",
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": [a.id]}},
        metadata={"k": "v"},
    )
    assert asst.tool_resources.code_interpreter.file_ids == [a.id]  # type: ignore[union-attr]
    assert client.beta.assistants.retrieve(asst.id).metadata == {"k": "v"}
    changed = client.beta.assistants.update(asst.id, name="Reader", instructions="Read files.")
    assert (changed.name, changed.instructions, changed.model) == (
        "Reader",
        "Read files.",
        "scripted-files",
    )
    assert asst.id in [x.id for x in client.beta.assistants.list()]
    many = [{"type": "function", "function": {"name": f"f{i}"}} for i in range(127)]
    client.beta.assistants.create(model="m", tools=[{"type": "code_interpreter"}, *many])  # type: ignore[list-item]
    with pytest.raises(BadRequestError, match="at most 128"):
        client.beta.assistants.create(model="m", tools=[*many, *many[:2]])  # type: ignore[list-item]

    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "Read the files",
                "attachments": [{"file_id": b.id, "tools": [{"type": "code_interpreter"}]}],
            }
        ]
    )
    [msg] = client.beta.threads.messages.list(thread.id).data
    assert msg.attachments[0].file_id == b.id  # type: ignore[index]
    assert client.beta.threads.messages.retrieve(msg.id, thread_id=thread.id).id == msg.id
    assert client.beta.threads.retrieve(thread.id).id == thread.id
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=asst.id)
    assert run.status == "completed" and run.instructions == "Read files."
    assert [r.id for r in client.beta.threads.runs.list(thread.id)] == [run.id]
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
    out = steps.data[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs  # type: ignore[union-attr]
    assert out == "x,y\n1,2\nfrom the message\n"
    system = model.requests["scripted-files"][0]["messages"][0]["content"]
    assert "/mnt/data/a.csv" in system and "/mnt/data/b.txt" in system

    assert client.beta.threads.delete(thread.id).deleted
    with pytest.raises(NotFoundError):
        client.beta.threads.retrieve(thread.id)
    assert client.beta.assistants.delete(asst.id).deleted
    with pytest.raises(NotFoundError):
        client.beta.assistants.retrieve(asst.id)


def test_tenants_see_only_their_own(
    client: OpenAI, server: LiveServer, model: ScriptedModel
) -> None:
    model.script("scripted-tenant", say("hi alice"))
    assistant = _assistant(client, "scripted-tenant")
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "hi"}]}
    )
    bob = _client(server, server.other_key)
    for attempt in (
        lambda: bob.beta.assistants.retrieve(assistant.id),
        lambda: bob.beta.threads.retrieve(run.thread_id),
        lambda: bob.beta.threads.messages.list(run.thread_id),
        lambda: bob.beta.threads.runs.retrieve(thread_id=run.thread_id, run_id=run.id),
        lambda: bob.beta.threads.runs.steps.list(thread_id=run.thread_id, run_id=run.id),
        lambda: bob.beta.threads.messages.create(run.thread_id, role="user", content="x"),
        lambda: bob.beta.threads.runs.create(thread_id=run.thread_id, assistant_id=assistant.id),
        lambda: bob.beta.threads.delete(run.thread_id),
    ):
        with pytest.raises(NotFoundError):
            attempt()
    assert assistant.id not in [a.id for a in bob.beta.assistants.list()]
    assert client.beta.threads.retrieve(run.thread_id).id == run.thread_id  # still there


# -- expiry (a server whose runs expire 3 s after creation) --------------------------------


def test_runs_expire(short_server: LiveServer, model: ScriptedModel) -> None:
    client = _client(short_server)
    model.script(
        "scripted-expiry",
        calls(call("getNickname", {"location": "Paris"})),
        code("import time\ntime.sleep(30)"),
    )
    assistant = _assistant(
        client, "scripted-expiry", [{"type": "code_interpreter"}, *WEATHER_TOOLS]
    )
    # tool outputs not submitted in time
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "nickname?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action" and run.expires_at == run.created_at + 3
    run = poll(client, thread.id, run.id)
    assert run.status == "expired" and run.required_action is None
    with pytest.raises(BadRequestError, match="'expired' do not accept tool outputs"):
        client.beta.threads.runs.submit_tool_outputs(
            thread_id=thread.id,
            run_id=run.id,
            tool_outputs=[{"tool_call_id": "call_1", "output": "x"}],
        )
    # code still running at the deadline
    client.beta.threads.messages.create(thread.id, role="user", content="sleep")
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    run = poll(client, thread.id, run.id)
    assert run.status == "expired" and time.time() - run.created_at < 15
    [step] = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id).data
    assert step.status == "expired" and step.expired_at


def test_plain_http_with_the_beta_header(server: LiveServer, model: ScriptedModel) -> None:
    """What the README's curl does; errors come in the OpenAI shape."""
    model.script("scripted-curl", say("Hello from the model."))
    h = {**server.headers(), "OpenAI-Beta": "assistants=v2"}
    url = f"{server.url}/v1"
    asst = httpx.post(f"{url}/assistants", headers=h, json={"model": "scripted-curl"}).json()
    run = httpx.post(
        f"{url}/threads/runs",
        headers=h,
        json={
            "assistant_id": asst["id"],
            "thread": {"messages": [{"role": "user", "content": "Hi"}]},
        },
    ).json()
    assert run["object"] == "thread.run" and run["status"] in ("queued", "in_progress", "completed")
    deadline = time.monotonic() + 30
    while run["status"] != "completed":
        assert time.monotonic() < deadline, run
        got = httpx.get(f"{url}/threads/{run['thread_id']}/runs/{run['id']}", headers=h)
        assert got.headers["openai-poll-after-ms"] == "200"
        run = got.json()
    msgs = httpx.get(f"{url}/threads/{run['thread_id']}/messages", headers=h).json()
    assert msgs["data"][0]["content"][0]["text"]["value"] == "Hello from the model."
    assert msgs["has_more"] is False and msgs["first_id"] == msgs["data"][0]["id"]
    missing = httpx.get(f"{url}/threads/thread_nope", headers=h)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "message": "No thread found with id 'thread_nope'.",
            "type": "invalid_request_error",
            "param": "thread_id",
            "code": None,
        }
    }
    bad = httpx.post(
        f"{url}/threads/runs", headers=h, json={"assistant_id": asst["id"], "stream": True}
    )
    assert bad.status_code == 400 and "poll the run" in bad.json()["error"]["message"]
