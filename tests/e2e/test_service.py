"""The service itself against a real ``lci serve``: auth, tenancy, bad input, limits,
serialisation, disconnects, metrics, shutdown and restart."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import docker
import httpx
import pytest

from interpreter import Settings

from ..conftest import _HOMES
from .conftest import ADMIN, LiveServer, start_server, stop_server

pytestmark = pytest.mark.docker
ACA = "api-version=2024-02-02-preview"


@pytest.fixture
def http(live_server: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=live_server.url, headers=live_server.headers(), timeout=60) as c:
        yield c


def container(http: httpx.Client, name: str = "t") -> str:
    r = http.post("/v1/containers", json={"name": name})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def run(http: httpx.Client, cid: str, code: str, **extra: object) -> dict:
    r = http.post(f"/v1/containers/{cid}/executions", json={"code": code, **extra})
    assert r.status_code == 200, r.text
    return r.json()


# -- service basics ---------------------------------------------------------------------


def test_health_docs_and_metrics(live_server: LiveServer, http: httpx.Client) -> None:
    health = httpx.get(f"{live_server.url}/healthz")  # no key needed
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "engine": "ok", "store": "ok", "disk": "ok"}
    assert httpx.get(f"{live_server.url}/docs").status_code == 200
    spec = httpx.get(f"{live_server.url}/openapi.json").json()
    assert "/v1/containers/{container_id}/executions" in spec["paths"]
    assert "/code/execute" in spec["paths"]

    assert httpx.get(f"{live_server.url}/metrics").status_code == 401
    cid = container(http)
    run(http, cid, "1 / 0")
    run(http, cid, "2")
    text = http.get("/metrics").text
    for name in (  # every series carries the tenant
        'lci_live_sessions{tenant="alice"}',
        'lci_executions_total{status="ok",tenant="alice"}',
        'lci_executions_total{status="error",tenant="alice"}',
        'lci_execution_duration_seconds_bucket{le="0.005",tenant="alice"}',
        'lci_sandbox_starts_total{tenant="alice"}',
        'lci_sessions_reaped_total{tenant="alice"}',
    ):
        assert name in text, name
    value = lambda key: float(  # noqa: E731
        next(line for line in text.splitlines() if line.startswith(key)).split()[-1]
    )
    assert value('lci_executions_total{status="error",tenant="alice"}') >= 1
    assert value('lci_live_sessions{tenant="alice"}') >= 1
    assert value('lci_sandbox_starts_total{tenant="alice"}') >= 1


def samples(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_metrics_show_a_tenant_only_its_own_series(live_server: LiveServer) -> None:
    for key in (live_server.key, live_server.other_key):  # both tenants have run code
        with httpx.Client(base_url=live_server.url, headers=live_server.headers(key)) as c:
            cid = container(c, "metrics")
            run(c, cid, "1")
    for key, tenant in ((live_server.key, "alice"), (live_server.other_key, "bob")):
        text = httpx.get(f"{live_server.url}/metrics", headers=live_server.headers(key)).text
        mine = samples(text)
        assert mine and all(f'tenant="{tenant}"' in line for line in mine), tenant
        assert f'lci_executions_total{{status="ok",tenant="{tenant}"}}' in text
    everything = httpx.get(f"{live_server.url}/metrics", headers=live_server.headers(ADMIN)).text
    for tenant in ("alice", "bob"):
        assert f'lci_executions_total{{status="ok",tenant="{tenant}"}}' in everything
        assert f'lci_live_sessions{{tenant="{tenant}"}}' in everything
    assert len(samples(everything)) > len(mine)
    # the admin key reads /metrics and nothing else
    refused = httpx.get(f"{live_server.url}/v1/files", headers=live_server.headers(ADMIN))
    assert refused.status_code == 401 and "/metrics only" in refused.json()["error"]["message"]


def test_auth_errors_in_each_dialect(live_server: LiveServer) -> None:
    url = live_server.url
    for headers in ({}, {"Authorization": "Bearer nope-nope"}, {"Authorization": "Basic x"}):
        r = httpx.get(f"{url}/v1/files", headers=headers)
        assert r.status_code == 401
        err = r.json()["error"]
        assert err["code"] == "invalid_api_key" and err["type"] and "API key" in err["message"]
        r = httpx.get(f"{live_server.pool}/files?identifier=x&{ACA}", headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "Unauthorized"
        assert r.headers["x-ms-error-code"] == "Unauthorized"
    assert httpx.post(f"{url}/mcp", json={}).status_code == 401


def test_tenants_do_not_see_each_other(live_server: LiveServer, http: httpx.Client) -> None:
    bob = httpx.Client(base_url=live_server.url, headers=live_server.headers(live_server.other_key))
    fid = http.post("/v1/files", data={"purpose": "assistants"}, files={"file": ("a.txt", b"a")})
    fid = fid.json()["id"]
    cid = container(http)
    ident = f"shared-{uuid.uuid4()}"
    http.post(f"/code/execute?identifier={ident}&{ACA}", json={"properties": {"code": "s = 1"}})

    assert bob.get(f"/v1/files/{fid}").status_code == 404
    assert bob.get(f"/v1/files/{fid}/content").status_code == 404
    assert fid not in [f["id"] for f in bob.get("/v1/files").json()["data"]]
    assert bob.get(f"/v1/containers/{cid}").status_code == 404
    assert bob.post(f"/v1/containers/{cid}/executions", json={"code": "1"}).status_code == 404
    assert cid not in [c["id"] for c in bob.get("/v1/containers").json()["data"]]
    assert bob.delete(f"/v1/containers/{cid}").status_code == 404
    # the same Azure identifier is a different session for bob
    r = bob.post(f"/code/execute?identifier={ident}&{ACA}", json={"properties": {"code": "s"}})
    assert r.json()["properties"]["status"] == "Failure"
    assert "NameError" in r.json()["properties"]["stderr"]
    assert http.get(f"/v1/containers/{cid}").status_code == 200  # alice still has hers


def test_generated_key_is_private_and_printed_once(sandbox_image: str) -> None:
    home = Path(f"/tmp/lci-k-{uuid.uuid4().hex[:8]}")
    home.mkdir()
    _HOMES.append(Settings.of(home=home, image=sandbox_image))
    env = {"LCI_API_KEYS": ""}
    first = start_server(home, sandbox_image, env=env)
    stop_server(first)
    printed = first.log.read_text()
    keyfile = home / "api_keys"
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    key = keyfile.read_text().split("default:")[1].strip()
    assert key in printed
    second = start_server(home, sandbox_image, env=env)
    try:
        assert key not in second.log.read_text()  # shown once only
        ok = httpx.get(f"{second.url}/v1/files", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200
        assert httpx.get(f"{second.url}/v1/files", headers=second.headers()).status_code == 401
    finally:
        stop_server(second)


def test_short_keys_are_refused_at_start_up(sandbox_image: str) -> None:
    home = Path(f"/tmp/lci-k-{uuid.uuid4().hex[:8]}")
    home.mkdir()
    for env in (
        {"LCI_API_KEYS": "alice:key-alice"},
        {"LCI_API_KEYS": "x" * 31},
        {"LCI_ADMIN_KEYS": "admin-key"},
    ):
        started = time.monotonic()
        p = subprocess.run(
            [sys.executable, "-m", "interpreter", "serve", "--port", "9"],
            env={**os.environ, "LCI_HOME": str(home), "LCI_IMAGE": sandbox_image, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode != 0 and time.monotonic() - started < 30
        assert p.stderr.startswith("ConfigError: LCI_"), p.stderr
        assert "at least 32 characters" in p.stderr and "secrets.token_urlsafe" in p.stderr
        assert "key-alice" not in p.stderr and "admin-key" not in p.stderr  # not echoed
    (home / "api_keys").write_text("default:lci-short\n")
    p = subprocess.run(
        [sys.executable, "-m", "interpreter", "serve", "--port", "9"],
        env={**os.environ, "LCI_HOME": str(home), "LCI_API_KEYS": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode != 0 and f"{home}/api_keys=" in p.stderr
    shutil.rmtree(home, ignore_errors=True)


# -- bad input --------------------------------------------------------------------------


def test_bad_input_gets_clear_4xx(live_server: LiveServer, http: httpx.Client) -> None:
    cid = container(http)
    url = f"/v1/containers/{cid}/executions"
    bad = http.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]
    missing = http.post(url, json={"timeout": 3})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "code"
    big = http.post(url, json={"code": "#" * (1024**2 + 10)})
    assert big.status_code == 413 and "LCI_MAX_CODE_BYTES" in big.json()["error"]["message"]
    huge = http.post(
        url, content=b"x" * (8 * 1024**2), headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413
    trav = http.post(f"/v1/containers/{cid}/files", files={"file": ("../../etc/passwd", b"x")})
    assert trav.status_code == 400 and "'..'" in trav.json()["error"]["message"]
    assert http.get("/v1/files/file-doesnotexist").status_code == 404
    assert http.get("/v1/containers/cntr_nope").status_code == 404
    assert http.get(f"/v1/containers/{cid}/files/file-nope").status_code == 404
    no_purpose = http.post("/v1/files", files={"file": ("a.txt", b"a")})
    assert no_purpose.status_code == 400 and no_purpose.json()["error"]["param"] == "purpose"
    not_multipart = http.post("/v1/files", content=b"hello")
    assert not_multipart.status_code in (400, 415)
    allow = http.post("/v1/containers", json={"name": "n", "network_policy": {"type": "allowlist"}})
    assert allow.status_code == 400 and "network" in allow.json()["error"]["message"]

    pool = f"{live_server.pool}/code/execute?identifier=bad-{uuid.uuid4()}&{ACA}"
    aca = http.post(pool, content=b"[", headers={"content-type": "application/json"})
    assert aca.status_code == 400
    assert aca.json()["error"]["code"] == "BadRequest" and aca.json()["error"]["message"]
    no_id = http.post(f"{live_server.pool}/code/execute?{ACA}", json={"properties": {"code": "1"}})
    assert no_id.status_code == 400 and "identifier" in no_id.json()["error"]["message"]
    for r in (bad, missing, big, trav, aca, no_id):
        assert "Traceback" not in r.text
    # and everyone carries on
    assert run(http, cid, "print('still fine')")["stdout"] == "still fine\n"
    assert httpx.get(f"{live_server.url}/healthz").status_code == 200


def test_upload_limit_is_streamed_and_413(sandbox_image: str) -> None:
    home = Path(f"/tmp/lci-u-{uuid.uuid4().hex[:8]}")
    home.mkdir()
    _HOMES.append(Settings.of(home=home, image=sandbox_image))
    server = start_server(home, sandbox_image, env={"LCI_MAX_UPLOAD_BYTES": "2m"})
    try:
        with httpx.Client(base_url=server.url, headers=server.headers(), timeout=60) as http:

            def chunks(n: int):  # chunked: no Content-Length, so nothing to pre-check
                for _ in range(n):
                    yield b"y" * 1024**2

            boundary = b"lcibound"

            def body(n: int):
                yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="purpose"'
                yield b"\r\n\r\nassistants\r\n--" + boundary + b"\r\n"
                yield b'Content-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
                yield from chunks(n)
                yield b"\r\n--" + boundary + b"--\r\n"

            ctype = {"content-type": "multipart/form-data; boundary=lcibound"}
            over = http.post("/v1/files", content=body(64), headers=ctype)
            assert over.status_code == 413
            assert "limit" in over.json()["error"]["message"]
            under = http.post("/v1/files", content=body(1), headers=ctype)
            assert under.status_code == 200 and under.json()["bytes"] == 1024**2
            tmp = home / "blobs" / "tmp"
            assert [p.name for p in tmp.iterdir() if p.name.startswith("upload-")] == []
            rss_kib = int(
                next(
                    line
                    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines()
                    if line.startswith("VmHWM")
                ).split()[1]
            )
            assert rss_kib < 300 * 1024  # 64 MiB went by without being held
    finally:
        stop_server(server)


# -- concurrency and disconnects ---------------------------------------------------------


def test_two_executions_on_one_session_are_serialised(
    live_server: LiveServer, http: httpx.Client
) -> None:
    cid = container(http)
    code = (
        "import time\nprint('start', TAG, time.time(), flush=True)\ntime.sleep(1)\n"
        "print('end', TAG, time.time())"
    )
    out: dict[str, dict] = {}

    def go(tag: str) -> None:
        with httpx.Client(base_url=live_server.url, headers=live_server.headers()) as c:
            c.post(f"/v1/containers/{cid}/executions", json={"code": f"TAG = {tag!r}"}, timeout=60)
            out[tag] = c.post(
                f"/v1/containers/{cid}/executions",
                json={"code": code.replace("TAG,", f"{tag!r},")},
                timeout=60,
            ).json()

    threads = [threading.Thread(target=go, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans = []
    for tag in ("a", "b"):
        lines = out[tag]["stdout"].split("\n")
        assert lines[0].startswith(f"start {tag}") and lines[1].startswith(f"end {tag}")
        spans.append((float(lines[0].split()[-1]), float(lines[1].split()[-1])))
    spans.sort()
    assert spans[0][1] <= spans[1][0]  # the second began after the first ended


def test_client_disconnect_interrupts_the_execution(
    live_server: LiveServer, http: httpx.Client
) -> None:
    cid = container(http)
    run(http, cid, "n = 0\nkept = 'state'")
    with pytest.raises(httpx.ReadTimeout):
        http.post(
            f"/v1/containers/{cid}/executions",
            json={"code": "import time\nwhile True:\n    n += 1\n    time.sleep(0.01)"},
            timeout=1.5,
        )
    time.sleep(1.0)
    first = run(http, cid, "n")["results"][0]["data"]["text/plain"]
    time.sleep(0.5)
    after = run(http, cid, "print(kept); n")
    assert after["stdout"] == "state\n"  # interrupted, not restarted
    assert after["results"][0]["data"]["text/plain"] == first  # the loop no longer runs


def test_disconnect_of_a_stream_interrupts_too(live_server: LiveServer, http: httpx.Client) -> None:
    cid = container(http)
    run(http, cid, "m = 0")
    code = "import time\nprint('go', flush=True)\nwhile True:\n    m += 1\n    time.sleep(0.01)"
    with httpx.stream(
        "POST",
        f"{live_server.url}/v1/containers/{cid}/executions",
        json={"code": code, "stream": True},
        headers=live_server.headers(),
        timeout=30,
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data:"):
                break  # saw the first output: walk away
    time.sleep(1.0)
    first = run(http, cid, "m")["results"][0]["data"]["text/plain"]
    time.sleep(0.5)
    assert run(http, cid, "m")["results"][0]["data"]["text/plain"] == first


# -- surfaces share sessions ------------------------------------------------------------


def test_one_session_two_surfaces(live_server: LiveServer, http: httpx.Client) -> None:
    cid = container(http)
    http.post(f"/v1/containers/{cid}/files", files={"file": ("from-openai.txt", b"hi")})
    listed = http.get(f"{live_server.pool}/files?identifier={cid}&{ACA}").json()["value"]
    assert [f["properties"]["filename"] for f in listed] == ["from-openai.txt"]
    up = http.post(
        f"/files/upload?identifier={cid}&{ACA}", files={"file": ("from-azure.txt", b"yo")}
    )
    assert up.status_code == 200
    files = http.get(f"/v1/containers/{cid}/files").json()["data"]
    assert {f["path"] for f in files} == {"/mnt/data/from-openai.txt", "/mnt/data/from-azure.txt"}
    r = http.post(
        f"/code/execute?identifier={cid}&{ACA}",
        json={"properties": {"code": "open('from-openai.txt').read()"}},
    )
    assert r.json()["properties"]["result"] == "hi"


# -- shutdown and restart ---------------------------------------------------------------


def test_sigterm_leaves_no_orphans_and_sessions_survive_restart(
    sandbox_image: str, docker_client: docker.DockerClient
) -> None:
    home = Path(f"/tmp/lci-r-{uuid.uuid4().hex[:8]}")
    home.mkdir()
    settings = Settings.of(home=home, image=sandbox_image)
    _HOMES.append(settings)
    server = start_server(home, sandbox_image)
    with httpx.Client(base_url=server.url, headers=server.headers(), timeout=60) as http:
        cid = container(http)
        run(http, cid, "survivor = 'still here'")
    # uvicorn finishes its graceful shutdown, then re-raises SIGTERM (exit status -15)
    assert stop_server(server) in (0, -15)
    assert "Application shutdown complete" in server.log.read_text()
    containers = docker_client.containers.list(
        all=True, filters={"label": f"lci.home={settings.home_id}"}
    )
    from interpreter.store import Store

    store = Store(settings.db_path)
    live = {r.id for r in store.list_sessions(live_only=True)}
    store.close()
    # every container left running belongs to a live session (none orphaned) ...
    assert containers and all(c.labels["lci.session"] in live for c in containers)
    assert not [p for p in (home / "blobs" / "tmp").iterdir() if p.name.startswith("upload-")]
    # ... and a restarted service picks the session up with its state
    again = start_server(home, sandbox_image)
    try:
        with httpx.Client(base_url=again.url, headers=again.headers(), timeout=60) as http:
            assert run(http, cid, "print(survivor)")["stdout"] == "still here\n"
            http.delete(f"/v1/containers/{cid}")
    finally:
        stop_server(again)


def test_serve_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "interpreter", "serve", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert out.returncode == 0 and "--port" in out.stdout and "--host" in out.stdout


def test_container_expiry_follows_expires_after(
    live_server: LiveServer, http: httpx.Client
) -> None:
    r = http.post(
        "/v1/containers",
        json={"name": "short", "expires_after": {"anchor": "last_active_at", "minutes": 2}},
    )
    cid = r.json()["id"]
    assert r.json()["expires_after"]["minutes"] == 2
    from interpreter.store import Store

    store = Store(live_server.home / "lci.db")
    rec = store.live_session_for("alice", cid)
    assert rec is not None and rec.idle_timeout == 120
    store.update_session(rec.id, last_activity=rec.last_activity - 121)  # two idle minutes
    store.close()
    swept = subprocess.run(
        [sys.executable, "-m", "interpreter", "sessions", "sweep"],
        env={**os.environ, "LCI_HOME": str(live_server.home)},
        capture_output=True,
        text=True,
    )
    assert swept.returncode == 0, swept.stderr
    view = http.get(f"/v1/containers/{cid}").json()
    assert view["status"] == "expired"
    refused = http.post(f"/v1/containers/{cid}/executions", json={"code": "1"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "container_expired"
    assert "create a new container" in refused.json()["error"]["message"]


def test_an_expired_container_stays_expired_on_the_azure_face(
    live_server: LiveServer, http: httpx.Client
) -> None:
    cid = container(http, "expiring")
    from interpreter.store import Store

    store = Store(live_server.home / "lci.db")
    rec = store.live_session_for("alice", cid)
    assert rec is not None
    store.update_session(rec.id, last_activity=rec.last_activity - 10_000)
    store.close()
    subprocess.run(
        [sys.executable, "-m", "interpreter", "sessions", "sweep"],
        env={**os.environ, "LCI_HOME": str(live_server.home)},
        check=True,
        capture_output=True,
    )
    r = http.post(f"/code/execute?identifier={cid}&{ACA}", json={"properties": {"code": "1"}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "ContainerExpired"
    assert http.get(f"/v1/containers/{cid}").json()["status"] == "expired"


def test_engine_down_is_503_not_500(sandbox_image: str) -> None:
    home = Path(f"/tmp/lci-d-{uuid.uuid4().hex[:8]}")
    home.mkdir()
    _HOMES.append(Settings.of(home=home, image=sandbox_image))
    # an engine address where nothing answers: the service starts, then reports it
    env = {"DOCKER_HOST": f"unix://{home}/no.sock"}
    server = start_server(home, sandbox_image, env=env, healthy=False)
    try:
        health = httpx.get(f"{server.url}/healthz")
        assert health.status_code == 503 and health.json()["engine"].startswith("error")
        with httpx.Client(base_url=server.url, headers=server.headers(), timeout=30) as http:
            r = http.post("/v1/containers", json={"name": "x"})
            assert r.status_code == 503 and "Traceback" not in r.text
            assert r.json()["error"]["message"]
            a = http.post(
                f"/code/execute?identifier=x-{uuid.uuid4()}&{ACA}",
                json={"properties": {"code": "1"}},
            )
            assert a.status_code == 503 and a.json()["error"]["code"] == "ServiceUnavailable"
    finally:
        stop_server(server)


def test_a_container_can_ask_for_gvisor(
    http: httpx.Client, docker_client: docker.DockerClient
) -> None:
    r = http.post("/v1/containers", json={"name": "gv", "runtime": "runsc"})
    assert r.status_code == 200, r.text
    box = r.json()
    assert box["runtime"] == "runsc"
    out = run(http, box["id"], "import platform; print(platform.release())")
    assert out["status"] == "ok" and out["stdout"].strip()
    sid = next(
        s["id"] for s in http.get("/v1/lci/sessions").json()["data"] if s["thread_id"] == box["id"]
    )
    (c,) = docker_client.containers.list(filters={"label": f"lci.session={sid}"})
    assert c.attrs["HostConfig"]["Runtime"] == "runsc"
    bad = http.post("/v1/containers", json={"name": "x", "runtime": "kata"})
    assert bad.status_code in (400, 422) and "runtime" in bad.text
    http.delete(f"/v1/containers/{box['id']}")
