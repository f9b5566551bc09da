"""The warm pool on the real engine: a new thread claims a ready sandbox (with its files,
as an ordinary session), a pooled sandbox never serves two threads, an empty pool means
a cold start, quotas still refuse, a restart adopts the pool, and the sandbox boundary
holds for a claimed sandbox as for a cold one (the boundary tests imported at the end
run here against claimed sandboxes)."""

from __future__ import annotations

import docker
import pytest

from interpreter import QuotaExceeded, SessionManager, SessionState
from interpreter.inspection.local import LocalInspector
from interpreter.quotas import Quota, Quotas
from interpreter.server.metrics import Metrics

from ..conftest import RUNTIMES, make_settings

# the boundary's attacks, run here on claimed sandboxes (this module's fixtures apply)
from .test_boundary import (  # noqa: F401
    test_bad_file_names_are_skipped_and_lose_nothing,
    test_each_session_runs_under_uids_of_its_own,
    test_forged_launcher_state_changes_nothing_the_host_believes,
    test_lci_home_is_private_and_nothing_from_a_sandbox_runs_on_the_host,
    test_per_uid_kernel_limits_are_each_sessions_own,
    test_sparse_files_and_hard_links_do_not_amplify_on_the_host,
    test_the_kernel_cannot_signal_trace_or_write_the_launcher,
)

pytestmark = [pytest.mark.anyio, pytest.mark.docker]
GiB = 1024**3


@pytest.fixture(params=RUNTIMES)
def settings(settings, request):  # type: ignore[no-untyped-def]
    """Two ready sandboxes: enough for the boundary tests' two threads to both claim."""
    return make_settings(settings, runtime=request.param, pool_size=2, disk_limit=64 * 1024**2)


@pytest.fixture
async def manager(settings):  # type: ignore[no-untyped-def]
    async with SessionManager(settings, pool=True) as m:
        assert await m.pool.wait_ready() == 2
        yield m
        await m.pool.stop()  # no refill while everything stops
        await m.stop_all()


async def test_a_new_thread_claims_a_ready_sandbox_as_an_ordinary_session(manager):
    ready = {r.id for r in manager.store.pooled()}
    fid = await manager.files.upload(b"a,b\n1,2\n", "data.csv")
    s = await manager.session("t-claim", file_ids=[fid])
    assert s.id in ready and s.thread_id == "t-claim"
    rec = manager.store.get_session(s.id)
    assert (rec.thread_id, rec.tenant, rec.pool) == ("t-claim", "", None)
    r = await s.execute(
        "import sys\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'matplotlib.pyplot') if m in sys.modules))\n"
        "print(sorted(n for n in dir() if not n.startswith('_')))\n"
        "print(open('/mnt/data/data.csv').read())"
    )
    assert r.ok, r.error
    mods, names, data = r.stdout.split("\n", 2)
    assert mods == "['matplotlib.pyplot', 'numpy', 'pandas']"  # preloaded
    for name in ("np", "numpy", "pd", "pandas", "plt", "matplotlib", "io", "importlib", "os"):
        assert f"'{name}'" not in names  # and nothing bound in the user's namespace
    assert data.startswith("a,b\n1,2")
    r = await s.execute("import numpy as np, pandas as pd\nprint(pd.DataFrame({'a': [1]}).a[0])")
    assert r.ok and r.stdout == "1\n"
    plot = await s.execute("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()")
    assert plot.ok and plot.images
    # it is the thread's session now: found again, listed under the thread, recorded
    assert (await manager.session("t-claim")).id == s.id
    assert (await manager.find("t-claim")).id == s.id
    codes = [e["code"] for e in manager.history.entries(session_id=s.id)]
    assert codes[0].startswith("import sys") and len(codes) == 3
    assert await manager.pool.wait_ready() == 2  # and the pool was refilled


