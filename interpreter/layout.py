"""Where a session lives: its directories on the host, its record, its sandbox spec.

::

    <home>/sessions/<sid>/         0700, the host's
        ctl/                       0700 root; read-only in the sandbox, read by the
                                   launcher before it drops root: connection.json, activity
        exec.lock                  host only: serialises executions across processes (and
                                   counts its holders: locking.take_turn)
        placements                 host only: a byte per upload or removal (catalog.py)
        disk.img, disk/            the session's disk (disk.py), nosuid,nodev,noexec:
            data/   /mnt/data      the kernel's uid
            tmp/    /tmp           the kernel's uid
            sock/   /run/lci/sock  the kernel's uid: its ipc sockets
            state/  /run/lci/state the launcher's uid: state.json

Each session runs as two uids of its own (``SessionRecord.uid`` for the launcher, the
next one for the kernel), allocated from ``LCI_UID_RANGE`` by the store.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from contextlib import suppress
from pathlib import Path

import anyio
import anyio.to_thread

from .backends.base import Backend, Mount, Sandbox, SandboxSpec
from .config import Settings
from .disk import Disk
from .errors import SessionStartFailed
from .results import SessionState
from .store import SessionRecord

__all__ = [
    "CAPABILITIES",
    "CONTAINER_SOCK",
    "LABEL",
    "PORTS",
    "kernel_uid",
    "make_dirs",
    "new_record",
    "private_dir",
    "sandbox_spec",
    "session_disk",
    "start_sandbox",
    "teardown",
]

CONTAINER_SOCK = "/run/lci/sock"
CONTAINER_STATE = "/run/lci/state"
CONTAINER_CTL = "/run/lci/ctl"
PORTS = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}
LABEL = "lci.managed"
LAUNCHER = ["/opt/lci/venv/bin/python", "/opt/lci/kernels/lci_launcher.py"]
# what the launcher needs to become two uids and to signal the kernel's; the kernel
# keeps none of them
CAPABILITIES = ["SETUID", "SETGID", "KILL", "SETPCAP"]
SHM_SIZE = 64 * 1024**2
# gVisor's pids cgroup counts its own host threads too (an idle kernel: ~90 under runsc,
# ~12 under runc): its limit is scaled so the same code gets the same room
PIDS_SCALE = {"runsc": 4}


def new_record(
    thread_id: str,
    tenant: str,
    settings: Settings,
    backend: str,
    idle_timeout: float | None = None,
    memory: int | None = None,
    runtime: str | None = None,
) -> SessionRecord:
    sid = "sess_" + secrets.token_hex(6)
    now = time.time()
    root = settings.sessions_dir / sid
    return SessionRecord(
        id=sid,
        thread_id=thread_id,
        tenant=tenant,
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
        runtime_dir=str(root),
        data_dir=str(root / "disk" / "data"),
        created_at=now,
        last_activity=now,
        idle_timeout=idle_timeout or settings.timeouts.idle_timeout,
        memory=memory or settings.sandbox.memory,
        runtime=runtime or settings.sandbox.runtime,
    )


def kernel_uid(record: SessionRecord) -> int:
    return record.uid + 1


def session_disk(record: SessionRecord, settings: Settings) -> Disk:
    return Disk(Path(record.runtime_dir), settings.sandbox.disk_limit, settings.sandbox.inodes)


def sandbox_spec(
    record: SessionRecord, settings: Settings, image: str, seccomp: str | None
) -> SandboxSpec:
    root = Path(record.runtime_dir)
    disk = root / "disk"
    return SandboxSpec(
        name=f"lci-{record.id}",
        image=image,
        command=[
            *LAUNCHER,
            "--idle-timeout",
            f"{record.idle_timeout:g}",
            "--launcher-uid",
            str(record.uid),
            "--kernel-uid",
            str(kernel_uid(record)),
        ],
        mounts=[
            Mount(str(disk / "data"), "/mnt/data"),
            Mount(str(disk / "tmp"), "/tmp"),
            Mount(str(disk / "sock"), CONTAINER_SOCK),
            Mount(str(disk / "state"), CONTAINER_STATE),
            Mount(str(root / "ctl"), CONTAINER_CTL, read_only=True),
            # no pseudo-terminals: kernel.pty.max is one count for the whole host
            Mount(str(root / "ctl" / "ptmx"), "/dev/pts/ptmx", read_only=True),
        ],
        # a pooled sandbox's labels say the pool (the engine cannot relabel a container):
        # once claimed, its record names the thread and the tenant; the sweep goes by
        # lci.session, which never changes
        labels={
            LABEL: "1",
            "lci.home": settings.home_id,
            "lci.session": record.id,
            "lci.thread": record.thread_id,
            "lci.tenant": record.tenant,
            **({"lci.pool": record.pool} if record.pool else {}),
        },
        env={"LCI_PRELOAD": settings.sandbox.preload} if record.pool else {},
        user="0:0",  # the launcher drops to the session's uids at once (see kernels/)
        capabilities=CAPABILITIES,
        seccomp=seccomp,
        runtime=record.runtime,
        network=settings.sandbox.network,
        memory=record.memory,
        cpus=settings.sandbox.cpus,
        pids_limit=settings.sandbox.pids_limit * PIDS_SCALE.get(record.runtime, 1),
        shm_size=SHM_SIZE,
    )


def make_dirs(record: SessionRecord, settings: Settings) -> None:
    """The session's directories and disk (blocking; needs root for the uids and mount)."""
    if os.geteuid() != 0:
        raise SessionStartFailed(
            record.id,
            "lci runs every sandbox under uids and on a disk of its own, which needs root on"
            " the host: run lci as root",
        )
    root = Path(record.runtime_dir)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    ctl = root / "ctl"
    ctl.mkdir(mode=0o700, exist_ok=True)
    _write_private(ctl / "connection.json", json.dumps(record.connection).encode())
    _write_private(ctl / "activity", b"")
    _write_private(ctl / "ptmx", b"")  # mounted over /dev/pts/ptmx: opening it is refused
    try:
        session_disk(record, settings).create(record.uid, kernel_uid(record))
    except OSError as exc:
        raise SessionStartFailed(record.id, f"its disk could not be made: {exc}") from exc


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def remove_dirs(record: SessionRecord, settings: Settings) -> None:
    session_disk(record, settings).destroy()


async def start_sandbox(
    record: SessionRecord, settings: Settings, backend: Backend, image: str, seccomp: str | None
) -> Sandbox:
    """Make the session's directories and disk and start its sandbox; on failure the
    directories and disk are removed again."""
    try:
        await anyio.to_thread.run_sync(make_dirs, record, settings)
        return await backend.launch(sandbox_spec(record, settings, image, seccomp))
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(remove_dirs, record, settings)
        raise


def private_dir(path: Path) -> None:
    """A directory only the service's user can enter (created, or tightened)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


async def teardown(sandbox: Sandbox | None, record: SessionRecord, settings: Settings) -> None:
    """Remove the sandbox, then the session's disk and directories (stored files stay)."""
    if sandbox is not None:
        with suppress(Exception):
            await sandbox.terminate()
        with suppress(Exception):
            await sandbox.cleanup()
    await anyio.to_thread.run_sync(remove_dirs, record, settings)
