"""A kernel that floods a real ``lci serve`` with output, through each face: the service's
peak memory (its own VmHWM) stays bounded and every result says what was dropped."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from interpreter import Settings

from ..conftest import _HOMES
from ..integration.test_hostile_output import ATTACKS, PEAK_LIMIT_KB
from .conftest import LiveServer, start_server, stop_server

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def server(sandbox_image: str, docker_client: object) -> Iterator[LiveServer]:
    home = Path(tempfile.mkdtemp(prefix="lci-h-", dir="/tmp"))
    _HOMES.append(Settings.of(home=home, image=sandbox_image))
    live = start_server(home, sandbox_image, env={"LCI_MEMORY": "3g"})
    yield live
    stop_server(live)
    shutil.rmtree(home, ignore_errors=True)


def peak_kb(server: LiveServer) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1])


def test_the_service_stays_bounded_under_every_flood(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, headers=server.headers(), timeout=300) as http:
        cid = http.post("/v1/containers", json={"name": "flood"}).json()["id"]
        for attack, (code, dropped) in ATTACKS.items():
            r = http.post(f"/v1/containers/{cid}/executions", json={"code": code})
            assert r.status_code == 200, (attack, r.text[:500])
            exe = r.json()
            assert exe["status"] == "ok", (attack, exe["error"])
            assert dropped in {d["what"] for d in exe["dropped"]}, (attack, exe["dropped"])
            # the Azure face reads the same execution back: one flood through it too
        r = http.post(
            f"/code/execute?identifier={cid}&api-version=2024-02-02-preview",
            json={"properties": {"code": ATTACKS["a 300 MB repr"][0]}},
        )
        assert r.status_code == 200 and r.json()["properties"]["status"] == "Success"
        history = http.get("/v1/lci/sessions?all=true").json()["data"]
        sid = next(s["id"] for s in history if s["thread_id"] == cid)
        entries = http.get(f"/v1/lci/sessions/{sid}/executions").json()["data"]
        assert {e["status"] for e in entries} == {"ok"}  # none left running, all readable
    peak = peak_kb(server)
    print(f"lci serve peaked at {peak} kB")
    assert peak < PEAK_LIMIT_KB, f"lci serve peaked at {peak} kB"
