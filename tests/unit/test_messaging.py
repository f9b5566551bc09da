"""The iopub fold, fed hand-written messages (no kernel)."""

import base64
import hashlib
import hmac
import json

from interpreter.messaging import Budget, OutputFold, TextBuffer, parse_message, strip_ansi

PNG = b"\x89PNG\r\n\x1a\nfake"


def msg(kind, content, parent="m1"):
    return {"msg_type": kind, "parent_header": {"msg_id": parent}, "content": content}


def run(*messages, max_chars=1000):
    seen = []
    fold = OutputFold("m1", max_chars, on_text=lambda k, t: seen.append((k, t)))
    for m in messages:
        fold.feed(m)
    return fold, seen


def test_streams_results_and_idle():
    fold, seen = run(
        msg("status", {"execution_state": "busy"}),
        msg("execute_input", {"execution_count": 3, "code": "x"}),
        msg("stream", {"name": "stdout", "text": "out\n"}),
        msg("stream", {"name": "stderr", "text": "err\n"}),
        msg(
            "execute_result",
            {"execution_count": 3, "data": {"text/plain": "42", "text/html": "<b>42</b>"}},
        ),
        msg("status", {"execution_state": "idle"}),
    )
    assert fold.idle
    assert fold.execution_count == 3
    assert fold.stdout.value() == "out\n" and fold.stderr.value() == "err\n"
    assert fold.logs.value() == "out\nerr\n42\n"
    assert fold.results == [
        {
            "type": "execute_result",
            "data": {"text/plain": "42", "text/html": "<b>42</b>"},
            "execution_count": 3,
        }
    ]
    assert seen == [("stdout", "out\n"), ("stderr", "err\n"), ("result", "42\n")]


def test_other_requests_are_ignored():
    fold, seen = run(
        msg("stream", {"name": "stdout", "text": "not ours"}, parent="other"),
        msg("status", {"execution_state": "idle"}, parent="other"),
    )
    assert not fold.idle and fold.logs.total == 0 and seen == []


def test_images_become_bytes_not_results():
    b64 = base64.b64encode(PNG).decode()
    fold, _ = run(
        msg("display_data", {"data": {"image/png": b64, "text/plain": "<Figure>"}}),
        msg("display_data", {"data": {"image/png": "!!not base64!!"}}),
    )
    assert fold.images == [("png", PNG)]
    # a corrupt image is not lost: it stays a rich result
    assert [r["data"] for r in fold.results] == [{"image/png": "!!not base64!!"}]


def test_error_is_structured_without_ansi():
    fold, seen = run(
        msg(
            "error",
            {
                "ename": "NameError",
                "evalue": "name 'y' is not defined",
                "traceback": ["\x1b[31mTraceback\x1b[0m", "\x1b[1;31mNameError\x1b[0m: name 'y'"],
            },
        ),
    )
    assert fold.error.ename == "NameError"
    assert fold.error.traceback == ["Traceback", "NameError: name 'y'"]
    assert "\x1b" not in seen[0][1]


def test_text_buffer_keeps_head_and_tail():
    buf = TextBuffer(10)
    for ch in "abcdefghijklmnopqrstuvwxyz":
        buf.add(ch)
    assert buf.total == 26 and buf.cut == 16
    assert buf.value(lambda n: f"[{n}]") == "abcde[16]vwxyz"
    small = TextBuffer(100)
    small.add("hello")
    assert small.value() == "hello" and small.cut == 0


def test_strip_ansi():
    assert strip_ansi("\x1b[0;31mred\x1b[0m plain") == "red plain"


def test_transcript_keeps_the_order_and_merges_stream_chunks():
    img = base64.b64encode(PNG).decode()
    fold, _ = run(
        msg("stream", {"name": "stdout", "text": "a"}),
        msg("stream", {"name": "stdout", "text": "b\n"}),
        msg("display_data", {"data": {"image/png": img, "text/plain": "<Figure>"}}),
        msg("stream", {"name": "stderr", "text": "warn\n"}),
        msg("execute_result", {"execution_count": 1, "data": {"text/plain": "1"}}),
        msg("error", {"ename": "E", "evalue": "v", "traceback": ["\x1b[31mtb\x1b[0m"]}),
    )
    assert fold.transcript == [
        {"type": "stream", "name": "stdout", "text": "ab\n"},
        {"type": "image", "index": 0, "mime": "image/png"},
        {"type": "stream", "name": "stderr", "text": "warn\n"},
        {"type": "execute_result", "data": {"text/plain": "1"}, "execution_count": 1},
        {"type": "error", "ename": "E", "evalue": "v", "traceback": ["tb"]},
    ]


