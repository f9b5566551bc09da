"""Build the sandbox image, with or without a container registry.

``lci-sandbox:<hash>`` is named after a hash of everything that goes into it
(images/Dockerfile, images/requirements.txt, kernels/, the base's identity), so a
build is skipped when that exact image is present. Two ways to the same image:

* ``debootstrap`` (no registry): a Debian root filesystem made from Debian's
  packages and ``docker import``-ed as ``lci-base:bookworm-<hash>``;
* ``dockerfile``: ``FROM python:3.11-slim``, pulled from a registry.

Either way the Python packages are downloaded on the host into a cached wheelhouse
(the host's pip knows its indexes, proxies and certificates) and installed from it
by a ``docker build`` that runs with ``--network none``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from .errors import EngineUnavailable, ImageBuildFailed

__all__ = ["METHODS", "base_tag", "build_image", "image_tag", "seccomp_profile", "source_dir"]

SUITE = "bookworm"  # Debian 12: Python 3.11, like python:3.11-slim
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
REGISTRY_BASE = "python:3.11-slim"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PYTHON_VERSION, PYTHON_ABI = "3.11", "cp311"
METHODS = ("auto", "debootstrap", "dockerfile")
# an imported root filesystem has no config at all: give it what python:3.11-slim has
BASE_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["bash"]',
]
TRIM = ("var/cache/apt/*.bin", "var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_*",
        "usr/share/man/*", "usr/share/info/*")  # fmt: skip
Progress = Callable[[str], None]


# -- names ------------------------------------------------------------------------


def source_dir() -> Path:
    """The directory holding images/ and kernels/: the checkout's root, or in an installed
    wheel the package itself (setup.py puts them there). Same files, same image tag."""
    package = Path(__file__).resolve().parent
    for root in (package.parent, package):
        if (root / "images" / "Dockerfile").is_file() and (root / "kernels").is_dir():
            return root
    raise ImageBuildFailed(
        "locate sources",
        f"{package.parent / 'images' / 'Dockerfile'} is missing: lci was installed without"
        " its sandbox files (images/, kernels/); reinstall it, or set LCI_IMAGE to an image"
        " you built yourself",
    )


def seccomp_profile() -> str | None:
    """The sandboxes' seccomp profile (images/seccomp.json, JSON text), or None."""
    try:
        return (source_dir() / "images" / "seccomp.json").read_text()
    except (OSError, ImageBuildFailed):
        return None


def _base_identity() -> bytes:
    return f"debian {SUITE} {','.join(BASE_PACKAGES)}".encode()


def base_tag() -> str:
    """The registry-free base image: a debootstrap root filesystem."""
    return f"lci-base:{SUITE}-{hashlib.sha256(_base_identity()).hexdigest()[:12]}"


