"""The image tag names its inputs (no Docker needed)."""

import shutil
from pathlib import Path

import pytest

from interpreter.errors import ImageBuildFailed
from interpreter.image import image_tag, source_dir


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = source_dir()
    copy = tmp_path / "src"
    shutil.copytree(src / "images", copy / "images")
    shutil.copytree(src / "kernels", copy / "kernels", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_tag_is_stable_and_ignores_bytecode(tree: Path):
    first = image_tag(tree)
    assert first.startswith("lci-sandbox:") and len(first.split(":")[1]) == 12
    (tree / "kernels" / "__pycache__").mkdir()
    (tree / "kernels" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    assert image_tag(tree) == first


@pytest.mark.parametrize("changed", ["kernels/lci_launcher.py", "images/requirements.txt", "images/Dockerfile"])
def test_tag_changes_with_any_input(tree: Path, changed: str):
    before = image_tag(tree)
    with open(tree / changed, "a") as f:
        f.write("\n# changed\n")
    assert image_tag(tree) != before


def test_a_tree_without_sources_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LCI_SOURCE_DIR", str(tmp_path))
    with pytest.raises(ImageBuildFailed, match="LCI_SOURCE_DIR"):
        source_dir()