def test_transcript_stream_text_is_capped_and_the_cut_counted():
    fold, _ = run(*(msg("stream", {"name": "stdout", "text": "x" * 400}) for _ in range(5)))
    assert fold.transcript == [{"type": "stream", "name": "stdout", "text": "x" * 1000}]
    assert fold.transcript_cut == 1000


# -- hostile input --------------------------------------------------------------------


KEY = b"k" * 32


def _sign(parts: list[bytes]) -> bytes:
    h = hmac.new(KEY, digestmod=hashlib.sha256)
    for p in parts:
        h.update(p)
    return h.hexdigest().encode()


def _frames(header: object, parent: object, content: object, sign=_sign) -> list[bytes]:  # type: ignore[no-untyped-def]
    body = [json.dumps(x).encode() for x in (header, parent, {})] + [
        content if isinstance(content, bytes) else json.dumps(content).encode()
    ]
    body = [body[0], body[1], body[2], body[3]]
    return [b"topic", b"<IDS|MSG>", sign(body), *body]


def test_parse_message_checks_the_signature_and_types():
    good = _frames({"msg_type": "stream", "msg_id": "a"}, {"msg_id": "p"}, {"text": "hi"})
    msg = parse_message(good, _sign)
    assert msg is not None and msg["msg_type"] == "stream" and msg["parent_header"]["msg_id"] == "p"
    forged = _frames({"msg_type": "stream"}, {}, {"text": "x"}, sign=lambda p: b"0" * 64)
    assert parse_message(forged, _sign) is None
    assert parse_message([b"no delimiter"], _sign) is None
    for header, content in (
        ([1, 2], {}),
        ({"msg_type": 7}, {}),
        ({"msg_type": "stream"}, [1]),
        ({"msg_type": "stream"}, b"[" * 60000),  # a depth bomb: refused, never raised
        ({"msg_type": "stream"}, b"\xff\xfe not utf-8"),
        ({"msg_type": "stream"}, {"a": json.loads("[" * 40 + "1" + "]" * 40)}),
    ):
        assert parse_message(_frames(header, {}, content), _sign) is None


def test_lone_surrogates_from_the_kernel_are_replaced():
    raw = b'{"text": "a\\ud800b", "data": {"text/plain": "\\udfff"}}'
    msg = parse_message(_frames({"msg_type": "stream"}, {}, raw), _sign)
    assert msg is not None
    assert msg["content"]["text"] == "a\ufffdb" and msg["content"]["data"]["text/plain"] == "\ufffd"
    json.dumps(msg, ensure_ascii=False).encode("utf-8")  # encodable everywhere now


def test_the_fold_ignores_fields_of_the_wrong_type():
    fold, _seen = run(
        msg("stream", {"name": "stdout", "text": ["not", "text"]}),
        msg("stream", {"name": "stdout", "text": 42}),
        msg("execute_result", {"execution_count": "3", "data": "not a dict"}),
        msg("display_data", {"data": {"image/png": 123}}),
        msg("error", {"ename": ["x"], "evalue": None, "traceback": "not a list"}),
        {"msg_type": "stream", "parent_header": "m1", "content": {"text": "x"}},
        msg("status", {"execution_state": "idle"}),
    )
    assert fold.idle and fold.stdout.value() == "" and fold.execution_count is None
    assert fold.error is not None and fold.error.ename == "Error" and fold.error.traceback == []


def test_budgets_drop_what_goes_over_and_say_so():
    b64 = base64.b64encode(PNG * 1000).decode()  # ~12 kB an image
    budget = Budget(chars=1000, result_bytes=5000, image_bytes=30_000)
    fold = OutputFold("m1", 1000, budget=budget)
    for _ in range(5):
        fold.feed({**msg("display_data", {"data": {"image/png": b64}}), "size": len(b64)})
    for _ in range(3):
        fold.feed({**msg("display_data", {"data": {"text/html": "x" * 2000}}), "size": 2100})
    assert len(fold.images) == 2 and len(fold.results) == 2
    assert fold.dropped["image"].count == 3 and fold.dropped["result"].count == 1
    assert (
        "LCI_MAX_IMAGE_BYTES" in fold.logs.value() and "LCI_MAX_RESULT_BYTES" in fold.logs.value()
    )
    assert [t["type"] for t in fold.transcript].count("image") == 2
