"""A session's disk: everything its sandbox can write, on a filesystem of its own.

One sparse ext4 image per session (``LCI_DISK_LIMIT`` bytes, ``LCI_DISK_INODES``
inodes), loop-mounted on the host with ``nosuid,nodev,noexec``. The sandbox's
/mnt/data, /tmp, its socket directory and the launcher's state directory are
directories on it, so:

* the kernel enforces the cap: a full sandbox gets ENOSPC (or no more inodes) inside,
  counted in allocated blocks, and fills nothing but its own image;
* nothing the sandbox writes can be run on the host as a setuid program or a device;
* ``discard``: what the sandbox deletes is given back to the host's disk.

With ``LCI_DISK_LIMIT=0`` the directories are plain ones under LCI_HOME (no cap).
Blocking calls: run them in a worker thread.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["SUBDIRS", "Disk", "DiskError"]

# directory on the disk -> whose it is ("kernel" or "launcher")
SUBDIRS = {"data": "kernel", "tmp": "kernel", "sock": "kernel", "state": "launcher"}
MOUNT_OPTIONS = "loop,nosuid,nodev,noexec,noatime,discard"


class DiskError(OSError):
    """The disk could not be made or mounted."""


class Disk:
    def __init__(self, root: Path, limit: int, inodes: int) -> None:
        self.root, self.limit, self.inodes = root, limit, inodes
        self.image = root / "disk.img"
        self.mount = root / "disk"

    def path(self, name: str) -> Path:
        return self.mount / name

    def create(self, launcher_uid: int, kernel_uid: int) -> None:
        """Make, mount and lay out the disk; the subdirectories go to their uids, 0700."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.mount.mkdir(mode=0o700, exist_ok=True)
        if self.limit:
            self._make_image()
            _run(["mount", "-o", MOUNT_OPTIONS, str(self.image), str(self.mount)], "mount")
            (self.mount / "lost+found").rmdir()
        os.chmod(self.mount, 0o700)
        uids = {"kernel": kernel_uid, "launcher": launcher_uid}
        for name, who in SUBDIRS.items():
            sub = self.mount / name
            sub.mkdir(mode=0o700)
            os.chown(sub, uids[who], uids[who])

    def _make_image(self) -> None:
        fd = os.open(self.image, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, self.limit)
        finally:
            os.close(fd)
        features = "^has_journal,^resize_inode"
        extended = "lazy_itable_init=1,nodiscard,root_owner=0:0"
        cmd = ["mkfs.ext4", "-q", "-F", "-O", features, "-E", extended, "-m", "0"]
        _run([*cmd, "-b", "4096", "-N", str(self.inodes), str(self.image)], "mkfs.ext4")

    @property
    def mounted(self) -> bool:
        return os.path.ismount(self.mount)

    def used(self) -> int:
        """Bytes the disk takes on the host now (its image's allocated blocks)."""
        try:
            return os.stat(self.image).st_blocks * 512
        except OSError:
            return 0

    def destroy(self) -> None:
        """Unmount (lazily, when a container still holds it) and remove everything."""
        if self.mounted:
            done = subprocess.run(["umount", str(self.mount)], capture_output=True, check=False)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", str(self.mount)], capture_output=True, check=False)
        if not self.mounted:
            shutil.rmtree(self.root, ignore_errors=True)


def _run(cmd: list[str], what: str) -> None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DiskError(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DiskError(f"{what} failed: {detail[0]}")
