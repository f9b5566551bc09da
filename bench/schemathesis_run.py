"""Schemathesis against a real ``lci serve`` (real sandboxes): prints one JSON object.

    .venv/bin/python bench/schemathesis_run.py [--max-time 240] [--max-examples 10]
        [--workers 2] [--seed N] [--url http://127.0.0.1:8000 --key KEY]

Every phase (coverage, fuzzing, stateful) and every check of schemathesis but
``ignored_auth`` runs over every operation of ``/openapi.json``, with a tenant's key in
the header. ``ignored_auth`` sends wrong keys on purpose, and past the tenth from one
address the service answers them with a 429 without checking them (the auth throttle),
which that check counts as auth not enforced; tests/e2e/test_throttle.py and
test_hostile_service.py prove the key check on every route instead.

The Azure ``identifier`` is fixed (one session for the whole run, recreated after a
``DELETE /session``) so that the run starts a bounded number of sandboxes; containers
and files are made as the generated requests ask. Printed:

* cases: test cases generated; operations: tested / in the document
* failures: {check code: count} (ST101 is a 5xx; everything else a conformance failure)
* server_errors, conformance_failures, errors (schema or run errors), phases
* sandboxes: started during the run; leftover_sandboxes_removed: by the final sweep
* seconds, seed, schemathesis version

Without ``--url`` the script starts its own server (LCI_HOME under /tmp) and removes
everything it made at the end: sessions stopped through the API, then a sweep.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import docker
import httpx

import interpreter
from interpreter import Settings

KEY = "key-alice-6f1d0c9a2b7e4d3f8a5c1e0b"  # keys are at least 32 characters
KEYS = f"alice:{KEY},bob:key-bob-3e8b5a1c7d2f9e4a6b0c8d1f2a"
IDENTIFIER = "schemathesis"
SERVER_ERROR = "ST101"
HOOKS = Path(__file__).resolve().with_name("schemathesis_hooks.py")
CONFIG = """
hooks = "{hooks}"
workers = {workers}
max-time = {max_time}
request-timeout = 150
headers = {{ Authorization = "Bearer {key}" }}

[checks]
# --checks all times every answer, 10 s by default; a sandbox starting on a loaded 2-core
# machine takes longer: allow LCI_EXEC_TIMEOUT (120 s), the longest an answer may take
max_response_time = 120

[generation]
max-examples = {max_examples}
database = "none"

[parameters]
identifier = "{identifier}"

[[operations]]
# an open follow stream ends only when its session does: read the first events
include-path = "/v1/lci/sessions/{{session_id}}/events"
max-stream-events = 1
request-timeout = 5
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``lci serve`` in a subprocess with its own home; ``close`` removes all it made."""

    def __init__(self, home: Path, image: str) -> None:
        self.home, self.image = home, image
        self.settings = Settings.of(home=home, image=image)
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = home / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "LCI_HOME": str(self.home), "LCI_IMAGE": self.image}
        env["LCI_API_KEYS"] = KEYS
        env["LCI_POOL_SIZE"] = "0"  # ready sandboxes would count as left over by the final sweep
        port = self.url.rsplit(":", 1)[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "interpreter", "serve", "--port", port],
            cwd=Path(interpreter.__file__).parents[1],  # serve the package this script imported
            env=env,
            stdout=open(self.log, "wb"),  # noqa: SIM115 - the process owns it
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lci serve exited: {self.log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"lci serve did not come up: {self.log.read_text()}")

    def close(self, keep: str | None = None) -> int:
        """Stop every session through the API, stop the server, sweep what is left
        (``keep``: copy the server's log there first)."""
        if self.proc is not None and self.proc.poll() is None:
            stop_sessions(self.url, KEY)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(self.log, Path(keep) / "serve.log")
        removed = sweep(self.settings)
        for mount in _mounts_under(self.home):  # a disk a swept sandbox left mounted
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)
        return removed


