"""The sandbox's two uids, as the launcher handles them: becoming one, and ending one.

* ``become_launcher``: root with CAP_SETUID, CAP_SETGID, CAP_KILL and CAP_SETPCAP becomes
  the session's launcher uid and keeps those four (``prctl(PR_SET_KEEPCAPS)``, then
  ``capset``);
* ``become_kernel_user``: in a child, before it execs the kernel, the kernel's uid with
  no capabilities at all, now or after any ``execve`` (the bounding set emptied);
* ``end_user``: everything a uid left behind ends, from a child that becomes that uid:
  ``kill(-1)`` from it reaches every process the uid owns and no other, and the files it
  can delete are exactly the uid's own (never following a link).

Only the standard library; ``lci_launcher`` loads this file from its own directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import stat
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["become_kernel_user", "become_launcher", "empty", "end_user"]

PR_SET_KEEPCAPS, PR_CAPBSET_DROP, PR_SET_DUMPABLE = 8, 24, 4
CAP_LAST = 63
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _set_caps(keep: bool) -> None:
    """Effective = permitted (keep) or every set empty (not keep)."""
    libc = _libc()
    header, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    _check(libc.capget(ctypes.byref(header), data), "capget")
    for d in data:
        d.effective = d.permitted if keep else 0
        if not keep:
            d.permitted = d.inheritable = 0
    _check(libc.capset(ctypes.byref(header), data), "capset")


def become_launcher(uid: int) -> None:
    """Root -> ``uid``, keeping the few capabilities the container was given."""
    libc = _libc()
    _check(libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "keepcaps")
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    _set_caps(keep=True)
    _check(libc.prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), "keepcaps off")
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # /proc/1 stays the launcher's own


def become_kernel_user(uid: int) -> None:
    """In a child: ``uid`` with no capabilities, now or after any exec."""
    libc = _libc()
    for cap in range(CAP_LAST + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the kernel's last: fine
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    _set_caps(keep=False)


def end_user(uid: int, dirs: Iterable[str]) -> None:
    """End every process of ``uid`` and empty ``dirs`` (each kept), as ``uid``.

    Done by a child that becomes ``uid``: ``kill(-1)`` from it reaches every process that
    uid owns (helpers started with setsid too), and the files it may delete are exactly
    the uid's. The caller (PID 1) reaps every child meanwhile."""
    pid = os.fork()
    if pid == 0:
        try:
            become_kernel_user(uid)
            _kill_all_of_my_uid()
            for d in dirs:
                empty(Path(d))
        finally:
            os._exit(0)
    while True:  # reap as it kills: a zombie still counts as a process to kill(-1)
        try:
            if os.waitpid(-1, 0)[0] == pid:
                return
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def _kill_all_of_my_uid() -> None:
    """kill(-1) until no process of this uid is left (a forking loop may race one pass)."""
    for _ in range(1000):
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.001)


def empty(root: Path) -> None:
    """Remove everything inside ``root`` (never following a link), keep ``root``.

    Iterative and shallow: a subdirectory's subdirectories are moved up into ``root``
    before it is removed, so a tree of any depth (thousands of levels, past PATH_MAX and
    any recursion limit) goes in as many steps as it has entries."""
    for _ in range(1_000_000):  # each pass removes or hoists something
        try:
            names = os.listdir(root)
        except OSError:
            return
        if not names:
            return
        for name in names:
            with contextlib.suppress(OSError):
                _clear_one(root, root / name)


def _clear_one(root: Path, path: Path) -> None:
    if not _is_dir(path):
        os.unlink(path)
        return
    children = os.listdir(path)
    if not children:
        os.rmdir(path)
        return
    for child in children:
        with contextlib.suppress(OSError):
            inner = path / child
            if _is_dir(inner):
                os.rename(inner, root / f".lci-gone-{os.urandom(8).hex()}")
            else:
                os.unlink(inner)


def _is_dir(path: Path) -> bool:
    return stat.S_ISDIR(os.lstat(path).st_mode)
