"""The sandbox boundary, attacked from inside real sandboxes: the host never trusts what a
sandbox writes, and no sandbox can hurt the host, another session or the truth of a result.

Each test is an attack from the review of the sandbox boundary (or a variation of it),
kept as a test. The isolation tests run under every runtime the suite knows (runc, and
runsc when CI registered it: see conftest.RUNTIMES)."""

from __future__ import annotations

import asyncio
import ctypes
import grp
import json
import os
import pwd
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from interpreter import ExecutionStatus, SessionManager, StorageFull

from ..conftest import RUNTIMES, make_settings

pytestmark = [pytest.mark.anyio, pytest.mark.docker]
MiB = 1024**2


@pytest.fixture(params=RUNTIMES)
def settings(settings, request):  # type: ignore[no-untyped-def]
    """Every test here runs under each runtime."""
    return make_settings(settings, runtime=request.param)


async def run(session, code: str, timeout: float = 60):  # type: ignore[no-untyped-def]
    return await session.execute(code, timeout=timeout)


ATTR = (  # struct mq_attr, for mq_open through ctypes
    "class Attr(ctypes.Structure):\n"
    "    _fields_ = [('flags', ctypes.c_long), ('maxmsg', ctypes.c_long),\n"
    "                ('msgsize', ctypes.c_long), ('cur', ctypes.c_long),\n"
    "                ('pad', ctypes.c_long * 4)]\n"
)
PROCS = (
    "import os\n"
    "procs = {}\n"
    "for p in os.listdir('/proc'):\n"
    "    if p.isdigit():\n"
    "        try:\n"
    "            st = open(f'/proc/{p}/status').read()\n"
    "        except OSError:\n"
    "            continue\n"
    "        uids = st.split('Uid:')[1].split('\\n')[0].split()\n"
    "        name = st.split('Name:')[1].split('\\n')[0].strip()\n"
    "        procs[int(p)] = (sorted({int(u) for u in uids}), name)\n"
    "print(procs)"
)


def procs_of(exe) -> dict[int, tuple[list[int], str]]:  # type: ignore[no-untyped-def]
    return eval(exe.stdout)  # a dict literal printed by PROCS


# -- 1. identity ------------------------------------------------------------------------


async def test_each_session_runs_under_uids_of_its_own(manager, docker_client):
    a, b = await manager.session("t-uid-a"), await manager.session("t-uid-b")
    seen = {}
    for s in (a, b):
        r = await run(s, PROCS)
        assert r.ok, r.error
        uids = {u for us, _ in procs_of(r).values() for u in us}
        rec = manager.store.get_session(s.id)
        assert uids == {rec.uid, rec.uid + 1}  # the launcher's and the kernel's, nothing else
        assert procs_of(r)[1][0] == [rec.uid]  # PID 1 is the launcher, not the kernel
        seen[s.id] = uids
        # the host agrees: under runc the container's first process runs as the
        # launcher's uid; under gVisor the host sees only gVisor's own sandbox process
        pid = docker_client.containers.get(s.sandbox.id).attrs["State"]["Pid"]
        host_uids = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split("\n")[0]
        if manager.settings.sandbox.runtime == "runsc":
            assert b"runsc" in Path(f"/proc/{pid}/cmdline").read_bytes()
        else:
            assert {int(u) for u in host_uids.split()} == {rec.uid}
    assert not seen[a.id] & seen[b.id]
    for uid in seen[a.id] | seen[b.id]:
        assert uid != 0
        with pytest.raises(KeyError):
            pwd.getpwuid(uid)  # no host account
        with pytest.raises(KeyError):
            grp.getgrgid(uid)


