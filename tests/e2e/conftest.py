"""A real ``lci serve`` process on loopback, shared by the end-to-end tests.

Two tenants: ``alice`` (key ``ALICE``) and ``bob`` (key ``BOB``), and an admin key
(``ADMIN``) that reads every tenant's /metrics; keys of fewer than 32 characters are
refused at start-up."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from interpreter import Settings

from ..conftest import _HOMES
from ..scripted_model import ScriptedModel, scripted_model

ALICE = "key-alice-6f1d0c9a2b7e4d3f8a5c1e0b"
BOB = "key-bob-3e8b5a1c7d2f9e4a6b0c8d1f2a"
ADMIN = "key-admin-9c4e2a7f1b3d5e8c0a6f4b2d"
KEYS = f"alice:{ALICE},bob:{BOB}"


@dataclass
class LiveServer:
    url: str  # http://127.0.0.1:PORT (no trailing slash)
    key: str  # alice's key
    other_key: str  # bob's key
    home: Path
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pool(self) -> str:
        """An Azure-style pool management endpoint on this server."""
        return f"{self.url}/subscriptions/s/resourceGroups/rg/sessionPools/pool"

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    home: Path, image: str, env: dict[str, str] | None = None, healthy: bool = True
) -> LiveServer:
    """Start ``lci serve``; wait until /healthz says ok (or, unless ``healthy``, answers)."""
    port = free_port()
    log = home / "serve.log"
    full_env = {
        **os.environ,
        "LCI_HOME": str(home),
        "LCI_IMAGE": image,
        "LCI_API_KEYS": KEYS,
        "LCI_ADMIN_KEYS": ADMIN,
        # the warm pool is proven in tests/integration/test_pool.py; here its two idle
        # sandboxes per server would only load the 2-core machine (a test may turn it on)
        "LCI_POOL_SIZE": os.environ.get("LCI_POOL_SIZE", "0"),
        **(env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "interpreter", "serve", "--port", str(port)],
        env=full_env,
        stdout=open(log, "wb"),  # noqa: SIM115 - the process owns it
        stderr=subprocess.STDOUT,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", ALICE, BOB, home, proc, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"lci serve exited: {log.read_text()}")
        try:
            status = httpx.get(f"{server.url}/healthz", timeout=2).status_code
            if status == 200 or not healthy:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"lci serve did not come up: {log.read_text()}")


def stop_server(server: LiveServer) -> int:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return server.process.returncode


@pytest.fixture(scope="session")
def live_server(sandbox_image: str, docker_client: object) -> Iterator[LiveServer]:
    home = Path(tempfile.mkdtemp(prefix="lci-e-", dir="/tmp"))
    _HOMES.append(Settings.of(home=home, image=sandbox_image))
    # shared by every module, which leave sessions behind: quotas are tested on servers
    # of their own (test_quotas.py), not here
    roomy = {"LCI_QUOTAS": "sessions=10000,memory=1000t,executions=100000"}
    server = start_server(home, sandbox_image, env=roomy)
    yield server
    stop_server(server)
    shutil.rmtree(home, ignore_errors=True)


MODEL_KEY = "sk-model-key"  # the key lci sends the scripted model


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModel]:
    """A scripted chat-completions model (``tests/scripted_model.py``) for a module."""
    with scripted_model(MODEL_KEY) as m:
        yield m


@contextmanager
def model_server(image: str, model: ScriptedModel, prefix: str, **env: str) -> Iterator[LiveServer]:
    """A server of its own (home under /tmp named ``prefix``...) whose model is ``model``."""
    home = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    _HOMES.append(Settings.of(home=home, image=image))
    server = start_server(
        home, image, {"LCI_MODEL_BASE_URL": model.url, "LCI_MODEL_API_KEY": MODEL_KEY, **env}
    )
    try:
        yield server
    finally:
        stop_server(server)
        shutil.rmtree(home, ignore_errors=True)
