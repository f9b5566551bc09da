"""Core engine benchmark: prints one JSON object.

    .venv/bin/python bench/bench_core.py [--calls 300] [--cold 5] [--idle 4] [--runtimes runc,runsc]

* cold_start_s: a new thread's session, from the call to its first result (``1``)
* round_trip_ms: ``x = 1`` on a warm session (p50, p90, p99)
* first_plot_s: the first ``plt.show()`` in a fresh session
* idle_memory_mib: memory of an idle session's container (mean over --idle sessions)
* floor_round_trip_ms: the same round trip with a bare jupyter_client talking to an
  ipykernel in a container of the same image over ipc sockets: the floor; ``ratio``
  is engine p50 / floor p50 (target: within 1.5x; cold start under 1.5 s).
* runtimes: the engine's numbers under each OCI runtime side by side (runc, and gVisor's
  runsc when the engine has it registered), so the price of gVisor is visible; the
  top-level numbers are the first runtime's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import docker
from jupyter_client.asynchronous import AsyncKernelClient

from interpreter import SessionManager, Settings
from interpreter.image import build_image


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(p / 100 * len(s)))], 3)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": pct(values, 50),
        "p90": pct(values, 90),
        "p99": pct(values, 99),
        "n": len(values),
    }


async def engine(settings: Settings, calls: int, cold: int, idle: int) -> dict[str, object]:
    async with SessionManager(settings) as m:
        starts = []
        for i in range(cold):
            t = time.perf_counter()
            s = await m.session(f"cold-{i}")
            r = await s.execute("1")
            assert r.ok
            starts.append(time.perf_counter() - t)
        s = await m.session("warm")
        for _ in range(20):
            await s.execute("x = 1")
        trips = []
        for _ in range(calls):
            t = time.perf_counter()
            await s.execute("x = 1")
            trips.append((time.perf_counter() - t) * 1000)
        plot = await m.session("plot")
        t = time.perf_counter()
        r = await plot.execute("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()")
        first_plot = time.perf_counter() - t
        assert r.images, r.error
        idle_sessions = [await m.session(f"idle-{i}") for i in range(idle)]
        await asyncio.sleep(2)
        client = docker.from_env()
        mem = []
        for sess in idle_sessions:
            stats = client.containers.get(sess.sandbox.id).stats(stream=False)
            usage = stats["memory_stats"].get("usage", 0) - stats["memory_stats"].get(
                "stats", {}
            ).get("cache", 0)
            mem.append(usage / 2**20)
        client.close()
        await m.stop_all()
    return {
        "cold_start_s": summary(starts),
        "round_trip_ms": summary(trips),
        "first_plot_s": round(first_plot, 3),
        "idle_memory_mib": round(statistics.mean(mem), 1),
    }


@contextlib.asynccontextmanager
async def bare_kernel(image: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """A bare jupyter_client and an ipykernel in a container, nothing of lci in between:
    yields one warm ``x = 1`` round trip (a coroutine function)."""
    tmp = Path(tempfile.mkdtemp(prefix="lci-floor-", dir="/tmp"))
    tmp.chmod(0o777)
    conn = {
        "transport": "ipc",
        "ip": "/k/kernel",
        "shell_port": 1,
        "iopub_port": 2,
        "stdin_port": 3,
        "control_port": 4,
        "hb_port": 5,
        "key": secrets.token_hex(16),
        "signature_scheme": "hmac-sha256",
        "kernel_name": "python3",
    }
    (tmp / "c.json").write_text(json.dumps(conn))
    client = docker.from_env()
    c = client.containers.run(
        image,
        ["python", "-m", "ipykernel_launcher", "-f", "/k/c.json", "--HistoryManager.enabled=False"],
        detach=True,
        user="2000000001:2000000001",  # a uid no host account has, as every sandbox's
        network_mode="none",
        read_only=True,
        tmpfs={"/tmp": ""},
        volumes={str(tmp): {"bind": "/k", "mode": "rw"}},
        environment={"HOME": "/tmp"},
    )
    try:
        kc = AsyncKernelClient()
        kc.load_connection_info(dict(conn, ip=str(tmp / "kernel")))
        kc.start_channels(hb=False)
        await kc.wait_for_ready(timeout=60)

        async def once() -> None:
            msg_id = kc.execute("x = 1")
            while True:
                msg = await kc.get_iopub_msg(timeout=10)
                if (
                    msg["parent_header"].get("msg_id") == msg_id
                    and msg["msg_type"] == "status"
                    and msg["content"]["execution_state"] == "idle"
                ):
                    break
            while (await kc.get_shell_msg(timeout=10))["parent_header"].get("msg_id") != msg_id:
                pass

        for _ in range(20):
            await once()
        try:
            yield once
        finally:
            kc.stop_channels()
    finally:
        c.remove(force=True)
        client.close()


async def floor(image: str, calls: int) -> dict[str, object]:
    """The floor's round trip, p50/p90/p99 over ``calls``."""
    async with bare_kernel(image) as once:
        trips = []
        for _ in range(calls):
            t = time.perf_counter()
            await once()
            trips.append((time.perf_counter() - t) * 1000)
    return summary(trips)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--cold", type=int, default=5)
    p.add_argument("--idle", type=int, default=4)
    p.add_argument("--runtimes", default="runc,runsc", help="comma-separated OCI runtimes")
    args = p.parse_args()
    image = os.environ.get("LCI_IMAGE") or build_image(
        progress=lambda line: print(line, file=sys.stderr)
    )
    runtimes = {}
    for runtime in args.runtimes.split(","):  # a home each: a thread keeps its runtime
        home = Path(tempfile.mkdtemp(prefix=f"lci-bench-{runtime}-", dir="/tmp"))
        settings = Settings.of(home=home, image=image, runtime=runtime)
        runtimes[runtime] = asyncio.run(engine(settings, args.calls, args.cold, args.idle))
    result = dict(next(iter(runtimes.values())))
    result["runtimes"] = runtimes
    result["floor_round_trip_ms"] = asyncio.run(floor(image, args.calls))
    result["ratio_round_trip_p50"] = round(
        result["round_trip_ms"]["p50"] / result["floor_round_trip_ms"]["p50"],
        2,  # type: ignore[index]
    )
    result["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "image": image,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