async def test_the_kernel_cannot_signal_trace_or_write_the_launcher(manager):
    session = await manager.session("t-launcher")
    r = await run(
        session,
        "import ctypes, os, signal, subprocess, sys\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "out = []\n"
        "for sig in (signal.SIGTERM, signal.SIGSTOP, signal.SIGKILL):\n"
        "    try:\n"
        "        os.kill(1, sig); out.append('SIGNALLED')\n"
        "    except PermissionError:\n"
        "        out.append('no-signal')\n"
        "r = libc.ptrace(16, 1, 0, 0)  # PTRACE_ATTACH\n"
        "out.append('no-ptrace' if r == -1 else 'TRACED')\n"
        "helper = ('import ctypes; l = ctypes.CDLL(None, use_errno=True);'\n"
        '          \'print("no-ptrace" if l.ptrace(16, 1, 0, 0) == -1 else "TRACED")\')\n'
        "p = subprocess.run([sys.executable, '-c', helper], start_new_session=True,\n"
        "                   capture_output=True, text=True)\n"
        "out.append(p.stdout.strip())\n"
        "for path in ('/run/lci/state/state.json', '/run/lci/state/x', '/run/lci/ctl/activity',\n"
        "             '/run/lci/ctl/connection.json', '/proc/1/environ', '/proc/1/mem'):\n"
        "    try:\n"
        "        open(path, 'a' if 'state' in path else 'r').close()\n"
        "        out.append('OPENED ' + path)\n"
        "    except OSError as e:\n"
        "        out.append(type(e).__name__)\n"
        "try:\n"
        "    os.listdir('/proc/1/fd'); out.append('LISTED')\n"
        "except OSError:\n"
        "    out.append('no-fd')\n"
        "print(' '.join(out))",
    )
    assert r.ok, r.error
    got = r.stdout.split()
    assert got[:9] == ["no-signal"] * 3 + ["no-ptrace"] * 2 + ["PermissionError"] * 4
    if manager.settings.sandbox.runtime == "runsc":
        # gVisor (20221219) lets any uid read /proc/1/environ and list /proc/1/fd: the
        # launcher keeps nothing secret there (the key is in a file only root read)
        key = manager.store.get_session(session.id).connection["key"]
        peek = await run(session, "print(open('/proc/1/environ', 'rb').read())")
        assert key not in peek.stdout
    else:
        assert got[9:] == ["PermissionError"] * 2 + ["no-fd"]
    assert (await run(session, "print('still here')")).stdout == "still here\n"


async def test_the_idle_watchdog_outlives_an_attempt_to_stop_it(settings, docker_client):
    s = make_settings(settings, idle_timeout=5)
    async with SessionManager(s, reaper=False) as m:  # no host reaper: the sandbox alone
        session = await m.session("t-watchdog")
        await run(
            session,
            "import os, signal, subprocess, sys\n"
            "subprocess.Popen([sys.executable, '-c', 'import os, signal, time\\n"
            "for _ in range(200):\\n"
            "    try: os.kill(1, signal.SIGSTOP)\\n"
            "    except OSError: pass\\n"
            "    time.sleep(0.05)'], start_new_session=True)",
        )
        container = docker_client.containers.get(session.sandbox.id)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        container.reload()
        if container.status != "running":
            break
        await asyncio.sleep(0.5)
    assert container.status != "running"  # it expired by itself, on time


async def test_per_uid_kernel_limits_are_each_sessions_own(manager):
    a, b = await manager.session("t-limits-a"), await manager.session("t-limits-b")
    hog = (
        (
            "import ctypes, os\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "held = []\n"
            "while True:\n"
            "    fd = libc.inotify_init1(0)\n"
            "    if fd < 0:\n"
            "        break\n"
            "    held.append(fd)\n"
        )
        + ATTR
        + (
            "queues = 0\n"
            "while queues < 1000:\n"
            "    attr = Attr(0, 10, 8192, 0)\n"
            "    name = f'/q{queues}'.encode()\n"
            "    q = libc.mq_open(name, os.O_CREAT | os.O_RDWR, 0o600, ctypes.byref(attr))\n"
            "    if q < 0:\n"
            "        break\n"
            "    queues += 1\n"
            "print(len(held), ctypes.get_errno(), queues)"
        )
    )
    r = await run(a, hog)
    inotify, _, queues = map(int, r.stdout.split())
    if (
        manager.settings.sandbox.runtime == "runc"
    ):  # under gVisor each sandbox has a kernel of its own
        assert 0 < inotify <= 8192 and 0 < queues < 1000  # a's own limits ran out...
    probe = (
        ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n")
        + ATTR
        + (
            "attr = Attr(0, 10, 8192, 0)\n"
            "print(libc.inotify_init1(0) >= 0,\n"
            "      libc.mq_open(b'/m', os.O_CREAT | os.O_RDWR, 0o600, ctypes.byref(attr)) >= 0)"
        )
    )
    assert (await run(b, probe)).stdout.split() == ["True", "True"]  # ...not b's

    fd = ctypes.CDLL(None, use_errno=True).inotify_init1(0)
    assert fd >= 0  # nor the host's
    os.close(fd)


