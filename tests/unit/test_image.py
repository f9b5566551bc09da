"""The image tag names its inputs; the build's edges translate errors (no Docker needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import docker.errors
import pytest

from interpreter.backends.docker_image import follow as _follow
from interpreter.errors import EngineUnavailable, ImageBuildFailed
from interpreter.image import build_image, image_tag, source_dir


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the sources the tag is made from."""
    src, copy = source_dir(), tmp_path / "src"
    shutil.copytree(src / "images", copy / "images")
    shutil.copytree(src / "kernels", copy / "kernels", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


class FakeImages:
    def __init__(self, present: set[str], error: Exception | None = None) -> None:
        self.present, self.error = present, error
        self.asked: list[str] = []

    def get(self, tag: str) -> object:
        self.asked.append(tag)
        if self.error:
            raise self.error
        if tag not in self.present:
            raise docker.errors.ImageNotFound(tag)
        return object()


class FakeClient:
    """Only what the no-op path may touch: ``images.get``."""

    def __init__(self, present: set[str], error: Exception | None = None) -> None:
        self.images = FakeImages(present, error)


def test_tag_is_stable_across_copies(tree: Path):
    tag = image_tag(tree)
    assert tag == image_tag(tree) == image_tag(source_dir())
    assert tag.startswith("lci-sandbox:") and len(tag.split(":")[1]) == 12
    int(tag.split(":")[1], 16)


def test_tag_ignores_bytecode(tree: Path):
    before = image_tag(tree)
    (tree / "kernels" / "__pycache__").mkdir()
    (tree / "kernels" / "__pycache__" / "lci_launcher.cpython-311.pyc").write_bytes(b"junk")
    (tree / "kernels" / "stray.pyc").write_bytes(b"junk")
    assert image_tag(tree) == before


@pytest.mark.parametrize(
    "changed", ["kernels/lci_launcher.py", "images/requirements.txt", "images/Dockerfile"]
)
def test_tag_changes_with_any_input(tree: Path, changed: str):
    before = image_tag(tree)
    with open(tree / changed, "a") as f:
        f.write("\n# changed\n")
    assert image_tag(tree) != before


def test_tag_changes_with_a_new_or_renamed_kernel_file(tree: Path):
    before = image_tag(tree)
    (tree / "kernels" / "extra.py").write_text("")
    added = image_tag(tree)
    (tree / "kernels" / "extra.py").rename(tree / "kernels" / "other.py")
    assert len({before, added, image_tag(tree)}) == 3


def test_present_image_is_a_no_op():
    client = FakeClient({image_tag()})
    lines: list[str] = []
    assert build_image(progress=lines.append, client=client) == image_tag()  # type: ignore[arg-type]
    assert lines == [f"image {image_tag()} is present"]
    assert client.images.asked == [image_tag()]


def test_unknown_method_fails_before_any_engine_call():
    client = FakeClient(set())
    with pytest.raises(ImageBuildFailed, match="'podman' is not one of auto, debootstrap"):
        build_image(method="podman", client=client)  # type: ignore[arg-type]
    assert client.images.asked == []


def test_engine_errors_are_translated():
    down = FakeClient(set(), docker.errors.DockerException("connection refused"))
    with pytest.raises(EngineUnavailable, match="connection refused") as info:
        build_image(client=down)  # type: ignore[arg-type]
    assert isinstance(info.value.__cause__, docker.errors.DockerException)
    broken = FakeClient(set(), docker.errors.APIError("500 Server Error", explanation="disk full"))
    with pytest.raises(ImageBuildFailed, match="disk full"):
        build_image(client=broken)  # type: ignore[arg-type]


def test_build_log_is_streamed_and_an_error_names_the_last_lines():
    lines: list[str] = []
    logs = [
        {"stream": "Step 1/2 : FROM base\n"},
        {"stream": " ---> abc\n\n"},
        {"stream": "pip: no matching distribution\n"},
        {"error": "The command returned a non-zero code: 1\n"},
    ]
    with pytest.raises(ImageBuildFailed, match=r"non-zero code: 1 \(after: .*no matching") as info:
        _follow(logs, lines.append)
    assert info.value.step == "docker build"
    assert lines == ["Step 1/2 : FROM base", " ---> abc", "pip: no matching distribution"]
