"""The web inspector's pure parts: login cookies and the timeline view."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path

from interpreter.server.auth import KeyRing
from interpreter.server.ui.cookie import LIFETIME, Signer, load_secret
from interpreter.server.ui.timeline import duration, execution_view, size

ALICE, BOB = "key-alice-" + "a" * 24, "key-bob-" + "b" * 24


def ring(**keys: str) -> KeyRing:
    return KeyRing({hashlib.sha256(k.encode()).digest(): t for t, k in keys.items()})


def test_a_login_names_its_tenant_and_refuses_wrong_keys() -> None:
    signer = Signer(ring(alice=ALICE, bob=BOB))
    assert signer.issue("key-nobody") is None
    login = signer.issue(ALICE)
    assert login is not None and login.tenant == "alice"
    again = signer.check(login.token)
    assert again is not None and again.tenant == "alice" and again.csrf == login.csrf
    assert signer.csrf_ok(login, login.csrf) and not signer.csrf_ok(login, "")


def test_forged_stale_and_revoked_cookies_are_refused() -> None:
    signer = Signer(ring(alice=ALICE, bob=BOB))
    login = signer.issue(ALICE)
    assert login is not None
    body, _, mac = login.token.rpartition("|")
    bob = signer.issue(BOB)
    assert bob is not None
    forged = login.token.replace(body.split("|")[0], bob.token.split("|")[0])
    for token in (None, "", "a|b", forged, body + "|" + "0" * len(mac)):
        assert signer.check(token) is None, token
    assert signer.check(login.token, now=time.time() + LIFETIME + 1) is None
    assert Signer(signer.ring).check(login.token) is None  # another process's secret
    revoked = Signer(ring(bob=BOB), secret=signer.secret)
    assert revoked.check(login.token) is None  # the key left the ring


def test_any_characters_in_a_cookie_or_form_are_just_wrong() -> None:
    signer = Signer(ring(alice=ALICE))
    login = signer.issue(ALICE)
    assert login is not None
    body, _, mac = login.token.rpartition("|")
    for token in ("é|é|é|é|é", f"{body}|{mac[:-1]}é", "\udcff|a|1|b|c", "a|b|٣|d|e"):
        assert signer.check(token) is None, token
    for sent in ("é" * 64, "\ud800", login.csrf[:-1] + "é"):
        assert not signer.csrf_ok(login, sent)


def test_logging_out_ends_that_cookie_only() -> None:
    signer = Signer(ring(alice=ALICE))
    first, second = signer.issue(ALICE), signer.issue(ALICE)
    assert first is not None and second is not None and first.id != second.id
    signer.end(first)
    assert signer.check(first.token) is None  # replayed after logout
    assert signer.check(second.token) is not None


def test_the_secret_is_kept_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "ui_secret"
    secret = load_secret(path)
    assert len(secret) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(path) == secret
    assert [p.name for p in tmp_path.iterdir()] == ["ui_secret"]  # no temporary left
    path.chmod(0o644)
    assert load_secret(path) == secret and stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("not hex\n")
    fresh = load_secret(path)
    assert fresh != secret and load_secret(path) == fresh
    path.unlink()
    os.symlink(tmp_path / "elsewhere", path)
    assert len(load_secret(path)) == 32 and not path.is_symlink()
    assert not (tmp_path / "elsewhere").exists()


def test_execution_view_orders_blocks_and_keeps_markup_as_text() -> None:
    entry = {
        "id": "exec_1",
        "code": "print('<b>')",
        "status": "error",
        "duration_ms": 1500,
        "transcript": [
            {"type": "stream", "name": "stdout", "text": "<b>\n"},
            {"type": "stream", "name": "stdout", "text": "more\n"},
            {"type": "image", "file_id": "file-1", "mime": "image/png"},
            {"type": "display_data", "data": {"text/html": "<script>x</script>"}},
            {"type": "error", "ename": "E", "evalue": "v", "traceback": ["\x1b[31mTB\x1b[0m"]},
        ],
        "error": {"ename": "E", "evalue": "v", "traceback": []},
    }
    view = execution_view(entry)
    kinds = [b["kind"] for b in view["blocks"]]
    assert kinds == ["stream", "image", "html", "error"]  # one error block, not two
    assert view["blocks"][0]["text"] == "<b>\nmore\n"  # the template escapes it
    assert view["blocks"][2] == {"kind": "html", "url": "/ui/executions/exec_1/html/3"}
    assert view["blocks"][3]["traceback"] == "TB"  # colours stripped
    assert view["failed"] and view["duration"] == "1.5 s"
    assert "&lt;b&gt;" in str(view["code"])  # highlighted and escaped


def test_short_durations_and_sizes() -> None:
    assert [duration(x) for x in (None, 3.25, 42, 125, 7300)] == [
        "—",
        "3.2 s",
        "42 s",
        "2m 05s",
        "2h 01m",
    ]
    assert [size(x) for x in (None, 12, 2048, 3 * 1024**3)] == ["—", "12 B", "2 KiB", "3 GiB"]
