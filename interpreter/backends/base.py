"""The backend contract: where sandboxes run.

A ``Sandbox`` is shaped like ``subprocess.Popen`` (as jupyter_client's kernel
provisioners are): ``poll``, ``wait``, ``send_signal``, ``terminate``, ``kill``,
``cleanup``. A ``Backend`` launches sandboxes, re-attaches to one by id (another
process started it), and lists the sandboxes carrying given labels (the sweep).

Backends are found through the ``lci.backends`` entry-point group, built-ins
included; ``load_backend`` is the one lookup function.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import Settings

__all__ = [
    "Backend",
    "ExitInfo",
    "Mount",
    "Sandbox",
    "SandboxInfo",
    "SandboxSpec",
    "Usage",
    "load_backend",
]


@dataclass(frozen=True)
class Mount:
    source: str  # host path
    target: str  # path in the sandbox
    read_only: bool = False


@dataclass(frozen=True, kw_only=True)
class SandboxSpec:
    """Everything needed to start one sandbox; the security limits are not optional."""

    name: str
    image: str
    command: list[str]
    mounts: list[Mount]
    labels: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)
    user: str
    capabilities: list[str] = field(default_factory=list)  # all others are dropped
    seccomp: str | None = None  # a seccomp profile (JSON text); None: the engine's default
    runtime: str = "runc"  # the OCI runtime (runc, runsc)
    network: str  # "none": no network at all
    memory: int  # bytes, swap included
    cpus: float
    pids_limit: int
    shm_size: int  # bytes of /dev/shm; the root filesystem is read-only


@dataclass(frozen=True)
class SandboxInfo:
    id: str
    labels: dict[str, str]
    running: bool


@dataclass(frozen=True)
class Usage:
    memory: int  # bytes in use now
    cpu_seconds: float  # CPU time used since the sandbox started


@dataclass(frozen=True)
class ExitInfo:
    exit_code: int | None  # None while running
    oom_killed: bool = False
    gone: bool = False  # the sandbox no longer exists at all


class Sandbox(abc.ABC):
    """One running sandbox. Every method is safe to call on a sandbox that has exited."""

    id: str

    @abc.abstractmethod
    async def poll(self) -> int | None:
        """Called by the session while waiting on the kernel: None while running, else
        the exit code (-1 when the sandbox is gone)."""

    @abc.abstractmethod
    async def wait(self, timeout: float | None = None) -> int:
        """Called at shutdown: block until the sandbox exits; return its exit code."""

    @abc.abstractmethod
    async def exit_info(self) -> ExitInfo:
        """Called after a death: why the sandbox exited (exit code, OOM)."""

    @abc.abstractmethod
    async def send_signal(self, signum: int) -> None:
        """Called by the session to signal the sandbox's first process (the launcher)."""

    @abc.abstractmethod
    async def terminate(self) -> None:
        """Called when a session is stopped: ask the sandbox to exit (SIGTERM, short grace)."""

    @abc.abstractmethod
    async def kill(self) -> None:
        """Called when terminate() did not work: stop the sandbox now."""

    @abc.abstractmethod
    async def logs(self, tail: int = 20) -> str:
        """Called when a sandbox failed to start: its last output lines, for the error."""

    @abc.abstractmethod
    async def cleanup(self) -> None:
        """Called last: free everything the sandbox held (container, its layer)."""

    async def usage(self) -> Usage | None:
        """Called by the inspector (lci sessions, /ui): memory and CPU used, or None if
        the sandbox is not running or the backend cannot tell."""
        return None

    async def oom_kills(self) -> int | None:
        """Called by the session before and after a kernel's death: how many processes
        the engine's memory limit has killed in this sandbox so far, or None when it
        cannot tell. Read on the host, never from the sandbox."""
        return None


class Backend(abc.ABC):
    name: str

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise EngineUnavailable when the engine does not answer."""

    @abc.abstractmethod
    async def launch(self, spec: SandboxSpec) -> Sandbox:
        """Called by Session.start: create and start a sandbox."""

    @abc.abstractmethod
    async def attach(self, sandbox_id: str) -> Sandbox:
        """Called when a persisted session is re-attached by another process."""

    @abc.abstractmethod
    async def list_sandboxes(self, labels: dict[str, str]) -> list[SandboxInfo]:
        """Called by the sweep: every sandbox (running or not) carrying these labels."""

    @abc.abstractmethod
    async def image_present(self, image: str) -> bool:
        """Called before a launch to give a clear error when the image is missing."""

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release the connection to the engine."""


def load_backend(settings: Settings) -> Backend:
    """Instantiate the backend named by ``settings.sandbox.backend`` from the entry points."""
    found = {ep.name: ep for ep in entry_points(group="lci.backends")}
    if settings.sandbox.backend in found:
        cls = found[settings.sandbox.backend].load()
    elif settings.sandbox.backend == "docker":  # running from a source tree without an install
        from .docker import DockerBackend as cls
    else:
        raise ConfigError(
            "LCI_BACKEND", settings.sandbox.backend, f"one of {sorted(found) or ['docker']}"
        )
    return cls(settings)
