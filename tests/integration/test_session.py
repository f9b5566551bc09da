"""One sandbox per thread, /mnt/data, outputs, files with IDs, errors (real Docker)."""

from __future__ import annotations

import hashlib

import pytest

from interpreter import ExecutionStatus, InvalidFilename, NoSuchFile

pytestmark = [pytest.mark.anyio, pytest.mark.docker]
PNG = b"\x89PNG\r\n\x1a\n"


async def test_the_issue_example(manager):
    fid = await manager.files.upload(b"a,b\n1,2\n3,5\n", filename="sales.csv")
    session = await manager.session("thread_abc", file_ids=[fid])
    run = await session.execute(
        "import pandas as pd\ndf = pd.read_csv('/mnt/data/sales.csv')\n"
        "df.plot(); import matplotlib.pyplot as plt; plt.show()\n"
        "df.describe().to_csv('/mnt/data/summary.csv')"
    )
    assert run.status is ExecutionStatus.OK, run.error
    assert run.outputs[-1]["type"] == "image"
    png = await manager.files.content(run.outputs[-1]["image"]["file_id"])
    assert png.startswith(PNG)
    [produced] = run.files
    assert produced.path == "/mnt/data/summary.csv"
    summary = await manager.files.content(produced.file_id)
    assert summary.startswith(b",a,b\ncount,2.0,2.0") and produced.bytes == len(summary)
    assert run.duration_ms > 0 and run.thread_id == "thread_abc"


async def test_state_persists_and_threads_are_isolated(manager):
    a = await manager.session("thread-a")
    b = await manager.session("thread-b")
    assert a.id != b.id and a.sandbox.id != b.sandbox.id
    assert (await manager.session("thread-a")) is a  # get, not create
    await a.execute("import json\nsecret = 41\nopen('/mnt/data/only-a.txt', 'w').write('a')")
    r = await a.execute("print(json.dumps(secret + 1))")
    assert r.stdout == "42\n"
    r = await b.execute(
        "print('secret' in globals(), 'json' in dir())\nimport os\nprint(os.listdir('/mnt/data'))"
    )
    assert r.stdout == "False False\n[]\n"


async def test_files_appear_with_exact_bytes_at_start_and_later(manager):
    blob = bytes(range(256)) * 1000
    first = await manager.files.upload(blob, filename="data.bin")
    session = await manager.session("t-files", file_ids=[first])
    later = await manager.files.upload(b"late\n", filename="/mnt/data/sub dir/late.txt")
    assert await session.add_files([later]) == ["/mnt/data/sub dir/late.txt"]
    r = await session.execute(
        "import hashlib\n"
        "print(hashlib.sha256(open('/mnt/data/data.bin','rb').read()).hexdigest())\n"
        "print(open('sub dir/late.txt').read(), end='')"
    )
    assert r.stdout == hashlib.sha256(blob).hexdigest() + "\nlate\n"
    assert r.files == []  # placed files are not "produced"
    for bad in ("../escape.txt", "/etc/passwd", "a\x00b"):
        with pytest.raises(InvalidFilename):
            await manager.files.upload(b"x", filename=bad)


async def test_images_from_show_display_fig_and_pil(manager):
    session = await manager.session("t-img")
    r = await session.execute(
        "import matplotlib.pyplot as plt\nfrom matplotlib.figure import Figure\n"
        "from PIL import Image\n"
        "plt.plot([1, 2, 3]); plt.show()\n"
        "fig = Figure(); fig.add_subplot().bar([1, 2], [3, 4]); display(fig)\n"
        "display(Image.new('RGB', (20, 10), 'red'))"
    )
    assert r.status is ExecutionStatus.OK, r.error
    ids = r.images
    assert len(ids) == 3
    for fid in ids:
        info = await manager.files.get(fid)
        assert info.mime_type == "image/png" and info.purpose == "assistants_output"
        assert (await manager.files.content(fid)).startswith(PNG)


async def test_rich_results_and_cut_logs_with_complete_log_file(manager, settings):
    session = await manager.session("t-logs")
    r = await session.execute("import pandas as pd\npd.DataFrame({'x': [1, 2]})")
    [res] = r.results
    assert "<table" in res["data"]["text/html"] and "x" in res["data"]["text/plain"]
    n = settings.limits.max_log_chars * 3
    r = await session.execute(f"import sys\nprint('A' * {n}, end='')\nsys.stderr.write('TAIL');")
    assert r.logs_truncated and r.log_file_id
    logs = r.outputs[0]["logs"]
    assert logs.startswith("AAAA") and logs.endswith("TAIL") and len(logs) < n
    assert f"the complete log is file {r.log_file_id}" in logs
    full = await manager.files.content(r.log_file_id)
    assert full == b"A" * n + b"TAIL"


async def test_file_metadata_and_unknown_id(manager):
    session = await manager.session("t-meta")
    r = await session.execute("open('/mnt/data/out.txt', 'w').write('hello')")
    [f] = r.files
    info = await manager.files.get(f.file_id)
    assert info.id.startswith("file-") and info.filename == "out.txt" and info.bytes == 5
    assert info.purpose == "assistants_output" and info.mime_type == "text/plain"
    assert info.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert (info.thread_id, info.session_id, info.execution_id) == ("t-meta", session.id, r.id)
    assert info.created_at > 0
    r2 = await session.execute(
        "open('/mnt/data/out.txt', 'a').write('!')\nopen('/mnt/data/untouched.txt','w')"
    )
    assert sorted(f.path for f in r2.files) == ["/mnt/data/out.txt", "/mnt/data/untouched.txt"]
    r3 = await session.execute("x = 1")
    assert r3.files == []  # nothing created or modified
    with pytest.raises(NoSuchFile):
        await manager.files.content("file-000000000000000000000000")


async def test_errors_are_results_and_state_survives(manager):
    session = await manager.session("t-err")
    await session.execute("data = [1, 2, 3]")
    r = await session.execute("data.append(4)\nundefined_name")
    assert r.status is ExecutionStatus.ERROR
    assert r.error.ename == "NameError" and "undefined_name" in r.error.evalue
    assert r.error.traceback and not any("\x1b" in line for line in r.error.traceback)
    r = await session.execute("def broken(:\n  pass")
    assert r.status is ExecutionStatus.ERROR and r.error.ename == "SyntaxError"
    r = await session.execute("print(data)")  # the model's retry sees earlier state
    assert r.ok and r.stdout == "[1, 2, 3, 4]\n"
