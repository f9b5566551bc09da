"""Text at the service's edge: finding what UTF-8 cannot carry, and never failing on it."""

from __future__ import annotations

import json

from interpreter.server.utf8 import JSONResponse, clean, scrub, unencodable


def test_a_lone_surrogate_is_found_and_named() -> None:
    body = json.loads('{"properties": {"code": "print(\\"\\ud800\\")"}}')
    bad = unencodable(body)
    assert bad is not None and bad.field == "properties.code" and bad.char == "\ud800"
    assert bad.index == 7 and "'properties.code'" in bad.message() and "U+D800" in bad.message()
    listed = unencodable(json.loads('{"messages": [{"content": "ok"}, {"content": "\\udc00"}]}'))
    assert listed is not None and listed.field == "messages[1].content"
    raw = unencodable(json.loads(b'{"code": "\xed\xa0\x80"}'))  # the bytes, not an escape
    assert raw is not None and raw.field == "code"
    key = unencodable(json.loads('{"a": {"\\ud800": 1}}'))
    assert key is not None and key.field == "a (a key)"


def test_pairs_and_ordinary_text_pass() -> None:
    assert (
        unencodable(json.loads('{"code": "print(\\"\\ud83d\\ude00\\")", "x": [1, null]}')) is None
    )
    assert unencodable({"code": 'print("\\ud800")'}) is None  # a Python escape, in ASCII
    deep: object = "ok"
    for _ in range(5000):
        deep = [deep]
    assert unencodable(deep) is None  # no recursion


def test_answers_replace_what_they_cannot_encode() -> None:
    assert scrub("a\ud800b") == "a\ufffdb" and scrub("plain é") == "plain é"
    assert clean({"k\udcff": ["\ud800", 1]}) == {"k\ufffd": ["\ufffd", 1]}
    body = JSONResponse({"stdout": "x\ud800"}).body
    assert json.loads(body) == {"stdout": "x\ufffd"}
