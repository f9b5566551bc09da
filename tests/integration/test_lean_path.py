"""The warm execute path does only what a warm execution needs (issue 14, point 4), and
loses none of what the history, the catalogue and the cross-process lock guarantee.

What a warm ``x = 1`` costs besides the kernel's round trip is counted here, not timed:
SQLite statements and commits, scans of /mnt/data, worker-thread hops, reads of the
launcher's state file. The rest checks that the scan an execution ended with, reused as
the next one's starting point, never makes a result lie: files from an upload or from
another process's execution are not taken for the code's own, a rewrite that sets its
mtime back is still seen, and what the kernel wrote between calls is not lost.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from interpreter import SessionManager, Settings
from interpreter.session import Session
from interpreter.workspace import Workspace

pytestmark = [pytest.mark.docker, pytest.mark.anyio]


@contextmanager
def counting(manager: SessionManager, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Count SQL statements (by first word), scans, worker-thread hops and opens of the
    launcher's state file while the block runs."""
    seen: Counter[str] = Counter()
    db = manager.store._db
    db.set_trace_callback(lambda sql: seen.update([f"sql {sql.split()[0].upper()}"]))
    scan, hop, opened = Workspace.scan, anyio.to_thread.run_sync, os.open

    def counted_scan(self: Workspace, *a: Any, **k: Any) -> Any:
        seen["scan"] += 1
        out = scan(self, *a, **k)
        if threading.current_thread() is threading.main_thread() and not out.truncated:
            seen["whole tree read on the event loop"] += 1
        return out

    async def counted_hop(*a: Any, **k: Any) -> Any:
        seen["thread"] += 1
        return await hop(*a, **k)

    def counted_open(path: Any, *a: Any, **k: Any) -> Any:
        if str(path).endswith("state.json"):
            seen["state.json"] += 1
        return opened(path, *a, **k)

    monkeypatch.setattr(Workspace, "scan", counted_scan)
    monkeypatch.setattr(anyio.to_thread, "run_sync", counted_hop)
    monkeypatch.setattr(os, "open", counted_open)
    try:
        yield seen
    finally:
        db.set_trace_callback(None)
        monkeypatch.undo()


