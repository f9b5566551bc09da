"""The sandbox image: idempotent build, contents, runs hardened (real Docker)."""

from __future__ import annotations

import pytest

from interpreter.image import build_image, image_tag

pytestmark = [pytest.mark.docker]


def test_second_build_is_a_no_op(sandbox_image, docker_client):
    lines: list[str] = []
    assert build_image(progress=lines.append, client=docker_client) == image_tag() == sandbox_image
    assert lines == [f"image {sandbox_image} is present"]


def test_image_has_the_stack_and_runs_hardened(sandbox_image, docker_client):
    script = (
        "import os, ipykernel, numpy, pandas, matplotlib, openpyxl, docx, pptx, pypdf, PIL, pkg_resources\n"
        "print(os.getuid(), sorted(os.listdir('/opt/lci/kernels')))\n"
        "print(os.listdir('/opt/lci/mplconfig'))"
    )
    out = docker_client.containers.run(
        sandbox_image, ["python", "-W", "ignore", "-c", script], remove=True, user="1000:1000",
        read_only=True, network_mode="none", cap_drop=["ALL"], security_opt=["no-new-privileges:true"],
        tmpfs={"/tmp": "size=64m"},
    ).decode()
    uid_line, mpl_line = out.strip().splitlines()
    assert uid_line.startswith("1000 ")
    assert "lci_launcher.py" in uid_line and "lci_startup.py" in uid_line
    assert "fontlist" in mpl_line  # the font cache is built at image build time, not per session
