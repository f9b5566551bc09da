"""Where a session lives: its directories on the host, its record, its sandbox spec.

<runtime>/<sid>/ctl/       read-only in the sandbox: connection.json, activity
<runtime>/<sid>/sock/      read-write: the kernel's ipc sockets, the launcher's state.json
<runtime>/<sid>/exec.lock  host only: serialises executions across processes
<home>/sessions/<sid>/data   the sandbox's /mnt/data
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from contextlib import suppress
from pathlib import Path

import anyio.to_thread

from .backends.base import Mount, Sandbox, SandboxSpec
from .config import Settings
from .results import SessionState
from .store import SessionRecord
from .workspace import MOUNT, Workspace

__all__ = [
    "CONTAINER_CTL",
    "CONTAINER_SOCK",
    "LABEL",
    "PORTS",
    "make_dirs",
    "new_record",
    "sandbox_spec",
    "teardown",
]

CONTAINER_SOCK = "/run/lci/sock"
CONTAINER_CTL = "/run/lci/ctl"
PORTS = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}
LABEL = "lci.managed"
LAUNCHER = ["/opt/lci/venv/bin/python", "/opt/lci/kernels/lci_launcher.py"]


def new_record(
    thread_id: str,
    owner: str,
    settings: Settings,
    backend: str,
    idle_timeout: float | None = None,
    memory: int | None = None,
) -> SessionRecord:
    sid = "sess_" + secrets.token_hex(6)
    now = time.time()
    return SessionRecord(
        id=sid,
        thread_id=thread_id,
        owner=owner,
        state=SessionState.STARTING,
        backend=backend,
        connection={
            "transport": "ipc",
            "ip": f"{CONTAINER_SOCK}/kernel",
            **PORTS,
            "key": secrets.token_hex(32),
            "signature_scheme": "hmac-sha256",
            "kernel_name": "python3",
        },
        runtime_dir=str(settings.runtime_dir / sid),
        data_dir=str(settings.sessions_dir / sid / "data"),
        created_at=now,
        last_activity=now,
        idle_timeout=idle_timeout or settings.idle_timeout,
        memory=memory or settings.memory,
    )


def sandbox_spec(record: SessionRecord, settings: Settings, image: str) -> SandboxSpec:
    runtime = Path(record.runtime_dir)
    return SandboxSpec(
        name=f"lci-{record.id}",
        image=image,
        command=[*LAUNCHER, "--idle-timeout", f"{record.idle_timeout:g}"],
        mounts=[
            Mount(record.data_dir, MOUNT),
            Mount(str(runtime / "ctl"), CONTAINER_CTL, read_only=True),
            Mount(str(runtime / "sock"), CONTAINER_SOCK),
        ],
        labels={
            LABEL: "1",
            "lci.home": settings.home_id,
            "lci.session": record.id,
            "lci.thread": record.thread_id,
            "lci.owner": record.owner,
        },
        user=settings.sandbox_user,
        network=settings.network,
        memory=record.memory,
        cpus=settings.cpus,
        pids_limit=settings.pids_limit,
        tmp_size=settings.tmp_size,
    )


def make_dirs(record: SessionRecord, settings: Settings) -> None:
    runtime = Path(record.runtime_dir)
    uid, gid = settings.sandbox_uid_gid
    for sub, mode in (("ctl", 0o755), ("sock", 0o700)):
        (runtime / sub).mkdir(parents=True, exist_ok=True)
        (runtime / sub).chmod(mode)
    sock = runtime / "sock"
    if os.geteuid() == 0:
        os.chown(sock, uid, gid)
    else:  # the sandbox user must create its sockets here
        sock.chmod(0o777)
    (runtime / "ctl" / "activity").touch()
    conn = runtime / "ctl" / "connection.json"
    conn.write_text(json.dumps(record.connection))
    conn.chmod(0o644)  # the sandbox user reads it; the key is that kernel's own
    Workspace(Path(record.data_dir), (uid, gid)).create()


def remove_dirs(record: SessionRecord) -> None:
    shutil.rmtree(record.runtime_dir, ignore_errors=True)
    shutil.rmtree(Path(record.data_dir).parent, ignore_errors=True)


async def teardown(sandbox: Sandbox | None, record: SessionRecord) -> None:
    """Remove the sandbox and the session's directories (stored files stay)."""
    if sandbox is not None:
        with suppress(Exception):
            await sandbox.terminate()
        with suppress(Exception):
            await sandbox.cleanup()
    await anyio.to_thread.run_sync(remove_dirs, record)