async def test_a_warm_execution_does_only_what_it_needs(
    manager: SessionManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = await manager.session("lean")
    await s.execute("x = 0")
    await s.execute("x = 1")
    with counting(manager, monkeypatch) as seen:
        exe = await s.execute("x += 1")
    assert exe.ok
    # two commits: the execution running with the session busy, then its result with
    # the session idle (before: four); one read of the session's record
    assert seen["sql BEGIN"] == seen["sql COMMIT"] == 2, seen
    assert (seen["sql UPDATE"], seen["sql INSERT"]) == (3, 1), seen
    assert seen["sql SELECT"] <= 1, seen
    # one scan of /mnt/data (the last execution's serves as this one's start), on the
    # event loop: no worker thread for a small tree; the unchanged state file not reopened
    assert seen["scan"] == 1, seen
    assert seen["thread"] == 0, seen
    assert seen["whole tree read on the event loop"] == 1, seen
    assert seen["state.json"] == 0, seen
    # the history has all of it, as before
    [row] = manager.history.entries(tenant=s.tenant, session_id=s.id, last=1)
    assert (row["id"], row["status"], row["live_log"]) == (exe.id, "ok", None)
    rec = manager.record(s.id)
    assert rec is not None and rec.executions == 3 and rec.state.value == "idle"


async def test_a_large_tree_is_scanned_off_the_event_loop(
    manager: SessionManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = await manager.session("lean-large")
    await s.execute("import os\nfor i in range(400): open(f'f{i}.txt', 'w').close()")
    with counting(manager, monkeypatch) as seen:
        exe = await s.execute("open('f0.txt', 'w').write('changed')")
    assert [f.path for f in exe.files] == ["/mnt/data/f0.txt"]
    assert seen["whole tree read on the event loop"] == 0, seen  # given up, done in a thread


async def test_files_the_kernel_wrote_between_calls_are_kept(manager: SessionManager) -> None:
    s = await manager.session("lean-between")
    await s.execute(
        "import threading, time\n"
        "def later():\n"
        "    time.sleep(0.5)\n"
        "    open('late.txt', 'w').write('late')\n"
        "threading.Thread(target=later).start()"
    )
    await anyio.sleep(1.5)
    exe = await s.execute("1")
    # written by the kernel after the last call ended: reported with this one, stored
    [late] = exe.files
    assert late.path == "/mnt/data/late.txt"
    assert await manager.files.content(late.file_id) == b"late"
    assert {f.path: f.file_id for f in await s.list_files()} == {"late.txt": late.file_id}


async def test_uploads_and_other_processes_are_not_taken_for_the_codes_own(
    settings: Settings, manager: SessionManager
) -> None:
    s = await manager.session("lean-other")
    await s.execute("open('mine.txt', 'w').write('1')")
    async with SessionManager(settings) as other:  # another process on the same LCI_HOME
        o = await other.session("lean-other")
        assert o.id == s.id
        fid = await other.files.upload(b"u,v\n", filename="up.csv")
        await o.put_file("up.csv", fid)  # an upload there, between this process's calls
        exe = await s.execute("open('mine.txt', 'w').write('3')")
        assert [f.path for f in exe.files] == ["/mnt/data/mine.txt"]  # not up.csv
        made = await o.execute("open('theirs.txt', 'w').write('2')\nopen('bad\\x01', 'w')")
        assert [f.path for f in made.files] == ["/mnt/data/theirs.txt"]
        assert len(made.skipped_files) == 1
        await o.close()
    exe = await s.execute("open('mine.txt', 'w').write('4')")
    assert [f.path for f in exe.files] == ["/mnt/data/mine.txt"]  # not theirs.txt
    assert exe.skipped_files == []  # the other execution's skip was told there, once
    listed = {f.path: f for f in await s.list_files()}
    assert listed["up.csv"].file_id == fid and listed["up.csv"].source == "user"
    assert listed["theirs.txt"].file_id == made.files[0].file_id

    # an upload in this process between calls: not the code's either
    fid2 = await manager.files.upload(b"w\n", filename="two.csv")
    await s.put_file("two.csv", fid2)
    exe = await s.execute("1")
    assert exe.files == []


async def test_a_rewrite_that_sets_its_mtime_back_is_still_seen(manager: SessionManager) -> None:
    s = await manager.session("lean-mtime")
    fid = await manager.files.upload(b"aaaa", filename="d.bin")
    await s.put_file("d.bin", fid)
    await s.execute("1")  # the scan this ends with is the next call's starting point
    exe = await s.execute(
        "import os\nst = os.stat('d.bin')\n"
        "open('d.bin', 'r+b').write(b'bbbb')\n"
        "os.utime('d.bin', ns=(st.st_atime_ns, st.st_mtime_ns))"
    )
    [f] = exe.files
    assert await manager.files.content(f.file_id) == b"bbbb"


async def test_a_listing_during_an_execution_hides_none_of_its_files(
    manager: SessionManager,
) -> None:
    """A listing while the code runs stores and indexes what it finds: the execution
    still reports the file it wrote (a red-team finding against an index-based skip)."""
    s = await manager.session("lean-list")
    await s.execute("1")
    run = asyncio.ensure_future(
        s.execute("import time\nopen('out.csv', 'w').write('a,b')\ntime.sleep(1.5)")
    )
    await anyio.sleep(0.8)
    listed = {f.path: f.file_id for f in await s.list_files()}
    assert "out.csv" in listed
    exe = await run
    assert [f.path for f in exe.files] == ["/mnt/data/out.csv"]


async def test_a_forged_mtime_cannot_revive_an_old_version(manager: SessionManager) -> None:
    """The kernel deletes a file it made, writes another of the same size and sets the
    old one's mtime back on it: the new one is the code's output, and a listing serves
    its content, not the old version's."""
    s = await manager.session("lean-forge")
    first = await s.execute(
        "import os\nopen('y.bin', 'wb').write(b'old!')\nprint(os.stat('y.bin').st_mtime_ns)"
    )
    [old] = first.files
    mtime = first.stdout.strip()
    await s.execute("import os\nos.remove('y.bin')")  # the index keeps its row
    forged = await s.execute(
        f"import os\nopen('y.bin', 'wb').write(b'bad!')\nos.utime('y.bin', ns=({mtime}, {mtime}))"
    )
    [f] = forged.files
    assert f.file_id != old.file_id
    assert await manager.files.content(f.file_id) == b"bad!"
    listed = {x.path: x.file_id for x in await s.list_files()}
    assert await manager.files.content(listed["y.bin"]) == b"bad!"


async def test_a_bloated_directory_is_read_off_the_event_loop(
    manager: SessionManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few entries in a directory that once held many (ext4 directories never shrink):
    reading it costs its size, so it is not read on the event loop."""
    s = await manager.session("lean-bloat")
    await s.execute(
        "import os\nos.mkdir('d')\n"
        "for i in range(3000): open(f'd/{i:0200d}', 'w').close()\n"
        "for i in range(3000): os.remove(f'd/{i:0200d}')"
    )
    size = (await s.execute("import os\nprint(os.stat('d').st_size)")).stdout.strip()
    assert int(size) > 64 * 1024
    with counting(manager, monkeypatch) as seen:
        exe = await s.execute("open('d/x', 'w').write('x')")
    assert [f.path for f in exe.files] == ["/mnt/data/d/x"]
    assert seen["whole tree read on the event loop"] == 0, seen  # given up, done in a thread


def test_the_lock_file_counts_its_holders(tmp_path: Path) -> None:
    from interpreter.locking import take_turn

    fd = os.open(tmp_path / "l", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert take_turn(fd) == (0, 1)
        assert take_turn(fd) == (1, 2)
    finally:
        os.close(fd)


async def test_a_session_held_by_two_objects_keeps_its_history_exact(
    settings: Settings, manager: SessionManager
) -> None:
    """Executions from two holders of one session interleave; each holder's next
    execution starts from a fresh scan whenever the other ran code meanwhile."""
    s = await manager.session("lean-two")
    async with SessionManager(settings) as other:
        o = await other.session("lean-two")
        produced: list[str] = []
        for i in range(4):
            holder: Session = s if i % 2 == 0 else o
            exe = await holder.execute(f"open('n{i}.txt', 'w').write('{i}')")
            produced += [f.path for f in exe.files]
        await o.close()
    assert produced == [f"/mnt/data/n{i}.txt" for i in range(4)]
