"""The launcher's state file, read as hostile input: anything off reads as no state."""

import json
import os
import time

from interpreter.launcher import LauncherState, parse_state, read_state


def test_a_good_state_file():
    raw = json.dumps(
        {"generation": 3, "exits": [{"generation": 2, "returncode": -9, "signal": 9}]}
    ).encode()
    state = parse_state(raw)
    assert state.generation == 3 and state.exits[0].signal == 9


def test_forged_and_malformed_states_read_as_nothing():
    for raw in (
        b"[" * 60000,  # the depth bomb that hung every later call
        b"\xff\xfe",
        b"[]",
        b'{"generation": "3"}',
        b'{"generation": 1e400}',
        b'{"generation": true}',
    ):
        assert parse_state(raw).generation == 0
    odd = parse_state(b'{"generation": 2, "exits": [1, "x", {"signal": "9", "returncode": 9e99}]}')
    assert odd.generation == 2 and odd.exits[0].signal is None and odd.exits[0].returncode is None


def test_read_state_refuses_links_fifos_and_huge_files(tmp_path):
    target = tmp_path / "real.json"
    target.write_text('{"generation": 5}')
    assert read_state(target).generation == 5
    os.symlink(target, tmp_path / "link.json")
    assert read_state(tmp_path / "link.json") == LauncherState()
    os.mkfifo(tmp_path / "fifo.json")
    assert read_state(tmp_path / "fifo.json") == LauncherState()  # and it did not block
    (tmp_path / "big.json").write_text('{"generation": 5, "x": "' + "a" * 100_000 + '"}')
    assert read_state(tmp_path / "big.json") == LauncherState()


def test_the_state_file_is_parsed_again_only_when_it_changed(tmp_path, monkeypatch):
    from interpreter.launcher import StateFile

    path = tmp_path / "state.json"

    def write(generation: int, in_place: bool = False) -> None:
        raw = json.dumps({"generation": generation}).encode()
        if in_place:  # same inode and size, mtime set back: the ctime still moves
            st = os.stat(path)
            path.write_bytes(raw)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        else:  # the launcher's way: a new file renamed into place
            (tmp_path / "t").write_bytes(raw)
            os.replace(tmp_path / "t", path)

    parsed = []
    monkeypatch.setattr(
        "interpreter.launcher.parse_state", lambda raw: parsed.append(raw) or parse_state(raw)
    )
    f = StateFile(path)
    assert f.read() == LauncherState()  # no file yet
    write(1)
    assert f.read().generation == 1 and f.read().generation == 1
    assert len(parsed) == 2  # just written: not trusted unchanged yet (a coarse clock)
    time.sleep(0.06)
    assert f.read().generation == 1 and f.read().generation == 1
    assert len(parsed) == 3  # settled: read once more, then not parsed again
    write(2)
    assert f.read().generation == 2 and len(parsed) == 4
    time.sleep(0.06)  # past the coarse clock's tick that stamped the rename
    f.read()
    write(3, in_place=True)
    assert f.read().generation == 3 and len(parsed) == 6
    path.unlink()
    os.symlink(tmp_path / "elsewhere", path)
    assert f.read() == LauncherState()  # a link is never followed, nor the cache believed
