"""Shell commands (the Azure ``shellCommand`` executions) run by the session's kernel.

The kernel-side code is ``kernels/lci_shell.py`` (in the image at /opt/lci/kernels):
the command runs under ``bash -lc`` in /mnt/data as the sandbox user, called from a
throw-away namespace (the user's variables are not touched). Its exit code comes back
as a display bundle of our own MIME type, which ``outcome`` reads.
"""

from __future__ import annotations

from ...results import Execution
from ..common import stderr_with_error

__all__ = ["outcome", "snippet"]

EXIT_MIME = "application/vnd.lci.exit+json"  # kernels/lci_shell.py's
SHELL = "/opt/lci/kernels/lci_shell.py"  # in the sandbox image, root's
# the command is data (a repr), the code that runs is fixed; its names stay in the
# throw-away namespace
_SNIPPET = (
    'exec(\'import runpy; runpy.run_path(SHELL, run_name="lci_shell")["main"](CMD)\','
    " {{'SHELL': {shell!r}, 'CMD': {cmd!r}}})"
)


def snippet(command: str) -> str:
    """What the kernel executes for ``command``: a call of ``kernels/lci_shell.py``."""
    return _SNIPPET.format(shell=SHELL, cmd=command)


def outcome(exe: Execution) -> tuple[int | str, str, str]:
    """(exit code, stdout, stderr) of a shell execution."""
    for bundle in exe.results:
        value = bundle.get("data", {}).get(EXIT_MIME)
        if isinstance(value, dict) and isinstance(value.get("code"), int):
            return value["code"], exe.stdout, exe.stderr
    # no exit code: interrupted, timed out or the kernel died
    return 124 if exe.status.value == "timeout" else 1, exe.stdout, stderr_with_error(exe)
