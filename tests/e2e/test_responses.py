"""The Responses API with the hosted code_interpreter tool: the official openai SDK (sync
and async, streaming and not) against a real ``lci serve``, the model being a scripted
chat-completions server over real HTTP (tests/scripted_model.py).

One server for the module."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from openai import AsyncOpenAI, BadRequestError, NotFoundError, OpenAI

from ..scripted_model import ScriptedModel, call, calls, code, say
from .conftest import LiveServer, model_server

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
warnings.filterwarnings("ignore", category=DeprecationWarning, module="openai")

CI: list[Any] = [{"type": "code_interpreter", "container": {"type": "auto"}}]
OUTPUTS: list[Any] = ["code_interpreter_call.outputs"]
SINE = """import numpy as np
import matplotlib.pyplot as plt
x = np.linspace(0, 4 * np.pi, 200)
plt.plot(x, np.sin(x))
plt.savefig('/mnt/data/sine.png')
plt.show()
"""
WEATHER: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
    {
        "type": "function",
        "name": "get_nickname",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": False,
    },
]


@pytest.fixture(scope="module")
def server(sandbox_image: str, docker_client: object, model: ScriptedModel) -> Iterator[LiveServer]:
    with model_server(sandbox_image, model, "lci-r-") as s:
        yield s


def _client(server: LiveServer, key: str | None = None) -> OpenAI:
    return OpenAI(api_key=key or server.key, base_url=f"{server.url}/v1", max_retries=0)


@pytest.fixture
def client(server: LiveServer) -> OpenAI:
    return _client(server)


# -- the example, not streamed ---------------------------------------------------


def test_sine_wave_outputs_citation_and_download(
    client: OpenAI, server: LiveServer, model: ScriptedModel
) -> None:
    model.script(
        "gpt-4.1",
        code(SINE),
        say("Here is the plot: [sine.png](sandbox:/mnt/data/sine.png)."),
    )
    r = client.responses.create(
        model="gpt-4.1",
        input="Plot a sine wave and save it as sine.png",
        tools=CI,
        include=OUTPUTS,
        metadata={"k": "v"},
        temperature=0.5,
    )
    assert r.object == "response" and r.id.startswith("resp_") and r.status == "completed"
    assert r.metadata == {"k": "v"} and r.temperature == 0.5 and r.error is None
    ci, msg = r.output
    assert ci.type == "code_interpreter_call" and ci.status == "completed"
    assert ci.code == SINE and ci.container_id.startswith("cntr_")
    assert [o.type for o in ci.outputs or []] == ["image"]
    image = httpx.get(ci.outputs[0].url, headers=server.headers())  # type: ignore[index,union-attr]
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    assert msg.type == "message" and msg.role == "assistant"
    assert r.output_text == "Here is the plot: [sine.png](sandbox:/mnt/data/sine.png)."
    [note] = msg.content[0].annotations  # type: ignore[union-attr]
    assert note.type == "container_file_citation" and note.filename == "sine.png"
    assert note.container_id == ci.container_id
    assert r.output_text[note.start_index : note.end_index] == "sandbox:/mnt/data/sine.png"
    png = client.containers.files.content.retrieve(note.file_id, container_id=ci.container_id)
    assert png.read().startswith(b"\x89PNG")
    # the auto container is a /v1/containers container
    assert client.containers.retrieve(ci.container_id).status == "running"
    assert r.usage is not None and r.usage.total_tokens == 30

    # stored: retrieve (outputs only when included), input items
    again = client.responses.retrieve(r.id)
    assert again.output[0].outputs is None  # type: ignore[union-attr]
    full = client.responses.retrieve(r.id, include=OUTPUTS)
    assert full.output[0].outputs[0].type == "image"  # type: ignore[union-attr,index]
    [item] = client.responses.input_items.list(r.id).data
    assert item.type == "message" and item.content[0].text.startswith("Plot")  # type: ignore[union-attr]

    first = model.requests["gpt-4.1"][0]
    assert first["messages"] == [
        {"role": "user", "content": "Plot a sine wave and save it as sine.png"}
    ]
    assert [t["function"]["name"] for t in first["tools"]] == ["code_interpreter"]
    assert first["temperature"] == 0.5
    assert "images: 1 image displayed" in model.requests["gpt-4.1"][1]["messages"][-1]["content"]


def test_retry_in_the_same_container_and_the_chain_keeps_state(
    client: OpenAI, model: ScriptedModel
) -> None:
    model.script(
        "m-chain",
        code("values = [4, 8, 15]\ntotal = sum(value)"),
        code("total = sum(values)\nopen('/mnt/data/t.txt', 'w').write(str(total))\nprint(total)"),
        say("The total is 27."),
        code("print(total, open('/mnt/data/t.txt').read())"),
        say("Still 27, see sandbox:/mnt/data/t.txt"),
    )
    r1 = client.responses.create(
        model="m-chain", input="Sum 4, 8, 15", tools=CI, include=OUTPUTS, instructions="Be brief"
    )
    bad, good, msg = r1.output
    assert bad.type == good.type == "code_interpreter_call"
    assert "NameError" in bad.outputs[0].logs  # type: ignore[union-attr,index]
    assert good.outputs[0].logs == "27\n"  # type: ignore[union-attr,index]
    assert bad.container_id == good.container_id  # type: ignore[union-attr]
    fed_back = model.requests["m-chain"][1]["messages"][-1]
    assert "error: NameError: name 'value' is not defined" in fed_back["content"]
    assert model.requests["m-chain"][0]["messages"][0] == {"role": "system", "content": "Be brief"}
    # the file the code wrote, unlinked in the text, is still cited (zero-width at the end)
    [note] = msg.content[0].annotations  # type: ignore[union-attr]
    assert note.filename == "t.txt" and note.start_index == note.end_index == len(r1.output_text)

    r2 = client.responses.create(
        model="m-chain",
        input="And again?",
        tools=[{"type": "code_interpreter", "container": "auto"}],
        include=OUTPUTS,
        previous_response_id=r1.id,
    )
    ci, msg2 = r2.output
    assert ci.container_id == good.container_id  # type: ignore[union-attr]
    assert ci.outputs[0].logs == "27 27\n"  # type: ignore[union-attr,index]
    assert r2.previous_response_id == r1.id
    [cite] = msg2.content[0].annotations  # type: ignore[union-attr]
    assert cite.filename == "t.txt" and cite.file_id == note.file_id
    history = model.requests["m-chain"][3]["messages"]
    assert [m["role"] for m in history] == [
        "user", "assistant", "tool", "assistant", "tool", "assistant", "user"
    ]  # fmt: skip
    # an explicit cntr_ container: the same sandbox, by id
    model.script("m-cntr", code("print(total * 2)"), say("54"))
    r3 = client.responses.create(
        model="m-cntr",
        input="Double it",
        tools=[{"type": "code_interpreter", "container": ci.container_id}],  # type: ignore[union-attr]
        include=OUTPUTS,
    )
    assert r3.output[0].outputs[0].logs == "54\n"  # type: ignore[union-attr,index]


def test_an_expired_auto_container_is_replaced_and_the_model_told(
    client: OpenAI, server: LiveServer, model: ScriptedModel
) -> None:
    model.script("m-exp", code("x = 1"), say("ok"), code("print('fresh')"), say("new"))
    r1 = client.responses.create(model="m-exp", input="set x", tools=CI)
    old = r1.output[0].container_id  # type: ignore[union-attr]
    client.containers.delete(old)  # as if it had expired
    r2 = client.responses.create(model="m-exp", input="again", tools=CI, previous_response_id=r1.id)
    new = r2.output[0].container_id  # type: ignore[union-attr]
    assert new != old
    note = model.requests["m-exp"][3]["messages"][-1]["content"]
    assert note.startswith(f"note: the container {old} had expired")
    # a container whose session ended (as after its idle time) stays ended: replaced too
    sessions = httpx.get(f"{server.url}/v1/lci/sessions", headers=server.headers()).json()
    [sid] = [x["id"] for x in sessions["data"] if x["thread_id"] == new]
    stopped = httpx.post(f"{server.url}/v1/lci/sessions/{sid}/stop", headers=server.headers())
    assert stopped.status_code == 200, stopped.text
    assert client.containers.retrieve(new).status == "expired"
    model.script("m-exp", code("print('third')"), say("again"))
    r3 = client.responses.create(model="m-exp", input="3", tools=CI, previous_response_id=r2.id)
    assert r3.output[0].container_id not in (old, new)  # type: ignore[union-attr]
    note = model.requests["m-exp"][1]["messages"][-1]["content"]
    assert note.startswith(f"note: the container {new} had expired")


# -- function tools ----------------------------------------------------------------------


def test_function_calls_round_trip_in_parallel(client: OpenAI, model: ScriptedModel) -> None:
    model.script(
        "m-fn",
        calls(
            call("get_weather", {"city": "Paris"}, "call_w"),
            call("get_nickname", {"city": "Paris"}, "call_n"),
        ),
        say("Sunny in the City of Light."),
    )
    r1 = client.responses.create(model="m-fn", input="Weather in Paris?", tools=[*CI, *WEATHER])
    assert r1.status == "completed"
    weather, nickname = r1.output
    assert weather.type == nickname.type == "function_call"
    assert (weather.name, weather.call_id) == ("get_weather", "call_w")  # type: ignore[union-attr]
    assert json.loads(weather.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    r2 = client.responses.create(
        model="m-fn",
        previous_response_id=r1.id,
        tools=[*CI, *WEATHER],
        input=[
            {"type": "function_call_output", "call_id": "call_w", "output": "sunny"},
            {"type": "function_call_output", "call_id": "call_n", "output": "City of Light"},
        ],
    )
    assert r2.output_text == "Sunny in the City of Light."
    sent = model.requests["m-fn"][1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]
    assert [c["id"] for c in sent[1]["tool_calls"]] == ["call_w", "call_n"]
    assert sent[2] == {"role": "tool", "tool_call_id": "call_w", "content": "sunny"}
    items = client.responses.input_items.list(r2.id, order="asc").data
    assert [i.type for i in items] == ["function_call_output"] * 2


def test_tool_choice_and_parallel_tool_calls(client: OpenAI, model: ScriptedModel) -> None:
    two = calls(call("get_weather", {"city": "A"}), call("get_weather", {"city": "B"}))
    model.script("m-choice", two, say("fine"), say("no tools"), two)
    named = client.responses.create(
        model="m-choice",
        input="x",
        tools=WEATHER,
        tool_choice={"type": "function", "name": "get_weather"},
    )
    assert [o.type for o in named.output] == ["function_call", "function_call"]
    sent = model.requests["m-choice"][0]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    client.responses.create(model="m-choice", input="y", tools=WEATHER, tool_choice="required")
    assert model.requests["m-choice"][1]["tool_choice"] == "required"
    client.responses.create(model="m-choice", input="z", tools=WEATHER, tool_choice="none")
    assert model.requests["m-choice"][2]["tool_choice"] == "none"
    one = client.responses.create(
        model="m-choice", input="w", tools=WEATHER, parallel_tool_calls=False
    )
    assert len(one.output) == 1 and one.parallel_tool_calls is False
    assert model.requests["m-choice"][3]["parallel_tool_calls"] is False


# -- streaming ---------------------------------------------------------------------------


def test_stream_helper_and_event_order(client: OpenAI, model: ScriptedModel) -> None:
    model.script(
        "m-stream",
        code("print('hello')\n_ = open('/mnt/data/a.txt', 'w').write('a')"),
        say("Done: sandbox:/mnt/data/a.txt is there."),
    )
    with client.responses.stream(model="m-stream", input="go", tools=CI, include=OUTPUTS) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    code_events = [k for k in kinds if "code_interpreter_call" in k and k.startswith("response.")]
    assert code_events == [
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call_code.delta",
        "response.code_interpreter_call_code.done",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
    ]
    assert "lci.code_interpreter_call.output" in kinds
    text_at = kinds.index("response.content_part.added")
    assert text_at < kinds.index("response.output_text.delta")
    assert kinds.index("response.output_text.annotation.added") < kinds.index(
        "response.output_text.done"
    )
    assert kinds[-1] == "response.completed"
    assert final.output_text == "Done: sandbox:/mnt/data/a.txt is there."
    ci = final.output[0]
    assert ci.outputs[0].logs == "hello\n"  # type: ignore[union-attr,index]
    [note] = final.output[1].content[0].annotations  # type: ignore[union-attr]
    assert note.filename == "a.txt"


def test_stream_helper_with_function_calls(client: OpenAI, model: ScriptedModel) -> None:
    model.script("m-stream-fn", calls(call("get_weather", {"city": "Rome"}, "call_r")))
    with client.responses.stream(model="m-stream-fn", input="Rome?", tools=WEATHER) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    [fc] = final.output
    assert fc.type == "function_call" and fc.call_id == "call_r"
    assert fc.parsed_arguments == {"city": "Rome"}  # type: ignore[union-attr]  # strict: parsed


def test_live_output_arrives_while_the_code_runs(client: OpenAI, model: ScriptedModel) -> None:
    model.script(
        "m-live",
        code("import time\nprint('tick', flush=True)\ntime.sleep(2)\nprint('tock')"),
        say("ok"),
    )
    seen: dict[str, float] = {}
    live: list[Any] = []
    for event in client.responses.create(model="m-live", input="go", tools=CI, stream=True):
        seen.setdefault(event.type, time.monotonic())
        if event.type == "lci.code_interpreter_call.output":
            live.append(event)
    assert live[0].text == "tick\n" and live[0].stream == "stdout"  # type: ignore[attr-defined]
    done = seen["response.code_interpreter_call.completed"]
    assert done - seen["lci.code_interpreter_call.output"] > 1.5


def test_async_client_streams_and_creates(server: LiveServer, model: ScriptedModel) -> None:
    model.script("m-async", say("one"), calls(call("get_weather", {"city": "Oslo"})))

    async def main() -> None:
        client = AsyncOpenAI(api_key=server.key, base_url=f"{server.url}/v1", max_retries=0)
        async with client.responses.stream(model="m-async", input="hi") as stream:
            deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
            final = await stream.get_final_response()
        assert "".join(deltas) == final.output_text == "one"
        r = await client.responses.create(model="m-async", input="w", tools=WEATHER)
        assert r.output[0].type == "function_call"
        await client.close()

    anyio.run(main)


# -- refusals, tenancy, deletion ---------------------------------------------------------


def test_unsupported_fields_and_tools_are_refused_by_name(client: OpenAI) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type", "web_search"),
        ({"tools": [{"type": "file_search", "vector_store_ids": []}]}, "tools[0].type", "file_"),
        ({"background": True}, "background", "background"),
        ({"extra_body": {"conversation": "conv_1"}}, "conversation", "conversation"),
        ({"include": ["web_search_call.results"]}, "include", "web_search_call.results"),
        ({"tools": [{"type": "code_interpreter", "container": "x"}]}, "tools[0].container", ""),
    ]
    for extra, param, word in cases:
        with pytest.raises(BadRequestError) as info:
            client.responses.create(model="m", input="x", **extra)
        assert info.value.param == param, (extra, info.value.body)
        assert word in info.value.message, (extra, info.value.message)
    with pytest.raises(NotFoundError):
        client.responses.create(model="m", input="x", previous_response_id="resp_nope")
    with pytest.raises(BadRequestError) as missing:  # a named tool that is not among the tools
        client.responses.create(
            model="m", input="x", tools=WEATHER, tool_choice={"type": "function", "name": "no"}
        )
    assert missing.value.param == "tool_choice" and "'no'" in missing.value.message


def test_retrieve_delete_and_tenancy(
    client: OpenAI, server: LiveServer, model: ScriptedModel
) -> None:
    model.script("m-crud", say("hi"), say("unstored"))
    r = client.responses.create(model="m-crud", input=[{"role": "user", "content": "hello"}])
    bob = _client(server, server.other_key)
    for attempt in (
        lambda: bob.responses.retrieve(r.id),
        lambda: bob.responses.input_items.list(r.id),
        lambda: bob.responses.delete(r.id),
        lambda: bob.responses.create(model="m-crud", input="x", previous_response_id=r.id),
    ):
        with pytest.raises(NotFoundError):
            attempt()
    assert client.responses.retrieve(r.id).output_text == "hi"
    client.responses.delete(r.id)
    with pytest.raises(NotFoundError):
        client.responses.retrieve(r.id)
    unstored = client.responses.create(model="m-crud", input="x", store=False)
    assert unstored.output_text == "unstored"
    with pytest.raises(NotFoundError):
        client.responses.retrieve(unstored.id)


def test_a_failing_model_fails_the_response(client: OpenAI) -> None:
    r = client.responses.create(model="m-no-script", input="x")  # the script has no turn
    assert r.status == "failed" and r.error is not None and r.error.code == "server_error"
    assert "has no turn left" in r.error.message


def test_containers_parity_with_the_current_sdk(client: OpenAI) -> None:
    """The container object as openai 3.x reads it (last_active_at, memory_limit,
    network_policy), the memory tiers within the tenant's quota, name filter and order."""
    small = client.containers.create(name="parity", memory_limit="1g")
    big = client.containers.create(name="parity", memory_limit="64g")  # clamped to the quota
    assert small.memory_limit == "1g" and small.last_active_at is not None
    assert small.network_policy is not None and small.network_policy.type == "disabled"
    # accepted, clamped to the tenant's largest sandbox (test_quotas.py: 4g -> 2g)
    assert big.memory_limit is not None
    asc = [c.id for c in client.containers.list(name="parity", order="asc").data]
    desc = [c.id for c in client.containers.list(name="parity", order="desc").data]
    assert sorted(asc) == sorted([small.id, big.id]) and desc == asc[::-1]
    with pytest.raises(BadRequestError) as info:
        client.containers.create(
            name="n", network_policy={"type": "allowlist", "allowed_domains": ["example.com"]}
        )
    assert "network" in info.value.message
    for c in (small, big):
        client.containers.delete(c.id)