# -- 2. the host's files ----------------------------------------------------------------


async def test_lci_home_is_private_and_nothing_from_a_sandbox_runs_on_the_host(manager):
    session = await manager.session("t-private")
    r = await run(
        session,
        "import os, shutil\n"
        "shutil.copy('/usr/bin/python3.11', '/mnt/data/py')\n"
        "os.chmod('/mnt/data/py', 0o6755)\n"
        "print(oct(os.stat('/mnt/data/py').st_mode))\n"
        "import matplotlib.pyplot as plt; plt.plot([1, 2]); plt.show()\n"
        "open('/mnt/data/out.txt', 'w').write('x')",
    )
    assert r.ok, r.error
    home = manager.settings.home
    disk = Path(manager.store.get_session(session.id).runtime_dir) / "disk"
    # the sandbox's disk is mounted nosuid,nodev,noexec on the host
    mount = next(
        line.split()
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4] == str(disk)
    )
    assert {"nosuid", "nodev", "noexec"} <= set(mount[5].split(","))
    py = disk / "data" / "py"
    with pytest.raises(PermissionError):
        subprocess.run([str(py), "-c", "print(1)"], check=False)  # noexec, even for root
    nobody = subprocess.run(
        ["cat", str(disk / "data" / "out.txt")], user=65534, capture_output=True, check=False
    )
    assert nobody.returncode != 0  # another local user cannot reach it
    # everything lci keeps is the service user's, 0700 / 0600; the sandboxes' own
    # directories on their disks are their uids', 0700, and never looked into here (every
    # live session's: with a warm pool, other sandboxes are there too)
    disks = [Path(r.runtime_dir) / "disk" for r in manager.records(live_only=True)]
    sandbox_dirs = {d / sub for d in disks for sub in ("data", "tmp", "sock", "state")}
    checked = 0
    for path in [home, *home.rglob("*")]:
        if any(p in sandbox_dirs for p in path.parents):
            continue
        st = path.lstat()
        checked += 1
        if path in sandbox_dirs:
            assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid != 0, path
        elif stat.S_ISDIR(st.st_mode):
            assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o700, os.getuid()), path
        else:
            assert stat.S_ISREG(st.st_mode), path
            assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o600, os.getuid()), path
    assert checked > 20


async def test_restart_ends_every_process_and_clears_tmp_and_shm(settings):
    s = make_settings(settings, disk_limit=64 * MiB)
    async with SessionManager(s) as m:
        session = await m.session("t-restart-clean")
        r = await run(
            session,
            "import os, subprocess\n"
            "subprocess.Popen(['sleep', '1000'], start_new_session=True)\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        import time; time.sleep(1000)\n"
            "    os._exit(0)\n"
            "open('/dev/shm/left', 'w').write('x')\n"
            "written = 0\n"
            "try:\n"
            "    with open('/tmp/fill', 'wb') as f:\n"
            "        while True:\n"
            "            f.write(b'x' * (1 << 20)); f.flush(); written += 1\n"
            "except OSError as e:\n"
            "    print(written, e.errno)",
        )
        assert r.ok and r.stdout.split()[1] == "28"  # ENOSPC: /tmp is on the capped disk
        await session.restart()
        r = await run(
            session,
            PROCS.replace("print(procs)", "")
            + "\nprint(sorted(n for _, n in procs.values()), os.listdir('/tmp') == [] or\n"
            " sorted(os.listdir('/tmp')), os.listdir('/dev/shm'))\n"
            "open('/tmp/again', 'wb').write(b'y' * (8 << 20)); print('room')",
        )
        assert r.ok, r.error
        listing, room = r.stdout.splitlines()
        procs, tmp, shm = listing.split("] ")
        assert procs.strip("[").replace("'", "").split(", ") == ["python", "python"], listing
        assert "fill" not in tmp and shm == "[]" and room == "room"
        await m.stop_all()


