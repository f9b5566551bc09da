"""Warm pool benchmark: prints one JSON object, every number beside its cold start or
floor measured in the same run.

    .venv/bin/python bench/bench_pool.py [--n 10] [--calls 200] [--no-http] [--density N]

* first_result_ms.library: a new thread's ``session()`` + first ``x = 1`` result,
  claimed from the pool (p50 over --n threads, the pool refilled between them), against
  ``cold`` (the same with LCI_POOL_SIZE=0); target 30 ms
* first_result_ms.http: ``POST /v1/containers`` + the first ``POST .../executions``
  through a real ``lci serve`` with a pool; target 50 ms
* first_plot_ms: a new thread's first ``plt.show()`` of a small plot (claimed, so the
  stack is preloaded), against the cold one and against a plot in a session that has
  drawn before (``warm_session_again``: what drawing and encoding cost); target 120 ms
* round_trip_ms: ``x = 1`` on a claimed session, against the floor (a bare
  jupyter_client on the same image: bench_core.bare_kernel), in alternating blocks of
  BLOCK so both see the same machine; target ratio 1.15
* pooled_memory_mib: a ready pooled sandbox with LCI_PRELOAD imported (engine stats,
  cache excluded); target 120; pooled_idle_cpu_percent: its CPU over 5 s (of one core)
* --density N: N idle sessions started side by side, then the service-side manager's
  RSS, the host's idle CPU over 10 s and the memory of all of them (not in CI)

Each number says whether it met its target (``meets``); a miss is reported, never hidden.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

from interpreter import SessionManager, Settings
from interpreter.image import build_image
from interpreter.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import bare_kernel, summary  # the sibling scripts (bench/ is not a package)
from bench_http import Server, sweep

PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()"
BLOCK = 25  # round trips of the engine, then of the floor, in turn
TARGETS = {"library": 30.0, "http": 50.0, "plot": 120.0, "ratio": 1.15, "memory": 120.0}


def mib(stats: dict[str, Any]) -> float:
    m = stats["memory_stats"]
    return (m.get("usage", 0) - m.get("stats", {}).get("inactive_file", 0)) / 2**20


async def first_results(m: SessionManager, n: int, code: str, pooled: bool) -> list[float]:
    out = []
    for i in range(n):
        if pooled:
            await m.pool.wait_ready()
        t = time.perf_counter()
        s = await m.session(f"first-{code[:6]}-{i}-{time.time_ns()}")
        r = await s.execute(code)
        out.append((time.perf_counter() - t) * 1000)
        assert r.ok, r.error
        await s.stop()
    return out


async def library(settings: Settings, n: int, calls: int) -> dict[str, Any]:
    async with SessionManager(settings, pool=True) as m:
        await m.pool.wait_ready()
        warm = await first_results(m, n, "x = 1", True)
        plots = await first_results(m, max(n // 2, 2), PLOT, True)
        await m.pool.wait_ready()
        s = await m.session("warm")
        again = []  # a plot in a session that has drawn one: what drawing itself costs
        for _ in range(3):
            t = time.perf_counter()
            assert (await s.execute(PLOT)).images
            again.append((time.perf_counter() - t) * 1000)
        for _ in range(20):
            await s.execute("x = 1")
        trips: list[float] = []
        floor_trips: list[float] = []
        image = settings.sandbox.image
        assert image is not None
        async with bare_kernel(image) as bare:  # the floor, interleaved in blocks
            for done in range(0, calls, BLOCK):  # so that both see the same machine
                for _ in range(min(BLOCK, calls - done)):
                    t = time.perf_counter()
                    await s.execute("x = 1")
                    trips.append((time.perf_counter() - t) * 1000)
                for _ in range(min(BLOCK, calls - done)):
                    t = time.perf_counter()
                    await bare()
                    floor_trips.append((time.perf_counter() - t) * 1000)
        await m.pool.wait_ready()
        client = docker.from_env()
        pooled = m.store.pooled()
        memory = [mib(client.containers.get(r.sandbox_id).stats(stream=False)) for r in pooled]
        client.close()
        await m.usage(pooled)
        await asyncio.sleep(5)
        cpu = [c for _, c in (await m.usage(pooled)).values()]
        await m.pool.stop()
        await m.stop_all()
    cold_settings = settings.replace(home=settings.home / "cold", pool_size=0)
    async with SessionManager(cold_settings) as m:
        cold = await first_results(m, max(n // 3, 2), "x = 1", False)
        cold_plot = await first_results(m, 2, PLOT, False)
        await m.stop_all()
    return {
        "first_result_ms": {"library": summary(warm), "cold": summary(cold)},
        "first_plot_ms": {
            "pooled": summary(plots),
            "cold": summary(cold_plot),
            "warm_session_again": summary(again[1:]),
        },
        "round_trip_ms": summary(trips),
        "floor_round_trip_ms": summary(floor_trips),
        "pooled_memory_mib": round(statistics.mean(memory), 1),
        "pooled_idle_cpu_percent": round(statistics.mean(cpu), 2) if cpu else None,
    }


def http(image: str, home: Path, n: int) -> dict[str, Any]:
    home.mkdir(parents=True, exist_ok=True)
    server = Server(home, image, pool_size=2)  # its pooled sandboxes: swept at the end
    store = Store(home / "lci.db")
    out = []
    try:
        server.start()
        with server.client() as c:
            for i in range(n):
                deadline = time.monotonic() + 120
                while len(store.pooled()) < 2 and time.monotonic() < deadline:
                    time.sleep(0.1)
                t = time.perf_counter()
                cid = server.create_container(c, f"first-{i}")
                r = c.post(f"/v1/containers/{cid}/executions", json={"code": "x = 1"})
                out.append((time.perf_counter() - t) * 1000)
                r.raise_for_status()
                c.delete(f"/v1/containers/{cid}", timeout=30)
                server.containers.remove(cid)
    finally:
        server.close()
        store.close()
    return summary(out)


async def density(settings: Settings, count: int) -> dict[str, Any]:
    """``count`` idle sessions side by side: what the host holds, and what it costs idle."""
    async with SessionManager(settings.replace(pool_size=0)) as m:
        t = time.perf_counter()
        sessions = []
        for i in range(count):
            try:
                sessions.append(await m.session(f"idle-{i}"))
            except Exception as exc:  # the host's admission said no: that is the answer
                error = f"{type(exc).__name__}: {exc}"
                break
        else:
            error = None
        started_s = time.perf_counter() - t
        await asyncio.sleep(5)
        cpu0 = _host_cpu()
        await asyncio.sleep(10)
        cpu1 = _host_cpu()
        busy = (cpu1[0] - cpu0[0]) / max(cpu1[1] - cpu0[1], 1) * 100
        usage = await m.usage([s.record for s in sessions])  # in parallel, from the engine
        total = sum(memory for memory, _ in usage.values()) / 2**20
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        await m.stop_all()
    return {
        "sessions": len(sessions),
        "asked": count,
        "refused": error,
        "start_all_s": round(started_s, 1),
        "host_cpu_busy_percent_idle": round(busy, 1),
        "sandboxes_memory_mib": round(total, 1),
        "manager_rss_mib": round(rss, 1),
    }


def _host_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole host, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def verdicts(out: dict[str, Any]) -> dict[str, bool]:
    f = out["first_result_ms"]
    v = {
        "first_result_library": f["library"]["p50"] <= TARGETS["library"],
        "first_plot": out["first_plot_ms"]["pooled"]["p50"] <= TARGETS["plot"],
        "round_trip_ratio": out["ratio_round_trip_p50"] <= TARGETS["ratio"],
        "pooled_memory": out["pooled_memory_mib"] <= TARGETS["memory"],
    }
    if "http" in f:
        v["first_result_http"] = f["http"]["p50"] <= TARGETS["http"]
    return v


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10, help="new threads per measurement")
    p.add_argument("--calls", type=int, default=200, help="warm round trips (and floor)")
    p.add_argument("--no-http", action="store_true")
    p.add_argument("--density", type=int, default=0, help="idle sessions to hold (not in CI)")
    args = p.parse_args()
    image = os.environ.get("LCI_IMAGE") or build_image(progress=lambda line: None)
    home = Path(tempfile.mkdtemp(prefix="lci-bp-", dir="/tmp"))
    settings = Settings.of(home=home / "lib", image=image, pool_size=2, disk_limit=64 * 2**20)
    try:
        out = asyncio.run(library(settings, args.n, args.calls))
        out["ratio_round_trip_p50"] = round(
            out["round_trip_ms"]["p50"] / out["floor_round_trip_ms"]["p50"], 2
        )
        if not args.no_http:
            out["first_result_ms"]["http"] = http(image, home / "srv", args.n)
        if args.density:
            out["density"] = asyncio.run(density(settings.replace(home=home / "d"), args.density))
        out["targets"] = TARGETS
        out["meets"] = verdicts(out)
        out["machine"] = {"cpus": os.cpu_count(), "image": image}
    finally:
        for sub in ("lib", "lib/cold", "srv", "d"):
            sweep(Settings.of(home=home / sub))
        prefix = f"{home}/"
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for point in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
