"""Build the sandbox image, with or without a container registry.

``lci-sandbox:<hash>`` is named after a hash of everything that goes into it
(images/Dockerfile, images/requirements.txt, kernels/, the base's identity), so a
build is skipped when that exact image is present. Two ways to the same image:

* ``debootstrap`` (no registry): a Debian root filesystem from Debian's packages,
  ``docker import``-ed as the base;
* ``dockerfile``: ``FROM python:3.11-slim``, pulled from a registry.

Either way the Python packages are downloaded on the host into a cached wheelhouse
(the host's pip knows its indexes, proxies and certificates) and installed from it
inside a build that runs with ``--network none``.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import docker
import docker.errors

from .errors import EngineUnavailable, ImageBuildFailed

__all__ = ["base_tag", "build_image", "image_tag", "source_dir"]

SUITE = "bookworm"  # Debian 12: Python 3.11, like the python:3.11-slim base
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
REGISTRY_BASE = "python:3.11-slim"
PYTHON_VERSION = "3.11"
Progress = Callable[[str], None]


def source_dir() -> Path:
    """The tree holding images/ and kernels/ (the project root)."""
    root = Path(os.environ.get("LCI_SOURCE_DIR") or Path(__file__).resolve().parent.parent)
    if not (root / "images" / "Dockerfile").is_file() or not (root / "kernels").is_dir():
        raise ImageBuildFailed(
            "locate sources",
            f"{root} has no images/Dockerfile and kernels/; run from a checkout of lci "
            "or set LCI_SOURCE_DIR to one",
        )
    return root


def _inputs(src: Path) -> Iterable[Path]:
    yield src / "images" / "Dockerfile"
    yield src / "images" / "requirements.txt"
    for path in sorted((src / "kernels").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def image_tag(src: Path | None = None) -> str:
    src = src or source_dir()
    digest = hashlib.sha256(f"base {SUITE} {' '.join(BASE_PACKAGES)}\n".encode())
    for path in _inputs(src):
        digest.update(path.relative_to(src).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return f"lci-sandbox:{digest.hexdigest()[:12]}"


def base_tag() -> str:
    h = hashlib.sha256(f"{SUITE} {' '.join(BASE_PACKAGES)}".encode()).hexdigest()[:8]
    return f"lci-base:{SUITE}-{h}"


def build_image(
    *,
    method: str = "auto",
    force: bool = False,
    progress: Progress = print,
    client: docker.DockerClient | None = None,
) -> str:
    """Build the sandbox image unless it is present; return its tag."""
    src = source_dir()
    tag = image_tag(src)
    client = client or _client()
    if not force and _present(client, tag):
        progress(f"image {tag} is present")
        return tag
    if method == "auto":
        method = "debootstrap" if shutil.which("debootstrap") and os.geteuid() == 0 else "dockerfile"
    if method not in ("debootstrap", "dockerfile"):
        raise ImageBuildFailed("choose a method", f"unknown method {method!r}")
    started = time.monotonic()
    steps = 3 if method == "debootstrap" else 2
    progress(f"building {tag} ({method})")
    if method == "debootstrap":
        base = _debootstrap_base(client, progress, f"[1/{steps}]", force)
    else:
        base = REGISTRY_BASE
    wheels = _wheelhouse(src, progress, f"[{steps - 1}/{steps}]")
    _docker_build(client, src, wheels, base, tag, progress, f"[{steps}/{steps}]")
    progress(f"built {tag} in {time.monotonic() - started:.0f} s")
    return tag


def _client() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(str(exc)) from exc
    return client


def _present(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def _run(cmd: list[str], step: str, progress: Progress) -> None:
    """Run a command, streaming its output lines as progress."""
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as exc:
        raise ImageBuildFailed(step, f"cannot run {cmd[0]}: {exc}") from exc
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        line = line.rstrip()
        if line:
            progress("      " + line)
            tail = [*tail[-9:], line]
    if proc.wait() != 0:
        raise ImageBuildFailed(step, f"{cmd[0]} exited with {proc.returncode}: " + " | ".join(tail[-3:]))


def _debootstrap_base(client: docker.DockerClient, progress: Progress, n: str, force: bool) -> str:
    tag = base_tag()
    if not force and _present(client, tag):
        progress(f"{n} base root filesystem {tag} is present")
        return tag
    mirror = os.environ.get("LCI_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    progress(f"{n} base root filesystem: debootstrap {SUITE} from {mirror} (about a minute)")
    with tempfile.TemporaryDirectory(prefix="lci-rootfs-") as tmp:
        rootfs, tarball = Path(tmp) / "rootfs", Path(tmp) / "rootfs.tar"
        include = ",".join(BASE_PACKAGES)
        _run(["debootstrap", "--variant=minbase", f"--include={include}", SUITE, str(rootfs), mirror],
             "debootstrap", progress)
        shutil.rmtree(rootfs / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        progress(f"{n} importing the root filesystem as {tag}")
        _run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."], "tar", progress)
        repo, _, version = tag.partition(":")
        try:
            client.api.import_image_from_file(str(tarball), repository=repo, tag=version)
        except docker.errors.DockerException as exc:
            raise ImageBuildFailed("docker import", str(exc)) from exc
    return tag


def _wheelhouse(src: Path, progress: Progress, n: str) -> Path:
    """Download the wheels for the sandbox's Python on the host; cached by requirements."""
    reqs = src / "images" / "requirements.txt"
    key = hashlib.sha256(reqs.read_bytes()).hexdigest()[:12]
    home = Path(os.environ.get("LCI_HOME") or Path.home() / ".local/share/lci")
    wheels = home / "cache" / f"wheels-{key}"
    if (wheels / ".complete").exists():
        progress(f"{n} wheelhouse {wheels} is ready")
        return wheels
    progress(f"{n} downloading wheels for Python {PYTHON_VERSION} into {wheels}")
    arch = platform.machine()
    platforms = [f"manylinux2014_{arch}", f"manylinux_2_17_{arch}", f"manylinux_2_28_{arch}", "any"]
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--only-binary=:all:",
           "--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", "cp311",
           *[arg for p in platforms for arg in ("--platform", p)], "-r", str(reqs), "-d", str(wheels)]
    _run(cmd, "pip download", progress)
    (wheels / ".complete").touch()
    return wheels


def _docker_build(
    client: docker.DockerClient, src: Path, wheels: Path, base: str, tag: str, progress: Progress, n: str
) -> None:
    progress(f"{n} docker build {tag} FROM {base} (network: none)")
    with tempfile.TemporaryDirectory(prefix="lci-context-") as tmp:
        ctx = Path(tmp)
        shutil.copy2(src / "images" / "Dockerfile", ctx / "Dockerfile")
        shutil.copy2(src / "images" / "requirements.txt", ctx / "requirements.txt")
        shutil.copytree(wheels, ctx / "wheels", ignore=shutil.ignore_patterns(".complete"))
        shutil.copytree(src / "kernels", ctx / "kernels", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        try:
            for chunk in client.api.build(
                path=str(ctx), tag=tag, buildargs={"BASE": base}, network_mode="none",
                rm=True, forcerm=True, decode=True, labels={"org.lci.inputs": tag},
            ):
                if "error" in chunk:
                    raise ImageBuildFailed("docker build", str(chunk["error"]).strip())
                line = str(chunk.get("stream", "")).rstrip()
                if line:
                    progress("      " + line)
        except docker.errors.DockerException as exc:
            raise ImageBuildFailed("docker build", str(exc)) from exc
