"""`lci` as a user runs it: separate processes sharing one thread's session."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.docker]


@pytest.fixture
def lci(settings, tmp_path):
    env = {**os.environ, "LCI_HOME": str(settings.home), "LCI_IMAGE": settings.sandbox.image}

    def run(
        *args: str, stdin: str | None = None, check_code: int | None = 0
    ) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(
            [sys.executable, "-m", "interpreter", *args],
            env=env,
            cwd=tmp_path,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if check_code is not None:
            assert p.returncode == check_code, (p.returncode, p.stdout, p.stderr)
        return p

    yield run
    run("sessions", "sweep", check_code=None)
    subprocess.run([sys.executable, "-c", _STOP_ALL], env=env, timeout=120)


_STOP_ALL = (
    "import asyncio, interpreter\n"
    "async def m():\n"
    "  async with interpreter.SessionManager.from_env() as x: await x.stop_all()\n"
    "asyncio.run(m())"
)


def test_thread_state_survives_between_processes(lci, tmp_path):
    (tmp_path / "sales.csv").write_text("a,b\n1,2\n")
    first = json.loads(
        lci("run", "--thread", "t1", "--file", "sales.csv", "--json", "x = 41").stdout
    )
    assert first["status"] == "ok" and first["thread_id"] == "t1"
    second = json.loads(
        lci(
            "run", "--thread", "t1", "--json", "print(x + 1)\nimport os\nprint(os.listdir())"
        ).stdout
    )
    assert second["stdout"] == "42\n['sales.csv']\n"
    assert second["session_id"] == first["session_id"]
    for key in ("outputs", "files", "error", "duration_ms", "status", "log_file_id"):
        assert key in second
    table = lci("sessions").stdout.splitlines()
    assert table[0].split()[:4] == ["THREAD", "SESSION", "STATE", "AGE"]
    assert any(line.split()[0] == "t1" and line.split()[2] == "idle" for line in table[1:])


def test_human_output_saves_images_and_files(lci, tmp_path):
    p = lci(
        "run",
        "--thread",
        "t2",
        "-",
        stdin=(
            "import matplotlib.pyplot as plt\nprint('drawing')\nplt.plot([3, 1, 2]); plt.show()\n"
            "open('/mnt/data/result.txt', 'w').write('done')"
        ),
    )
    lines = p.stdout.splitlines()
    assert lines[0] == "drawing"
    image_line = next(line for line in lines if line.startswith("image: "))
    file_line = next(line for line in lines if line.startswith("file: "))
    image_path = tmp_path / image_line.split()[1]
    assert image_path.read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / file_line.split()[1]).read_text() == "done"
    file_id = file_line.split("(")[1].rstrip(")")
    lci("files", "get", file_id, "-o", "copy.txt")
    assert (tmp_path / "copy.txt").read_text() == "done"
    assert lci("files", "get", file_id, "-o", "-").stdout == "done"


def test_exit_codes_and_errors(lci):
    p = lci("run", "--thread", "t3", "1/0", check_code=1)
    assert "ZeroDivisionError" in p.stdout
    p = lci("run", "--thread", "t3", "--timeout", "1", "import time\ntime.sleep(30)", check_code=3)
    assert "interrupted" in p.stderr
    p = lci("run", "--json", "print('one-off')")  # no thread: a throw-away session
    assert json.loads(p.stdout)["stdout"] == "one-off\n"
    p = lci("files", "get", "file-doesnotexist", check_code=5)
    assert p.stderr.startswith("NoSuchFile: ")
    p = lci("run", "--file", "/definitely/missing.csv", "1", check_code=2)
    assert p.stderr.startswith("FileNotFoundError: ") and "Traceback" not in p.stderr


def test_two_processes_on_one_thread_are_serialised(lci, settings, tmp_path):
    lci("run", "--thread", "t4", "1")  # the session exists before the race
    env = {**os.environ, "LCI_HOME": str(settings.home), "LCI_IMAGE": settings.sandbox.image}
    code = "import time\nt0 = time.time()\ntime.sleep(0.8)\nprint(t0, time.time())"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "interpreter", "run", "--thread", "t4", "--json", code],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert [o["session_id"] for o in outs] == [outs[0]["session_id"]] * 2
    (a0, a1), (b0, b1) = (map(float, o["stdout"].split()) for o in outs)
    assert a1 <= b0 or b1 <= a0, "the two executions overlapped"