async def test_a_pooled_sandbox_never_serves_a_second_thread(manager, docker_client):
    a = await manager.session("t-one")
    await a.execute("secret = 42")
    container = a.sandbox.id
    await a.stop()
    b = await manager.session("t-two")
    assert b.id != a.id and b.sandbox.id != container
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(container)  # destroyed, not recycled
    assert manager.store.get_session(a.id).state is SessionState.EXPIRED
    assert container not in {r.sandbox_id for r in manager.store.pooled()}
    r = await b.execute("print('secret' in dir())")
    assert r.stdout == "False\n"


async def test_an_empty_pool_falls_back_to_a_cold_start(manager):
    await manager.pool.stop()  # no refill while this test empties it
    got = [await manager.session(f"t-empty-{i}") for i in range(3)]
    assert manager.pool.claims == {"warm": 2, "cold": 1}
    assert not manager.store.pooled()
    for s in got:
        assert (await s.execute("print(1)")).stdout == "1\n"


async def test_a_claim_is_admitted_like_a_start(settings):
    one = Quota(sessions=1, memory=64 * GiB, memory_limit=GiB, stored=GiB, executions=1000)
    quotas = Quotas(one, {})
    async with SessionManager(settings, pool=True, quotas=quotas) as m:
        await m.pool.wait_ready()
        ready = {r.id for r in m.store.pooled()}
        first = await m.session("t-q1", tenant="alice")
        assert first.id in ready
        before = {r.id for r in m.store.pooled()}
        with pytest.raises(QuotaExceeded):
            await m.session("t-q2", tenant="alice")
        assert before <= {r.id for r in m.store.pooled()}  # the refusal took nothing
        assert (await m.session("t-b1", tenant="bob")).tenant == "bob"
        await m.pool.stop()
        await m.stop_all()


async def test_a_restarted_service_adopts_the_pool_and_orphans_nothing(settings, docker_client):
    async with SessionManager(settings, pool=True) as m:
        await m.pool.wait_ready()
        ready = {r.id for r in m.store.pooled()}
    async with SessionManager(settings, pool=True) as m:  # the sweep keeps them: live records
        assert {r.id for r in m.store.pooled()} == ready
        s = await m.session("t-after")
        assert s.id in ready and (await s.execute("print(1)")).stdout == "1\n"
        # a pooled sandbox's container vanishes while no process watches: a claim skips
        # it (and ends its record), the thread gets another, the filler replaces it
        gone = next(r for r in m.store.pooled())
        docker_client.containers.get(gone.sandbox_id).remove(force=True)
        other = await m.session("t-after-2")
        assert other.id != gone.id and (await other.execute("print(2)")).stdout == "2\n"
        assert not m.store.get_session(gone.id).state.live
        assert await m.pool.wait_ready() == 2
        labels = {"label": ["lci.managed=1", f"lci.home={settings.home_id}"]}
        for c in docker_client.containers.list(all=True, filters=labels):
            rec = m.store.get_session(c.labels["lci.session"])
            assert rec is not None and rec.state.live  # every container has a live record
        await m.pool.stop()
        await m.stop_all()
        assert not docker_client.containers.list(all=True, filters=labels)


async def test_the_pool_shows_in_metrics_and_sessions(manager):
    metrics = Metrics()
    metrics.watch(manager)
    text = metrics.render().decode()
    runtime = manager.settings.sandbox.runtime
    assert f'lci_pool_ready{{runtime="{runtime}"}} 2.0' in text
    views = await LocalInspector(manager).sessions()
    assert [v.thread_id for v in views].count("(pool)") == 2
    assert all(v.tenant == "" for v in views if v.thread_id == "(pool)")


async def test_a_claim_takes_the_threads_idle_timeout_up_to_the_pools(manager):
    ready = {r.id for r in manager.store.pooled()}
    short = await manager.session("t-short", idle_timeout=120)
    assert short.id in ready and manager.store.get_session(short.id).idle_timeout == 120
    longer = manager.settings.timeouts.idle_timeout * 2  # past the pooled watchdog's
    cold = await manager.session("t-long", idle_timeout=longer)
    assert cold.id not in ready and manager.store.get_session(cold.id).idle_timeout == longer
