"""Shell commands (the Azure ``shellCommand`` executions) run by the session's kernel.

The command runs under ``bash -lc`` in /mnt/data as the sandbox user, through a small
snippet executed in a throw-away namespace (the user's variables are not touched).
Its exit code comes back as a display bundle of our own MIME type.
"""

from __future__ import annotations

from ...results import Execution
from ..common import stderr_with_error

__all__ = ["outcome", "snippet"]

EXIT_MIME = "application/vnd.lci.exit+json"

_SNIPPET = """exec(compile({src!r}, "<shell>", "exec"), {{"CMD": {cmd!r}}})"""
_RUN = f"""
import subprocess, sys
from IPython.display import display
p = subprocess.Popen(["bash", "-lc", CMD], cwd="/mnt/data", stdin=subprocess.DEVNULL,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
try:
    out, err = p.communicate()
except KeyboardInterrupt:
    p.kill()
    out, err = p.communicate()
    raise
sys.stdout.write(out.decode("utf-8", "replace"))
sys.stderr.write(err.decode("utf-8", "replace"))
sys.stdout.flush(); sys.stderr.flush()
display({{"{EXIT_MIME}": {{"code": p.returncode}}}}, raw=True)
"""


def snippet(command: str) -> str:
    return _SNIPPET.format(src=_RUN, cmd=command)


def outcome(exe: Execution) -> tuple[int | str, str, str]:
    """(exit code, stdout, stderr) of a shell execution."""
    for bundle in exe.results:
        value = bundle.get("data", {}).get(EXIT_MIME)
        if isinstance(value, dict) and isinstance(value.get("code"), int):
            return value["code"], exe.stdout, exe.stderr
    # no exit code: interrupted, timed out or the kernel died
    return 124 if exe.status.value == "timeout" else 1, exe.stdout, stderr_with_error(exe)
