"""``lci sessions|logs|attach|export`` as an operator runs them, against a real
``lci serve`` with real sessions: remote (``--url``/``--api-key``) and on the same
local store (``LCI_HOME``)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import nbformat
import pexpect
import pytest

from .conftest import LiveServer

pytestmark = pytest.mark.docker

PLOT = "import matplotlib.pyplot as plt\nplt.plot([3, 1, 2])\nplt.show()"
Lci = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, headers=live_server.headers(), timeout=90) as c:
        yield c


def new_session(http: httpx.Client, code: str = "1") -> tuple[str, str]:
    """(container id, session id) of a fresh container that ran ``code``."""
    cid = http.post("/v1/containers", json={"name": "inspect"}).json()["id"]
    return cid, run(http, cid, code)["session_id"]


def run(http: httpx.Client, cid: str, code: str) -> dict:
    r = http.post(f"/v1/containers/{cid}/executions", json={"code": code})
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.fixture(scope="module")
def shared(http: httpx.Client) -> tuple[str, str]:
    """One session with history: output, an image, an error."""
    cid, sid = new_session(http, "x = 41\nprint('hello from', 'the sandbox')")
    run(http, cid, PLOT)
    run(http, cid, "1 / 0")
    return cid, sid


@pytest.fixture
def lci(live_server: LiveServer, tmp_path: Path) -> Lci:
    """Run ``lci``; ``remote`` adds --url/--api-key (``key``), else the server's LCI_HOME."""

    def go(
        *args: str, remote: bool = True, key: str | None = None, code: int | None = 0
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "LCI_HOME": str(live_server.home)}
        env.pop("LCI_URL", None)
        extra: list[str] = []
        if remote:
            env["LCI_HOME"] = str(tmp_path / "client-home")  # the client needs no store
            extra = ["--url", live_server.url, "--api-key", key or live_server.key]
        p = subprocess.run(
            [sys.executable, "-m", "interpreter", *args, *extra],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if code is not None:
            assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
        assert "Traceback (most recent call last)" not in p.stderr
        return p

    return go


# -- sessions ----------------------------------------------------------------------------


@pytest.mark.parametrize("remote", [True, False], ids=["remote", "local"])
def test_sessions_table_and_json(lci: Lci, shared: tuple[str, str], remote: bool) -> None:
    cid, sid = shared
    lines = lci("sessions", remote=remote).stdout.splitlines()
    assert lines[0].split() == [
        "THREAD", "SESSION", "STATE", "AGE", "IDLE", "EXPIRES", "MEMORY", "CPU", "EXECS", "FILES",
        "TENANT",
    ]  # fmt: skip
    row = next(line.split() for line in lines[1:] if sid in line)
    assert row[0] == cid and row[2] == "idle" and row[-1] == "alice"
    assert row[6].endswith("iB") and row[7].endswith("%")  # memory and CPU measured now
    assert row[8] == "3"  # executions

    views = {v["id"]: v for v in json.loads(lci("sessions", "--json", remote=remote).stdout)}
    v = views[sid]
    assert (v["thread_id"], v["tenant"], v["state"], v["executions"]) == (cid, "alice", "idle", 3)
    assert v["memory_bytes"] > 1_000_000 and 0 < v["expires_in_s"] <= 20 * 60
    assert v["idle_s"] >= 0 and v["age_s"] >= v["idle_s"] and v["files"] == 0


def test_another_tenant_sees_nothing(lci: Lci, live_server: LiveServer, shared: tuple) -> None:
    _, sid = shared
    bob = json.loads(lci("sessions", "--json", "--all", key=live_server.other_key).stdout)
    assert sid not in {v["id"] for v in bob}
    for command in (
        ["sessions", "show", sid],
        ["logs", sid],
        ["export", sid],
        ["attach", sid],
        ["sessions", "stop", sid],
        ["sessions", "interrupt", sid],
    ):
        p = lci(*command, key=live_server.other_key, code=2)
        assert p.stderr.startswith(f"NoSuchSession: No session '{sid}'"), (command, p.stderr)
    assert json.loads(lci("sessions", "show", sid, "--json").stdout)["state"] == "idle"


def test_bad_key_and_no_service_are_one_clear_line(
    lci: Lci, live_server: LiveServer, shared: tuple
) -> None:
    p = lci("sessions", key="key-mallory", code=5)
    assert p.stderr.startswith("AuthenticationFailed: The service at") and "--api-key" in p.stderr
    p = subprocess.run(
        [sys.executable, "-m", "interpreter", "logs", shared[1]],
        env={**os.environ, "LCI_URL": "http://127.0.0.1:9", "LCI_API_KEY": "k"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 5
    assert p.stderr.startswith("ServiceUnreachable: No lci service answers at http://127.0.0.1:9")


@pytest.mark.parametrize("remote", [True, False], ids=["remote", "local"])
def test_show_details_limits_and_last_executions(
    lci: Lci, shared: tuple[str, str], remote: bool
) -> None:
    cid, sid = shared
    text = lci("sessions", "show", sid[:10], remote=remote).stdout  # a unique prefix will do
    assert f"session:     {sid}" in text and f"thread:      {cid}" in text
    assert "state:       idle" in text and "tenant:      alice" in text
    assert "limits:      memory 1 GiB" in text and "network none" in text
    container = text.split("container:", 1)[1].split()[0]
    assert len(container) == 64
    assert "last 3 executions:" in text and "x = 41" in text and "error" in text

    d = json.loads(lci("sessions", "show", sid, "--json", remote=remote).stdout)
    assert d["container"] == container and d["pids_limit"] > 0 and d["memory_limit"] > 0
    assert [e["status"] for e in d["last_executions"]] == ["ok", "ok", "error"]
    assert "live_log" not in d["last_executions"][0]


# -- logs --------------------------------------------------------------------------------


@pytest.mark.parametrize("remote", [True, False], ids=["remote", "local"])
def test_logs_shows_code_then_outputs(lci: Lci, shared: tuple[str, str], remote: bool) -> None:
    _, sid = shared
    text = lci("logs", sid, remote=remote).stdout
    first, plot, error = text.split("── ")[1:]
    assert " OK " in first and ">>> x = 41\n... print('hello from', 'the sandbox')" in first
    assert "\nhello from the sandbox\n" in first
    assert "[image image/png file-" in plot
    assert " ERROR " in error and ">>> 1 / 0" in error
    assert "!! ZeroDivisionError: division by zero" in error
    assert lci("logs", sid, "-n", "1", remote=remote).stdout.count("── ") == 1


def test_logs_follow_streams_an_execution_started_after_it(
    live_server: LiveServer, http: httpx.Client, tmp_path: Path
) -> None:
    cid, sid = new_session(http, "print('before')")
    proc = subprocess.Popen(
        [sys.executable, "-m", "interpreter", "logs", "-f", sid, "-n", "0"],
        env={**os.environ, "LCI_URL": live_server.url, "LCI_API_KEY": live_server.key},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()  # type: ignore[union-attr]

    def wait_for(text: str, timeout: float = 30) -> list[str]:
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                seen.append(lines.get(timeout=0.2))
            except queue.Empty:
                continue
            if text in seen[-1]:
                return seen
        raise AssertionError(f"{text!r} not in {seen}")

    try:
        time.sleep(2)  # lci logs -f is up and following
        code = "import time\nprint('tick-1', flush=True)\ntime.sleep(4)\nprint('tick-2')"
        done = threading.Event()
        threading.Thread(target=lambda: (run(http, cid, code), done.set()), daemon=True).start()
        head = wait_for(">>> import time")
        assert not any("before" in x for x in head)  # -n 0: no replay
        wait_for("tick-1")
        assert not done.is_set()  # streamed in while the code still runs
        tail = wait_for(" OK ")
        assert any("tick-2" in x for x in tail) and done.wait(10)
        http.delete(f"/v1/containers/{cid}")  # the session ends: so does the follow
        wait_for(f"── session {sid} ended (expired: container deleted)")
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- attach ------------------------------------------------------------------------------


def test_attach_runs_code_in_the_live_sandbox(
    live_server: LiveServer, http: httpx.Client, tmp_path: Path
) -> None:
    cid, sid = new_session(http, "from_http = 'set over HTTP'")
    home = tmp_path / "home"
    env = {**os.environ, "LCI_HOME": str(home), "TERM": "dumb"}
    child = pexpect.spawn(
        sys.executable,
        [
            "-m",
            "interpreter",
            "attach",
            sid[:12],
            "--url",
            live_server.url,
            "--api-key",
            live_server.key,
            "--out",
            "shots",
        ],
        env=env,
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 200),
    )
    try:
        child.expect(f"attached to {sid}")

        def do(line: str, then: str) -> None:
            child.expect_exact(">>> ")
            child.sendline(line)
            child.expect_exact(then)

        do("x = 41", ">>> ")
        child.sendline("print(x + 1, from_http)")
        child.expect_exact("42 set over HTTP")
        do("y = 'set by attach'", ">>> ")
        assert run(http, cid, "print(y, x)")["stdout"] == "set by attach 41\n"

        # a block, as the Python REPL takes it
        child.sendline("for i in range(3):")
        child.expect_exact("... ")
        child.sendline("    print('row', i * 2)")
        child.expect_exact("... ")
        child.sendline("")
        child.expect_exact("row 4")

        # Ctrl-C stops the running code; the prompt stays
        do("import time", ">>> ")
        child.sendline("while True: time.sleep(0.05)")
        child.expect_exact("... ")
        child.sendline("")
        time.sleep(1.5)
        child.sendintr()
        child.expect_exact("KeyboardInterrupt")
        do("print('still here', x)", "still here 41")

        # an image is saved and its path printed
        do(PLOT.replace("\n", "; "), "image: shots/")
        child.expect(r"(\S+\.png)")
        png = tmp_path / "shots" / Path(child.match.group(1)).name
        assert png.read_bytes().startswith(b"\x89PNG")

        # Ctrl-C at the prompt clears the line; Ctrl-D leaves
        child.expect_exact(">>> ")
        child.send("half a line")
        child.sendintr()
        child.expect_exact("KeyboardInterrupt")
        child.expect_exact(">>> ")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert "print(x + 1, from_http)" in (home / "attach_history").read_text()
    stops = [e for e in http.get(f"/v1/lci/sessions/{sid}/executions").json()["data"]]
    assert any(e["code"].startswith("while True") and "KeyboardInterrupt" in str(e["error"])
               for e in stops)  # fmt: skip
    http.delete(f"/v1/containers/{cid}")


FAKE_SANDBOX = """
import sys, types
import anyio
from anyio.from_thread import start_blocking_portal
from interpreter.cli.attach import Prompt
from interpreter.results import Execution, ExecutionStatus

class Fake:  # code "plot" makes 3 images, only the first downloads; "hang" waits for ^C
    stop = None

    async def execute(self, session_id, code, tenant=None, *, timeout=None, on_output=None):
        if code == "hang":
            self.stop = anyio.Event()
            await self.stop.wait()
        on_output("stdout", f"ran {code}\\n")
        images = [{"type": "image", "image": {"file_id": f"file-{i}"}} for i in range(3)]
        return Execution("e", session_id, "t", code, ExecutionStatus.OK,
                         outputs=images if code == "plot" else [])

    async def interrupt(self, session_id, tenant=None):
        print("interrupt sent", flush=True)
        self.stop.set()

    async def file(self, file_id):
        if file_id != "file-0":
            await anyio.sleep_forever()
        return "plot.png", b"PNG"

with start_blocking_portal() as portal:
    view = types.SimpleNamespace(id="sess", thread_id="t", tenant="")
    sys.exit(Prompt(portal, Fake(), view, __import__("pathlib").Path("out"), None).loop(
        __import__("pathlib").Path("history")))
"""


def test_attach_takes_ctrl_c_at_any_moment(tmp_path: Path) -> None:
    """A Ctrl-C right after typed-ahead input (which the terminal discards, and which
    readline may have been told about already), during a run, and while outputs are
    saved: each ends at a fresh prompt, never in a hang or a dead REPL. No sandbox
    needed: the inspector is a fake."""
    (tmp_path / "fake.py").write_text(FAKE_SANDBOX)
    child = pexpect.spawn(
        sys.executable,
        ["fake.py"],
        env={**os.environ, "TERM": "dumb"},
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=20,
    )
    try:
        child.expect_exact("Ctrl-D or `exit` leaves.")
        # before the fix about one try in four hung here, with the line gone unechoed
        for _ in range(30):
            child.expect_exact(">>> ")
            child.send("half a line")
            child.sendintr()
            child.expect_exact("KeyboardInterrupt")
        child.expect_exact(">>> ")
        child.sendline("plot")
        child.expect_exact("image: out/plot.png")
        time.sleep(0.3)  # the second download never ends
        child.sendintr()
        child.expect_exact("KeyboardInterrupt: 2 of 3 images and files not saved to out")
        child.expect_exact(">>> ")
        child.sendline("hang")
        time.sleep(0.3)
        child.sendintr()
        child.expect_exact("KeyboardInterrupt: interrupting the code")
        child.expect_exact("interrupt sent")
        child.expect_exact("ran hang")
        child.expect_exact(">>> ")
        child.sendline("print(1)")
        child.expect_exact("ran print(1)")
        child.expect_exact(">>> ")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    assert (tmp_path / "out" / "plot.png").read_bytes() == b"PNG"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["plot.png"]  # no part files


def test_attach_on_the_local_store_shares_the_kernel(
    live_server: LiveServer, http: httpx.Client, tmp_path: Path
) -> None:
    cid, sid = new_session(http, "shared = 'from the service'")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "interpreter", "attach", sid],
        env={**os.environ, "LCI_HOME": str(live_server.home), "TERM": "dumb"},
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=60,
    )
    try:
        child.expect_exact(">>> ")
        child.sendline("print(shared.upper())")
        child.expect_exact("FROM THE SERVICE")
        child.expect_exact(">>> ")
        http.delete(f"/v1/containers/{cid}")  # stopped under it: a clear message, exit 1
        child.sendline("print(1)")
        child.expect_exact(f"Session {sid} has ended (expired: container deleted)")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 1


# -- export ------------------------------------------------------------------------------


@pytest.mark.parametrize("remote", [True, False], ids=["remote", "local"])
def test_export_writes_a_valid_notebook_with_the_image(
    lci: Lci, shared: tuple[str, str], tmp_path: Path, remote: bool
) -> None:
    _, sid = shared
    out = tmp_path / "session.ipynb"
    assert lci("export", sid, "-o", str(out), remote=remote).stdout.startswith(str(out))
    nb = nbformat.read(out, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.source for c in code] == ["x = 41\nprint('hello from', 'the sandbox')", PLOT, "1 / 0"]
    assert code[0].outputs[0].text == "hello from the sandbox\n"
    png = [o for o in code[1].outputs if "image/png" in o.get("data", {})]
    assert png and png[0].data["image/png"].startswith("iVBOR")  # base64 of \x89PNG
    assert code[2].outputs[-1].output_type == "error"


def test_an_exported_notebook_reruns_top_to_bottom(
    lci: Lci, http: httpx.Client, tmp_path: Path
) -> None:
    from nbclient import NotebookClient

    cid, sid = new_session(http, "a = 20")
    run(http, cid, "b = a + 22\nprint('answer', b)")
    lci("export", sid, "-o", "re.ipynb")
    http.delete(f"/v1/containers/{cid}")
    nb = nbformat.read(tmp_path / "re.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    assert nb.cells[-1].outputs[0].text == "answer 42\n"


# -- stepping in -------------------------------------------------------------------------


def test_interrupt_restart_and_stop(lci: Lci, http: httpx.Client) -> None:
    cid, sid = new_session(http, "kept = 1")
    got: dict = {}
    loop = threading.Thread(target=lambda: got.update(run(http, cid, "while True: pass")))
    loop.start()
    time.sleep(1.5)
    assert lci("sessions", "interrupt", sid).stdout == f"interrupted {sid}\n"
    loop.join(30)
    assert got["status"] == "error" and got["error"]["ename"] == "KeyboardInterrupt"
    assert run(http, cid, "print(kept)")["stdout"] == "1\n"  # an interrupt keeps the state

    assert lci("sessions", "restart", sid).stdout == f"restarted {sid}\n"
    after = run(http, cid, "print('kept' in dir())")
    assert after["stdout"] == "False\n"

    assert lci("sessions", "stop", sid).stdout == f"stopped {sid}\n"
    d = json.loads(lci("sessions", "show", sid, "--json").stdout)
    assert d["state"] == "expired" and d["end_reason"] == "stopped by an operator"
    assert sid not in lci("sessions").stdout and sid in lci("sessions", "--all").stdout
    p = lci("sessions", "interrupt", sid, code=2)
    assert p.stderr.startswith(f"SessionEnded: Session {sid} has ended (expired: stopped by")
    assert "print(kept)" in lci("logs", sid).stdout  # history outlives the session
    assert "SessionEnded" in lci("attach", sid, code=2).stderr


def test_purge_forgets_old_history(lci: Lci, http: httpx.Client, live_server: LiveServer) -> None:
    from interpreter.store import Store

    cid, sid = new_session(http, "print('old news')")
    run(http, cid, "print('fresh')")
    store = Store(live_server.home / "lci.db")
    with store.transaction() as db:  # the first one ran 100 days ago
        db.execute(
            "UPDATE executions SET started_at = started_at - 8640000 WHERE session_id = ?"
            " AND data LIKE '%old news%'",
            (sid,),
        )
    store.close()
    assert "works on the local store only" in lci("sessions", "purge", code=2).stderr
    out = lci("sessions", "purge", "--days", "30", remote=False).stdout
    assert out.startswith("purged 1 executions")
    text = lci("logs", sid).stdout
    assert "fresh" in text and "old news" not in text
    http.delete(f"/v1/containers/{cid}")