def stop_sessions(url: str, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers) as c, contextlib.suppress(httpx.HTTPError):
        for s in c.get("/v1/lci/sessions", timeout=30).json()["data"]:
            with contextlib.suppress(httpx.HTTPError):
                c.post(f"/v1/lci/sessions/{s['id']}/stop", timeout=60)


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


def _mounts_under(home: Path) -> list[str]:
    prefix = str(home) + "/"
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f]
    return [p for p in points if p.startswith(prefix)]


def sandboxes_started(url: str, key: str) -> int:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as c:
        return len(c.get("/v1/lci/sessions", params={"all": "true"}, timeout=30).json()["data"])


def run_schemathesis(url: str, key: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    config = work / "schemathesis.toml"
    config.write_text(
        CONFIG.format(
            workers=args.workers,
            max_time=args.max_time,
            key=key,
            max_examples=args.max_examples,
            identifier=IDENTIFIER,
            hooks=HOOKS,
        )
    )
    report = work / "report.json"
    cmd = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        # see the docstring; the hooks replace the other two
        "ignored_auth,positive_data_acceptance,ensure_resource_availability",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
    ]
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    log = work / "schemathesis.log"
    with open(log, "wb") as out:
        subprocess.run(cmd, cwd=work, stdout=out, stderr=subprocess.STDOUT, check=False)
    if not report.exists():
        raise RuntimeError(f"schemathesis wrote no report: {log.read_text()[-4000:]}")
    data: dict[str, Any] = json.loads(report.read_text())
    data["log"] = log.read_text()
    return data


def summarise(data: dict[str, Any]) -> dict[str, Any]:
    failures = Counter({f["code"]: f["count"] for f in data["failures"]})
    server = failures.get(SERVER_ERROR, 0)
    return {
        "cases": data["test_cases"]["generated"],
        "operations": {
            "tested": data["operations"]["tested"],
            "in_document": data["operations"]["total"],
        },
        "failures": dict(sorted(failures.items())),
        "failing_operations": sorted({op for f in data["failures"] for op in f["operations"]}),
        "server_errors": server,
        "conformance_failures": sum(failures.values()) - server,
        "errors": {e["title"]: e["count"] for e in data["errors"]},
        "phases": {name: p["status"] for name, p in data["phases"].items()},
        "seed": data["seed"],
        "schemathesis": data["schemathesis_version"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-time", type=int, default=240, help="seconds for the whole run")
    parser.add_argument("--max-examples", type=int, default=10, help="per operation and phase")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--url", help="a running lci serve (else one is started)")
    parser.add_argument("--key", default=KEY, help="with --url: a tenant's key")
    parser.add_argument("--keep", help="copy schemathesis' log and report to this directory")
    args = parser.parse_args()

    server: Server | None = None
    url, key = args.url, args.key
    if url is None:
        from interpreter.image import build_image

        image = os.environ.get("LCI_IMAGE") or build_image(progress=lambda line: None)
        server = Server(Path(tempfile.mkdtemp(prefix="lci-st-", dir="/tmp")), image)
        server.start()
        url, key = server.url, KEY
    work = Path(tempfile.mkdtemp(prefix="lci-st-run-"))
    started = time.monotonic()
    try:
        data = run_schemathesis(url.rstrip("/"), key, args, work)
        out = summarise(data)
        out["seconds"] = round(time.monotonic() - started, 1)
        out["sandboxes"] = sandboxes_started(url, key)
        if args.keep:
            shutil.copytree(work, args.keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        removed = server.close(args.keep) if server is not None else 0
    out["leftover_sandboxes_removed"] = removed
    if out["server_errors"] or out["conformance_failures"] or out["errors"]:
        out["report"] = _failures_text(data["log"])
    print(json.dumps(out, indent=2))


def _failures_text(log: str, limit: int = 20000) -> str:
    """The FAILURES section of schemathesis' output (what failed and how to reproduce)."""
    start = log.find("=== FAILURES ===")
    text = log[start:] if start >= 0 else log
    return text[:limit]


if __name__ == "__main__":
    main()
