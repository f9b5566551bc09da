"""kernels/lci_privilege.py, and how kernels/lci_launcher.py loads it (on the host)."""

from __future__ import annotations

import os
import runpy
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

KERNELS = Path(__file__).resolve().parents[2] / "kernels"


@pytest.fixture(scope="module")
def privilege() -> ModuleType:
    """The module exactly as the launcher loads it."""
    module = runpy.run_path(str(KERNELS / "lci_launcher.py"))["privilege"]
    assert module.__file__ == str(KERNELS / "lci_privilege.py")
    return module


def _copy_kernels(tmp_path: Path) -> Path:
    kernels = tmp_path / "kernels"
    kernels.mkdir(mode=0o755)
    for name in ("lci_launcher.py", "lci_privilege.py"):
        shutil.copy(KERNELS / name, kernels / name)
    return kernels


def _help(launcher: Path, *flags: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, *flags, str(launcher), "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        timeout=60,
    )


def test_the_launcher_loads_the_module_beside_it_whatever_sys_path_holds(tmp_path: Path):
    kernels = _copy_kernels(tmp_path)
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "lci_privilege.py").write_text("raise SystemExit('the decoy was imported')\n")
    env = {**os.environ, "PYTHONPATH": str(decoy)}
    # -I: no script directory on sys.path at all; -P: none, and the decoy first
    for flags in ([], ["-I"], ["-P"]):
        r = _help(kernels / "lci_launcher.py", *flags, env=env)
        assert r.returncode == 0 and "usage: lci_launcher" in r.stdout, (flags, r.stderr)


@pytest.mark.parametrize("change", ["file writable", "directory writable", "link"])
def test_the_launcher_refuses_a_module_others_could_have_written(tmp_path: Path, change: str):
    kernels = _copy_kernels(tmp_path)
    module = kernels / "lci_privilege.py"
    if change == "link":
        real = tmp_path / "elsewhere.py"
        module.rename(real)
        module.symlink_to(real)
    else:
        target = module if change == "file writable" else kernels
        target.chmod(target.stat().st_mode | stat.S_IWGRP | stat.S_IWOTH)
    r = _help(kernels / "lci_launcher.py", "-I")
    assert r.returncode != 0 and "usage" not in r.stdout
    assert "refusing" in r.stderr or "Too many levels of symbolic links" in r.stderr


def test_empty_takes_any_depth_and_follows_no_link(tmp_path: Path, privilege: ModuleType):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "keep").write_text("mine")
    fd = os.open(root, os.O_RDONLY)
    for _ in range(2100):  # 4200 characters deep: past PATH_MAX (4096)
        os.mkdir("d", dir_fd=fd)
        os.symlink(outside, "link", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)
    (root / "file").write_text("x")
    privilege.empty(root)
    assert root.is_dir() and list(root.iterdir()) == []
    assert (outside / "keep").read_text() == "mine"


def _pids_of(uid: int) -> list[int]:
    pids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue
        uids = next((line.split()[1:] for line in lines if line.startswith("Uid:")), [])
        if str(uid) in uids:
            pids.append(int(status.parent.name))
    return pids


@pytest.fixture
def spare_uid() -> int:
    """A uid no process has: below LCI_UID_RANGE's default, used by nothing else."""
    for uid in range(1_999_990_000, 1_999_990_100):
        if not _pids_of(uid):
            return uid
    raise AssertionError("no spare uid")


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="lci-priv-") as d:
        os.chmod(d, 0o755)  # the uid must reach its directory inside
        yield Path(d)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: it becomes another uid")
def test_end_user_ends_every_process_of_the_uid_and_empties_its_dirs(
    privilege: ModuleType, spare_uid: int, shared_tmp: Path
):
    scratch = shared_tmp / "scratch"
    scratch.mkdir(mode=0o700)
    (scratch / "sub").mkdir()
    (scratch / "sub" / "file").write_text("x")
    (scratch / "link").symlink_to(shared_tmp)
    for path in (scratch, scratch / "sub", scratch / "sub" / "file"):
        os.chown(path, spare_uid, spare_uid)
    victims = [
        subprocess.Popen(["sleep", "60"], user=spare_uid, group=spare_uid, **kw)
        for kw in ({}, {"start_new_session": True})
    ]
    privilege.end_user(spare_uid, [str(scratch)])
    for victim in victims:
        victim.wait(timeout=10)
        assert victim.returncode in (-9, 0)  # 0: end_user reaped it first (ECHILD)
    assert _pids_of(spare_uid) == []
    assert scratch.is_dir() and list(scratch.iterdir()) == []
    assert shared_tmp.is_dir() and (shared_tmp / "scratch").is_dir()
