"""Smaller Azure-sessions clients a new user might pick, used as their READMEs show."""

from __future__ import annotations

import io
import uuid

import pytest

from .conftest import LiveServer

pytestmark = pytest.mark.docker


def test_azure_dynamic_sessions_code_interpreter(live_server: LiveServer) -> None:
    from azure_dynamic_sessions_code_interpreter import CodeInterpreterTool

    tool = CodeInterpreterTool(
        pool_management_endpoint=live_server.pool, session_id=str(uuid.uuid4())
    )
    tool.access_token_provider = lambda: live_server.key  # instead of an Entra token
    out = tool.execute("print('hello world')\n1 + 1")
    assert out["status"] == "Success" and out["stdout"] == "hello world\n" and out["result"] == 2
    meta = tool.upload_file(data=io.BytesIO(b"col\n1\n"), remote_file_path="t.csv")
    assert meta.filename == "t.csv" and meta.size_in_bytes == 6
    assert [f.filename for f in tool.list_files()] == ["t.csv"]
    assert tool.download_file(remote_file_path="t.csv").read() == b"col\n1\n"
    again = tool.execute("import pandas as pd\npd.read_csv('/mnt/data/t.csv')['col'].sum()")
    assert again["result"] == 1
