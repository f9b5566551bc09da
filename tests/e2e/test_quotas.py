"""Per-tenant quotas and the host's capacity, against a real ``lci serve``: over a quota
a request is refused with a 429 that names the quota and the use, in every dialect;
a full host makes a start wait in a fair queue, then 503; other tenants never notice."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from interpreter import Settings

from ..conftest import _HOMES
from .conftest import LiveServer, start_server, stop_server

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]
QUOTAS = "alice: sessions=2 memory=3g memory_limit=2g stored=2m executions=12"


@pytest.fixture(scope="module")
def server(sandbox_image: str, docker_client: object) -> Iterator[LiveServer]:
    home = Path(tempfile.mkdtemp(prefix="lci-q-", dir="/tmp"))
    _HOMES.append(Settings.of(home=home, image=sandbox_image))
    live = start_server(home, sandbox_image, env={"LCI_TENANT_QUOTAS": QUOTAS})
    yield live
    stop_server(live)
    shutil.rmtree(home, ignore_errors=True)


def clients(server: LiveServer) -> tuple[httpx.Client, httpx.Client]:
    def make(key: str) -> httpx.Client:
        return httpx.Client(base_url=server.url, headers=server.headers(key), timeout=120)

    return make(server.key), make(server.other_key)


def refused(r: httpx.Response, quota: str) -> dict[str, Any]:
    assert r.status_code == 429, r.text
    err = r.json()["error"]
    assert err["code"] == "quota_exceeded" and err["param"] == quota
    assert f"Quota {quota!r}" in err["message"] and "in use" in err["message"]
    assert int(r.headers["Retry-After"]) >= 1
    return dict(err)


def test_sessions_and_memory_quotas_are_hit_and_released(server: LiveServer) -> None:
    alice, bob = clients(server)
    first = alice.post("/v1/containers", json={"name": "a", "memory_limit": "4g"}).json()
    assert first["memory_limit"] == "2g"  # clamped to alice's largest sandbox
    err = refused(alice.post("/v1/containers", json={"name": "b", "memory_limit": "2g"}), "memory")
    assert "limit is 3221225472 bytes, 2147483648 in use" in err["message"]
    second = alice.post("/v1/containers", json={"name": "b", "memory_limit": "1g"})
    assert second.status_code == 200
    err = refused(
        alice.post("/v1/containers", json={"name": "c", "memory_limit": "128m"}), "sessions"
    )
    assert "the limit is 2, 2 in use" in err["message"]
    # the same quota through the Azure face: its dialect, its header
    r = alice.post(
        "/code/execute?identifier=az-1&api-version=2024-02-02-preview",
        json={"properties": {"code": "1"}},
    )
    assert r.status_code == 429 and r.json()["error"]["code"] == "QuotaExceeded"
    assert r.headers["x-ms-error-code"] == "QuotaExceeded" and "sessions" in r.text
    # bob is not alice: his own (default) quota
    for n in range(3):
        assert bob.post("/v1/containers", json={"name": f"bob{n}"}).status_code == 200
    # released: one of alice's goes, another may start
    assert alice.delete(f"/v1/containers/{first['id']}").status_code == 200
    assert alice.post("/v1/containers", json={"name": "c", "memory_limit": "1g"}).status_code == 200
    for bad in ("99999999999g", "1 terabyte", "-1g"):
        r = alice.post("/v1/containers", json={"name": "x", "memory_limit": bad})
        assert r.status_code == 400, (bad, r.text)  # validated before anything is stored
    for c in alice.get("/v1/containers").json()["data"] + bob.get("/v1/containers").json()["data"]:
        (alice if c["name"] in "abc" else bob).delete(f"/v1/containers/{c['id']}")


def test_stored_bytes_and_executions_per_minute(server: LiveServer) -> None:
    alice, bob = clients(server)
    big = b"x" * 1_500_000
    up = alice.post("/v1/files", data={"purpose": "assistants"}, files={"file": ("a.bin", big)})
    assert up.status_code == 200
    refused(
        alice.post("/v1/files", data={"purpose": "assistants"}, files={"file": ("b.bin", big)}),
        "stored",
    )
    assert len(alice.get("/v1/files").json()["data"]) == 1  # nothing half-kept
    cid = alice.post("/v1/containers", json={"name": "runs"}).json()["id"]
    # what the code writes counts too: over the quota it is not kept, and the result says so
    r = alice.post(
        f"/v1/containers/{cid}/executions",
        json={"code": "open('w.bin', 'wb').write(b'y' * 1_000_000)"},
    ).json()
    assert r["files"] == [] and "storage quota" in r["skipped_files"][0]["reason"]
    assert alice.delete(f"/v1/files/{up.json()['id']}").status_code == 200
    answers = [
        alice.post(f"/v1/containers/{cid}/executions", json={"code": "1"}) for _ in range(12)
    ]
    assert 429 in {a.status_code for a in answers}  # 12 a minute, with the two above
    refused(answers[-1], "executions")
    streamed = alice.post(f"/v1/containers/{cid}/executions", json={"code": "1", "stream": True})
    refused(streamed, "executions")  # refused before the stream starts
    bcid = bob.post("/v1/containers", json={"name": "b"}).json()["id"]
    assert bob.post(f"/v1/containers/{bcid}/executions", json={"code": "1"}).status_code == 200
    alice.delete(f"/v1/containers/{cid}")
    bob.delete(f"/v1/containers/{bcid}")


@pytest.fixture
def small_host(sandbox_image: str, docker_client: object) -> Iterator[LiveServer]:
    home = Path(tempfile.mkdtemp(prefix="lci-c-", dir="/tmp"))
    _HOMES.append(Settings.of(home=home, image=sandbox_image))
    env = {"LCI_MAX_SESSIONS": "2", "LCI_QUEUE_TIMEOUT": "15"}
    live = start_server(home, sandbox_image, env=env)
    yield live
    stop_server(live)
    shutil.rmtree(home, ignore_errors=True)


def test_a_full_host_queues_starts_fairly_then_says_so(small_host: LiveServer) -> None:
    alice, bob = clients(small_host)
    held = [alice.post("/v1/containers", json={"name": f"h{n}"}).json()["id"] for n in range(2)]
    done: list[tuple[str, float, int]] = []

    def start(name: str) -> None:
        r = bob.post("/v1/containers", json={"name": name})
        done.append((name, time.monotonic(), r.status_code))

    first = threading.Thread(target=start, args=("first",))
    first.start()
    time.sleep(1)
    second = threading.Thread(target=start, args=("second",))
    second.start()
    time.sleep(2)
    assert done == []  # both wait: the host has no room, no quota was hit
    alice.delete(f"/v1/containers/{held[0]}")
    first.join(30)
    time.sleep(1)
    assert [d[0] for d in done] == ["first"] and done[0][2] == 200  # first come, first served
    alice.delete(f"/v1/containers/{held[1]}")
    second.join(30)
    assert [d[0] for d in done] == ["first", "second"] and done[1][2] == 200
    t0 = time.monotonic()
    r = alice.post("/v1/containers", json={"name": "late"})  # full again: waits, then 503
    assert r.status_code == 503 and 14 <= time.monotonic() - t0 < 40
    assert "LCI_MAX_SESSIONS" in r.json()["error"]["message"] and r.headers["Retry-After"]
