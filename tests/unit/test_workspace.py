"""Host-side /mnt/data handling against a hostile directory (no Docker needed)."""

import os

import pytest

from interpreter.errors import InvalidFilename
from interpreter.workspace import Workspace, sanitize_filename


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("a.csv", "a.csv"),
        ("/mnt/data/a b.csv", "a b.csv"),
        ("dir/./x.txt", "dir/x.txt"),
        ("données.xlsx", "données.xlsx"),
    ],
)
def test_sanitize_accepts(given, expected):
    assert sanitize_filename(given) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "../x",
        "a/../../x",
        "/etc/passwd",
        "a\x00b",
        "",
        "/",
        "/mnt/data/",
        "a\nb",
        "a\x85b",  # C1 controls too: a scan of /mnt/data would not list it
        "/mnt/data/../x",
    ],
)
def test_sanitize_rejects(bad):
    with pytest.raises(InvalidFilename) as e:
        sanitize_filename(bad)
    assert "Invalid filename" in str(e.value)


def test_place_replaces_a_planted_symlink_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    root = tmp_path / "data"
    ws = Workspace(root)
    ws.create()
    os.symlink(victim, root / "upload.csv")
    src = tmp_path / "src"
    src.write_bytes(b"new contents")
    assert ws.place("upload.csv", src) == 12
    assert victim.read_text() == "precious"
    assert not (root / "upload.csv").is_symlink()
    assert (root / "upload.csv").read_bytes() == b"new contents"


def test_place_refuses_to_walk_through_a_symlinked_directory(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "data"
    ws = Workspace(root)
    ws.create()
    os.symlink(outside, root / "sub")
    src = tmp_path / "src"
    src.write_bytes(b"x")
    with pytest.raises(InvalidFilename, match="'sub' is a file or a link"):  # a 400, not a 500
        ws.place("sub/x.csv", src)
    assert list(outside.iterdir()) == []


def test_place_under_a_file_is_an_invalid_name_not_an_os_error(tmp_path):
    root = tmp_path / "data"
    ws = Workspace(root)
    ws.create()
    (root / "a.txt").write_text("a file")
    src = tmp_path / "src"
    src.write_bytes(b"x")
    with pytest.raises(InvalidFilename, match=r"'a\.txt' is a file or a link, not a directory"):
        ws.place("a.txt/b/x.csv", src)
    assert (root / "a.txt").read_text() == "a file"


def test_scan_lists_regular_files_only(tmp_path):
    root = tmp_path / "data"
    ws = Workspace(root)
    ws.create()
    (root / "a.txt").write_text("a")
    (root / "d").mkdir()
    (root / "d" / "b.txt").write_text("bb")
    (root / ".hidden").write_text("h")
    os.symlink("/etc/passwd", root / "link")
    os.mkfifo(root / "fifo")
    found = ws.scan().files
    assert sorted(found) == ["a.txt", "d/b.txt"]
    assert found["d/b.txt"].size == 2


def test_open_regular_refuses_links_and_fifos(tmp_path):
    root = tmp_path / "data"
    ws = Workspace(root)
    ws.create()
    os.symlink("/etc/passwd", root / "link")
    os.mkfifo(root / "fifo")
    (root / "ok.txt").write_text("fine")
    for name in ("link", "fifo"):
        with pytest.raises(OSError), ws.open_regular(name):
            pass
    with ws.open_regular("ok.txt") as fd:
        assert os.read(fd, 10) == b"fine"
