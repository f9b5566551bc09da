"""The OpenAPI document against a real ``lci serve``: a bounded schemathesis run over
every operation finds no 5xx and no conformance failure, and the requests the document
admits are the ones the service accepts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .conftest import LiveServer

pytestmark = pytest.mark.docker
BENCH = Path(__file__).resolve().parents[2] / "bench" / "schemathesis_run.py"
POOL = "/subscriptions/s/resourceGroups/g/sessionPools/p"


@pytest.fixture
def http(live_server: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=live_server.url, headers=live_server.headers(), timeout=60) as c:
        yield c


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_schemathesis_finds_no_5xx_and_no_conformance_failure(sandbox_image: str) -> None:
    env = {**os.environ, "LCI_IMAGE": sandbox_image}
    budget = os.environ.get("LCI_SCHEMATHESIS_SECONDS", "150")
    p = subprocess.run(
        [sys.executable, str(BENCH), "--max-time", budget, "--max-examples", "8", "--seed", "7"],
        env=env,
        capture_output=True,
        text=True,
        timeout=800,
    )
    assert p.returncode == 0, p.stderr[-4000:]
    out = json.loads(p.stdout)
    report = out.get("report", "")
    assert out["operations"]["tested"] == out["operations"]["in_document"] >= 74, out
    assert out["cases"] > 1000, out
    assert out["server_errors"] == 0, report
    assert out["conformance_failures"] == 0, report
    assert out["errors"] == {}, report
    # it cleaned up through the API: the safety-net sweep found nothing
    assert out["leftover_sandboxes_removed"] == 0


def test_schema_valid_requests_are_accepted(live_server: LiveServer, http: httpx.Client) -> None:
    assert http.get("/v1/containers", params={"after": ""}).status_code == 200  # no cursor
    unknown = http.get("/v1/files", params={"after": "file-nope"})
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "after"
    shell = http.post(
        "/executions",
        params={"identifier": "openapi-doc"},
        json={"code": None, "shellCommand": "echo hi"},
    )
    assert shell.status_code == 200 and shell.json()["result"]["stdout"] == "hi\n"
    python = http.post(
        f"{POOL}/executions", params={"identifier": "openapi-doc"}, json={"code": "6 * 7"}
    )
    assert python.json()["result"]["executionResult"] == 42
    assert http.delete("/session", params={"identifier": "openapi-doc"}).status_code == 204


def test_what_the_document_refuses_is_a_400_naming_it(http: httpx.Client) -> None:
    cases = [
        ("post", "/executions?identifier=x", {"code": None}, "code"),
        ("post", "/executions?identifier=x", {"code": "1", "timeoutInSeconds": 0}, None),
        ("post", "/v1/containers", {"name": "n", "memory_limit": "64m"}, "memory_limit"),
        ("post", "/v1/containers", {"name": "n", "memory_limit": "1.5g"}, "memory_limit"),
        ("post", "/v1/containers", {"name": 5}, "name"),  # no coercion of JSON types
        ("post", "/v1/containers/c/executions", {"code": "1", "timeout": "5"}, "timeout"),
        ("post", "/v1/assistants", {"model": "m", "top_p": False}, "top_p"),
        ("get", "/v1/containers?limit=0", None, "limit"),
        ("get", "/v1/files?limit=10001", None, "limit"),
        ("get", f"/v1/lci/sessions/s/executions?last={2**80}", None, "last"),  # was a 500
        ("get", f"/v1/lci/sessions/s/events?last={2**64}", None, "last"),
        ("get", "/files?identifier=openapi-x&path=a/../b", None, "path"),
        ("get", "/files?identifier=openapi-x&path=%1Cdir", None, "path"),
    ]
    for method, url, body, param in cases:
        r = http.request(method, url, json=body)
        assert r.status_code == 400, (url, body, r.text)
        error = r.json()["error"]
        if url.startswith("/v1"):
            assert error["param"] == param, (url, body, error)
        else:
            assert error["message"], (url, body, error)
    # what was valid but could not run stays a 4xx that says so, never a 5xx
    at = http.post("/files/upload?identifier=openapi-x", files={"file": ("a.txt", b"a")})
    assert at.status_code == 200, at.text
    under = http.post(
        "/files/upload?identifier=openapi-x&path=a.txt", files={"file": ("b.txt", b"b")}
    )
    assert under.status_code == 400 and "'a.txt' is a file" in under.json()["error"]["message"]
    assert http.delete("/session", params={"identifier": "openapi-x"}).status_code == 204


def test_405_carries_allow_on_every_face(live_server: LiveServer, http: httpx.Client) -> None:
    for method, path, allow in [
        ("PUT", "/v1/containers", "GET, POST"),
        ("OPTIONS", "/v1/threads/runs", "POST"),  # not /v1/threads/{thread_id}'s methods
        ("TRACE", "/files/upload", "POST"),
        ("PATCH", f"{POOL}/files/a.txt/content", "GET"),
        ("DELETE", "/v1/lci/sessions", "GET"),
    ]:
        r = http.request(method, path)
        assert r.status_code == 405, (method, path, r.text)
        assert r.headers["allow"] == allow, (method, path)
    spec = httpx.get(f"{live_server.url}/openapi.json").json()
    assert set(spec["paths"]["/v1/containers"]) == {"get", "post"}
