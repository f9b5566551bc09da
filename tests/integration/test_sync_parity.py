"""One scenario through the async core and the sync facade gives the same results."""

from __future__ import annotations

import anyio
import pytest

from interpreter import SessionManager, SyncSessionManager

from ..conftest import make_settings

pytestmark = [pytest.mark.docker]
SCENARIO = ["x = 20", "print(x * 2)", "x +", "open('/mnt/data/o.txt', 'w').write('hi')", "x + 1"]


def shape(exe):
    d = exe.to_dict()
    d["files"] = [(f["path"], f["bytes"]) for f in d["files"]]
    d["error"] = d["error"] and d["error"]["ename"]
    keep = ("status", "stdout", "stderr", "files", "error", "execution_count", "state_lost")
    return {k: d[k] for k in keep} | {"results": [r["data"] for r in exe.results]}


def test_sync_and_async_agree(settings):
    async def via_async():
        async with SessionManager(make_settings(settings, home=settings.home / "a")) as m:
            s = await m.session("parity")
            out = [shape(await s.execute(code)) for code in SCENARIO]
            await m.stop_all()
            return out

    expected = anyio.run(via_async)
    with SyncSessionManager(make_settings(settings, home=settings.home / "s")) as m:
        s = m.session("parity")
        got = [shape(s.execute(code)) for code in SCENARIO]
        fid = m.files.upload(b"abc", filename="x.bin")
        assert m.files.content(fid) == b"abc"
        m.stop(s.id)
    assert got == expected
    assert [g["status"] for g in got] == ["ok", "ok", "error", "ok", "ok"]
