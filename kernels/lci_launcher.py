"""PID 1 of an lci sandbox container.

It runs one ipykernel as a child process and supervises it:

* the kernel listens on ``transport: ipc`` sockets in ``--socket-dir`` (bind-mounted
  from the host); nothing listens on a network port;
* when the kernel dies (``os._exit``, a crash, the OOM killer) the launcher records why
  in ``<socket-dir>/state.json`` and starts a fresh kernel on the same sockets, so the
  host reconnects without starting a new container (``/mnt/data`` stays intact);
* ``SIGHUP`` kills the kernel hard and starts a fresh one (the host's "restart" for code
  that ignores interrupts); ``SIGUSR1`` forwards ``SIGINT`` to the kernel;
* ``SIGTERM`` stops the kernel and exits;
* the idle watchdog: when the host has not touched ``--activity`` (a read-only file in a
  read-only mount) for ``--idle-timeout`` seconds, the launcher exits, so the sandbox
  expires even when the host process is gone.

Only the standard library is used here; the kernel runs under the same interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

CRASH_LOOP_LIMIT = 3  # kernels that die within FAST_DEATH_S in a row
FAST_DEATH_S = 2.0
TICK_S = 1.0
STARTUP = Path(__file__).with_name("lci_startup.py")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="lci_launcher")
    p.add_argument("--connection-file", default="/run/lci/ctl/connection.json")
    p.add_argument("--activity", default="/run/lci/ctl/activity")
    p.add_argument("--socket-dir", default="/run/lci/sock")
    p.add_argument("--workdir", default="/mnt/data")
    p.add_argument("--idle-timeout", type=float, default=3600.0)
    p.add_argument("--mplconfig", default="/opt/lci/mplconfig")
    p.add_argument("--scratch", default="/tmp")
    return p.parse_args(argv)


def oom_kills() -> int:
    """The cgroup's OOM-kill counter (cgroup v2 or v1), or -1 when unreadable."""
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
        self.state_path = Path(args.socket_dir) / "state.json"
        self.started = time.time()
        self.generation = 0
        self.kernel: subprocess.Popen[bytes] | None = None
        self.kernel_started = 0.0
        self.oom_baseline = oom_kills()
        self.fast_deaths = 0
        self.exits: list[dict[str, object]] = []
        self.exiting: str | None = None

    # -- the kernel child ---------------------------------------------------------------

    def prepare(self) -> str:
        """Copy what the kernel writes to into the scratch tmpfs; return the connection file."""
        scratch = Path(self.args.scratch).resolve()
        conn = scratch / "lci-connection.json"
        shutil.copyfile(self.args.connection_file, conn)
        mpl = scratch / "matplotlib"
        if Path(self.args.mplconfig).is_dir():
            shutil.copytree(self.args.mplconfig, mpl, dirs_exist_ok=True)
        os.environ.update(
            MPLCONFIGDIR=str(mpl),
            MPLBACKEND="module://matplotlib_inline.backend_inline",
            IPYTHONDIR=str(scratch / "ipython"),
            HOME=str(scratch),
            PYTHONUNBUFFERED="1",
        )
        return str(conn)

    def start_kernel(self, conn: str) -> None:
        cmd = [
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            conn,
            "--HistoryManager.enabled=False",
            "--IPKernelApp.exec_files=" + json.dumps([str(STARTUP)]),
            "--IPKernelApp.parent_handle=0",
        ]
        # Sockets are created before the startup file runs; a permissive umask lets a
        # non-root host connect. lci_startup restores 022 for the user's own files.
        old = os.umask(0)
        try:
            self.kernel = subprocess.Popen(cmd, cwd=self.args.workdir, start_new_session=True)
        finally:
            os.umask(old)
        self.generation += 1
        self.kernel_started = time.time()
        self.write_state()

    def signal_kernel(self, sig: int) -> None:
        if self.kernel is not None and self.kernel.poll() is None:
            # The kernel leads its own process group: signal the group, so helper
            # processes the user code started go too on a hard restart.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.kernel.pid, sig)

    def on_kernel_exit(self, returncode: int, reason: str | None = None) -> None:
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
        self.kernel = None
        self.fast_deaths = self.fast_deaths + 1 if uptime < FAST_DEATH_S else 0

    # -- state for the host -------------------------------------------------------------

    def write_state(self) -> None:
        state = {
            "generation": self.generation,
            "kernel_pid": self.kernel.pid if self.kernel else None,
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
            last = os.stat(self.args.activity).st_mtime
        except OSError:
            last = self.started
        return time.time() - max(last, self.started)

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
            if self.kernel is not None and pid == self.kernel.pid:
                self.kernel.returncode = os.waitstatus_to_exitcode(status)
                self.on_kernel_exit(self.kernel.returncode)

    def run(self) -> int:
        conn = self.prepare()
        rfd, wfd = os.pipe()
        os.set_blocking(wfd, False)
        signal.set_wakeup_fd(wfd)
        wanted = (signal.SIGCHLD, signal.SIGHUP, signal.SIGUSR1, signal.SIGTERM, signal.SIGINT)
        for sig in wanted:
            signal.signal(sig, lambda *_: None)
        self.start_kernel(conn)
        while True:
            ready, _, _ = select.select([rfd], [], [], TICK_S)
            signals = set(os.read(rfd, 512)) if ready else set()
            if signals & {signal.SIGTERM, signal.SIGINT}:
                return self.shutdown("terminated")
            if signal.SIGUSR1 in signals:
                self.signal_kernel(signal.SIGINT)
            if signal.SIGHUP in signals and self.kernel is not None:
                self.signal_kernel(signal.SIGKILL)
                self.kernel.wait()
                self.on_kernel_exit(self.kernel.returncode, reason="restart")
                self.fast_deaths = 0
            self.reap()
            if self.kernel is None:
                if self.fast_deaths >= CRASH_LOOP_LIMIT:
                    return self.shutdown("crashloop", code=3)
                self.start_kernel(conn)
            if self.idle_for() > self.args.idle_timeout:
                return self.shutdown("idle")

    def shutdown(self, why: str, code: int = 0) -> int:
        self.exiting = why
        self.signal_kernel(signal.SIGTERM)
        if self.kernel is not None:
            try:
                self.kernel.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.signal_kernel(signal.SIGKILL)
                self.kernel.wait()
        self.write_state()
        return code


def main(argv: list[str] | None = None) -> int:
    return Launcher(parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
