"""Shared fixtures. Docker tests never skip: without an engine or image they fail
loudly (CI installs and builds both through `bash run.sh test`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from interpreter import Settings

TEST_LABEL = "lci.managed"
# the OCI runtimes the isolation and lifecycle tests run under; CI registers runsc
# (`bash run.sh test`), and a runtime the engine lacks fails those tests, never skips them
RUNTIMES = ["runc", "runsc"]
_HOMES: list[Settings] = []


def unmount_under(path: Path) -> None:
    """Session disks a test left mounted under a home it is about to remove."""
    prefix = f"{path.resolve()}/"
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    client.ping()  # no engine: every docker test errors, none skips
    yield client
    # sweep: every container any test home started, whatever the test did
    ids = {s.home_id for s in _HOMES}
    for c in client.containers.list(all=True, filters={"label": TEST_LABEL}, sparse=True):
        if (c.attrs.get("Labels") or {}).get("lci.home") in ids:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                c.remove(force=True)  # may be on its way out already
    for s in _HOMES:
        unmount_under(s.home)
    client.close()


@pytest.fixture(scope="session")
def sandbox_image(docker_client: docker.DockerClient) -> str:
    """The image under test: LCI_IMAGE when set, else the one built from this tree."""
    if os.environ.get("LCI_IMAGE"):
        tag = os.environ["LCI_IMAGE"]
    else:
        from interpreter.image import build_image

        tag = build_image(progress=lambda line: None)
    docker_client.images.get(tag)
    return tag


@pytest.fixture
def home() -> Iterator[Path]:
    # short paths keep the kernel's unix sockets well under the 108-byte limit
    path = Path(tempfile.mkdtemp(prefix="lci-t-", dir="/tmp"))
    yield path
    unmount_under(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def settings(home: Path, sandbox_image: str) -> Settings:
    s = Settings.of(home=home, image=sandbox_image, exec_timeout=60, start_timeout=60)
    _HOMES.append(s)
    return s


def make_settings(settings: Settings, **changes: object) -> Settings:
    s = settings.replace(**changes)
    _HOMES.append(s)
    return s


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def manager(settings: Settings):  # type: ignore[no-untyped-def]
    from interpreter import SessionManager

    async with SessionManager(settings) as m:
        yield m
        await m.stop_all()
