"""Timeouts, dying kernels, idle expiry, and sessions that outlive their process."""

from __future__ import annotations

import asyncio
import time

import anyio
import pytest

from interpreter import ExecutionStatus, SessionManager, SessionState

from ..conftest import RUNTIMES, make_settings

pytestmark = [pytest.mark.anyio, pytest.mark.docker]


@pytest.fixture(params=RUNTIMES)
def settings(settings, request):  # type: ignore[no-untyped-def]
    """Every test here runs under each runtime (conftest.RUNTIMES)."""
    return make_settings(settings, runtime=request.param)


async def test_timeout_interrupts_and_keeps_state(manager):
    session = await manager.session("t-timeout")
    await session.execute("kept = 'yes'")
    t0 = time.monotonic()
    r = await session.execute("import time\nwhile True:\n    time.sleep(0.01)", timeout=2)
    assert r.status is ExecutionStatus.TIMEOUT
    assert not r.state_lost and not r.kernel_restarted
    assert "interrupted; state is kept" in r.error.evalue
    assert time.monotonic() - t0 < 2 + manager.settings.timeouts.interrupt_grace
    assert (await session.execute("print(kept)")).stdout == "yes\n"


async def test_code_that_ignores_interrupts_gets_a_restarted_kernel(manager):
    session = await manager.session("t-stubborn")
    await session.execute("lost = 1\nopen('/mnt/data/keep.txt', 'w').write('kept')")
    r = await session.execute(
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
        timeout=1,
    )
    assert r.status is ExecutionStatus.TIMEOUT
    assert r.state_lost and r.kernel_restarted and "restarted" in r.error.evalue
    r = await session.execute("print('lost' in globals(), open('/mnt/data/keep.txt').read())")
    assert r.stdout == "False kept\n"


async def test_kernel_exit_is_reported_and_the_next_call_works(manager):
    session = await manager.session("t-exit")
    await session.execute("open('/mnt/data/survivor.txt', 'w').write('still here')\nv = 1")
    r = await session.execute("import os\nos._exit(1)")
    assert r.status is ExecutionStatus.DIED and r.state_lost
    assert r.error.ename == "KernelDied" and "exited with code 1" in r.error.evalue
    r = await session.execute("print('v' in globals(), open('/mnt/data/survivor.txt').read())")
    assert r.ok and r.stdout == "False still here\n"


async def test_out_of_memory_names_the_cause_and_the_limit(settings):
    small = make_settings(settings, memory=256 * 1024**2)
    async with SessionManager(small) as manager:
        session = await manager.session("t-oom")
        r = await session.execute(
            "hog = []\nwhile True:\n    hog.append(bytearray(32 * 1024 * 1024))", timeout=60
        )
        assert r.status is ExecutionStatus.DIED
        assert "out of memory" in r.error.evalue and "256 MiB" in r.error.evalue
        r = await session.execute("print('alive')")
        assert r.ok and r.stdout == "alive\n"
        await manager.stop_all()


async def test_idle_session_is_reaped_by_the_host_and_the_thread_restarts(settings, docker_client):
    quick = make_settings(settings, idle_timeout=2)
    async with SessionManager(quick) as manager:
        fid = await manager.files.upload(b"1,2\n", filename="in.csv")
        session = await manager.session("t-idle", file_ids=[fid])
        r = await session.execute("x = 5\nopen('/mnt/data/made.txt', 'w').write('m')")
        produced = r.files[0].file_id
        container_id, old_id = session.sandbox.id, session.id
        await anyio.sleep(4.5)  # reaper wakes every 0.5 s here
        assert manager.store.get_session(old_id).state is SessionState.EXPIRED
        assert not docker_client.containers.list(all=True, filters={"id": container_id})
        assert await manager.files.content(produced) == b"m"  # its files are kept
        r = await session.execute(
            "print('x' in globals(), open('/mnt/data/in.csv').read(), end='')"
        )
        assert r.ok and r.stdout == "False 1,2\n"
        assert r.state_lost and r.kernel_restarted and "lost" in r.notice and "expired" in r.notice
        assert session.id != old_id
        await manager.stop_all()


async def test_sandbox_expires_by_itself_when_the_host_is_gone(settings, docker_client):
    quick = make_settings(settings, idle_timeout=2)
    manager = SessionManager(quick, reaper=False)  # no host-side expiry at all
    session = await manager.session("t-watchdog")
    await session.execute("1")
    container = docker_client.containers.get(session.sandbox.id)
    await manager.close()
    for _ in range(40):
        container.reload()
        if container.status != "running":
            break
        await anyio.sleep(0.25)
    assert container.status == "exited"
    # the next process sweeps it away and starts fresh
    async with SessionManager(quick, reaper=False) as again:
        r = await (await again.session("t-watchdog")).execute("1 + 1")
        assert r.ok and r.state_lost
        assert not docker_client.containers.list(all=True, filters={"id": container.id})
        await again.stop_all()


async def test_a_second_manager_reattaches_and_orphans_are_swept(settings, docker_client):
    async with SessionManager(settings) as first:
        s1 = await first.session("t-persist")
        await s1.execute("remembered = 'from the first process'")
        container = s1.sandbox.id
    orphan = docker_client.containers.run(
        settings.sandbox.image,
        ["sleep", "300"],
        detach=True,
        labels={"lci.managed": "1", "lci.home": settings.home_id, "lci.session": "sess_nobody"},
        network_mode="none",
    )
    async with SessionManager(settings) as second:
        s2 = await second.session("t-persist")
        assert s2.sandbox.id == container and s2.id == s1.id
        r = await s2.execute("print(remembered)")
        assert r.stdout == "from the first process\n" and not r.state_lost
        assert not docker_client.containers.list(all=True, filters={"id": orphan.id})
        await second.stop_all()


async def test_two_managers_on_one_thread_are_serialised(settings):
    code = "import time\nt0 = time.time()\ntime.sleep(0.6)\nprint(t0, time.time())"
    async with SessionManager(settings) as a, SessionManager(settings) as b:
        sa = await a.session("t-serial")
        sb = await b.session("t-serial")
        assert sa.sandbox.id == sb.sandbox.id
        ra, rb = await asyncio.gather(sa.execute(code), sb.execute(code))
        (a0, a1), (b0, b1) = (map(float, r.stdout.split()) for r in (ra, rb))
        assert a1 <= b0 or b1 <= a0, "the two executions overlapped"
        await a.stop_all()
