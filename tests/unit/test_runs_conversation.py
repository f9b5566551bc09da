"""Pure translations of the Assistants layer: annotations, message conversion, tools
and tool_choice (interpreter/conversation.py, objects.py)."""

from __future__ import annotations

from typing import Any

import pytest

from interpreter.assistants.conversation import (
    annotate,
    assistant_content,
    chat_messages,
    chat_tool_choice,
    chat_tools,
    check_tool_choice,
    check_tools,
    content_blocks,
    system_prompt,
)
from interpreter.assistants.objects import new_message, new_run, resources
from interpreter.errors import InvalidRequest
from interpreter.tool import DEFINITION

FN = {"type": "function", "function": {"name": "getNickname", "parameters": {}}}
CI = {"type": "code_interpreter"}


# -- annotations -----------------------------------------------------------------------


def test_annotation_covers_the_sandbox_link() -> None:
    text = "Done. [Download the shuffled file](sandbox:/mnt/data/shuffled_file.csv)"
    [note] = annotate(text, {"/mnt/data/shuffled_file.csv": "file-abc123"})
    assert note == {
        "type": "file_path",
        "text": "sandbox:/mnt/data/shuffled_file.csv",
        "start_index": 35,
        "end_index": 70,
        "file_path": {"file_id": "file-abc123"},
    }
    assert text[note["start_index"] : note["end_index"]] == note["text"]


def test_annotations_bare_links_punctuation_escapes_and_unknown_files() -> None:
    files = {"/mnt/data/a.csv": "file-a", "/mnt/data/my report.txt": "file-r"}
    text = (
        "See sandbox:/mnt/data/a.csv. Also sandbox:/mnt/data/my%20report.txt, "
        "and sandbox:/mnt/data/unknown.png"
    )
    notes = annotate(text, files)
    assert [(n["text"], n["file_path"]["file_id"]) for n in notes] == [
        ("sandbox:/mnt/data/a.csv", "file-a"),
        ("sandbox:/mnt/data/my%20report.txt", "file-r"),
    ]
    for n in notes:
        assert text[n["start_index"] : n["end_index"]] == n["text"]
    assert annotate("no links here", files) == []


def test_assistant_content_puts_images_first_then_annotated_text() -> None:
    blocks = assistant_content(
        "Plot: sandbox:/mnt/data/p.png", ["file-img"], {"/mnt/data/p.png": "file-p"}
    )
    assert blocks[0] == {"type": "image_file", "image_file": {"file_id": "file-img"}}
    assert blocks[1]["type"] == "text"
    assert blocks[1]["text"]["annotations"][0]["file_path"] == {"file_id": "file-p"}
    assert assistant_content("", ["file-img"], {}) == blocks[:1]  # no empty text block
    assert assistant_content("", [], {})[0]["text"]["value"] == ""


# -- messages --------------------------------------------------------------------------


def test_content_blocks_from_a_string_or_parts() -> None:
    assert content_blocks("hi") == [{"type": "text", "text": {"value": "hi", "annotations": []}}]
    parts = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
    ]
    blocks = content_blocks(parts)
    assert (
        blocks[0]["text"]["value"] == "look" and blocks[1]["image_url"]["url"] == "https://x/y.png"
    )
    with pytest.raises(InvalidRequest, match="content part type 'audio'"):
        content_blocks([{"type": "audio"}])
    with pytest.raises(InvalidRequest):
        content_blocks([])


def _msg(role: str, content: Any, **kw: Any) -> dict[str, Any]:
    return new_message("thread_1", role, content_blocks(content), **kw)


def test_thread_to_chat_messages_in_order_with_tool_turns() -> None:
    run = {"id": "run_1", "assistant_id": "asst_1"}
    answer = new_message(
        "thread_1",
        "assistant",
        assistant_content("It is a sine.", ["file-img"], {}),
        run=run,
    )
    assert answer["run_id"] == "run_1" and answer["assistant_id"] == "asst_1"
    items = [
        _msg("user", "plot it"),
        {"id": "turn_1", "run_id": "run_1", "role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function",
                         "function": {"name": "code_interpreter", "arguments": "{}"}}]},
        {"id": "turn_2", "run_id": "run_1", "role": "tool", "tool_call_id": "c1",
         "content": "status: ok"},
        answer,
    ]  # fmt: skip
    out = chat_messages("Be brief.", items)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "tool", "assistant"]
    assert out[0] == {"role": "system", "content": "Be brief."}
    assert out[1] == {"role": "user", "content": "plot it"}
    assert "id" not in out[2] and "run_id" not in out[3]  # lci's bookkeeping stays out
    assert out[4] == {"role": "assistant", "content": "[image file-img]\nIt is a sine."}


