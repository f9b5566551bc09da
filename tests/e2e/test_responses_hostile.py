"""The Responses face under a hostile sandbox, tenant or model: a real ``lci serve``, the
model scripted over real HTTP (tests/scripted_model.py), so the "model" runs whatever code
an attacker likes. One server for the module."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import OpenAI

from interpreter.responses.loop import LIVE_MAX
from interpreter.responses.objects import MAX_UNLINKED

from ..scripted_model import ScriptedModel, code, say
from .conftest import LiveServer, model_server

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
warnings.filterwarnings("ignore", category=DeprecationWarning, module="openai")

CI: list[Any] = [{"type": "code_interpreter", "container": {"type": "auto"}}]


@pytest.fixture(scope="module")
def server(sandbox_image: str, docker_client: object, model: ScriptedModel) -> Iterator[LiveServer]:
    with model_server(sandbox_image, model, "lci-rh-") as s:
        yield s


@pytest.fixture
def client(server: LiveServer) -> OpenAI:
    return OpenAI(api_key=server.key, base_url=f"{server.url}/v1", max_retries=0)


def test_live_output_of_one_call_is_bounded(client: OpenAI, model: ScriptedModel) -> None:
    """A sandbox printing megabytes must not become megabytes of stream events queued in
    the server for a slow client: the live output of one call is capped (the logs, cut,
    are still in the item)."""
    flood = "import sys\nfor _ in range(3000):\n    sys.stdout.write('x' * 4095 + '\\n')\n"
    model.script("m-flood", code(flood), say("done"))
    live, done = 0, None
    for event in client.responses.create(model="m-flood", input="go", tools=CI, stream=True):
        if event.type == "lci.code_interpreter_call.output":  # type: ignore[comparison-overlap]
            live += len(event.text)  # type: ignore[attr-defined]
        if event.type == "response.completed":
            done = event.response
    assert done is not None and done.status == "completed"
    assert live <= LIVE_MAX + 200, live  # 12 MB printed


def test_thousands_of_written_files_make_a_bounded_number_of_citations(
    client: OpenAI, model: ScriptedModel
) -> None:
    """Code writing 3000 files (bidi names) made 3000 zero-width citations in the message,
    its stream and its stored row; the linked file is still cited where the text links
    it, in code points (what the SDK slices), after a non-ASCII prefix."""
    src = "for i in range(3000):\n    open(f'/mnt/data/f{i}\\u202e.txt', 'w').write('x')\n"
    text = "h\u00e9llo \U0001f600 see sandbox:/mnt/data/f1\u202e.txt"
    model.script("m-files", code(src), say(text))
    r = client.responses.create(model="m-files", input="go", tools=CI)
    notes = r.output[-1].content[0].annotations  # type: ignore[union-attr]
    assert 1 < len(notes) <= MAX_UNLINKED + 1, len(notes)
    first = notes[0]
    assert first.filename == "f1\u202e.txt"  # type: ignore[union-attr]
    assert r.output_text[first.start_index : first.end_index] == "sandbox:/mnt/data/f1\u202e.txt"  # type: ignore[union-attr]
    assert all(n.start_index == n.end_index == len(text) for n in notes[1:])  # type: ignore[union-attr]
    stored = client.responses.retrieve(r.id)
    assert len(stored.output[-1].content[0].annotations) == len(notes)  # type: ignore[union-attr]


def test_another_tenants_objects_and_lone_surrogates_are_refused(
    client: OpenAI, server: LiveServer, model: ScriptedModel
) -> None:
    """Held: bob cannot chain on, read, delete or run in alice's response and container;
    a lone surrogate anywhere is a 400 naming its field, never a 500."""
    model.script("m-t", code("open('/mnt/data/s.txt', 'w').write('secret')"), say("ok"))
    r = client.responses.create(model="m-t", input="go", tools=CI)
    cid = r.output[0].container_id  # type: ignore[union-attr]
    bob, base = server.headers(server.other_key), f"{server.url}/v1/responses"
    tool = [{"type": "code_interpreter", "container": cid}]
    chained = {"model": "m-t", "input": "x", "previous_response_id": r.id}
    assert httpx.post(base, headers=bob, json=chained).status_code == 404
    in_alices = {"model": "m-t", "input": "x", "tools": tool}
    assert httpx.post(base, headers=bob, json=in_alices).status_code == 404
    assert httpx.get(f"{base}/{r.id}", headers=bob).status_code == 404
    assert httpx.delete(f"{base}/{r.id}", headers=bob).status_code == 404
    json_h = {**server.headers(), "content-type": "application/json"}
    for body in (
        b'{"model": "m-t", "input": "\\ud800"}',
        b'{"model": "m-t", "input": "x", "instructions": "a\\udfffb"}',
        b'{"model": "m-t", "input": "x", "metadata": {"k": "\\ud83d"}}',
    ):
        got = httpx.post(base, headers=json_h, content=body)
        assert got.status_code == 400 and got.json()["error"]["param"], got.text
