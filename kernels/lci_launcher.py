"""PID 1 of an lci sandbox container.

It runs one ipykernel as a child process and supervises it. Two identities, both
per-session uids that exist nowhere on the host:

* the launcher starts as root with only CAP_SETUID, CAP_SETGID, CAP_KILL and
  CAP_SETPCAP (everything else dropped, ``no-new-privileges``), reads what only it may
  read (the connection file, the activity clock), and becomes ``--launcher-uid``,
  keeping those capabilities;
* the kernel runs as ``--kernel-uid`` with no capabilities at all (bounding set
  emptied, nothing survives ``execve``). It cannot signal, trace or write anything of
  the launcher's: the launcher's state lives in ``--state-dir``, which only the
  launcher can write, and the activity clock is an fd opened before the switch.

What the launcher does:

* the kernel listens on ``transport: ipc`` sockets in ``--socket-dir`` (bind-mounted
  from the host); nothing listens on a network port;
* when the kernel dies (``os._exit``, a crash, the OOM killer) the launcher records why
  in ``<state-dir>/state.json``, ends every process of the kernel's uid, empties /tmp,
  /dev/shm and the socket directory, and starts a fresh kernel on the same socket paths
  (``/mnt/data`` intact);
* ``SIGHUP``: the same, on purpose (the host's "restart"); ``SIGUSR1`` forwards
  ``SIGINT`` to the kernel; ``SIGTERM`` stops everything and exits;
* the idle watchdog: when the host has not touched the activity file for
  ``--idle-timeout`` seconds, the launcher exits, so the sandbox expires even when no
  host process is left.

Becoming and ending the two uids is ``lci_privilege``, loaded from this file's own
directory (``_load_sibling``). Only the standard library is used here; the kernel runs
under the same interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import signal
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import lci_privilege as privilege


def _load_sibling(name: str) -> ModuleType:
    """``<name>.py`` from this file's own directory, and from nowhere else.

    The launcher runs as root, started by script path: whether that directory is on
    ``sys.path`` depends on how Python was started (it is not under ``-I``, ``-P`` or
    PYTHONSAFEPATH), and another entry could hold a module of the same name. So the file
    beside this one is read (never through a link, never from bytecode) and run only
    when it and its directory belong to root (or this uid) and no one else may write
    them: no uid of the sandbox can have put it there."""
    here = Path(__file__).resolve().parent
    _check_trusted(os.stat(here), here, stat.S_ISDIR)
    path = here / f"{name}.py"
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        _check_trusted(os.fstat(f.fileno()), path, stat.S_ISREG)
        source = f.read()
    module = ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    exec(compile(source, str(path), "exec", dont_inherit=True), module.__dict__)
    return module


def _check_trusted(st: os.stat_result, path: Path, kind: Callable[[int], bool]) -> None:
    owner_ok = st.st_uid in (0, os.geteuid())
    if not owner_ok or not kind(st.st_mode) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ImportError(f"{path}: not root's (or ours) alone, refusing to load code from it")


if not TYPE_CHECKING:
    privilege = _load_sibling("lci_privilege")

CRASH_LOOP_LIMIT = 3  # kernels that die within FAST_DEATH_S in a row
FAST_DEATH_S = 2.0
TICK_S = 1.0
START_GRACE_S = 60.0  # the host's default start timeout
STARTUP = Path(__file__).with_name("lci_startup.py")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="lci_launcher")
    p.add_argument("--connection-file", default="/run/lci/ctl/connection.json")
    p.add_argument("--activity", default="/run/lci/ctl/activity")
    p.add_argument("--socket-dir", default="/run/lci/sock")
    p.add_argument("--state-dir", default="/run/lci/state")
    p.add_argument("--workdir", default="/mnt/data")
    p.add_argument("--idle-timeout", type=float, default=3600.0)
    p.add_argument("--mplconfig", default="/opt/lci/mplconfig")
    p.add_argument("--scratch", default="/tmp")
    p.add_argument("--shm", default="/dev/shm")
    p.add_argument("--launcher-uid", type=int, default=None)
    p.add_argument("--kernel-uid", type=int, default=None)
    return p.parse_args(argv)


def oom_kills() -> int:
    """The cgroup's OOM-kill counter (cgroup v2 or v1), or -1 when unreadable. A hint."""
    for path in ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"):
        try:
            with open(path) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return -1