# -- 3. disk quotas -----------------------------------------------------------------------


async def test_the_disk_cap_is_enforced_in_blocks_and_inodes(settings):
    s = make_settings(settings, disk_limit=64 * MiB)
    async with SessionManager(s) as m:
        full, other = await m.session("t-disk-full"), await m.session("t-disk-other")
        r = await run(
            full,
            "written = 0\n"
            "try:\n"
            "    with open('/mnt/data/big', 'wb') as f:\n"
            "        for _ in range(5 * 1024):\n"
            "            f.write(b'x' * (1 << 20)); f.flush(); written += 1\n"
            "except OSError as e:\n"
            "    print(written, e.errno)\n"
            "import os; os.remove('/mnt/data/big')\n"
            "n = 0\n"
            "try:\n"
            "    while True:\n"
            "        open(f'/mnt/data/f{n}', 'w').close(); n += 1\n"
            "except OSError as e:\n"
            "    print(n, e.errno)\n"
            "for i in range(n): os.remove(f'/mnt/data/f{i}')",
        )
        assert r.ok, r.error
        (mb, errno1), (files, errno2) = (map(int, line.split()) for line in r.stdout.splitlines())
        assert errno1 == errno2 == 28 and 40 <= mb < 64 and 1000 < files <= s.sandbox.inodes
        assert (await run(other, "open('/mnt/data/ok', 'wb').write(b'z' * (8 << 20))")).ok
        used = sum(
            os.stat(Path(m.store.get_session(x.id).runtime_dir) / "disk.img").st_blocks * 512
            for x in (full, other)
        )
        assert used < 2 * 64 * MiB  # what the sandboxes wrote costs the host no more
        await m.stop_all()


async def test_sparse_files_and_hard_links_do_not_amplify_on_the_host(manager):
    session = await manager.session("t-sparse")
    blobs = manager.settings.blobs_dir

    def stored() -> int:
        return sum(p.stat().st_blocks * 512 for p in blobs.rglob("*") if p.is_file())

    before = stored()
    r = await run(
        session,
        "import os\n"
        "for i in range(16):\n"
        "    with open(f'/mnt/data/sparse{i}', 'wb') as f:\n"
        "        f.truncate(250 << 20); f.write(b'0123456789abcdef')\n"
        "open('/mnt/data/real', 'wb').write(os.urandom(4 << 20))\n"
        "for i in range(40):\n"
        "    os.link('/mnt/data/real', f'/mnt/data/link{i}')",
    )
    assert r.ok, r.error
    sparse = [f for f in r.skipped_files if "sparse" in f["reason"]]
    assert len(sparse) == 16 and all("/mnt/data/sparse" in f["path"] for f in sparse)
    assert len(r.files) == 41 and len({f.file_id for f in r.files}) == 41
    shas = {manager.files.info(f.file_id).sha256 for f in r.files}
    assert len(shas) == 1  # one blob for the file and its 40 links
    assert stored() - before < 8 * MiB  # not 4 GiB of zeros, not 41 copies


