"""Sixteen tenants at once against a real ``lci serve``, through their quotas being hit and
released: prints one JSON object and checks it against the floor in the same run.

    .venv/bin/python bench/bench_tenants.py [--tenants 16] [--seconds 60] [--quick]

Each tenant (a thread with its own key, quota ``sessions=2``; 1 with --quick) loops: it
creates containers until its quota refuses one (a 429, counted), runs code in each whose
output names the
tenant, the round and the container, then deletes one container (the quota is released)
and goes on. At the end every container is deleted. Checked:

* no output lost or duplicated: every 200 answer carries exactly the output its code
  printed, every execution id is unique, and the history holds each execution once;
* quotas hit and released: every tenant saw 429s and starts after them;
* no container left on the engine for this LCI_HOME once all are deleted;
* flat memory: the service's RSS after the run, against after the warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import docker
import httpx

RSS_GROWTH_MIB = 40  # the floor: what the service may grow by over the run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1]) / 1024


class Tenant(threading.Thread):
    def __init__(self, name: str, key: str, url: str, until: float, sessions: int) -> None:
        super().__init__(name=name)
        self.key, self.url, self.until, self.sessions = key, url, until, sessions
        self.stats = {"executions": 0, "refused": 0, "started": 0, "starts_after_refusal": 0}
        self.errors: list[str] = []
        self.ids: list[str] = []

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=120) as http:
            boxes: list[str] = []
            refused_before = False
            rnd = 0
            while time.monotonic() < self.until:
                rnd += 1
                for _ in range(self.sessions + 1):  # start containers until the quota refuses
                    r = http.post("/v1/containers", json={"name": f"{self.name}-{rnd}"})
                    if r.status_code == 429:
                        self.stats["refused"] += 1
                        refused_before = True
                        break
                    if r.status_code != 200:
                        self.errors.append(f"create: {r.status_code} {r.text[:200]}")
                        break
                    boxes.append(r.json()["id"])
                    self.stats["started"] += 1
                    self.stats["starts_after_refusal"] += refused_before
                for box in boxes:
                    self.execute(http, box, f"{self.name}/{rnd}/{box[-8:]}")
                if boxes:
                    http.delete(f"/v1/containers/{boxes.pop(0)}")  # releases the quota
            for box in boxes:
                http.delete(f"/v1/containers/{box}")

    def execute(self, http: httpx.Client, box: str, tag: str) -> None:
        r = http.post(f"/v1/containers/{box}/executions", json={"code": f"print({tag!r})"})
        if r.status_code != 200:
            self.errors.append(f"execute: {r.status_code} {r.text[:200]}")
            return
        exe = r.json()
        if exe["status"] != "ok" or exe["stdout"] != tag + "\n":
            self.errors.append(f"wrong output for {tag}: {exe['status']} {exe['stdout']!r}")
        self.ids.append(exe["id"])
        self.stats["executions"] += 1


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tenants", type=int, default=16)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--sessions", type=int, default=2, help="each tenant's sessions quota")
    p.add_argument("--quick", action="store_true", help="a short run (the test suite's)")
    args = p.parse_args()
    if args.quick:
        args.seconds, args.sessions = min(args.seconds, 40), 1
    home = Path(tempfile.mkdtemp(prefix="lci-tenants-", dir="/tmp"))
    keys = {f"t{n:02d}": "lci-" + secrets.token_urlsafe(32) for n in range(args.tenants)}
    port = free_port()
    env = {
        **os.environ,
        "LCI_HOME": str(home),
        "LCI_API_KEYS": ",".join(f"{t}:{k}" for t, k in keys.items()),
        "LCI_QUOTAS": f"sessions={args.sessions},memory=4g,executions=6000",
        "LCI_DISK_LIMIT": "64m",
        # no warm pool: its ready sandboxes outlive the run by design and would count as left
        "LCI_POOL_SIZE": "0",
    }
    log = open(home / "serve.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "interpreter", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {"tenants": args.tenants, "seconds": args.seconds}
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        warm = Tenant("warm", next(iter(keys.values())), url, time.monotonic() + 3, args.sessions)
        warm.run()
        rss_start = rss_mib(server.pid)
        until = time.monotonic() + args.seconds
        tenants = [Tenant(t, k, url, until, args.sessions) for t, k in keys.items()]
        for t in tenants:
            t.start()
        for t in tenants:
            t.join()
        rss_end = rss_mib(server.pid)
        ids = [i for t in tenants for i in t.ids]
        recorded = history_ids(url, keys)
        sessions_left = engine_leftovers(home)
        result.update(
            executions=sum(t.stats["executions"] for t in tenants),
            refused_429=sum(t.stats["refused"] for t in tenants),
            starts=sum(t.stats["started"] for t in tenants),
            every_tenant_hit_and_released=all(
                t.stats["refused"] and t.stats["starts_after_refusal"] for t in tenants
            ),
            errors=[e for t in tenants for e in t.errors][:20],
            duplicated_ids=len(ids) - len(set(ids)),
            history_matches=sorted(ids) == sorted(recorded),
            containers_left=sessions_left,
            rss_mib={"after_warmup": round(rss_start, 1), "after_run": round(rss_end, 1)},
        )
        growth = rss_end - rss_start
        result["rss_growth_mib"] = round(growth, 1)
        result["floor"] = {"rss_growth_mib": RSS_GROWTH_MIB}
        result["ok"] = (
            not result["errors"]
            and result["duplicated_ids"] == 0
            and result["history_matches"]
            and result["containers_left"] == 0
            and result["every_tenant_hit_and_released"]
            and growth <= RSS_GROWTH_MIB
        )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        engine_sweep(home)
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(result, indent=2))
    sys.exit(0 if result.get("ok") else 1)


def history_ids(url: str, keys: dict[str, str]) -> list[str]:
    """Every execution the tenants' histories hold (the warm-up's excluded)."""
    out = []
    for key in keys.values():
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
            for s in http.get("/v1/lci/sessions", params={"all": "true"}).json()["data"]:
                for e in http.get(f"/v1/lci/sessions/{s['id']}/executions").json()["data"]:
                    if not e["code"].startswith("print('warm"):
                        out.append(e["id"])
    return out


def _ours(home: Path) -> list[Any]:
    import hashlib

    home_id = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]
    client = docker.from_env()
    try:
        return list(client.containers.list(all=True, filters={"label": f"lci.home={home_id}"}))
    finally:
        client.close()


def engine_leftovers(home: Path) -> int:
    time.sleep(1)  # deletes answer before the engine has removed the container
    return len(_ours(home))


def engine_sweep(home: Path) -> None:
    for c in _ours(home):
        c.remove(force=True)


if __name__ == "__main__":
    main()
