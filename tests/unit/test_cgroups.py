"""Sandbox usage read from cgroup files (v1 and v2 layouts written by hand)."""

from pathlib import Path

from interpreter.backends.cgroups import read_usage


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v1(tmp_path):
    proc, root = tmp_path / "proc", tmp_path / "cg"
    write(proc / "42/cgroup", "12:cpu,cpuacct:/docker/abc\n9:memory:/docker/abc\n0::/\n")
    write(root / "memory/docker/abc/memory.usage_in_bytes", "5000000\n")
    write(root / "memory/docker/abc/memory.stat", "cache 10\ntotal_inactive_file 1000000\n")
    write(root / "cpuacct/docker/abc/cpuacct.usage", "2500000000\n")
    assert read_usage(42, proc, root) == (4_000_000, 2.5)


def test_cgroup_v2(tmp_path):
    proc, root = tmp_path / "proc", tmp_path / "cg"
    write(proc / "7/cgroup", "0::/system.slice/docker-abc.scope\n")
    d = root / "system.slice/docker-abc.scope"
    write(d / "memory.current", "3000\n")
    write(d / "memory.stat", "anon 2000\ninactive_file 1000\n")
    write(d / "cpu.stat", "usage_usec 1500000\nuser_usec 1000000\n")
    assert read_usage(7, proc, root) == (2000, 1.5)


def test_unreadable_is_none(tmp_path):
    assert read_usage(1, tmp_path / "nope", tmp_path) is None
    write(tmp_path / "proc/3/cgroup", "0::/gone\n")
    assert read_usage(3, tmp_path / "proc", tmp_path / "cg") is None