def test_input_files_and_container_file_ids_are_in_mnt_data(
    client: OpenAI, model: ScriptedModel
) -> None:
    csv = client.files.create(file=("data.csv", b"a\n1\n2\n"), purpose="user_data")
    extra = client.files.create(file=("notes.txt", b"hello"), purpose="assistants")
    model.script(
        "m-files",
        code("import pandas as pd\nprint(pd.read_csv('/mnt/data/data.csv').a.sum())\n"
             "print(open('/mnt/data/notes.txt').read())"),
        say("3"),
    )  # fmt: skip
    r = client.responses.create(
        model="m-files",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Sum column a"},
                    {"type": "input_file", "file_id": csv.id},
                ],
            }
        ],
        tools=[{"type": "code_interpreter", "container": {"type": "auto", "file_ids": [extra.id]}}],
        include=OUTPUTS,
        max_output_tokens=50,
    )
    assert r.output[0].outputs[0].logs == "3\nhello\n"  # type: ignore[union-attr,index]
    first = model.requests["m-files"][0]
    assert first["max_tokens"] == 50
    system, user = first["messages"]
    assert "/mnt/data/data.csv" in system["content"] and "/mnt/data/notes.txt" in system["content"]
    assert user == {"role": "user", "content": "Sum column a\n[file /mnt/data/data.csv]"}
    items = client.responses.input_items.list(r.id).data
    assert items[0].content[1].type == "input_file"  # type: ignore[union-attr]
