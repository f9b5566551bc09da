"""The official openai SDK against a real ``lci serve`` (PROTOCOLS.md sections 2 and 5)."""

from __future__ import annotations

import json

import httpx
import pytest
from openai import NotFoundError, OpenAI

from .conftest import LiveServer

pytestmark = pytest.mark.docker


@pytest.fixture
def client(live_server: LiveServer) -> OpenAI:
    return OpenAI(api_key=live_server.key, base_url=f"{live_server.url}/v1", max_retries=0)


def test_protocols_snippet(client: OpenAI) -> None:
    c = client
    f = c.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="assistants")
    assert f.object == "file" and f.purpose == "assistants" and f.bytes == 8
    assert c.files.retrieve(f.id).filename == "data.csv"
    assert c.files.content(f.id).read() == b"a,b\n1,2\n"
    cn = c.containers.create(
        name="t",
        file_ids=[f.id],
        expires_after={"anchor": "last_active_at", "minutes": 20},
        memory_limit="1g",
    )
    assert cn.object == "container" and cn.status == "running" and cn.expires_after
    assert cn.expires_after.minutes == 20 and cn.memory_limit == "1g"
    paths = [x.path for x in c.containers.files.list(cn.id)]  # terminates: has_more is false
    assert "/mnt/data/data.csv" in paths
    cf = c.containers.files.create(cn.id, file=("b.txt", b"xyz"))
    assert cf.object == "container.file" and cf.source == "user" and cf.bytes == 3
    assert cf.path == "/mnt/data/b.txt"
    assert c.containers.files.content.retrieve(cf.id, container_id=cn.id).read() == b"xyz"
    ex = c.post(
        f"/containers/{cn.id}/executions",
        body={"code": "print(open('/mnt/data/b.txt').read())"},
        cast_to=object,
    )
    assert isinstance(ex, dict)
    assert ex["status"] == "ok" and ex["stdout"] == "xyz\n" and ex["container_id"] == cn.id
    c.containers.files.delete(cf.id, container_id=cn.id)
    assert "/mnt/data/b.txt" not in [x.path for x in c.containers.files.list(cn.id)]
    c.containers.delete(cn.id)
    assert all(x.id != cn.id for x in c.containers.list())  # auto-pagination terminates
    with pytest.raises(NotFoundError):
        c.containers.retrieve(cn.id)


def test_execution_outputs_files_and_errors(client: OpenAI) -> None:
    cn = client.containers.create(name="outputs")
    run = lambda code: client.post(  # noqa: E731
        f"/containers/{cn.id}/executions", body={"code": code}, cast_to=object
    )
    first = run(
        "import matplotlib.pyplot as plt\nx = 41\nplt.plot([1, 3, 2]); plt.show()\n"
        "open('report.txt', 'w').write('made by code')"
    )
    assert first["status"] == "ok"
    image = [o for o in first["outputs"] if o["type"] == "image"]
    assert len(image) == 1
    png = client.files.content(image[0]["image"]["file_id"]).read()
    assert png.startswith(b"\x89PNG")
    [made] = first["files"]
    assert made["path"] == "/mnt/data/report.txt"
    listed = {x.path: x for x in client.containers.files.list(cn.id)}
    assert listed["/mnt/data/report.txt"].source == "assistant"
    assert listed["/mnt/data/report.txt"].id == made["file_id"]
    body = client.containers.files.content.retrieve(made["file_id"], container_id=cn.id)
    assert body.read() == b"made by code"

    failed = run("x + undefined_name")
    assert failed["status"] == "error"
    assert failed["error"]["ename"] == "NameError" and "undefined_name" in failed["error"]["evalue"]
    retried = run("x + 1")  # the model's retry sees the earlier state
    assert retried["status"] == "ok" and retried["results"][0]["data"]["text/plain"] == "42"
    client.containers.delete(cn.id)


def test_container_file_by_file_id_and_pagination(client: OpenAI) -> None:
    cn = client.containers.create(name="paging")
    ids = [
        client.files.create(file=(f"f{i}.txt", b"x" * i), purpose="assistants").id
        for i in (1, 2, 3)
    ]
    for fid in ids:
        added = client.containers.files.create(cn.id, file_id=fid)
        assert added.source == "user" and added.id == fid
    first = client.containers.files.list(cn.id, limit=2)
    assert len(first.data) == 2 and first.has_more
    everything = [f.id for f in client.containers.files.list(cn.id, limit=1)]  # auto-paginates
    assert sorted(everything) == sorted(ids)
    client.containers.delete(cn.id)


def test_streaming_execution(live_server: LiveServer, client: OpenAI) -> None:
    cn = client.containers.create(name="stream")
    code = "import time\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('second')\n6 * 7"
    events: list[tuple[str, dict[str, object], float]] = []
    import time

    start = time.monotonic()
    with httpx.stream(
        "POST",
        f"{live_server.url}/v1/containers/{cn.id}/executions",
        json={"code": code, "stream": True},
        headers=live_server.headers(),
        timeout=60,
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event:
                events.append((event, json.loads(line[6:]), time.monotonic() - start))
    kinds = [e[0] for e in events]
    assert kinds[0] == "stdout" and events[0][1]["text"] == "first\n"
    assert kinds[-1] == "execution"
    final = events[-1][1]
    assert final["status"] == "ok" and final["stdout"] == "first\nsecond\n"
    # the first chunk came while the code was still sleeping, not with the result
    assert events[-1][2] - events[0][2] > 1.0
    client.containers.delete(cn.id)
