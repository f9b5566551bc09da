"""HTTP service benchmark: prints one JSON object.

    .venv/bin/python bench/bench_http.py [--n 300] [--concurrency 4] [--seconds 10] [--quick]

* library_rt_ms: ``x = 1`` on a warm session through the in-process ``SessionManager``
  (the round trip of bench_core.py), p50/p90/p99
* http_rt_ms: the same execution through a real ``lci serve`` on loopback, one
  keep-alive ``httpx.Client``: ``POST /v1/containers/{id}/executions`` (``v1``) and the
  Azure legacy ``POST /code/execute?identifier=...`` (``azure``)
* http_retrieve_rt_ms: ``GET /v1/containers/{id}`` on the same connection: the HTTP
  stack (auth, routing, a store lookup, JSON) without an execution
* http_overhead_ms_p50: http (v1) p50 minus library p50; target: 1.5 ms at most
  (``meets_target``). Library and HTTP rounds are interleaved in blocks, after warm-up,
  so both see the same machine.
* bare_http_rt_ms: the same request with the same client to ``bare_http.py`` (uvicorn
  as ``lci serve`` runs it, an app that only reads the body and answers): what HTTP
  itself costs on this machine; ``lci_http_stack_ms_p50`` is the overhead minus it, what
  lci's own stack (auth, routing, validation, lookups, the answer) adds.
* throughput: --concurrency containers, each driven by its own client thread running
  the code in a loop for --seconds: executions/s in all and per session, latency under
  load (p50/p90). ``library_throughput`` is the same load on in-process sessions;
  ``throughput_ratio`` HTTP over library, target 0.9 (``meets_throughput_target``).
  ``cpu_ms_per_execution``: CPU time per execution of the clients (this process) and of
  the service (``lci serve``; in process: the manager), which share the machine's cores
  with the kernels

The server gets its own LCI_HOME under /tmp and an executions quota out of the way
(``LCI_QUOTAS``); every sandbox this script made (the
library's and the server's, which outlive the server by design) is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import httpx

from interpreter import SessionManager, Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import summary  # the sibling script (bench/ is not a package)

KEY = "key-alice-6f1d0c9a2b7e4d3f8a5c1e0b"  # keys are at least 32 characters
KEYS = f"alice:{KEY},bob:key-bob-3e8b5a1c7d2f9e4a6b0c8d1f2a"
AZURE_QUERY = {"api-version": "2024-02-02-preview"}
CODES = {"assign": "x = 1", "sum": "sum(range(1000))"}
TARGET_MS = 1.5  # HTTP's p50 over the library's (issue 14; the service issue's was 2)
THROUGHPUT_TARGET = 0.9  # HTTP's executions/s over the library's, same load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the server -----------------------------------------------------------------------


class Server:
    """``lci serve`` in a subprocess with its own home; ``close`` removes all it made."""

    def __init__(self, home: Path, image: str, pool_size: int = 0) -> None:
        """``pool_size``: the server's LCI_POOL_SIZE (0 here: the warm round trips this
        script measures need no pool, and a pooled sandbox outlives the server)."""
        self.home, self.image, self.pool_size = home, image, pool_size
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.containers: list[str] = []
        self.identifiers: list[str] = []

    def start(self) -> None:
        env = {
            **os.environ,
            "LCI_HOME": str(self.home),
            "LCI_IMAGE": self.image,
            "LCI_API_KEYS": KEYS,
            # a benchmark measures speed, not the quota: 4 sessions looping make more than the
            # default executions per minute (600) on a fast run
            "LCI_QUOTAS": "executions=1000000",
            "LCI_POOL_SIZE": str(self.pool_size),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "interpreter", "serve", "--port", str(self.port)],
            env=env,
            stdout=open(self.log, "wb"),  # noqa: SIM115 - the process owns it
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lci serve exited: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"lci serve did not come up: {self.log.read_text()}")

    def cpu_seconds(self) -> float:
        """CPU time the service's process has used (user + system)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120
        )

    def create_container(self, client: httpx.Client, name: str) -> str:
        r = client.post("/v1/containers", json={"name": name})
        r.raise_for_status()
        cid: str = r.json()["id"]
        self.containers.append(cid)
        return cid

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with self.client() as c:
                for cid in self.containers:
                    with contextlib.suppress(httpx.HTTPError):
                        c.delete(f"/v1/containers/{cid}", timeout=30)
                for ident in self.identifiers:
                    with contextlib.suppress(httpx.HTTPError):
                        c.delete("/session", params={**AZURE_QUERY, "identifier": ident})
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class BareHttp:
    """``bare_http.py`` in a subprocess: HTTP with nothing of lci behind it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        script = Path(__file__).resolve().parent / "bare_http.py"
        self.proc = subprocess.Popen(
            [sys.executable, str(script), "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.post(self.url, json={}, timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.close()
        raise RuntimeError("bare_http.py did not come up")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def sweep(settings: Settings) -> int:
    """Safety net: remove every sandbox labelled with this home."""
    client = docker.from_env()
    n = 0
    try:
        for c in client.containers.list(all=True, filters={"label": "lci.managed"}):
            if c.labels.get("lci.home") == settings.home_id:
                c.remove(force=True)
                n += 1
    finally:
        client.close()
    return n


# -- measurements ---------------------------------------------------------------------


def timed(fn: Callable[[], None], n: int, out: list[float]) -> None:
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)


def round_trips(
    loop: asyncio.AbstractEventLoop,
    manager: SessionManager,
    server: Server,
    n: int,
    warmup: int,
    block: int,
) -> dict[str, list[float]]:
    """Library, v1 and Azure round trips of ``x = 1``, interleaved in blocks."""
    session = loop.run_until_complete(manager.session("bench-library"))
    client = server.client()
    cid = server.create_container(client, "bench")
    ident = "bench-azure"
    server.identifiers.append(ident)
    v1_path = f"/v1/containers/{cid}/executions"
    azure_params = {**AZURE_QUERY, "identifier": ident}

    def v1() -> None:
        r = client.post(v1_path, json={"code": "x = 1"})
        if r.status_code != 200 or r.json()["status"] != "ok":
            raise RuntimeError(f"v1 execution failed: {r.status_code} {r.text}")

    def retrieve() -> None:  # the HTTP stack and a store lookup, no execution
        r = client.get(f"/v1/containers/{cid}")
        if r.status_code != 200:
            raise RuntimeError(f"retrieve failed: {r.status_code} {r.text}")

    bare_server = BareHttp()
    bare_client = httpx.Client(base_url=bare_server.url, headers=client.headers, timeout=120)

    def bare() -> None:  # the same request to HTTP with nothing behind it
        r = bare_client.post(v1_path, json={"code": "x = 1"})
        if r.status_code != 200:
            raise RuntimeError(f"bare HTTP failed: {r.status_code}")

    def azure() -> None:
        r = client.post(
            "/code/execute", params=azure_params, json={"properties": {"code": "x = 1"}}
        )
        if r.status_code != 200 or r.json()["properties"]["status"] != "Success":
            raise RuntimeError(f"azure execution failed: {r.status_code} {r.text}")

    async def lib_block(k: int, out: list[float]) -> None:
        for _ in range(k):
            t = time.perf_counter()
            r = await session.execute("x = 1")
            out.append((time.perf_counter() - t) * 1000)
            if not r.ok:
                raise RuntimeError(f"library execution failed: {r.error}")

    trash: list[float] = []
    loop.run_until_complete(lib_block(warmup, trash))
    timed(v1, warmup, trash)
    timed(azure, warmup, trash)
    timed(retrieve, warmup, trash)
    timed(bare, warmup, trash)

    out: dict[str, list[float]] = {
        "library": [], "v1": [], "azure": [], "retrieve": [], "bare": []
    }  # fmt: skip
    done = 0
    while done < n:
        k = min(block, n - done)
        loop.run_until_complete(lib_block(k, out["library"]))
        timed(v1, k, out["v1"])
        timed(azure, k, out["azure"])
        timed(retrieve, k, out["retrieve"])
        timed(bare, k, out["bare"])
        done += k
    client.close()
    bare_client.close()
    bare_server.close()
    return out


def http_throughput(server: Server, sessions: int, seconds: float, code: str) -> dict[str, Any]:
    """``sessions`` containers, each with its own client thread executing in a loop."""
    setup = server.client()
    cids = [server.create_container(setup, f"load-{i}") for i in range(sessions)]
    setup.close()
    lat: list[list[float]] = [[] for _ in cids]
    counts = [0] * sessions
    errors: list[str] = []
    start = threading.Barrier(sessions + 1)
    stop_at = [0.0]

    def worker(i: int) -> None:
        try:
            with server.client() as c:
                path = f"/v1/containers/{cids[i]}/executions"
                for _ in range(3):  # warm the connection and the kernel
                    c.post(path, json={"code": code}).raise_for_status()
                start.wait(timeout=300)
                while (t := time.perf_counter()) < stop_at[0]:
                    r = c.post(path, json={"code": code})
                    lat[i].append((time.perf_counter() - t) * 1000)
                    if r.status_code != 200 or r.json()["status"] != "ok":
                        raise RuntimeError(f"{r.status_code} {r.text[:200]}")
                    counts[i] += 1
        except Exception as exc:  # reported by the main thread
            errors.append(repr(exc))
            start.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(sessions)]
    stop_at[0] = time.perf_counter() + seconds + 3600  # until the barrier opens
    for th in threads:
        th.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait(timeout=300)
    t0, cpu0 = time.perf_counter(), (time.process_time(), server.cpu_seconds())
    stop_at[0] = t0 + seconds
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    client_cpu, service_cpu = time.process_time() - cpu0[0], server.cpu_seconds() - cpu0[1]
    if errors:
        raise RuntimeError(f"throughput executions failed: {errors[0]}")
    out = _load_result(code, sessions, elapsed, counts, lat)
    n = max(out["executions"], 1)
    # where the two cores went: the clients (this process: httpx), the service
    out["cpu_ms_per_execution"] = {
        "client": round(client_cpu * 1000 / n, 3),
        "service": round(service_cpu * 1000 / n, 3),
    }
    return out


async def library_throughput(
    manager: SessionManager, sessions: int, seconds: float, code: str
) -> dict[str, Any]:
    """The same load on in-process sessions: what the HTTP numbers compare to."""
    ss = [await manager.session(f"lib-load-{i}") for i in range(sessions)]
    for s in ss:
        for _ in range(3):
            await s.execute(code)
    lat: list[list[float]] = [[] for _ in ss]
    counts = [0] * sessions
    t0 = time.perf_counter()
    stop_at = t0 + seconds

    async def worker(i: int) -> None:
        while (t := time.perf_counter()) < stop_at:
            r = await ss[i].execute(code)
            lat[i].append((time.perf_counter() - t) * 1000)
            if not r.ok:
                raise RuntimeError(f"library execution failed: {r.error}")
            counts[i] += 1

    cpu0 = time.process_time()
    await asyncio.gather(*(worker(i) for i in range(sessions)))
    elapsed = time.perf_counter() - t0
    out = _load_result(code, sessions, elapsed, counts, lat)
    cpu = (time.process_time() - cpu0) * 1000 / max(out["executions"], 1)
    out["cpu_ms_per_execution"] = {"service": round(cpu, 3)}  # the manager, in process
    return out


def _load_result(
    code: str, sessions: int, elapsed: float, counts: list[int], lat: list[list[float]]
) -> dict[str, Any]:
    every = [x for per in lat for x in per]
    return {
        "code": code,
        "sessions": sessions,
        "seconds": round(elapsed, 2),
        "executions": sum(counts),
        "per_s": round(sum(counts) / elapsed, 1),
        "per_session_per_s": [round(c / elapsed, 1) for c in counts],
        "latency_ms": summary(every),
    }


# -- main -----------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=300, help="round trips per route")
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--block", type=int, default=25, help="interleaving block size")
    p.add_argument("--concurrency", type=int, default=4, help="sessions under load")
    p.add_argument("--seconds", type=float, default=10, help="duration of each load run")
    p.add_argument("--codes", default="assign,sum", help=f"load codes: {','.join(CODES)}")
    p.add_argument("--no-library-load", action="store_true")
    p.add_argument("--quick", action="store_true", help="smoke size: --n 10 --seconds 2")
    args = p.parse_args()
    if args.quick:
        args.n, args.warmup, args.block, args.seconds = 10, 3, 5, 2.0
        args.concurrency = min(args.concurrency, 2)
    codes = [CODES[c.strip()] for c in args.codes.split(",") if c.strip()]

    if os.environ.get("LCI_IMAGE"):
        image = os.environ["LCI_IMAGE"]
    else:
        from interpreter.image import build_image

        image = build_image(progress=lambda line: print(line, file=sys.stderr))

    lib_home = Path(tempfile.mkdtemp(prefix="lci-bl-", dir="/tmp"))
    srv_home = Path(tempfile.mkdtemp(prefix="lci-bs-", dir="/tmp"))
    lib_settings = Settings.of(home=lib_home, image=image)
    srv_settings = Settings.of(home=srv_home, image=image)
    server = Server(srv_home, image)
    loop = asyncio.new_event_loop()
    manager = SessionManager(lib_settings)
    result: dict[str, Any] = {}
    try:
        loop.run_until_complete(manager.open())
        server.start()
        rt = round_trips(loop, manager, server, args.n, args.warmup, args.block)
        lib, v1, az = summary(rt["library"]), summary(rt["v1"]), summary(rt["azure"])
        overhead = round(v1["p50"] - lib["p50"], 3)
        result["library_rt_ms"] = lib
        result["http_rt_ms"] = {"v1": v1, "azure": az}
        result["http_retrieve_rt_ms"] = summary(rt["retrieve"])
        result["http_overhead_ms_p50"] = overhead
        result["azure_overhead_ms_p50"] = round(az["p50"] - lib["p50"], 3)
        # what HTTP itself costs here (the same client, loopback, uvicorn, a JSON body
        # read and an answer written), and what lci's stack adds on top of it
        bare = summary(rt["bare"])
        result["bare_http_rt_ms"] = bare
        result["lci_http_stack_ms_p50"] = round(overhead - bare["p50"], 3)
        result["target_ms"] = TARGET_MS
        result["meets_target"] = overhead <= TARGET_MS
        result["throughput"] = [
            http_throughput(server, args.concurrency, args.seconds, code) for code in codes
        ]
        if not args.no_library_load:
            result["library_throughput"] = [
                loop.run_until_complete(
                    library_throughput(manager, args.concurrency, args.seconds, code)
                )
                for code in codes
            ]
            result["throughput_ratio"] = [
                round(h["per_s"] / lib["per_s"], 2)
                for h, lib in zip(result["throughput"], result["library_throughput"], strict=True)
            ]
            result["throughput_target"] = THROUGHPUT_TARGET
            result["meets_throughput_target"] = all(
                r >= THROUGHPUT_TARGET for r in result["throughput_ratio"]
            )
    finally:
        server.close()
        try:
            loop.run_until_complete(manager.stop_all())
        finally:
            loop.run_until_complete(manager.close())
            loop.close()
        result["leftover_sandboxes_removed"] = sweep(srv_settings) + sweep(lib_settings)
        for s in (srv_settings, lib_settings):
            shutil.rmtree(s.home, ignore_errors=True)
    result["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "image": image,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