def test_unanswered_tool_calls_of_an_ended_run_get_an_output() -> None:
    calls = [
        {"id": c, "type": "function", "function": {"name": "f", "arguments": "{}"}}
        for c in ("c1", "c2")
    ]
    items = [
        {"id": "turn_1", "role": "assistant", "content": None, "tool_calls": calls},
        {"id": "turn_2", "role": "tool", "tool_call_id": "c1", "content": "done"},
        _msg("user", "again"),
    ]
    out = chat_messages("", items)
    assert [(m["role"], m.get("tool_call_id")) for m in out] == [
        ("assistant", None),
        ("tool", "c1"),
        ("tool", "c2"),
        ("user", None),
    ]
    assert "the run ended" in out[2]["content"]


def test_user_images_become_chat_image_parts() -> None:
    msg = _msg(
        "user",
        [{"type": "text", "text": "what is it?"}, {"type": "image_url", "image_url": {"url": "u"}}],
    )
    [user] = chat_messages("", [msg])
    assert user["content"] == [
        {"type": "text", "text": "what is it?"},
        {"type": "image_url", "image_url": {"url": "u"}},
    ]


def test_system_prompt_lists_files() -> None:
    assert system_prompt("Hi.") == "Hi."
    prompt = system_prompt("Hi.", ["b.txt", "a.csv", "a.csv"])
    assert prompt.endswith("- /mnt/data/a.csv\n- /mnt/data/b.txt")


def test_roles_are_checked() -> None:
    with pytest.raises(InvalidRequest, match="role 'system'"):
        _msg("system", "x")


# -- tools and tool_choice -------------------------------------------------------------


def test_code_interpreter_is_offered_as_a_function_taking_code() -> None:
    assert chat_tools([CI, FN, {"type": "file_search"}]) == [
        DEFINITION,
        {"type": "function", "function": FN["function"]},
    ]
    assert DEFINITION["function"]["parameters"]["required"] == ["code"]


def test_tool_limits_and_names() -> None:
    many = [{"type": "function", "function": {"name": f"f{i}"}} for i in range(128)]
    check_tools(many)
    with pytest.raises(InvalidRequest, match="at most 128"):
        check_tools([*many, CI])
    with pytest.raises(InvalidRequest, match="Duplicate"):
        check_tools([FN, FN])
    with pytest.raises(InvalidRequest, match="Invalid tool type 'browser'"):
        check_tools([{"type": "browser"}])
    with pytest.raises(InvalidRequest, match="needs a name"):
        check_tools([{"type": "function", "function": {"name": "has space"}}])
    with pytest.raises(InvalidRequest, match="needs a name"):  # was a TypeError: a 500
        check_tools([{"type": "function", "function": {"name": [None]}}])


@pytest.mark.parametrize(
    ("choice", "first", "later"),
    [
        (None, "auto", "auto"),
        ("auto", "auto", "auto"),
        ("none", "none", "none"),
        ("required", "required", "auto"),
        (
            {"type": "function", "function": {"name": "getNickname"}},
            {"type": "function", "function": {"name": "getNickname"}},
            "auto",
        ),
        (
            {"type": "code_interpreter"},
            {"type": "function", "function": {"name": "code_interpreter"}},
            "auto",
        ),
    ],
)
def test_tool_choice_mapping(choice: Any, first: Any, later: Any) -> None:
    check_tool_choice(choice, [CI, FN])
    assert chat_tool_choice(choice, first_turn=True) == first
    assert chat_tool_choice(choice, first_turn=False) == later  # a forced call happens once


def test_tool_choice_must_name_an_enabled_tool() -> None:
    with pytest.raises(InvalidRequest, match="does not have"):
        check_tool_choice({"type": "function", "function": {"name": "nope"}}, [FN])
    with pytest.raises(InvalidRequest, match="Invalid tool_choice"):
        check_tool_choice({"type": "code_interpreter"}, [FN])
    with pytest.raises(InvalidRequest, match="Invalid tool_choice"):
        check_tool_choice("sometimes", [FN])
    with pytest.raises(InvalidRequest, match="names a function"):  # was a TypeError: a 500
        check_tool_choice({"type": "function", "function": {"name": ["f"]}}, [FN])


# -- runs ------------------------------------------------------------------------------


def test_run_instructions_override_and_append() -> None:
    asst = {"id": "asst_1", "model": "m", "tools": [CI], "instructions": "Base."}
    assert new_run("t", asst, {}, 600)["instructions"] == "Base."
    run = new_run("t", asst, {"instructions": "Other.", "additional_instructions": "More."}, 600)
    assert run["instructions"] == "Other.\n\nMore."
    run = new_run("t", asst, {"additional_instructions": "More.", "model": "x"}, 600)
    assert (run["instructions"], run["model"]) == ("Base.\n\nMore.", "x")
    assert run["expires_at"] == run["created_at"] + 600 and run["status"] == "queued"
    with pytest.raises(InvalidRequest):
        new_run("t", asst, {"tool_choice": {"type": "function", "function": {"name": "f"}}}, 1)


def test_tool_resources_accept_the_azure_docs_spelling() -> None:
    assert resources({"code interpreter": {"file_ids": ["f"]}}) == {
        "code_interpreter": {"file_ids": ["f"]}
    }
    assert resources(None) == {"code_interpreter": {"file_ids": []}}
