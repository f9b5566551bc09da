"""/metrics counts every face's executions, once each, for the tenant that ran them.

The counts come from the manager's ``execution`` events, not from the faces, so one
execution through any face (OpenAI containers, plain and streamed; Azure dynamic
sessions; ``/v1/lci``; an Assistants run or a Response whose model calls
code_interpreter; an MCP tool call) moves the tenant's ``lci_executions_total`` by
exactly one, with its status, and its duration histogram by one observation; the
other tenant's key sees none of it. A server of its own (the scripted model behind
the Assistants run and the Response, and no other test's executions in the counts)."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families

from ..scripted_model import ScriptedModel, code, say
from . import mcp_client
from .conftest import ADMIN, LiveServer, model_server

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
warnings.filterwarnings("ignore", category=DeprecationWarning, module="openai")

MODEL = "scripted-metrics"
STATUSES = ("ok", "error", "timeout", "died", "cancelled")
AZURE = "api-version=2025-10-02-preview"


@pytest.fixture(scope="module")
def server(sandbox_image: str, docker_client: object, model: ScriptedModel) -> Iterator[LiveServer]:
    with model_server(sandbox_image, model, "lci-m-") as s:
        yield s


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.headers(), timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def container(http: httpx.Client) -> tuple[str, str]:
    """(container id, session id) of alice's container, which has run once."""
    cid = http.post("/v1/containers", json={"name": "metrics"}).json()["id"]
    r = http.post(f"/v1/containers/{cid}/executions", json={"code": "x = 1"})
    assert r.status_code == 200, r.text
    return cid, r.json()["session_id"]


class Faces:
    """Each method runs exactly one execution for alice through one face."""

    def __init__(
        self,
        server: LiveServer,
        http: httpx.Client,
        model: ScriptedModel,
        container: tuple[str, str],
    ) -> None:
        self.server, self.http, self.model = server, http, model
        self.cid, self.sid = container

    def containers(self) -> str:
        r = self.http.post(f"/v1/containers/{self.cid}/executions", json={"code": "1 / 0"})
        assert r.status_code == 200 and r.json()["status"] == "error", r.text
        return "error"

    def containers_streamed(self) -> str:
        body = {"code": "print(6 * 7)", "stream": True}
        r = self.http.post(f"/v1/containers/{self.cid}/executions", json=body)
        assert r.status_code == 200 and "event: execution" in r.text, r.text
        assert '"status": "ok"' in r.text.split("event: execution", 1)[1]
        return "ok"

    def azure(self) -> str:
        query = f"identifier=metrics-{uuid.uuid4().hex[:8]}&{AZURE}"
        r = self.http.post(f"/executions?{query}", json={"code": "6 * 7"})
        assert r.status_code == 200 and r.json()["status"] == "Succeeded", r.text
        return "ok"

    def lci(self) -> str:
        r = self.http.post(f"/v1/lci/sessions/{self.sid}/executions", json={"code": "x + 1"})
        assert r.status_code == 200 and r.json()["status"] == "ok", r.text
        return "ok"

    def assistants(self) -> str:
        self.model.script(MODEL, code("print(6 * 7)"), say("42."))
        client = OpenAI(api_key=self.server.key, base_url=f"{self.server.url}/v1", max_retries=0)
        assistant = client.beta.assistants.create(model=MODEL, tools=[{"type": "code_interpreter"}])
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "6 * 7?"}])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=100
        )
        assert run.status == "completed", run
        steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id)
        [tools] = [s.step_details for s in steps.data if s.type == "tool_calls"]
        [ci] = tools.tool_calls  # type: ignore[union-attr]
        assert ci.code_interpreter.outputs[0].logs == "42\n"  # type: ignore[union-attr]
        assert len(self.model.requests[MODEL]) == 2
        return "ok"

    def responses(self) -> str:
        self.model.script(MODEL, code("print(6 * 7)"), say("42."))
        client = OpenAI(api_key=self.server.key, base_url=f"{self.server.url}/v1", max_retries=0)
        r = client.responses.create(
            model=MODEL,
            input="6 * 7?",
            tools=[{"type": "code_interpreter", "container": {"type": "auto"}}],
            include=["code_interpreter_call.outputs"],
        )
        assert r.status == "completed", r
        assert r.output[0].outputs[0].logs == "42\n"  # type: ignore[union-attr,index]
        return "ok"

    def mcp(self) -> str:
        async def call() -> Any:
            headers = self.server.headers()
            async with mcp_client.http_session(f"{self.server.url}/mcp", headers) as session:
                arguments = {"code": "import time; time.sleep(60)", "timeout": 1}
                return await session.call_tool("execute_python", arguments)

        result = anyio.run(call)
        assert mcp_client.wire(result, "isError")
        assert mcp_client.wire(result, "structuredContent")["status"] == "timeout"
        return "timeout"


def counts(server: LiveServer, key: str, tenant: str) -> dict[str, float]:
    """``tenant``'s executions by status (and ``duration``: the histogram's count) in
    /metrics as ``key`` reads it; every sample read must be ``tenant``'s."""
    r = httpx.get(f"{server.url}/metrics", headers=server.headers(key), timeout=30)
    assert r.status_code == 200, r.text
    found = {"duration": 0.0}  # no histogram series before the tenant's first execution
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            if key != ADMIN:
                assert s.labels.get("tenant") == tenant, (key, s)
            elif s.labels.get("tenant") != tenant:
                continue
            if s.name == "lci_executions_total":
                found[s.labels["status"]] = s.value
            elif s.name == "lci_execution_duration_seconds_count":
                found["duration"] = s.value
    assert set(found) == {*STATUSES, "duration"}, found
    return found


@pytest.mark.parametrize(
    "face",
    ["containers", "containers_streamed", "azure", "lci", "assistants", "responses", "mcp"],
)
def test_one_execution_through_a_face_is_counted_once_for_its_tenant(
    face: str,
    server: LiveServer,
    http: httpx.Client,
    model: ScriptedModel,
    container: tuple[str, str],
) -> None:
    faces = Faces(server, http, model, container)
    before = counts(server, server.key, "alice")
    bob_before = counts(server, server.other_key, "bob")

    status = getattr(faces, face)()

    after = counts(server, server.key, "alice")
    moved = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    assert moved == {status: 1, "duration": 1}, (face, before, after)
    assert counts(server, ADMIN, "alice") == after  # the admin key sees the same series
    # bob ran nothing: his key shows only his own series, and they did not move
    assert counts(server, server.other_key, "bob") == bob_before
    assert bob_before == dict.fromkeys((*STATUSES, "duration"), 0)