class Launcher:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.state_path = Path(args.state_dir) / "state.json"
        self.started = time.time()
        self.generation = 0
        self.kernel_pid: int | None = None
        self.kernel_started = 0.0
        self.oom_baseline = oom_kills()
        self.fast_deaths = 0
        self.exits: list[dict[str, object]] = []
        self.exiting: str | None = None
        # read while still root: neither is readable by the sandbox's uids
        self.connection = Path(args.connection_file).read_bytes()
        try:
            self.activity_fd: int | None = os.open(args.activity, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.activity_fd = None
        if args.launcher_uid is not None and os.getuid() == 0:
            privilege.become_launcher(args.launcher_uid)

    # -- the kernel child ---------------------------------------------------------------

    def start_kernel(self) -> None:
        pid = os.fork()
        if pid == 0:  # the child: never returns
            try:
                self._exec_kernel()
            finally:
                os._exit(127)
        self.kernel_pid = pid
        self.generation += 1
        self.kernel_started = time.time()
        self.write_state()

    def _exec_kernel(self) -> None:
        os.setsid()  # the kernel leads its own session and process group
        if self.args.kernel_uid is not None:
            privilege.become_kernel_user(self.args.kernel_uid)
        os.umask(0o077)  # its sockets; lci_startup sets 022 for the user's own files
        scratch = self._kernel_scratch()
        conn = scratch / "connection.json"
        env = dict(
            os.environ,
            MPLCONFIGDIR=str(scratch / "matplotlib"),
            MPLBACKEND="module://matplotlib_inline.backend_inline",
            IPYTHONDIR=str(scratch / "ipython"),
            HOME=str(scratch),
            USER="sandbox",
            LOGNAME="sandbox",
            LCI_WORKDIR=self.args.workdir,
        )
        # started from / in isolated mode (-I: no script or working directory, no user
        # site, no PYTHON* variables): a file the code left in /mnt/data can
        # not stand in for the kernel's own modules; lci_startup moves to /mnt/data after
        os.chdir("/")
        argv = [
            sys.executable,
            "-I",
            "-u",
            "-B",  # no .pyc beside the user's modules in /mnt/data
            "-m",
            "ipykernel_launcher",
            "-f",
            str(conn),
            "--HistoryManager.enabled=False",
            "--IPKernelApp.exec_files=" + json.dumps([str(STARTUP)]),
            "--IPKernelApp.parent_handle=0",
        ]
        for sig in (signal.SIGCHLD, signal.SIGHUP, signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        os.execve(sys.executable, argv, env)

    def _kernel_scratch(self) -> Path:
        """A fresh, unguessable place for what the kernel writes at start (its connection
        file, IPython's and matplotlib's directories, HOME): nothing planted in /tmp
        earlier (an IPython startup file, a matplotlibrc) is read by a new kernel."""
        scratch = Path(self.args.scratch) / f".lci-{os.urandom(8).hex()}"
        scratch.mkdir(mode=0o700)
        conn = scratch / "connection.json"
        fd = os.open(conn, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.connection)
        if Path(self.args.mplconfig).is_dir():
            shutil.copytree(self.args.mplconfig, scratch / "matplotlib")
        return scratch

    def signal_kernel(self, sig: int) -> None:
        if self.kernel_pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.kernel_pid, sig)  # the kernel leads its own process group

    def end_kernel_user(self) -> None:
        """End every process of the kernel's uid; empty /tmp, /dev/shm and the sockets."""
        if self.args.kernel_uid is None:
            self.signal_kernel(signal.SIGKILL)
            return
        dirs = (self.args.scratch, self.args.shm, self.args.socket_dir)
        privilege.end_user(self.args.kernel_uid, dirs)

    def on_kernel_exit(self, status: int, reason: str | None = None) -> None:
        returncode = os.waitstatus_to_exitcode(status)
        ooms = oom_kills()
        oom = ooms > self.oom_baseline >= 0
        self.oom_baseline = ooms
        uptime = time.time() - self.kernel_started
        self.exits = [
            *self.exits[-4:],
            {
                "generation": self.generation,
                "returncode": returncode,
                "signal": -returncode if returncode < 0 else None,
                "oom": oom,
                "reason": reason,
                "uptime": round(uptime, 3),
                "time": time.time(),
            },
        ]
        self.kernel_pid = None
        self.fast_deaths = self.fast_deaths + 1 if uptime < FAST_DEATH_S else 0
        self.end_kernel_user()

    # -- state for the host -------------------------------------------------------------

    def write_state(self) -> None:
        state = {
            "generation": self.generation,
            "kernel_pid": self.kernel_pid,
            "kernel_started": self.kernel_started,
            "launcher_started": self.started,
            "exits": self.exits,
            "exiting": self.exiting,
        }
        tmp = self.state_path.with_name("state.json.tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_path)

    def idle_for(self) -> float:
        try:
            last = os.fstat(self.activity_fd).st_mtime if self.activity_fd is not None else 0
        except OSError:
            last = 0
        # the sandbox's first kernel may take a while to answer (a slow runtime takes
        # seconds): until the host first touches the clock, it counts from the launcher's
        # start plus its start timeout. Kernels that start later change nothing
        since = last if last > self.started else self.started + START_GRACE_S
        return time.time() - since

    # -- the loop -----------------------------------------------------------------------

    def reap(self) -> None:
        """Collect every exited child (PID 1 inherits orphans), noting the kernel's end."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.kernel_pid:
                self.on_kernel_exit(status)
                self.write_state()

    def restart(self) -> None:
        """Kill the kernel (and everything of its uid) on purpose; a fresh one follows."""
        if self.kernel_pid is None:
            return
        pid = self.kernel_pid
        self.signal_kernel(signal.SIGKILL)
        self.on_kernel_exit(_wait(pid), reason="restart")
        self.fast_deaths = 0

    def run(self) -> int:
        rfd, wfd = os.pipe()
        os.set_blocking(wfd, False)
        signal.set_wakeup_fd(wfd)
        wanted = (signal.SIGCHLD, signal.SIGHUP, signal.SIGUSR1, signal.SIGTERM, signal.SIGINT)
        for sig in wanted:
            signal.signal(sig, lambda *_: None)
        self.end_kernel_user()  # a fresh sandbox has nothing to end; a reused /tmp is emptied
        self.start_kernel()
        while True:
            ready, _, _ = select.select([rfd], [], [], TICK_S)
            signals = set(os.read(rfd, 512)) if ready else set()
            if signals & {signal.SIGTERM, signal.SIGINT}:
                return self.shutdown("terminated")
            if signal.SIGUSR1 in signals:
                self.signal_kernel(signal.SIGINT)
            if signal.SIGHUP in signals:
                self.restart()
            self.reap()
            if self.kernel_pid is None:
                if self.fast_deaths >= CRASH_LOOP_LIMIT:
                    return self.shutdown("crashloop", code=3)
                self.start_kernel()
            if self.idle_for() > self.args.idle_timeout:
                return self.shutdown("idle")

    def shutdown(self, why: str, code: int = 0) -> int:
        self.exiting = why
        self.signal_kernel(signal.SIGTERM)
        if self.kernel_pid is not None:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                pid, _ = os.waitpid(self.kernel_pid, os.WNOHANG)
                if pid:
                    break
                time.sleep(0.05)
        self.end_kernel_user()
        self.write_state()
        return code


def _wait(pid: int) -> int:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue
        except ChildProcessError:
            return 0


def main(argv: list[str] | None = None) -> int:
    return Launcher(parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
