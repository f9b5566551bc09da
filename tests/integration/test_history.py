"""Execution history in the store, the inspector core, and stepping in from another process."""

from __future__ import annotations

import asyncio
import base64
import time

import nbformat
import pytest

from interpreter import SessionManager, SessionState
from interpreter.errors import NoSuchFile, NoSuchSession
from interpreter.inspection import LocalInspector

from ..conftest import make_settings

pytestmark = [pytest.mark.anyio, pytest.mark.docker]

PLOT = (
    "import matplotlib.pyplot as plt\nprint('before')\nplt.plot([1, 2, 3]); plt.show()\n"
    "print('after')\nopen('/mnt/data/out.csv', 'w').write('a,b\\n1,2\\n')\n1 / 0"
)


async def test_every_execution_is_recorded_and_outlives_its_session(settings):
    async with SessionManager(settings) as m:
        session = await m.session("t-hist", tenant="alice")
        await session.execute("x = 41")
        exe = await session.execute(PLOT)
        sid = session.id
        await m.stop(sid)
    async with SessionManager(settings) as m:  # another process, the session gone
        entries = m.history.entries(session_id=sid)
        assert [e["code"] for e in entries] == ["x = 41", PLOT]
        first, second = entries
        assert first["status"] == "ok" and second["status"] == "error"
        assert second["thread_id"] == "t-hist" and second["session_id"] == sid
        assert second["error"]["ename"] == "ZeroDivisionError"
        assert second["started_at"] >= first["started_at"] and second["duration_ms"] > 0
        assert [f["path"] for f in second["files"]] == ["/mnt/data/out.csv"]
        # the outputs in the order they came, images by file id (still downloadable)
        kinds = [(i["type"], i.get("text")) for i in second["transcript"]]
        assert kinds == [
            ("stream", "before\n"),
            ("image", None),
            ("stream", "after\n"),
            ("error", None),
        ]
        image_id = second["transcript"][1]["file_id"]
        assert image_id == exe.images[0]
        assert (await m.files.content(image_id, "alice")).startswith(b"\x89PNG")
        rows = m.store.query("SELECT tenant FROM executions WHERE id = ?", (exe.id,))
        assert rows[0][0] == "alice"


async def test_purge_keeps_recent_history_and_drops_old_with_its_files(settings):
    async with SessionManager(make_settings(settings, history_days=7)) as m:
        session = await m.session("t-purge")
        old = await session.execute("import matplotlib.pyplot as plt; plt.plot([1]); plt.show()")
        kept = await session.execute("print('recent')")
        await session.execute("open('/mnt/data/kept.txt', 'w').write('in the workspace')")
        # age the first execution (and what it made) by ten days
        with m.store.transaction() as db:
            db.execute(
                "UPDATE executions SET started_at = started_at - 864000 WHERE id = ?", (old.id,)
            )
        purged = await m.purge_history()
        assert purged.executions == 1 and old.images[0] in purged.files
        assert next(e["id"] for e in m.history.entries(session_id=session.id)) == kept.id
        with pytest.raises(NoSuchFile):
            await m.files.content(old.images[0])
        await asyncio.sleep(0.05)
        everything = await m.purge_history(days=1e-7)  # files in a /mnt/data stay
        index = m.threads.placed("", "t-purge")
        assert everything.executions == 2 and "kept.txt" in index
        assert m.history.entries(session_id=session.id) == []
        await m.files.content(index["kept.txt"].file_id)


async def test_inspector_views_follow_and_tenancy(settings):
    async with SessionManager(settings) as m:
        inspector = LocalInspector(m)
        session = await m.session("t-view", tenant="alice")
        await session.execute("blob = bytearray(60 * 1024 * 1024)")
        [view] = await inspector.sessions("alice")
        assert view.id == session.id and view.state == "idle" and view.tenant == "alice"
        assert view.memory_bytes > 60 * 1024 * 1024 and view.cpu_percent is not None
        assert view.executions == 1 and 3590 < view.expires_in_s <= 3600
        assert await inspector.sessions("bob") == []
        with pytest.raises(NoSuchSession):
            await inspector.session(session.id, "bob")

        events: list[tuple[float, str, object]] = []

        async def follow() -> None:
            async for ev in inspector.follow(session.id, "alice"):
                events.append((time.monotonic(), ev["event"], ev.get("text")))

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        await session.execute(
            "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.6)"
        )
        await inspector.stop(session.id, "alice")
        await asyncio.wait_for(task, 10)
        names = [e[1] for e in events]
        assert names[0] == "started" and names[-2:] == ["finished", "ended"]
        outputs = [(t, text) for t, name, text in events if name == "output"]
        assert "".join(str(t) for _, t in outputs) == "0\n1\n2\n"
        assert outputs[0][0] - t0 < 1.0  # streamed while the code still ran
        assert (await inspector.session(session.id)).state == "expired"


async def test_notebook_export_has_every_cell_and_the_image(settings):
    async with SessionManager(settings) as m:
        inspector = LocalInspector(m)
        session = await m.session("t-nb")
        await session.execute("x = 2")
        await session.execute("x * 21")
        await session.execute(PLOT)
        nb = await inspector.notebook(session.id)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert [c.source for c in code] == ["x = 2", "x * 21", PLOT]
        assert code[1].outputs[0].output_type == "execute_result"
        assert code[1].outputs[0].data["text/plain"] == "42"
        kinds = [o.output_type for o in code[2].outputs]
        assert kinds == ["stream", "display_data", "stream", "error"]
        png = base64.b64decode(code[2].outputs[1].data["image/png"])
        assert png.startswith(b"\x89PNG")


async def test_interrupt_and_restart_from_another_process(settings):
    async with SessionManager(settings) as runner, SessionManager(settings) as operator:
        session = await runner.session("t-step-in")
        await session.execute("kept = 'yes'")
        running = asyncio.create_task(
            session.execute("import time\nwhile True:\n    time.sleep(0.05)", timeout=60)
        )
        await asyncio.sleep(1.0)
        [entry] = [
            e for e in operator.history.entries(session_id=session.id) if e["status"] == "running"
        ]
        await operator.interrupt(session.id)  # not this manager's session: a signal
        exe = await asyncio.wait_for(running, 15)
        assert exe.id == entry["id"]
        assert exe.error is not None and exe.error.ename == "KeyboardInterrupt"
        assert (await session.execute("print(kept)")).stdout == "yes\n"

        await operator.restart(session.id)
        after = await session.execute("print('kept' in globals())")
        assert after.stdout == "False\n" and after.state_lost
        assert "restarted by another client" in (after.notice or "")
        rec = runner.store.get_session(session.id)
        assert rec is not None and rec.state is SessionState.IDLE


async def test_the_reaper_purges_by_itself(settings):
    async with SessionManager(settings) as m:
        session = await m.session("t-auto-purge")
        old = await session.execute("print('old')")
        with m.store.transaction() as db:
            db.execute("UPDATE executions SET started_at = started_at - 40 * 86400")
    # a long-lived manager (its reaper) purges when it starts, then hourly
    async with SessionManager(settings) as m:
        for _ in range(40):
            if m.history.get(old.id) is None:
                break
            await asyncio.sleep(0.1)
        assert m.history.get(old.id) is None


async def test_zero_history_days_keeps_everything(settings):
    async with SessionManager(make_settings(settings, history_days=0)) as m:
        session = await m.session("t-forever")
        exe = await session.execute("print('kept')")
        with m.store.transaction() as db:
            db.execute("UPDATE executions SET started_at = started_at - 4000 * 86400")
        assert (await m.purge_history()).executions == 0
        assert m.history.get(exe.id) is not None
