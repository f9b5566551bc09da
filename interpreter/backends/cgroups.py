"""What a process's cgroup has used: memory now and CPU time so far.

Read straight from the cgroup filesystem (v1 or v2) through ``/proc/<pid>/cgroup``:
instant, where the engine's stats API waits a second for its next sample. Returns
None when the files cannot be read (the engine is on another host, say).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["read_oom_kills", "read_usage"]

ROOT = Path("/sys/fs/cgroup")


def read_usage(pid: int, proc: Path = Path("/proc"), root: Path = ROOT) -> tuple[int, float] | None:
    """(memory bytes without reclaimable page cache, CPU seconds) of ``pid``'s cgroup."""
    try:
        lines = (proc / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    paths: dict[str, str] = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            paths[c] = path.lstrip("/")
    try:
        if "memory" in paths and "cpuacct" in paths:  # v1
            mem_dir, cpu_dir = (
                root / "memory" / paths["memory"],
                root / "cpuacct" / paths["cpuacct"],
            )
            memory = _int(mem_dir / "memory.usage_in_bytes")
            memory -= _stat(mem_dir / "memory.stat").get("total_inactive_file", 0)
            cpu = _int(cpu_dir / "cpuacct.usage") / 1e9
        elif "" in paths:  # v2: one unified hierarchy
            d = root / paths[""]
            memory = _int(d / "memory.current") - _stat(d / "memory.stat").get("inactive_file", 0)
            cpu = _stat(d / "cpu.stat")["usage_usec"] / 1e6
        else:
            return None
    except (OSError, KeyError, ValueError):
        return None
    return max(memory, 0), cpu


def read_oom_kills(pid: int, proc: Path = Path("/proc"), root: Path = ROOT) -> int | None:
    """The ``oom_kill`` counter of ``pid``'s memory cgroup (v1 or v2), or None."""
    try:
        lines = (proc / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):  # v1
            candidate = root / "memory" / path.lstrip("/") / "memory.oom_control"
        elif controllers == "":  # v2
            candidate = root / path.lstrip("/") / "memory.events"
        else:
            continue
        try:
            return _stat(candidate).get("oom_kill")
        except OSError:
            continue
    return None


def _int(path: Path) -> int:
    return int(path.read_text().strip())


def _stat(path: Path) -> dict[str, int]:
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out
