"""The Docker backend: one hardened container per sandbox, through docker-py.

docker-py is synchronous; every call runs in a worker thread. ``docker.errors`` never
leave this module: they become ``EngineUnavailable``, ``ImageNotFound`` or
``BackendError`` here, once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
import docker
import docker.errors
import requests
from docker.types import LogConfig, Ulimit
from docker.types import Mount as DockerMount

from ..errors import BackendError, EngineUnavailable, ImageNotFound
from .base import Backend, ExitInfo, Sandbox, SandboxInfo, SandboxSpec, Usage
from .cgroups import read_oom_kills, read_usage

if TYPE_CHECKING:
    from docker.models.containers import Container

    from ..config import Settings

__all__ = ["DockerBackend", "DockerSandbox"]

T = TypeVar("T")
NOFILE = 1024


def translate(exc: Exception, image: str | None = None) -> Exception:
    """The one place docker-py errors become ours."""
    if isinstance(exc, docker.errors.ImageNotFound) and image:
        return ImageNotFound(image)
    if isinstance(exc, docker.errors.APIError):
        return BackendError(f"Docker engine error: {exc.explanation or exc}")
    if isinstance(exc, (docker.errors.DockerException, requests.exceptions.ConnectionError)):
        return EngineUnavailable(str(exc))
    return exc


async def _call(fn: Callable[..., T], *args: Any, image: str | None = None, **kw: Any) -> T:
    try:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kw))
    except (docker.errors.DockerException, requests.exceptions.ConnectionError) as exc:
        raise translate(exc, image) from exc


class DockerSandbox(Sandbox):
    def __init__(self, client: docker.DockerClient, container_id: str) -> None:
        self.client = client
        self.id = container_id
        self._pid: int | None = None  # on the host, while it runs

    def _container(self) -> Container | None:
        try:
            return self.client.containers.get(self.id)
        except docker.errors.NotFound:
            return None

    def _state(self) -> dict[str, Any] | None:
        c = self._container()
        return None if c is None else c.attrs.get("State", {})

    async def poll(self) -> int | None:
        state = await _call(self._state)
        if state is None:
            return -1
        return None if state.get("Running") else int(state.get("ExitCode", -1))

    async def exit_info(self) -> ExitInfo:
        state = await _call(self._state)
        if state is None:
            return ExitInfo(exit_code=-1, gone=True)
        code = None if state.get("Running") else int(state.get("ExitCode", -1))
        return ExitInfo(exit_code=code, oom_killed=bool(state.get("OOMKilled")))

    async def wait(self, timeout: float | None = None) -> int:
        c = await _call(self._container)
        if c is None:
            return -1
        result = await _call(c.wait, timeout=timeout)
        return int(result.get("StatusCode", -1))

    async def send_signal(self, signum: int) -> None:
        c = await _call(self._container)
        if c is not None:
            with suppress(BackendError):  # not running any more: nothing to signal
                await _call(c.kill, signal=signum)

    async def terminate(self) -> None:
        c = await _call(self._container)
        if c is not None:
            await _call(c.stop, timeout=3)

    async def kill(self) -> None:
        await self.send_signal(9)

    async def logs(self, tail: int = 20) -> str:
        c = await _call(self._container)
        if c is None:
            return ""
        raw = await _call(c.logs, tail=tail)
        return raw.decode("utf-8", "replace").strip()

    async def usage(self) -> Usage | None:
        return await _call(self._usage)

    def _usage(self) -> Usage | None:
        c = self._container()
        state = {} if c is None else c.attrs.get("State", {})
        if not state.get("Running"):
            return None
        read = read_usage(int(state.get("Pid") or 0))
        if read is None:  # the engine runs elsewhere: ask it (slower)
            stats = c.stats(stream=False, one_shot=True)  # type: ignore[union-attr]
            mem = stats.get("memory_stats", {})
            memory = mem.get("usage", 0) - mem.get("stats", {}).get("inactive_file", 0)
            cpu_ns = stats.get("cpu_stats", {}).get("cpu_usage", {}).get("total_usage", 0)
            read = (max(memory, 0), cpu_ns / 1e9)
        return Usage(*read)

    async def oom_kills(self) -> int | None:
        if self._pid is None:
            state = await _call(self._state)
            if not state or not state.get("Running"):
                return None
            self._pid = int(state.get("Pid") or 0) or None
        count = None if self._pid is None else read_oom_kills(self._pid)
        if count is None:
            self._pid = None  # it may have restarted under another pid: look again next time
        return count

    async def cleanup(self) -> None:
        c = await _call(self._container)
        if c is not None:
            with suppress(BackendError):  # already being removed
                await _call(c.remove, force=True, v=True)


class DockerBackend(Backend):
    name = "docker"

    def __init__(self, settings: Settings, client: docker.DockerClient | None = None) -> None:
        self.settings = settings
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = docker.from_env(timeout=120)
            except docker.errors.DockerException as exc:
                raise EngineUnavailable(str(exc)) from exc
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def ping(self) -> None:
        try:
            await _call(lambda: self.client.ping())
        except BackendError as exc:
            raise EngineUnavailable(str(exc)) from exc

    async def image_present(self, image: str) -> bool:
        try:
            await _call(self.client.images.get, image)
        except BackendError:
            return False
        return True

    async def launch(self, spec: SandboxSpec) -> DockerSandbox:
        kwargs = {
            "image": spec.image,
            "command": spec.command,
            "name": spec.name,
            "detach": True,
            "user": spec.user,
            "network_mode": spec.network,
            "runtime": spec.runtime,
            "read_only": True,
            "cap_drop": ["ALL"],
            "cap_add": spec.capabilities,
            "security_opt": ["no-new-privileges:true"]
            + ([f"seccomp={spec.seccomp}"] if spec.seccomp else []),
            "shm_size": spec.shm_size,
            "mem_limit": spec.memory,
            "memswap_limit": spec.memory,
            "nano_cpus": int(spec.cpus * 1e9),
            "pids_limit": spec.pids_limit,
            # per uid, and each sandbox's uids are its own: one sandbox's use is no other's;
            # open files per process (fs.file-max is the host's, shared by everyone)
            "ulimits": [
                Ulimit(name="nproc", soft=spec.pids_limit, hard=spec.pids_limit),
                Ulimit(name="nofile", soft=NOFILE, hard=NOFILE),
            ],
            # what the sandbox writes to its own stdout and stderr: the engine keeps the last
            # MiB (for a failed start's message), never an uncapped file on the host
            "log_config": LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
            "mounts": [
                DockerMount(m.target, m.source, type="bind", read_only=m.read_only)
                for m in spec.mounts
            ],
            "labels": spec.labels,
            "environment": spec.env,
            "hostname": "sandbox",
            "working_dir": "/mnt/data",
        }
        container = await _call(lambda: self.client.containers.run(**kwargs), image=spec.image)
        return DockerSandbox(self.client, container.id)

    async def attach(self, sandbox_id: str) -> DockerSandbox:
        return DockerSandbox(self.client, sandbox_id)

    async def list_sandboxes(self, labels: dict[str, str]) -> list[SandboxInfo]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        found = await _call(self.client.containers.list, all=True, filters=filters, sparse=True)
        out = []
        for c in found:
            attrs = c.attrs
            out.append(
                SandboxInfo(
                    id=c.id,
                    labels=dict(attrs.get("Labels") or {}),
                    running=attrs.get("State") == "running",
                )
            )
        return out
