"""``pip install`` of a wheel of this tree, without the dev extra, gives a working lci.

The wheel is built from a clean copy of the tree and installed into a fresh venv (PyPI
resolves the runtime dependencies; mcp 2.x among them). Then, from a directory outside
the checkout and with no PYTHONPATH or LCI_IMAGE: ``lci image build`` finds the suite's
image (the wheel's kernels/ and images/ hash to the same tag), ``lci run`` runs code, and
``lci serve`` answers over HTTP (a plot comes back as a PNG file) and over MCP (the
installed mcp client, tests/integration/wheel_mcp.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from interpreter import Settings
from interpreter.image import build_image

from ..conftest import _HOMES, unmount_under
from ..e2e.conftest import free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
JUNK = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                              "*.pyc", ".*_cache", "lci-output")  # fmt: skip
KEY = "key-wheel-5b2e9d0c7a1f4e8b3d6c9a2f"
PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2]); plt.show()"
STOP_ALL = (
    "import asyncio, interpreter as i\nasync def stop():\n"
    " async with i.SessionManager.from_env() as m: await m.stop_all()\nasyncio.run(stop())"
)


def run(*cmd: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 300) -> str:  # fmt: skip
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, timeout=timeout,
                       capture_output=True, text=True)  # fmt: skip
    err = "\n".join(p.stderr.splitlines()[-30:])
    assert p.returncode == 0, f"{p.args} exited {p.returncode}:\n{p.stdout[-800:]}\nstderr:\n{err}"
    return p.stdout


@dataclass
class Installed:
    bin: Path  # the venv's bin/
    home: Path  # LCI_HOME
    cwd: Path  # outside the checkout
    env: dict[str, str]

    def __call__(self, *cmd: str | Path, timeout: float = 300) -> str:
        return run(self.bin / cmd[0], *cmd[1:], cwd=self.cwd, env=self.env, timeout=timeout)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    shutil.copytree(ROOT, tmp / "src", ignore=JUNK)  # no stale build/ in the wheel
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp, tmp / "src")
    [whl] = tmp.glob("lci-*.whl")
    return whl


@pytest.fixture(scope="module")
def installed(wheel: Path, docker_client: object) -> Iterator[Installed]:
    home = Path(tempfile.mkdtemp(prefix="lci-w-", dir="/tmp"))  # short: unix socket paths
    _HOMES.append(Settings.of(home=home))  # the session's sweep removes its containers
    run(sys.executable, "-m", "venv", home / "venv")
    started = time.monotonic()
    run(home / "venv/bin/python", "-m", "pip", "install", "-q", wheel, timeout=600)
    print(f"pip install {wheel.name}: {time.monotonic() - started:.0f} s")
    scrubbed = {k: v for k, v in os.environ.items() if not k.startswith(("LCI_", "PYTHON"))}
    path = f"{home / 'venv/bin'}{os.pathsep}{os.environ['PATH']}"
    (home / "work").mkdir()
    env = {**scrubbed, "PATH": path, "LCI_HOME": str(home), "VIRTUAL_ENV": str(home / "venv")}
    lci = Installed(home / "venv/bin", home, home / "work", env)
    yield lci
    subprocess.run([lci.bin / "python", "-c", STOP_ALL], env=env, cwd=lci.cwd, timeout=120)
    unmount_under(home)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def image() -> str:
    """The checkout's image, as the suite builds it (present already, unless LCI_IMAGE)."""
    return build_image(progress=lambda line: None)


def sources() -> Iterator[tuple[str, Path]]:
    """(name in the wheel, file in the tree): setup.py's package_dir mapping."""
    for here, there in (("interpreter", "interpreter"), ("kernels", "interpreter/kernels"),
                        ("images", "interpreter/images")):  # fmt: skip
        for path in sorted((ROOT / here).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                yield f"{there}/{path.relative_to(ROOT / here).as_posix()}", path


def test_the_wheel_carries_every_file_of_the_tree(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        differ = [n for n, p in sources() if n not in names or z.read(n) != p.read_bytes()]
    assert not differ, f"missing from {wheel.name}, or different there: {differ}"


def test_pip_installs_the_runtime_dependencies_with_mcp_2(installed: Installed) -> None:
    code = "import importlib.metadata as m, interpreter as i; print(i.__file__, m.version('mcp'))"
    where, mcp = installed("python", "-c", code).split()
    print(f"mcp {mcp} installed; interpreter from {where}")
    assert Path(where).is_relative_to(installed.home / "venv"), "not the installed package"
    assert mcp.split(".")[0] == "2", f"pip resolved mcp {mcp}, expected 2.x"


def test_image_build_finds_the_image_of_the_checkout(installed: Installed, image: str) -> None:
    started = time.monotonic()
    out = installed("lci", "image", "build")
    assert f"image {image} is present" in out, f"the wheel packs other sandbox files: {out}"
    assert time.monotonic() - started < 60


def test_run(installed: Installed, image: str) -> None:
    assert installed("lci", "run", "print(6*7)") == "42\n"


@contextmanager
def serving(lci: Installed) -> Iterator[str]:
    """``lci serve`` on a free port; its log's tail is printed (shown if the test fails)."""
    port, log = free_port(), lci.home / "serve.log"
    env = {**lci.env, "LCI_API_KEYS": f"wheel:{KEY}"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([lci.bin / "lci", "serve", "--port", str(port)], env=env,
                                cwd=lci.cwd, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        yield healthy(f"http://127.0.0.1:{port}", proc)
    finally:
        proc.terminate()
        with suppress(subprocess.TimeoutExpired):
            proc.wait(30)
        proc.kill()  # nothing when it has exited
        proc.wait()
        print("lci serve log ends:", *log.read_text().splitlines()[-30:], sep="\n")


def healthy(url: str, proc: subprocess.Popen[bytes]) -> str:
    for _ in range(300):
        assert proc.poll() is None, "lci serve exited"
        with suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return url
        time.sleep(0.2)
    raise AssertionError("lci serve is not healthy after a minute")


def ok(r: httpx.Response) -> httpx.Response:
    assert r.status_code == 200, f"{r.request.method} {r.url}: {r.status_code} {r.text}"
    return r


def plot_over_http(url: str) -> bytes:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
        cid = ok(http.post("/v1/containers", json={"name": "wheel"})).json()["id"]
        exe = ok(http.post(f"/v1/containers/{cid}/executions", json={"code": PLOT})).json()
        [image] = [o["image"] for o in exe["outputs"] if o["type"] == "image"]
        png = ok(http.get(f"/v1/files/{image['file_id']}/content")).content
        ok(http.delete(f"/v1/containers/{cid}"))
    return png


def test_serve_over_http_and_mcp(installed: Installed, image: str) -> None:
    with serving(installed) as url:
        assert plot_over_http(url).startswith(b"\x89PNG")
        script = Path(__file__).with_name("wheel_mcp.py")
        out = installed("python", script, f"{url}/mcp", KEY, f"print(6*7)\n{PLOT}")
    assert json.loads(out) == {"text": "42", "images": ["image/png"], "is_error": False}