async def test_lci_home_keeps_its_free_space_floor(settings, tmp_path):
    image, home = tmp_path / "home.img", Path(f"/tmp/lci-small-{os.getpid()}")
    home.mkdir()
    subprocess.run(["truncate", "-s", "400M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(home)], check=True)
    try:
        s = make_settings(settings, home=home, disk_limit=64 * MiB, min_free=150 * MiB)
        async with SessionManager(s) as m:
            started = []
            with pytest.raises(StorageFull, match="LCI_MIN_FREE"):
                for n in range(10):
                    started.append(await m.session(f"t-floor-{n}"))
            assert 2 <= len(started) < 10
            for session in started:  # each fills its whole disk: the home is not hurt
                await run(
                    session,
                    "try:\n    open('/mnt/data/f', 'wb').write(b'x' * (100 << 20))\n"
                    "except OSError: pass",
                )
            assert m.files.free() >= 148 * MiB  # the floor, less what SQLite wrote since
            fid = await m.files.upload(b"small", filename="a.txt")
            filler = home / "filler"
            subprocess.run(["fallocate", "-l", str(m.files.free() - 100 * MiB), str(filler)])
            with pytest.raises(StorageFull):
                await m.files.upload(b"more", filename="b.txt")
            await m.files.delete(fid)  # deleting works below the floor
            await started[0].stop()  # and so does stopping
            filler.unlink()
            assert (await m.files.upload(b"more", filename="b.txt")).startswith("file-")
            await m.stop_all()
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)
        home.rmdir()


# -- 4 and 5: what the host takes from a sandbox, and believes --------------------------


async def test_bad_file_names_are_skipped_and_lose_nothing(manager):
    session = await manager.session("t-names")
    r = await run(
        session,
        "import os\n"
        "open('/mnt/data/a.txt', 'w').write('a')\n"
        "open(b'/mnt/data/bad\\xff\\xfe.txt', 'wb').write(b'b')\n"
        "open('/mnt/data/evil\\x01.txt', 'w').write('e')\n"
        "open('/mnt/data/\\x1b[31mred.txt', 'w').write('r')\n"
        "os.mkdir(b'/mnt/data/dir\\xff'); open(b'/mnt/data/dir\\xff/inner.txt', 'wb').write(b'i')\n"
        "open('/mnt/data/zz.txt', 'w').write('z')",
    )
    assert r.ok, r.error
    assert sorted(f.path for f in r.files) == ["/mnt/data/a.txt", "/mnt/data/zz.txt"]
    reasons = {f["path"]: f["reason"] for f in r.skipped_files}
    assert reasons == {
        "/mnt/data/bad\\xff\\xfe.txt": "its name is not valid UTF-8",
        "/mnt/data/evil\\x01.txt": "its name contains control characters",
        "/mnt/data/\\x1b[31mred.txt": "its name contains control characters",
        "/mnt/data/dir\\xff": "its name is not valid UTF-8",
    }
    assert [f.path for f in await session.list_files()] == ["a.txt", "zz.txt"]
    assert manager.history.get(r.id)["status"] == "ok"
    await session.stop()
    fresh = await manager.session("t-names")  # the next session has every good file back
    assert [f.path for f in await fresh.list_files()] == ["a.txt", "zz.txt"]


async def test_forged_launcher_state_changes_nothing_the_host_believes(manager):
    session = await manager.session("t-forged")
    assert (await run(session, "x = 41")).ok
    state = Path(manager.store.get_session(session.id).runtime_dir) / "disk/state/state.json"
    real = json.loads(state.read_text())
    # what a compromised launcher could write: a restart, an OOM death, a depth bomb
    forged = {**real, "generation": real["generation"] + 1}
    forged["exits"] = [{"generation": real["generation"], "oom": True, "signal": 9}]
    state.write_text(json.dumps(forged))
    r = await run(session, "print(x + 1)")
    assert r.ok and r.stdout == "42\n" and not r.state_lost and r.notice is None
    state.write_text("[" * 60000)
    r = await asyncio.wait_for(run(session, "print(x + 1)"), 60)
    assert r.ok and r.stdout == "42\n"


async def test_deaths_are_reported_as_the_engine_saw_them(settings):
    s = make_settings(settings, memory=256 * MiB)
    async with SessionManager(s) as m:
        session = await m.session("t-deaths")
        r = await run(session, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
        assert r.status is ExecutionStatus.DIED
        assert "killed by SIGKILL" in r.error.evalue and "memory" not in r.error.evalue
        r = await run(session, "x = bytearray(1 << 30); x[::4096] = b'1' * len(x[::4096])")
        assert r.status is ExecutionStatus.DIED
        assert "out of memory" in r.error.evalue and "256 MiB" in r.error.evalue
        assert (await run(session, "print('fresh')")).stdout == "fresh\n"
        await m.stop_all()


async def test_a_missing_execute_reply_is_an_error(manager):
    session = await manager.session("t-noreply")
    r = await run(
        session,
        "k = get_ipython().kernel\n"
        "async def swallow(*args, **kwargs):\n"
        "    return None\n"
        "k.shell_handlers['execute_request'] = swallow",
    )
    assert r.ok
    r = await run(session, "print('never runs')")
    assert r.status is ExecutionStatus.ERROR and r.error.ename == "NoReply"
    assert manager.history.get(r.id)["status"] == "error"
    await session.restart()
    assert (await run(session, "print('back')")).stdout == "back\n"


async def test_a_host_side_failure_settles_the_execution_as_lost(manager, monkeypatch):
    session = await manager.session("t-lost")

    async def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("the blob store fell over")

    monkeypatch.setattr(session.outputs, "finish", broken)
    with pytest.raises(RuntimeError):
        await run(session, "print(1)")
    (entry,) = manager.history.entries(session_id=session.id)
    assert entry["status"] == "lost" and "the blob store fell over" in entry["error"]["evalue"]
    monkeypatch.undo()
    assert (await run(session, "print(2)")).stdout == "2\n"


async def test_a_swapped_socket_is_never_followed(settings):
    canary_path = f"/tmp/lci-canary-{os.getpid()}.sock"
    canary = socket.socket(socket.AF_UNIX)
    canary.bind(canary_path)
    canary.listen(100)
    canary.setblocking(False)
    try:
        async with SessionManager(settings) as m:
            session = await m.session("t-swap")
            r = await run(
                session,
                "import os\n"
                "for n in (1, 2, 4):\n"
                "    os.rename(f'/run/lci/sock/kernel-{n}', f'/run/lci/sock/old-{n}')\n"
                f"    os.symlink({canary_path!r}, f'/run/lci/sock/kernel-{{n}}')\n"
                "x = 'state'",
            )
            assert r.ok, r.error
        async with SessionManager(settings) as m2:  # another process re-attaches
            session = await m2.session("t-swap")
            r = await run(session, "print('after')")
            assert r.ok and r.stdout == "after\n" and r.state_lost
            assert "tampered" in r.notice
            await m2.stop_all()
        with pytest.raises(BlockingIOError):
            canary.accept()  # the host never connected to the socket of the sandbox's choosing
    finally:
        canary.close()
        os.unlink(canary_path)


async def test_a_hostile_kernel_cannot_make_a_result_lie_or_the_host_hang(manager):
    session = await manager.session("t-closed")
    r = await run(
        session,
        "import os, socket\n"
        "for fd in range(3, 200):\n"  # close the kernel's iopub and shell connections
        "    try:\n"
        "        if socket.socket(fileno=os.dup(fd)).family == socket.AF_UNIX:\n"
        "            os.close(fd)\n"
        "    except OSError:\n"
        "        pass\n"
        "import time; time.sleep(1)\n"
        "print('gone quiet')",
        timeout=30,
    )
    assert r.status is not ExecutionStatus.OK
    r = await run(session, "print('recovered')")
    assert r.ok and "recovered" in r.stdout


# -- the numbers a terminal shows ----------------------------------------------------------


async def test_lci_run_escapes_terminal_controls(settings, tmp_path):
    env = {**os.environ, "LCI_HOME": str(settings.home), "LCI_IMAGE": settings.sandbox.image or ""}
    env["LCI_RUNTIME"] = settings.sandbox.runtime
    code = "print('\\x1b]0;pwned\\x07 \\x1b[2J \\x9b31m')\nopen('a\\x1b[1m.txt', 'w').write('x')"
    done = subprocess.run(
        [sys.executable, "-m", "interpreter", "run", "--out", str(tmp_path), code],
        env=env,
        capture_output=True,
        check=False,
        cwd=tmp_path,
    )
    out = done.stdout + done.stderr
    assert b"\x1b" not in out and b"\x07" not in out and b"\xc2\x9b" not in out
    assert b"\\x1b]0;pwned\\x07" in done.stdout
    assert b"not collected: /mnt/data/a\\x1b[1m.txt" in done.stderr


def test_the_image_has_no_setuid_files(sandbox_image: str, docker_client: docker.DockerClient):
    out = docker_client.containers.run(
        sandbox_image,
        ["sh", "-c", "find / -xdev -perm /6000 -type f 2>/dev/null; getent passwd 1000; true"],
        remove=True,
        network_mode="none",
    )
    assert bytes(out).decode().strip() == ""
