"""The sandbox is hardened by default (real Docker, hostile code)."""

from __future__ import annotations

import time

import docker
import pytest

from interpreter import ExecutionStatus
from interpreter.layout import PIDS_SCALE

from ..conftest import RUNTIMES, make_settings

pytestmark = [pytest.mark.anyio, pytest.mark.docker]


@pytest.fixture(params=RUNTIMES)
def settings(settings, request):  # type: ignore[no-untyped-def]
    """Every test here runs under each runtime (conftest.RUNTIMES)."""
    return make_settings(settings, runtime=request.param)


async def test_container_is_configured_hardened(
    manager, docker_client: docker.DockerClient, settings
):
    session = await manager.session("t-hard")
    attrs = docker_client.containers.get(session.sandbox.id).attrs
    host = attrs["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    # only what the launcher needs to become the session's two uids; the kernel keeps none
    assert host["CapDrop"] == ["ALL"] and host["CapAdd"] == ["SETUID", "SETGID", "KILL", "SETPCAP"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["Memory"] == settings.sandbox.memory == 1024**3
    assert host["MemorySwap"] == settings.sandbox.memory  # no swap on top
    pids = settings.sandbox.pids_limit * PIDS_SCALE.get(settings.sandbox.runtime, 1)
    assert host["NanoCpus"] == int(settings.sandbox.cpus * 1e9) and host["PidsLimit"] == pids
    assert host["Runtime"] == settings.sandbox.runtime
    seccomp = [o for o in host["SecurityOpt"] if o.startswith("seccomp=")]
    assert len(seccomp) == 1 and '"SCMP_ACT_ERRNO"' in seccomp[0]  # images/seccomp.json
    assert not host.get("Tmpfs")  # /tmp is on the session's disk
    assert host["Ulimits"] == [
        {"Name": "nproc", "Soft": pids, "Hard": pids},
        {"Name": "nofile", "Soft": 1024, "Hard": 1024},
    ]
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "1"}}
    assert not host.get("PortBindings") and not attrs["NetworkSettings"].get("Ports")
    assert host["Privileged"] is False
    rec = manager.store.get_session(session.id)
    assert attrs["Config"]["User"] == "0:0"  # for the launcher's first instants only
    assert attrs["Config"]["Cmd"][-4:] == [
        "--launcher-uid",
        str(rec.uid),
        "--kernel-uid",
        str(rec.uid + 1),
    ]
    labels = attrs["Config"]["Labels"]
    assert labels["lci.managed"] == "1" and labels["lci.session"] == session.id
    assert labels["lci.thread"] == "t-hard" and labels["lci.home"] == settings.home_id
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert set(mounts) == {
        "/mnt/data",
        "/tmp",
        "/run/lci/ctl",
        "/run/lci/sock",
        "/run/lci/state",
        "/dev/pts/ptmx",
    }
    assert mounts["/run/lci/ctl"]["RW"] is False


async def test_hostile_code_is_contained(manager):
    session = await manager.session("t-hostile")
    r = await session.execute(
        "import os, socket\n"
        "print(os.getuid(), os.geteuid())\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=3)\n"
        "    print('NETWORK OPEN')\n"
        "except OSError as e:\n"
        "    print('no network:', type(e).__name__)\n"
        "for path in ('/usr/evil', '/etc/evil', '/opt/lci/kernels/evil.py'):\n"
        "    try:\n"
        "        open(path, 'w')\n"
        "        print('WROTE', path)\n"
        "    except OSError as e:\n"
        "        print('read-only:', path, e.errno)\n"
        "open('/tmp/scratch', 'w').write('tmp is writable')\n"
        "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])"
    )
    assert r.ok, r.error
    lines = r.stdout.splitlines()
    uid, euid = map(int, lines[0].split())
    assert uid != 0 and euid != 0
    assert lines[1].startswith("no network:")
    assert [line.split()[0] for line in lines[2:5]] == ["read-only:"] * 3
    assert int(lines[5], 16) == 0  # no effective capabilities


async def test_fork_bomb_is_stopped_by_the_pids_limit(manager, docker_client):
    session = await manager.session("t-forkbomb")
    r = await session.execute(
        "import os, time\n"
        "children, failed = 0, None\n"
        "for _ in range(5000):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError as e:\n"
        "        failed = e.errno\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(30)\n"
        "        os._exit(0)\n"
        "    children += 1\n"
        "print(children, failed)",
        timeout=60,
    )
    if (
        manager.settings.sandbox.runtime == "runsc"
    ):  # gVisor's limit counts its own threads too: the
        assert r.status is ExecutionStatus.DIED  # whole sandbox dies, nothing else does
    else:
        children, failed = r.stdout.split()
        assert int(children) < manager.settings.sandbox.pids_limit and failed == "11"  # EAGAIN
    # the host stays healthy: the engine answers and other sandboxes still start and run
    t0 = time.monotonic()
    assert docker_client.ping()
    other = await manager.session("t-after-bomb")
    assert (await other.execute("print(6 * 7)")).stdout == "42\n"
    assert time.monotonic() - t0 < 60
    # and the bombed session itself is still usable after cleaning up its children
    r = await session.execute("1 + 1")
    assert r.status is ExecutionStatus.OK
