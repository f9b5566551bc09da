"""A full disk is a state the service handles, on a small loop-mounted LCI_HOME: new work
is refused with a 507 before SQLite runs short, /healthz says so, deleting and stopping
keep working, nothing stored is lost, and freeing space brings the service back."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from interpreter import Settings

from ..conftest import _HOMES
from .conftest import LiveServer, start_server, stop_server

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]
MiB = 1024**2
ACA = "api-version=2024-02-02-preview"


@pytest.fixture
def small_home(sandbox_image: str, docker_client: object) -> Iterator[LiveServer]:
    image = Path(tempfile.mkdtemp(prefix="lci-img-", dir="/tmp")) / "home.img"
    home = Path(tempfile.mkdtemp(prefix="lci-full-", dir="/tmp"))
    subprocess.run(["truncate", "-s", "500M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(home)], check=True)
    _HOMES.append(Settings.of(home=home, image=sandbox_image))
    env = {"LCI_DISK_LIMIT": "64m", "LCI_MIN_FREE": "100m", "LCI_MAX_UPLOAD_BYTES": "64m"}
    live = start_server(home, sandbox_image, env=env)
    try:
        yield live
    finally:
        stop_server(live)
        subprocess.run(["umount", "-l", str(home)], check=False)
        image.unlink(missing_ok=True)


def free(home: Path) -> int:
    st = os.statvfs(home)
    return st.f_bavail * st.f_frsize


def test_a_full_disk_refuses_new_work_and_keeps_the_old(small_home: LiveServer) -> None:
    server = small_home
    alice = httpx.Client(base_url=server.url, headers=server.headers(), timeout=120)
    bob = httpx.Client(base_url=server.url, headers=server.headers(server.other_key), timeout=120)
    cid = alice.post("/v1/containers", json={"name": "full"}).json()["id"]
    kept = alice.post(
        "/v1/files", data={"purpose": "assistants"}, files={"file": ("keep.txt", b"precious")}
    ).json()["id"]
    # the sandbox fills its own disk: ENOSPC inside, nothing outside
    r = alice.post(
        f"/v1/containers/{cid}/executions",
        json={
            "code": "try:\n    open('fill', 'wb').write(b'x' * (200 << 20))\n"
            "except OSError as e:\n    print(e.errno)\nimport os; os.remove('fill')"
        },
    ).json()
    assert r["stdout"] == "28\n"
    # then the tenant uploads until the host's floor
    answers = []
    for n in range(30):
        chunk = os.urandom(20 * MiB)  # distinct: blobs are stored once per content
        up = alice.post(
            "/v1/files", data={"purpose": "assistants"}, files={"file": (f"f{n}", chunk)}
        )
        answers.append(up)
        if up.status_code != 200:
            break
    full = answers[-1]
    assert full.status_code == 507, full.text
    assert "LCI_MIN_FREE" in full.json()["error"]["message"]
    assert free(server.home) >= 95 * MiB  # refused before the disk ran out
    health = httpx.get(f"{server.url}/healthz")
    assert health.status_code == 503 and health.json()["disk"].startswith("low:")
    # new work is refused for every tenant, in each dialect, with a clear 507
    assert bob.post("/v1/containers", json={"name": "b"}).status_code == 507
    az = bob.post(f"/code/execute?identifier=b1&{ACA}", json={"properties": {"code": "1"}})
    assert az.status_code == 507 and az.json()["error"]["code"] == "InsufficientStorage"
    # a running session goes on (what it would write past the floor is not kept)
    ran = alice.post(f"/v1/containers/{cid}/executions", json={"code": "print(6 * 7)"})
    assert ran.status_code == 200 and ran.json()["stdout"] == "42\n"
    # what is stored is intact, and deleting and stopping work on the full disk
    assert alice.get(f"/v1/files/{kept}/content").content == b"precious"
    for up in answers[:-1]:
        assert alice.delete(f"/v1/files/{up.json()['id']}").status_code == 200
    sid = alice.get("/v1/lci/sessions").json()["data"][0]["id"]
    assert alice.post(f"/v1/lci/sessions/{sid}/stop").status_code == 200
    assert alice.delete(f"/v1/containers/{cid}").status_code == 200
    # and the service is back
    assert httpx.get(f"{server.url}/healthz").json()["disk"] == "ok"
    again = bob.post("/v1/containers", json={"name": "b"})
    assert again.status_code == 200, again.text
    assert (
        bob.post(f"/v1/containers/{again.json()['id']}/executions", json={"code": "1"}).json()[
            "status"
        ]
        == "ok"
    )
