"""The sandbox image, registry-free: built with debootstrap, idempotent, and it runs
hardened with the whole stack (real Docker; the first run builds for a few minutes)."""

from __future__ import annotations

import docker
import pytest

from interpreter.image import base_tag, build_image, image_tag

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]

HARDENED = {
    "user": "1000:1000",
    "read_only": True,
    "network_mode": "none",
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    # as every sandbox has: HOME=/tmp, and matplotlib needs a writable cache dir
    "tmpfs": {"/tmp": "size=64m"},
    "labels": {"lci.test": "image-build"},
}
IMPORTS = (
    "import ipykernel, numpy, pandas, matplotlib, openpyxl, docx, pptx, pypdf, PIL, pkg_resources"
)


@pytest.fixture(scope="module")
def built(docker_client: docker.DockerClient) -> str:
    """Build (or reuse) the image by the registry-free method."""
    lines: list[str] = []
    tag = build_image(method="debootstrap", progress=lines.append, client=docker_client)
    assert tag == image_tag()
    assert lines[0] == f"image {tag} is present" or lines[-1].startswith(f"built {tag} in ")
    docker_client.images.get(base_tag())  # the base stays for the next build
    return tag


def run(client: docker.DockerClient, tag: str, *cmd: str) -> str:
    out = client.containers.run(tag, list(cmd), remove=True, **HARDENED)
    return bytes(out).decode().strip()


def test_second_build_is_a_no_op(built: str, docker_client: docker.DockerClient):
    lines: list[str] = []
    assert build_image(method="debootstrap", progress=lines.append, client=docker_client) == built
    assert lines == [f"image {built} is present"]  # no [n/4] step ran


def test_runs_hardened_as_uid_1000(built: str, docker_client: docker.DockerClient):
    assert run(docker_client, built, "id", "-u") == "1000"
    assert run(docker_client, built, "sh", "-c", "echo $HOME $PATH") == (
        "/tmp /opt/lci/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    )


def test_the_stack_imports_offline(built: str, docker_client: docker.DockerClient):
    out = run(docker_client, built, "python", "-W", "ignore", "-c", f"{IMPORTS}; print('ok')")
    assert out == "ok"


def test_kernels_and_font_cache_are_in_place(built: str, docker_client: docker.DockerClient):
    listing = run(docker_client, built, "ls", "/opt/lci/kernels", "/opt/lci/mplconfig")
    assert {"lci_launcher.py", "lci_startup.py", "__pycache__"} <= set(listing.split())
    assert any(name.startswith("fontlist") for name in listing.split())
    mounts = run(docker_client, built, "ls", "-d", "/mnt/data", "/run/lci/ctl", "/run/lci/sock")
    assert mounts.split() == ["/mnt/data", "/run/lci/ctl", "/run/lci/sock"]


def test_no_wheels_are_left_in_the_image(built: str, docker_client: docker.DockerClient):
    no_tmpfs = {**HARDENED, "tmpfs": {}}  # look at the image's own /tmp
    out = docker_client.containers.run(
        built, ["sh", "-c", "ls -A /tmp; ls /opt/lci"], remove=True, **no_tmpfs
    )
    assert bytes(out).decode().split() == ["kernels", "mplconfig", "venv"]
    labels = docker_client.images.get(built).labels
    assert labels["org.lci.image"] == "sandbox" and labels["org.lci.tag"] == built
