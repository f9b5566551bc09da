"""What the model reads back from the code_interpreter tool, and how its replies are
read (interpreter/tool.py, chat.py): pure, no engine."""

from __future__ import annotations

import httpx
import pytest

from interpreter.chat import HttpChatModel, map_model, parse_model_map, parse_reply
from interpreter.errors import ModelError
from interpreter.results import ErrorInfo, Execution, ExecutionStatus, ProducedFile
from interpreter.tool import describe, parse_code, shorten_traceback

# an IPython traceback (ANSI already stripped) through pandas internals
TRACEBACK = [
    "---------------------------------------------------------------------------",
    "KeyError                                  Traceback (most recent call last)",
    "File /usr/lib/python3/dist-packages/pandas/core/indexes/base.py:3805, in get_loc\n"
    "-> 3805     return self._engine.get_loc(casted_key)",
    "File index.pyx:167, in pandas._libs.index.IndexEngine.get_loc()",
    "File index.pyx:196, in pandas._libs.index.IndexEngine.get_loc()",
    "Cell In[2], line 3\n      1 import pandas as pd\n      2 df = pd.DataFrame({'a': [1]})\n"
    "----> 3 df['b']",
    "File /usr/lib/python3/dist-packages/pandas/core/frame.py:4102, in __getitem__\n"
    "-> 4102     indexer = self.columns.get_loc(key)",
    "File /usr/lib/python3/dist-packages/pandas/core/indexes/base.py:3812, in get_loc\n"
    "-> 3812     raise KeyError(key) from err",
    "KeyError: 'b'",
]


def test_traceback_keeps_the_user_cell_and_the_raising_frame() -> None:
    short = shorten_traceback(TRACEBACK)
    assert "Traceback (most recent call last)" not in short and "-----" not in short
    assert "Cell In[2], line 3" in short and "----> 3 df['b']" in short
    assert "raise KeyError(key) from err" in short  # the frame that raised
    assert "index.pyx" not in short and "frame.py" not in short
    assert short.endswith("KeyError: 'b'")
    assert "(3 library frames left out)" in short and "(1 library frame left out)" in short
    assert shorten_traceback([]) == ""


def _exe(**kw: object) -> Execution:
    base: dict[str, object] = dict(
        id="exec_1", session_id="s", thread_id="t", code="", status=ExecutionStatus.OK
    )
    return Execution(**{**base, **kw})  # type: ignore[arg-type]


def test_describe_ok_with_output_images_and_files() -> None:
    exe = _exe(
        stdout="hello\n",
        outputs=[{"type": "image", "image": {"file_id": "file-i"}}],
        files=[ProducedFile("file-f", "/mnt/data/out.csv", 12)],
        results=[{"type": "execute_result", "data": {"text/plain": "42"}}],
    )
    assert describe(exe) == (
        "status: ok\noutput:\nhello\nresult:\n42\n"
        "images: 1 image displayed to the user\n"
        "file written: sandbox:/mnt/data/out.csv (12 bytes)"
    )


def test_describe_error_timeout_and_death() -> None:
    err = _exe(
        status=ExecutionStatus.ERROR, error=ErrorInfo("KeyError", "'b'", TRACEBACK), stderr="w\n"
    )
    text = describe(err)
    assert text.startswith("status: error\noutput:\nw\nerror: KeyError: 'b'\ntraceback:\n")
    assert "----> 3 df['b']" in text
    slow = describe(_exe(status=ExecutionStatus.TIMEOUT, error=ErrorInfo("Timeout", "60 s")))
    assert "ran too long" in slow
    died = describe(
        _exe(status=ExecutionStatus.DIED, error=ErrorInfo("KernelDied", "oom"), notice="new")
    )
    assert "note: new" in died and "variables and imports from earlier calls are gone" in died
    huge = describe(_exe(stdout="x" * 50_000))
    assert len(huge) < 9_000 and "(output cut)" in huge


def test_parse_code() -> None:
    assert parse_code('{"code": "print(1)"}') == "print(1)"
    assert parse_code({"code": "x"}) == "x"
    assert parse_code('"print(2)"') == "print(2)"
    assert parse_code("print(3)") == "print(3)"  # raw code, as some models send
    assert parse_code("{}") is None and parse_code('{"code": 1}') is None


def test_parse_reply_accepts_completions_and_bare_messages() -> None:
    reply = parse_reply(
        {
            "choices": [
                {
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {"id": "c1", "function": {"name": "f", "arguments": {"a": 1}}}
                        ],
                    }
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        }
    )
    assert reply.content == "" and reply.usage == {
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "total_tokens": 5,
    }
    assert reply.tool_calls == [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    ]
    bare = parse_reply({"role": "assistant", "content": [{"type": "text", "text": "hi"}]})
    assert bare.content == "hi" and bare.tool_calls == [] and bare.usage is None
    with pytest.raises(ModelError, match="without choices"):
        parse_reply({"choices": []})
    with pytest.raises(ModelError, match="malformed tool call"):
        parse_reply({"tool_calls": [{"id": "x"}]})


def test_model_map() -> None:
    mapping = parse_model_map("gpt-4o=llama3, *=qwen2.5 ,bad, =x")
    assert mapping == {"gpt-4o": "llama3", "*": "qwen2.5"}
    assert map_model("gpt-4o", mapping) == "llama3"
    assert map_model("other", mapping) == "qwen2.5"
    assert map_model("other", {}) == "other"


@pytest.mark.anyio
async def test_http_model_maps_names_sends_the_key_and_reports_errors() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if b'"broken"' in request.content:
            return httpx.Response(400, json={"error": {"message": "model not found"}})
        return httpx.Response(200, json={"choices": [{"message": {"content": "ok"}}]})

    model = HttpChatModel(
        "http://llm/v1/",
        "sk-1",
        model_map={"gpt-4o": "llama3"},
        transport=httpx.MockTransport(answer),
    )
    reply = await model({"model": "gpt-4o", "messages": []})
    assert reply["choices"][0]["message"]["content"] == "ok"
    assert str(seen[0].url) == "http://llm/v1/chat/completions"
    assert seen[0].headers["authorization"] == "Bearer sk-1"
    assert b'"model":"llama3"' in seen[0].content.replace(b" ", b"")
    with pytest.raises(ModelError, match="answered 400: model not found"):
        await model({"model": "broken", "messages": []})
    await model.aclose()


def test_settings_from_env() -> None:
    from interpreter import Settings

    s = Settings.from_env(
        {
            "LCI_MODEL_BASE_URL": " http://127.0.0.1:11434/v1 ",
            "LCI_MODEL_API_KEY": "sk-secret",
            "LCI_MODEL_MAP": "gpt-4o=llama3",
            "LCI_MAX_TOOL_CALLS": "5",
            "LCI_RUN_EXPIRY": "30",
            "LCI_MODEL_TIMEOUT": "9",
        }
    )
    assert (s.model.base_url, s.model.api_key, s.model.model_map) == (
        "http://127.0.0.1:11434/v1",
        "sk-secret",
        "gpt-4o=llama3",
    )
    assert (s.model.max_tool_calls, s.model.run_expiry, s.model.timeout) == (5, 30.0, 9.0)
    assert "sk-secret" not in repr(s)
    defaults = Settings.from_env({})
    assert (defaults.model.max_tool_calls, defaults.model.run_expiry, defaults.model.base_url) == (
        20,
        600,
        "",
    )
    assert HttpChatModel.from_settings(defaults) is None
