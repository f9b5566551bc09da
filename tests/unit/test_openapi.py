"""The service's OpenAPI document and the answers it describes, in process (no engine):
every status an operation can answer is documented with its dialect's error body,
2xx answers carry schemas, and a 405 names the methods the path does answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from interpreter import Settings
from interpreter.server import create_app
from interpreter.server.auth import KeyRing, digest

KEY = "k" * 32


@pytest.fixture
def app(tmp_path: Path):  # type: ignore[no-untyped-def]
    return create_app(Settings.of(home=tmp_path), keys=KeyRing({digest(KEY): "t"}))


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        yield c


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/v1/files", "GET, POST"),  # two routes: GET and POST
        ("OPTIONS", "/v1/files/file-1", "GET, DELETE"),
        ("PATCH", "/v1/containers/c/files", "GET, POST"),
        ("PUT", "/subscriptions/s/resourceGroups/g/sessionPools/p/files", "GET, POST"),
        ("DELETE", "/executions", "POST"),
        ("POST", "/healthz", "GET"),
        ("OPTIONS", "/v1/threads/runs", "POST"),  # the concrete path, not /v1/threads/{id}
        ("PUT", "/files/x.txt/content", "GET"),  # not /files/{name:path}'s DELETE
        ("PUT", "/ui/login", "GET, POST"),  # not in the document: the routes say
    ],
)
async def test_405_names_every_method_of_the_path(client, method, path, allow) -> None:  # type: ignore[no-untyped-def]
    r = await client.request(method, path)
    assert r.status_code == 405
    assert r.headers["allow"] == allow
    assert allow in (r.json()["error"]["message"])


# -- the document -----------------------------------------------------------------------

# where new work is accepted (a session started, an upload, an execution, a run)
NEW_WORK = [
    ("post", "/v1/files"),
    ("post", "/v1/containers"),
    ("post", "/v1/containers/{container_id}/files"),
    ("post", "/v1/containers/{container_id}/executions"),
    ("post", "/v1/lci/sessions/{session_id}/executions"),
    ("post", "/v1/threads/runs"),
    ("post", "/v1/threads/{thread_id}/runs"),
    ("post", "/v1/responses"),
    ("post", "/code/execute"),
    ("post", "/executions"),
    ("post", "/files/upload"),
    ("post", "/files"),
    ("get", "/files"),
]


def operations(doc):  # type: ignore[no-untyped-def]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield path, method, op


def test_every_operation_documents_the_edge_and_no_422(app) -> None:  # type: ignore[no-untyped-def]
    doc = app.openapi()
    assert len(doc["paths"]) >= 52
    for path, method, op in operations(doc):
        codes = set(op["responses"])
        assert "422" not in codes, (method, path)  # validation errors are 400s
        assert {"408", "414", "431", "500"} <= codes, (method, path)
        if path == "/healthz":
            assert op["security"] == [] and "401" not in codes
        else:
            assert op["security"] == [{"bearer": []}], (method, path)
            assert {"401", "429"} <= codes, (method, path)
        if method != "get":
            assert {"400", "413"} <= codes, (method, path)
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_errors_carry_the_body_of_their_dialect(app) -> None:  # type: ignore[no-untyped-def]
    for path, method, op in operations(app.openapi()):
        for code, response in op["responses"].items():
            if int(code) < 400 or (path == "/healthz" and code == "503"):
                continue
            content = response["content"]
            if int(code) in (408, 414, 431):  # the HTTP layer's, before the app
                assert list(content) == ["text/plain"]
                continue
            ref = content["application/json"]["schema"]["$ref"]
            dialect = "OpenAIError" if path.startswith("/v1/") else "AzureError"
            assert ref == f"#/components/schemas/{dialect}", (method, path, code)


def test_successes_carry_schemas(app) -> None:  # type: ignore[no-untyped-def]
    for path, method, op in operations(app.openapi()):
        ok = {c: r for c, r in op["responses"].items() if c.startswith("2")}
        if path.endswith("/executions/{execution_id}"):  # Azure's async polling: always 404
            assert not ok
            continue
        assert ok, (method, path)
        for code, response in ok.items():
            if code == "204":
                assert "content" not in response
                continue
            for media, body in response["content"].items():
                assert body["schema"], (method, path, media)  # never {}: say what comes


def test_new_work_can_be_refused_for_quota_and_disk(app) -> None:  # type: ignore[no-untyped-def]
    doc = app.openapi()
    pool = "/subscriptions/{subscription}/resourceGroups/{group}/sessionPools/{pool}"
    for method, path in NEW_WORK:
        for where in [path, pool + path] if not path.startswith("/v1") else [path]:
            codes = set(doc["paths"][where][method]["responses"])
            assert {"429", "503", "507"} <= codes, (method, where)


def test_request_schemas_say_what_is_refused(app) -> None:  # type: ignore[no-untyped-def]
    doc = app.openapi()
    schemas = doc["components"]["schemas"]
    execution = schemas["ExecutionRequest"]  # Azure, new dialect: code or shellCommand
    assert {tuple(s["required"]) for s in execution["anyOf"]} == {("code",), ("shellCommand",)}
    params = {p["name"]: p["schema"] for p in doc["paths"]["/v1/containers"]["get"]["parameters"]}
    assert (params["limit"]["minimum"], params["limit"]["maximum"]) == (1, 100)
    pool = doc["paths"][
        "/subscriptions/{subscription}/resourceGroups/{group}/sessionPools/{pool}/files"
    ]
    assert {p["name"] for p in pool["get"]["parameters"]} >= {"subscription", "group", "pool"}
    upload = doc["paths"]["/v1/files"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert upload["schema"]["required"] == ["file", "purpose"]


# -- the schemas describe what the handlers build ------------------------------------------


def test_execution_views_match_their_schemas() -> None:
    from interpreter.results import ErrorInfo, Execution, ExecutionStatus, ProducedFile
    from interpreter.server import schemas
    from interpreter.server.openai.containers import execution_view

    exe = Execution(
        "exe_1",
        "sess_1",
        "t",
        "1/0",
        ExecutionStatus.ERROR,
        files=[ProducedFile("file-1", "/mnt/data/a.csv", 3)],
        error=ErrorInfo("ZeroDivisionError", "division by zero", ["tb"]),
        execution_count=1,
        started_at=1.5,
        duration_ms=12,
    )
    schemas.ContainerExecution.model_validate(execution_view("cntr_1", exe), strict=True)
    schemas.LciExecution.model_validate({"object": "lci.execution", **exe.to_dict()}, strict=True)


def test_assistants_objects_match_their_schemas() -> None:
    from interpreter.assistants import objects
    from interpreter.server import schemas

    asst = objects.new_assistant("m", [{"type": "code_interpreter"}], objects.resources(None))
    thread = objects.new_thread(objects.resources(None), {"k": "v"})
    run = objects.new_run(thread["id"], asst, {}, 600)
    msg = objects.new_message(thread["id"], "user", [{"type": "text", "text": {"value": "hi"}}])
    step = objects.new_step(run, {"type": "message_creation", "message_creation": {}}, "completed")
    schemas.Assistant.model_validate(asst, strict=True)
    schemas.Thread.model_validate(thread, strict=True)
    schemas.Run.model_validate(run, strict=True)
    schemas.Message.model_validate(msg, strict=True)
    schemas.RunStep.model_validate(step, strict=True)


def test_the_responses_document_says_what_is_refused(app) -> None:  # type: ignore[no-untyped-def]
    doc = app.openapi()
    body = doc["components"]["schemas"]["ResponseCreate"]
    assert body["additionalProperties"] is False and body["required"] == ["model"]
    assert body["properties"]["include"]["items"]["enum"][0] == "code_interpreter_call.outputs"
    assert body["properties"]["background"]["enum"] == [False, None]
    stream = doc["paths"]["/v1/responses"]["post"]["responses"]["200"]["content"]
    events = stream["text/event-stream"]["schema"]["properties"]["event"]["enum"]
    assert "lci.code_interpreter_call.output" in events and events[0] == "response.created"
    assert set(doc["paths"]["/v1/responses/{response_id}"]) == {"get", "delete"}