def _inputs(src: Path) -> Iterator[Path]:
    yield src / "images" / "Dockerfile"
    yield src / "images" / "requirements.txt"
    for path in sorted((src / "kernels").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def image_tag(src: Path | None = None) -> str:
    """``lci-sandbox:<12 hex>``: same sources, same tag, on any machine, by either method."""
    src = src or source_dir()
    digest = hashlib.sha256(b"base\0" + _base_identity() + b"\0")
    for path in _inputs(src):
        data = path.read_bytes()
        digest.update(f"{path.relative_to(src).as_posix()}\0{len(data)}\0".encode())
        digest.update(data)
    return f"lci-sandbox:{digest.hexdigest()[:12]}"


# -- the build --------------------------------------------------------------------


class _Steps:
    """Numbered progress: ``[2/4] title``; ``detail`` lines are indented under it."""

    def __init__(self, total: int, progress: Progress) -> None:
        self.n, self.total, self.progress = 0, total, progress

    def __call__(self, title: str) -> None:
        self.n += 1
        self.progress(f"[{self.n}/{self.total}] {title}")

    def detail(self, line: str) -> None:
        self.progress(f"      {line}")


def build_image(
    *,
    method: str = "auto",
    force: bool = False,
    progress: Progress = print,
    client: docker.DockerClient | None = None,
) -> str:
    """Build the sandbox image unless it is present (or ``force``); return its tag.

    ``method``: ``debootstrap`` (no registry; root and debootstrap needed),
    ``dockerfile`` (pulls python:3.11-slim) or ``auto`` (debootstrap when possible).
    """
    if method not in METHODS:
        raise ImageBuildFailed("choose a method", f"{method!r} is not one of {', '.join(METHODS)}")
    src = source_dir()
    tag = image_tag(src)
    client = client or _connect()
    if not force and _present(client, tag):
        progress(f"image {tag} is present")
        return tag
    method = _resolve(method)
    started = time.monotonic()
    progress(f"building {tag} ({method} method)")
    if method == "debootstrap":
        steps = _Steps(4, progress)
        base = _debootstrap_base(client, steps, force)
    else:
        steps = _Steps(3, progress)
        base = _registry_base(client, steps)
    wheels = _wheelhouse(src, steps, force)
    _docker_build(client, src, wheels, base, tag, steps, force)
    progress(f"built {tag} in {time.monotonic() - started:.0f} s")
    return tag


def _resolve(method: str) -> str:
    can = shutil.which("debootstrap") is not None and os.geteuid() == 0
    if method == "auto":
        return "debootstrap" if can else "dockerfile"
    if method == "debootstrap" and not can:
        raise ImageBuildFailed(
            "choose a method",
            "the debootstrap method needs root and debootstrap on PATH "
            "(apt-get install debootstrap); or use the dockerfile method with a registry",
        )
    return method


# -- the engine -------------------------------------------------------------------


@contextmanager
def _engine(step: str) -> Iterator[None]:
    """docker-py's errors become ours, here and only here."""
    try:
        yield
    except docker.errors.APIError as exc:
        raise ImageBuildFailed(step, f"Docker engine error: {exc.explanation or exc}") from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineUnavailable(str(exc)) from exc


def _connect() -> docker.DockerClient:
    with _engine("connect"):
        client = docker.from_env(timeout=600)
        client.ping()
    return client


def _present(client: docker.DockerClient, tag: str) -> bool:
    with _engine(f"look up {tag}"):
        try:
            client.images.get(tag)
        except docker.errors.ImageNotFound:
            return False
    return True


def _registry_base(client: docker.DockerClient, steps: _Steps) -> str:
    if _present(client, REGISTRY_BASE):
        steps(f"base image {REGISTRY_BASE} is present")
        return REGISTRY_BASE
    steps(f"base image: docker pull {REGISTRY_BASE}")
    try:
        client.images.pull(REGISTRY_BASE)
    except docker.errors.APIError as exc:
        raise ImageBuildFailed(
            f"docker pull {REGISTRY_BASE}",
            f"{exc.explanation or exc}. Without a registry use the debootstrap method "
            "(as root, with debootstrap installed)",
        ) from exc
    return REGISTRY_BASE


# -- (a) the registry-free base ---------------------------------------------------


def _debootstrap_base(client: docker.DockerClient, steps: _Steps, force: bool) -> str:
    tag = base_tag()
    if not force and _present(client, tag):
        steps(f"base root filesystem: {tag} is present")
        steps("docker import: nothing to do")
        return tag
    mirror = os.environ.get("LCI_DEBIAN_MIRROR") or DEFAULT_MIRROR
    with tempfile.TemporaryDirectory(prefix="lci-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        try:
            steps(f"base root filesystem (debootstrap {SUITE} from {mirror}, about a minute)")
            cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}"]
            _run([*cmd, SUITE, str(rootfs), mirror], "debootstrap", steps.detail)
            _trim(rootfs)
            steps(f"docker import as {tag}")
            _import(client, rootfs, tag)
        finally:
            _unmount_under(rootfs)  # a killed debootstrap can leave /proc, /dev mounted
    return tag


def _trim(rootfs: Path) -> None:
    """Drop what a container never needs: apt's caches and lists, manual pages."""
    for pattern in TRIM:
        for entry in rootfs.glob(pattern):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def _unmount_under(root: Path) -> None:
    prefix = f"{root}/"
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def _import(client: docker.DockerClient, rootfs: Path, tag: str) -> None:
    """tar | docker import, streamed: neither the tar nor the image is held in memory.

    The image is tagged only once tar has succeeded, so a cut stream never becomes a base.
    """
    cmd = ["tar", "--numeric-owner", "--one-file-system", "--xattrs", "-C", str(rootfs), "-c", "."]
    with tempfile.TemporaryFile() as err:
        tar = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        with tar, _engine("docker import"):
            reply = client.api.import_image_from_data(tar.stdout, changes=BASE_CHANGES)
        err.seek(0)
        tar_errors = err.read().decode(errors="replace").strip()
    image_id = _imported_id(reply)
    with _engine("docker import"):
        if tar.returncode != 0:
            client.api.remove_image(image_id, force=True)
            raise ImageBuildFailed("tar", f"tar exited with {tar.returncode}: {tar_errors}")
        repository, _, version = tag.partition(":")
        client.api.tag(image_id, repository, version)


def _imported_id(reply: Any) -> str:
    last = json.loads(str(reply).strip().splitlines()[-1])
    if "error" in last or not str(last.get("status", "")).startswith("sha256:"):
        raise ImageBuildFailed("docker import", str(last.get("error") or last))
    return str(last["status"])


# -- (b) the wheelhouse -----------------------------------------------------------


def _wheelhouse(src: Path, steps: _Steps, force: bool) -> Path:
    """cp311 manylinux wheels for images/requirements.txt, cached by its hash."""
    from .config import Settings

    reqs = src / "images" / "requirements.txt"
    key = hashlib.sha256(reqs.read_bytes()).hexdigest()[:12]
    wheels = Settings.from_env().home / "cache" / f"wheels-{key}"
    if wheels.is_dir() and not force:
        steps(f"wheelhouse {wheels} is present")
        return wheels
    arch = {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine(), platform.machine())
    steps(f"wheelhouse: pip download for CPython {PYTHON_VERSION} {arch} into {wheels}")
    wheels.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f"{wheels.name}.", dir=wheels.parent))
    tags = ["manylinux_2_17", "manylinux2014", "manylinux_2_28"]
    platforms = [arg for p in [f"{t}_{arch}" for t in tags] + ["any"] for arg in ("--platform", p)]
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
           "--progress-bar", "off", "--only-binary=:all:", "--python-version", PYTHON_VERSION,
           "--implementation", "cp", "--abi", PYTHON_ABI, *platforms]  # fmt: skip
    try:
        _run([*cmd, "-r", str(reqs), "-d", str(partial)], "pip download", steps.detail)
        if force:
            shutil.rmtree(wheels, ignore_errors=True)
        with suppress(OSError):  # a concurrent build may have got there first: use its
            partial.rename(wheels)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    if not wheels.is_dir():
        raise ImageBuildFailed("pip download", f"could not create {wheels}: is it writable?")
    return wheels


