"""/mnt/data as files with IDs, and executions that their caller abandons."""

from __future__ import annotations

import asyncio

import pytest

from interpreter import SessionManager
from interpreter.errors import InvalidFilename, NoSuchFile

pytestmark = [pytest.mark.docker, pytest.mark.anyio]


async def test_files_in_the_sandbox_keep_ids_until_they_change(manager: SessionManager) -> None:
    s = await manager.session("catalog")
    assert await s.list_files() == []  # a new session starts empty
    fid = await manager.files.upload(b"a,b\n", filename="in.csv")
    placed = await s.put_file("data/in.csv", fid)
    assert (placed.path, placed.source, placed.file_id) == ("data/in.csv", "user", fid)
    exe = await s.execute("open('out.txt', 'w').write('one')")
    [made] = exe.files
    listed = {f.path: f for f in await s.list_files()}
    assert set(listed) == {"data/in.csv", "out.txt"}
    assert listed["out.txt"].file_id == made.file_id and listed["out.txt"].source == "assistant"
    again = {f.path: f.file_id for f in await s.list_files()}
    assert again["out.txt"] == made.file_id  # unchanged: same id, nothing re-read

    # changed behind the execution's back (e.g. by a shell command): a new id on listing
    await s.execute("import os; os.system('echo two >> out.txt')")
    changed = {f.path: f for f in await s.list_files()}
    assert changed["out.txt"].file_id != made.file_id
    assert await manager.files.content(changed["out.txt"].file_id) == b"one" + b"two\n"

    await s.remove_file("/mnt/data/out.txt")
    assert [f.path for f in await s.list_files()] == ["data/in.csv"]
    with pytest.raises(NoSuchFile):
        await s.remove_file("out.txt")
    with pytest.raises(InvalidFilename):
        await s.remove_file("../etc/passwd")
    exe = await s.execute("import os; print(os.path.exists('out.txt'))")
    assert exe.stdout == "False\n"


async def test_a_cancelled_execution_is_interrupted(manager: SessionManager) -> None:
    s = await manager.session("cancel")
    await s.execute("n = 0\nkept = 1")
    task = asyncio.ensure_future(
        s.execute("import time\nwhile True:\n    n += 1\n    time.sleep(0.01)")
    )
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    first = (await s.execute("n")).results[0]["data"]["text/plain"]
    await asyncio.sleep(0.3)
    after = await s.execute("kept, n")
    assert after.results[0]["data"]["text/plain"] == f"(1, {first})"  # stopped, state kept


async def test_output_callback_sees_text_as_printed(manager: SessionManager) -> None:
    s = await manager.session("stream")
    seen: list[tuple[str, str]] = []
    exe = await s.execute(
        "import sys\nprint('out')\nprint('err', file=sys.stderr)\n1/0",
        on_output=lambda kind, text: seen.append((kind, text)),
    )
    assert ("stdout", "out\n") in seen and ("stderr", "err\n") in seen
    assert seen[-1][0] == "error" and "ZeroDivisionError" in seen[-1][1]
    assert exe.status.value == "error"
