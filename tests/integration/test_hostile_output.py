"""A kernel that floods the host with output: the host's memory stays bounded, whatever
the sandbox's own limit, and the result says truthfully what was dropped.

Measured the way the review measured it: the peak resident size (VmHWM) of a real
``lci run`` process, read from its own /proc/self/status as it exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]
PEAK_LIMIT_KB = 200 * 1024
# lci run, reporting its own peak resident size on stderr as it exits
WRAPPER = (
    "import atexit, sys\n"
    "def peak():\n"
    "    line = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
    "    sys.stderr.write('PEAK ' + line.split()[1] + '\\n')\n"
    "atexit.register(peak)\n"
    "from interpreter.cli.main import main\n"
    "sys.exit(main())\n"
)
ATTACKS = {
    "a 300 MB repr": (
        "class Big:\n    def __repr__(self):\n        return 'x' * 300_000_000\nBig()",
        "message",
    ),
    "5 x 100 MB display bundles": (
        "for _ in range(5):\n    display({'text/plain': 'y' * 100_000_000}, raw=True)",
        "message",
    ),
    "8 x 75 MB fake images": (
        "fake = 'A' * 75_000_000\nfor _ in range(8):\n    display({'image/png': fake}, raw=True)",
        "message",
    ),
    "a flood of images under the message cap": (
        "import base64, os\n"
        "png = base64.b64encode(b'\\x89PNG\\r\\n\\x1a\\n' + os.urandom(6_000_000)).decode()\n"
        "for _ in range(30):\n    display({'image/png': png}, raw=True)",
        "image",
    ),
    "a flood of rich results": (
        "for _ in range(40):\n    display({'text/html': '<p>' + 'z' * 1_000_000}, raw=True)",
        "result",
    ),
    "a flood of text": ("for _ in range(400):\n    print('w' * 1_000_000, flush=True)", "log"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_peak_memory_of_lci_run_stays_bounded(settings, attack: str) -> None:
    code, dropped = ATTACKS[attack]
    env = {
        **os.environ,
        "LCI_HOME": str(settings.home),
        "LCI_IMAGE": settings.sandbox.image or "",
        "LCI_MEMORY": "3g",  # the sandbox may use plenty: the host must not follow
        "LCI_MAX_LOG_BYTES": "64m",
    }
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, "run", "--thread", "t-flood", "--json", code],
        env=env,
        capture_output=True,
        timeout=500,
        check=False,
    )
    err = done.stderr.decode(errors="replace")
    peak = int(err.rsplit("PEAK ", 1)[1].split()[0])
    assert done.returncode == 0, err[-2000:]
    exe = json.loads(done.stdout)
    assert exe["status"] == "ok"
    kinds = {d["what"]: d for d in exe["dropped"]}
    assert dropped in kinds and kinds[dropped]["count"] >= 1, exe["dropped"]
    print(f"{attack}: lci run peaked at {peak} kB")
    assert peak < PEAK_LIMIT_KB, f"{attack}: lci run peaked at {peak} kB"
    assert len(done.stdout) < 40 * 1024**2  # and what it printed is bounded too
