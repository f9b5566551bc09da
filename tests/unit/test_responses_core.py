"""The Responses core's pure parts: request checks, input items, citations, the chat
rebuilt from items (no engine, no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from interpreter.errors import InvalidRequest
from interpreter.responses.conversation import chat_messages
from interpreter.responses.objects import citations, new_response
from interpreter.responses.request import check_request, input_items

CI = {"type": "code_interpreter", "container": {"type": "auto"}}
FN = {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": None}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"model": "m", "input": "x", "background": True}, "background"),
        ({"model": "m", "input": "x", "conversation": "c"}, "conversation"),
        ({"model": "m", "input": "x", "bogus": 1}, "bogus"),
        ({"model": "m", "input": "x", "include": ["file_search_call.results"]}, "include"),
        ({"model": "m", "input": "x", "tools": [FN], "tool_choice": "code"}, "tool_choice"),
        ({"model": "m", "input": [{"type": "computer_call_output"}]}, "input[0].type"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text",
          "text": 5}]}]}, "input[0].content[0]"),
        ({"model": "m", "input": [{"type": "function_call", "call_id": "c"}]}, "input[0].name"),
        ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c",
          "output": [5]}]}, "input[0]"),
        ({"model": "m", "input": "x", "text": {"format": {"type": "xml"}}}, "text"),
        (
            {"model": "m", "input": "x", "tools": [{**CI, "container": {"type": "auto",
             "memory_limit": "2g"}}]},
            "tools[0].container.memory_limit",
        ),
    ],
)  # fmt: skip
def test_what_lci_cannot_do_is_refused_by_name(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        check_request(body)
    assert info.value.param == param


def test_absent_and_null_are_alike_and_input_items_get_ids() -> None:
    params = check_request(
        {"model": "m", "input": "hi", "instructions": None, "tools": [CI, FN], "store": None}
    )
    assert "instructions" not in params and "store" not in params
    [item] = params["input"]
    assert item["type"] == "message" and item["id"].startswith("msg_")
    assert item["content"] == [{"type": "input_text", "text": "hi"}]
    # replayed items keep their ids; reasoning and item references are skipped
    items = input_items(
        [
            {"role": "assistant", "content": "done", "id": "msg_1"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"id": "x"},
        ]
    )
    assert [(i["id"], i["content"][0]["type"]) for i in items] == [("msg_1", "output_text")]
    response = new_response(params)
    assert response["status"] == "in_progress" and response["output"] == []
    assert response["tool_choice"] == "auto" and response["store"] is True


def test_citations_for_links_and_for_unlinked_written_files() -> None:
    files = {"/mnt/data/a b.png": "file-a", "/mnt/data/t.txt": "file-t"}
    text = "See [a](sandbox:/mnt/data/a%20b.png)."
    notes = citations(text, "cntr_1", files, written=["file-a", "file-t"])
    linked, unlinked = notes
    assert linked["filename"] == "a b.png" and linked["file_id"] == "file-a"
    assert text[linked["start_index"] : linked["end_index"]] == "sandbox:/mnt/data/a%20b.png"
    assert unlinked["filename"] == "t.txt"
    assert unlinked["start_index"] == unlinked["end_index"] == len(text)
    assert citations(text, None, files) == []


def test_the_chat_rebuilt_from_items() -> None:
    items = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "d"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_file", "file_id": "f1"}]},
        {"type": "code_interpreter_call", "id": "ci_1", "code": "1", "outputs": None},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "u"}]},
    ]
    chat = chat_messages("sys", items, {"ci_1": "status: ok"}, {"f1": "data.csv"})
    assert [m["role"] for m in chat] == [
        "system", "system", "user", "assistant", "tool", "assistant", "tool", "tool", "user"
    ]  # fmt: skip
    assert chat[2]["content"] == "[file /mnt/data/data.csv]"
    assert chat[4] == {"role": "tool", "tool_call_id": "ci_1", "content": "status: ok"}
    assert [c["id"] for c in chat[5]["tool_calls"]] == ["c1", "c2"]
    assert chat[7]["content"] == "error: no output was given for this call."
