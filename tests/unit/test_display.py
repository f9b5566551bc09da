"""The terminal rendering of sessions and executions (pure; no engine)."""

from __future__ import annotations

from interpreter.cli import display
from interpreter.config import format_bytes, format_duration

VIEW = {
    "id": "sess_1",
    "thread_id": "t1",
    "tenant": "",
    "state": "idle",
    "created_at": 1_700_000_000.0,
    "age_s": 3725.0,
    "idle_s": 65.2,
    "expires_in_s": None,
    "memory_bytes": 83_886_080,
    "cpu_percent": 12.345,
    "executions": 4,
    "files": 2,
    "memory_limit": 1024**3,
    "cpus": 1.0,
    "pids_limit": 256,
    "network": "none",
    "idle_timeout": 1200.0,
    "container": "abc",
    "ended_at": None,
    "end_reason": None,
}
ENTRY = {
    "id": "exec_1",
    "status": "error",
    "started_at": 1_700_000_000.0,
    "duration_ms": 1500,
    "code": "print('hi')\n1/0\n",
    "transcript": [
        {"type": "stream", "name": "stdout", "text": "hi\n"},
        {"type": "image", "file_id": "file-img", "mime": "image/png"},
        {"type": "execute_result", "data": {"text/plain": "3"}},
        {
            "type": "error",
            "ename": "ZeroDivisionError",
            "evalue": "division by zero",
            "traceback": ["Traceback", "ZeroDivisionError: division by zero"],
        },
    ],
    "files": [{"file_id": "file-out", "path": "/mnt/data/out.csv", "bytes": 3}],
    "error": {"ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": []},
}


def test_durations_and_sizes() -> None:
    assert [format_duration(s) for s in (None, 0.0123, 5.9, 65, 3725, 200000)] == [
        "-",
        "12 ms",
        "5.9 s",
        "1m 05s",
        "1h 02m",
        "2d 7h",
    ]
    # one byte formatter for every face (config.format_bytes)
    assert format_bytes(83_886_080) == "80 MiB" and format_bytes(None) == "-"
    assert format_bytes(512) == "512 B" and format_bytes(1536) == "1.5 KiB"


def test_session_row_and_details() -> None:
    row = display.session_rows([VIEW])[0]
    assert row == ("t1", "sess_1", "idle", "1h02m", "1m05s", "-", "80MiB", "12.3%", "4", "2", "-")
    lines = display.table(display.SESSION_HEADER, [row]).splitlines()
    assert (
        lines[0].split()[:3] == ["THREAD", "SESSION", "STATE"] and lines[1].split()[1] == "sess_1"
    )
    text = display.session_details(VIEW)
    assert "limits:      memory 1 GiB, 1 CPUs, 256 pids, network none" in text
    assert "container:   abc" in text


def test_an_execution_reads_code_then_outputs_in_order() -> None:
    text = display.execution_text(ENTRY, saved={"file-img": "out/plot.png"})
    lines = text.splitlines()
    assert lines[0].startswith("── 2023-11-1") and lines[0].endswith("exec_1  ERROR  1.5 s")
    assert lines[1:3] == [">>> print('hi')", "... 1/0"]
    assert lines[3:6] == ["hi", "[image image/png out/plot.png]", "3"]
    assert lines[6] == "!! ZeroDivisionError: division by zero"  # errors clearly marked
    assert lines[-1] == "[file /mnt/data/out.csv file-out]"
    assert "[image image/png file-img]" in display.execution_text(ENTRY)  # not saved: the ID


def test_follow_footer_marks_failures() -> None:
    footer = display.execution_footer(ENTRY)
    assert footer.splitlines()[0] == "[image image/png file-img]"
    assert footer.splitlines()[-1] == "!! exec_1 ERROR: ZeroDivisionError: division by zero  1.5 s"
    ok = display.execution_footer({"id": "exec_2", "status": "ok", "duration_ms": 12})
    assert ok == "── exec_2 OK  12 ms\n"
