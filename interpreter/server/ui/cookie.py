"""The web inspector's login: an API key, traded once for a signed, HttpOnly cookie.

The cookie holds ``tenant|key-fingerprint|expiry|login-id`` and an HMAC-SHA256 over
it, keyed with a secret kept in ``LCI_HOME/ui_secret`` (mode 0600, made on the first
start), so a restart keeps everyone logged in. A token is valid while it is
unexpired, its key is still in the key ring (removing a key from ``LCI_API_KEYS``
ends that key's logins) and its login was not ended with "Log out", which is
recorded in the store until the token would have expired anyway. Forms that change
something carry a CSRF token derived from the cookie (on top of ``SameSite=Strict``).
Every comparison is on bytes, so a cookie or form value of any characters is simply
wrong, never an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..auth import KeyRing

__all__ = ["COOKIE", "Login", "Logouts", "Signer", "load_secret"]

log = logging.getLogger("lci.server")

COOKIE = "lci_ui"
LIFETIME = 12 * 3600.0
SECRET_BYTES = 32


@dataclass(frozen=True)
class Login:
    tenant: str
    token: str  # the cookie value
    csrf: str  # what forms must send back
    id: str = ""  # this login, for "Log out"
    expires: float = 0.0


class Revoker(Protocol):
    def revoke(self, token_id: str, until: float) -> None: ...
    def revoked(self, token_id: str) -> bool: ...


class Logouts:
    """Logins ended early. Kept by the manager when there is one (a restart keeps them
    ended, and every service on the same LCI_HOME sees them), else in memory."""

    def __init__(self, keeper: Revoker | None = None) -> None:
        self.keeper = keeper
        self._memory: dict[str, float] = {}

    def add(self, login_id: str, expires: float) -> None:
        if self.keeper is None:
            self._memory[login_id] = expires
        else:
            self.keeper.revoke(login_id, expires)

    def __contains__(self, login_id: str) -> bool:
        if self.keeper is None:
            return login_id in self._memory
        return self.keeper.revoked(login_id)


class Signer:
    """Makes and checks login cookies against one key ring."""

    def __init__(
        self, ring: KeyRing, secret: bytes | None = None, logouts: Logouts | None = None
    ) -> None:
        self.ring = ring
        self.secret = secret or secrets.token_bytes(SECRET_BYTES)
        self.logouts = logouts if logouts is not None else Logouts()

    def issue(self, key: str, now: float | None = None) -> Login | None:
        """A login for ``key``, or None when the key is unknown."""
        tenant = self.ring.tenant(key)
        if tenant is None:
            return None
        expires = int((now or time.time()) + LIFETIME)
        login_id = secrets.token_hex(12)
        body = f"{_b64(tenant.encode())}|{_fingerprint(key)}|{expires}|{login_id}"
        return self._login(tenant, f"{body}|{self._mac(body)}", login_id, expires)

    def check(self, token: str | None, now: float | None = None) -> Login | None:
        """The login a cookie value stands for, or None when it is forged, stale or revoked."""
        if not token or token.count("|") != 4:
            return None
        body, _, mac = token.rpartition("|")
        if not same(mac, self._mac(body)):
            return None
        name, fingerprint, expires, login_id = body.split("|")
        if not expires.isascii() or not expires.isdigit() or int(expires) < (now or time.time()):
            return None
        try:
            tenant = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
        except ValueError:
            return None
        if not self._still_valid(tenant, fingerprint) or login_id in self.logouts:
            return None
        return self._login(tenant, token, login_id, int(expires))

    def csrf_ok(self, login: Login, sent: str | None) -> bool:
        return bool(sent) and same(login.csrf, sent or "")

    def end(self, login: Login) -> None:
        """Log out: this cookie is refused from now on, even if it is replayed."""
        self.logouts.add(login.id, login.expires)

    def _still_valid(self, tenant: str, fingerprint: str) -> bool:
        return any(
            of == tenant and same(digest.hex()[:16], fingerprint)
            for digest, of in self.ring.keys.items()
        )

    def _login(self, tenant: str, token: str, login_id: str, expires: float) -> Login:
        return Login(tenant, token, self._mac("csrf|" + token), login_id, expires)

    def _mac(self, text: str) -> str:
        return hmac.new(self.secret, _bytes(text), hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time equality of two strings of any characters."""
    return hmac.compare_digest(_bytes(a), _bytes(b))


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _fingerprint(key: str) -> str:
    return hashlib.sha256(_bytes(key)).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# -- the signing secret ------------------------------------------------------------------


def load_secret(path: Path) -> bytes:
    """The secret kept in ``path``, made on first use. The file is written whole and
    private (0600) under a temporary name, then linked into place: no process ever
    reads half a secret, and of two services starting at once, both use the first."""
    secret = _read_secret(path)
    if secret is not None:
        return secret
    secret = secrets.token_bytes(SECRET_BYTES)
    tmp = _write_temporary(path, secret)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            theirs = _read_secret(path)  # another process was first
            if theirs is not None:
                return theirs
            os.replace(tmp, path)  # an unusable file: this one takes its place
    finally:
        tmp.unlink(missing_ok=True)
    return secret


def _write_temporary(path: Path, secret: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret.hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    return tmp


def _read_secret(path: Path) -> bytes | None:
    """The secret in ``path``; None when there is none or it is not one (it is then
    replaced, which logs everyone out)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:  # a symlink (ELOOP), a directory
        log.warning("%s is not a plain file (%s): making a new web-inspector secret", path, exc)
        return None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            log.warning("%s is not a plain file: making a new web-inspector secret", path)
            return None
        if mode & 0o077:
            log.warning("%s was readable by others: made private (0600)", path)
            os.fchmod(f.fileno(), 0o600)
        text = f.read(4 * SECRET_BYTES).strip()
    try:
        secret = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        secret = b""
    if len(secret) != SECRET_BYTES:
        log.warning("%s does not hold a secret: making a new one", path)
        return None
    return secret
