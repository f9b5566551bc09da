"""Pure pieces of the service: upload parsing quirks, keys, result typing, pages."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from interpreter import Settings
from interpreter.errors import ConfigError
from interpreter.files import FileStore
from interpreter.server.auth import load_keys
from interpreter.server.common import json_value
from interpreter.server.pages import page
from interpreter.server.problems import ApiError
from interpreter.server.uploads import receive_upload
from interpreter.store import Store


def upload_app(tmp: Path, limit: int) -> Starlette:
    files = FileStore(Store(tmp / "lci.db"), tmp / "blobs", limit)

    async def handler(request: Request) -> JSONResponse:
        try:
            up = await receive_upload(request, files, limit)
        except ApiError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        assert up.tmp is not None
        data = up.tmp.read_bytes()
        up.discard()
        return JSONResponse(
            {"filename": up.filename, "fields": up.fields, "size": up.size, "data": data.decode()}
        )

    return Starlette(routes=[Route("/", handler, methods=["POST"])])


@pytest.fixture
def post(tmp_path: Path):  # type: ignore[no-untyped-def]
    async def send(limit: int = 1000, **kwargs):  # type: ignore[no-untyped-def]
        transport = httpx.ASGITransport(app=upload_app(tmp_path, limit))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.post("/", **kwargs)

    return send


def multipart(filename_header: str, data: bytes = b"hello") -> tuple[bytes, str]:
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; '
        + filename_header.encode()
        + b"\r\nContent-Type: application/octet-stream\r\n\r\n"
        + data
        + b"\r\n--XyZ--\r\n"
    )
    return body, "multipart/form-data; boundary=XyZ"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('filename="plain.txt"', "plain.txt"),
        ('filename="/mnt/data/local data.csv"', "/mnt/data/local data.csv"),  # LlamaIndex, SK
        ('filename="local%20data.csv"', "local data.csv"),  # AutoGen (aiohttp)
        ("filename*=utf-8''na%C3%AFve.txt", "naïve.txt"),
    ],
)
async def test_filenames_as_clients_send_them(post, header: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    body, ctype = multipart(header)
    r = await post(content=body, headers={"content-type": ctype})
    assert r.status_code == 200
    assert r.json() == {
        "filename": expected,
        "fields": {"purpose": "assistants"},
        "size": 5,
        "data": "hello",
    }


@pytest.mark.anyio
async def test_multipart_under_a_json_content_type(post) -> None:  # type: ignore[no-untyped-def]
    body, _ = multipart('filename="sk.txt"')  # Semantic Kernel's leaked header
    r = await post(content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["filename"] == "sk.txt"


@pytest.mark.anyio
async def test_chunked_body_and_limits(post) -> None:  # type: ignore[no-untyped-def]
    body, ctype = multipart('filename="big.bin"', b"z" * 5000)

    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(body), 700):
            yield body[i : i + 700]

    over = await post(limit=1000, content=chunks(), headers={"content-type": ctype})
    assert (
        over.status_code == 413
        and "limit of 1000 bytes (LCI_MAX_UPLOAD_BYTES)" in over.json()["error"]
    )
    ok = await post(limit=10_000, content=chunks(), headers={"content-type": ctype})
    assert ok.status_code == 200 and ok.json()["size"] == 5000


@pytest.mark.anyio
async def test_not_multipart_and_no_file(post) -> None:  # type: ignore[no-untyped-def]
    r = await post(content=b"just text", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    body = b'--XyZ\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nx\r\n--XyZ--\r\n'
    r = await post(content=body, headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert r.status_code == 400 and "'file'" in r.json()["error"]


def test_keys_from_env_and_generated_file(tmp_path: Path) -> None:
    alice, plain = "key-alice-" + "a" * 22, "plainkey-" + "p" * 23
    ring = load_keys(Settings.of(home=tmp_path, api_keys=f"alice:{alice}, {plain}"))
    assert ring.tenant(alice) == "alice"
    assert (ring.tenant(plain) or "").startswith("key-")
    assert ring.tenant("nope") is None and ring.created is None
    fresh = load_keys(Settings.of(home=tmp_path))
    assert fresh.created and fresh.tenant(fresh.created) == "default"
    assert (tmp_path / "api_keys").stat().st_mode & 0o777 == 0o600
    again = load_keys(Settings.of(home=tmp_path))
    assert again.created is None and again.tenant(fresh.created) == "default"
    assert len(fresh.created) >= 32
    for short in ("t:" + "k" * 31, "k" * 31, "alice:key-alice"):
        with pytest.raises(ConfigError, match="at least 32 characters") as refused:
            load_keys(Settings.of(home=tmp_path, api_keys=f"ok:{alice},{short}"))
        assert short.split(":")[-1] not in str(refused.value)  # the key is never shown
    with pytest.raises(ConfigError, match="LCI_ADMIN_KEYS"):
        load_keys(Settings.of(home=tmp_path, api_keys=alice, admin_keys="short"))


@pytest.mark.parametrize(
    ("plain", "value"),
    [
        ("42", 42),
        ("2.5", 2.5),
        ("'text'", "text"),
        ("[1, 2, {'a': None}]", [1, 2, {"a": None}]),
        ("nan", "nan"),
        ("array([1, 2])", "array([1, 2])"),
        ("{1, 2}", "{1, 2}"),  # a set is not JSON: its repr
        ("True", True),
        ("np.int64(1)", 1),
        ("np.float64(2.5)", 2.5),
        ("np.float64(nan)", "nan"),
        ("np.True_", True),
    ],
)
def test_result_typing(plain: str, value: object) -> None:
    assert json_value({"text/plain": plain}) == value


def test_pages_end_and_honour_after() -> None:
    items = [{"id": f"i{n}", "created_at": n} for n in range(5)]
    first = page(items, 2, "asc", None)
    assert [x["id"] for x in first["data"]] == ["i0", "i1"] and first["has_more"]
    last = page(items, 2, "asc", "i3")
    assert [x["id"] for x in last["data"]] == ["i4"] and last["has_more"] is False
    assert page(items, 10, "desc", None)["first_id"] == "i4"
    with pytest.raises(ApiError):
        page(items, 0, "asc", None)
