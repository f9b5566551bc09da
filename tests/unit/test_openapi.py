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
    return create_app(Settings(home=tmp_path), keys=KeyRing({digest(KEY): "t"}))


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
    ],
)
async def test_405_names_every_method_of_the_path(client, method, path, allow) -> None:  # type: ignore[no-untyped-def]
    r = await client.request(method, path)
    assert r.status_code == 405
    assert r.headers["allow"] == allow
    assert allow in (r.json()["error"]["message"])
