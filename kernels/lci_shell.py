"""Runs a shell command for the kernel it is called in (the Azure ``shellCommand``).

The host sends ``runpy.run_path("/opt/lci/kernels/lci_shell.py")["main"](command)``,
executed in a throw-away namespace, so the user's variables are not touched. The
command runs under ``bash -lc`` in /mnt/data as the kernel's user; its output is
printed as the kernel's stdout and stderr, and its exit code comes back as a display
bundle of lci's own MIME type. An interrupt (the execution's timeout) kills it.
"""

from __future__ import annotations

import subprocess
import sys

EXIT_MIME = "application/vnd.lci.exit+json"


def main(command: str, cwd: str = "/mnt/data") -> int:
    from IPython.display import display

    proc = subprocess.Popen(
        ["bash", "-lc", command],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = proc.communicate()
    except KeyboardInterrupt:
        proc.kill()
        proc.communicate()
        raise
    sys.stdout.write(out.decode("utf-8", "replace"))
    sys.stderr.write(err.decode("utf-8", "replace"))
    sys.stdout.flush()
    sys.stderr.flush()
    display({EXIT_MIME: {"code": proc.returncode}}, raw=True)
    return proc.returncode