# -- (c) docker build -------------------------------------------------------------


def _docker_build(
    client: docker.DockerClient,
    src: Path,
    wheels: Path,
    base: str,
    tag: str,
    steps: _Steps,
    force: bool,
) -> None:
    steps(f"docker build {tag} FROM {base} (network: none)")
    with tempfile.TemporaryDirectory(prefix="lci-context-") as tmp:
        ctx = Path(tmp)
        shutil.copy2(src / "images" / "Dockerfile", ctx / "Dockerfile")
        shutil.copy2(src / "images" / "requirements.txt", ctx / "requirements.txt")
        shutil.copytree(wheels, ctx / "wheels")
        skip = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(src / "kernels", ctx / "kernels", ignore=skip)
        with _engine("docker build"):
            logs = client.api.build(
                path=str(ctx), tag=tag, buildargs={"BASE": base}, network_mode="none",
                rm=True, forcerm=True, nocache=force, pull=False, decode=True,
                labels={"org.lci.tag": tag, "org.lci.base": base},
            )  # fmt: skip
            _follow(logs, steps.detail)


def _follow(logs: Iterable[dict[str, Any]], detail: Progress) -> None:
    """Stream the build's output; an error entry fails with the last lines as context."""
    tail: deque[str] = deque(maxlen=6)
    for entry in logs:
        if "error" in entry:
            context = " | ".join(tail)
            raise ImageBuildFailed(
                "docker build", f"{str(entry['error']).strip()} (after: {context})"
            )
        for line in str(entry.get("stream", "")).splitlines():
            if line.strip():
                tail.append(line.strip())
                detail(line.rstrip())


# -- processes ----------------------------------------------------------------------


def _run(cmd: list[str], step: str, detail: Progress) -> None:
    """Run a command, streaming its output lines; failure names the last lines."""
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as exc:
        raise ImageBuildFailed(step, f"cannot run {cmd[0]}: {exc}; is it installed?") from exc
    tail: deque[str] = deque(maxlen=5)
    with proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip():
                tail.append(line.strip())
                detail(line.rstrip())
    if proc.returncode != 0:
        raise ImageBuildFailed(step, f"{cmd[0]} exited with {proc.returncode}: {' | '.join(tail)}")
