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
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

from .backends.base import Backend
from .backends.docker_image import DockerImages, Progress
from .config import Settings
from .errors import ImageBuildFailed, ImageNotFound

__all__ = [
    "METHODS",
    "base_tag",
    "build_image",
    "image_tag",
    "sandbox_image",
    "seccomp_profile",
    "source_dir",
]

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


async def sandbox_image(backend: Backend, settings: Settings) -> tuple[str, str | None]:
    """The image sandboxes run (LCI_IMAGE, else this version's tag) and the seccomp
    profile: the image must be present on the engine (``lci image build``)."""
    tag = settings.sandbox.image or image_tag()
    if not await backend.image_present(tag):
        raise ImageNotFound(tag)
    return tag, seccomp_profile()


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
    client: Any = None,
) -> str:
    """Build the sandbox image unless it is present (or ``force``); return its tag.

    ``method``: ``debootstrap`` (no registry; root and debootstrap needed),
    ``dockerfile`` (pulls python:3.11-slim) or ``auto`` (debootstrap when possible).
    """
    if method not in METHODS:
        raise ImageBuildFailed("choose a method", f"{method!r} is not one of {', '.join(METHODS)}")
    src = source_dir()
    tag = image_tag(src)
    engine = DockerImages(client)
    if not force and engine.present(tag):
        progress(f"image {tag} is present")
        return tag
    method = _resolve(method)
    started = time.monotonic()
    progress(f"building {tag} ({method} method)")
    if method == "debootstrap":
        steps = _Steps(4, progress)
        base = _debootstrap_base(engine, steps, force)
    else:
        steps = _Steps(3, progress)
        base = _registry_base(engine, steps)
    wheels = _wheelhouse(src, steps, force)
    _build(engine, src, wheels, base, tag, steps, force)
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


# -- (a) the registry-free base ---------------------------------------------------


def _registry_base(engine: DockerImages, steps: _Steps) -> str:
    if engine.present(REGISTRY_BASE):
        steps(f"base image {REGISTRY_BASE} is present")
        return REGISTRY_BASE
    steps(f"base image: docker pull {REGISTRY_BASE}")
    engine.pull(REGISTRY_BASE)
    return REGISTRY_BASE


def _debootstrap_base(engine: DockerImages, steps: _Steps, force: bool) -> str:
    tag = base_tag()
    if not force and engine.present(tag):
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
            engine.import_rootfs(rootfs, tag, BASE_CHANGES)
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


def _build(
    engine: DockerImages, src: Path, wheels: Path, base: str, tag: str, steps: _Steps, force: bool
) -> None:
    steps(f"docker build {tag} FROM {base} (network: none)")
    with tempfile.TemporaryDirectory(prefix="lci-context-") as tmp:
        ctx = Path(tmp)
        shutil.copy2(src / "images" / "Dockerfile", ctx / "Dockerfile")
        shutil.copy2(src / "images" / "requirements.txt", ctx / "requirements.txt")
        shutil.copytree(wheels, ctx / "wheels")
        skip = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(src / "kernels", ctx / "kernels", ignore=skip)
        engine.build(ctx, tag, base, force, steps.detail)


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
