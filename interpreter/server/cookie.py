"""The web inspector's login: an API key, traded once for a signed, HttpOnly cookie.

The cookie holds ``tenant|key-fingerprint|expiry`` and an HMAC-SHA256 over it, keyed
with a secret made when the service starts (a restart logs everyone out). A token is
valid while it is unexpired and its key is still in the key ring, so removing a key
from ``LCI_API_KEYS`` ends that key's logins too. Forms that change something carry
a CSRF token derived from the cookie (on top of ``SameSite=Strict``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from .auth import KeyRing

__all__ = ["COOKIE", "Login", "Signer"]

COOKIE = "lci_ui"
LIFETIME = 12 * 3600.0


@dataclass(frozen=True)
class Login:
    tenant: str
    token: str  # the cookie value
    csrf: str  # what forms must send back


class Signer:
    """Makes and checks login cookies against one key ring."""

    def __init__(self, ring: KeyRing, secret: bytes | None = None) -> None:
        self.ring = ring
        self.secret = secret or secrets.token_bytes(32)

    def issue(self, key: str, now: float | None = None) -> Login | None:
        """A login for ``key``, or None when the key is unknown."""
        tenant = self.ring.tenant(key)
        if tenant is None:
            return None
        expires = int((now or time.time()) + LIFETIME)
        body = f"{_b64(tenant.encode())}|{_fingerprint(key)}|{expires}"
        return self._login(tenant, f"{body}|{self._mac(body)}")

    def check(self, token: str | None, now: float | None = None) -> Login | None:
        """The login a cookie value stands for, or None when it is forged, stale or revoked."""
        if not token or token.count("|") != 3:
            return None
        body, _, mac = token.rpartition("|")
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        name, fingerprint, expires = body.split("|")
        if not expires.isdigit() or int(expires) < (now or time.time()):
            return None
        try:
            tenant = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
        except ValueError:
            return None
        if not self._still_valid(tenant, fingerprint):
            return None
        return self._login(tenant, token)

    def csrf_ok(self, login: Login, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(login.csrf, sent or "")

    def _still_valid(self, tenant: str, fingerprint: str) -> bool:
        return any(
            owner == tenant and hmac.compare_digest(digest.hex()[:16], fingerprint)
            for digest, owner in self.ring.keys.items()
        )

    def _login(self, tenant: str, token: str) -> Login:
        return Login(tenant, token, self._mac("csrf|" + token))

    def _mac(self, text: str) -> str:
        return hmac.new(self.secret, text.encode(), hashlib.sha256).hexdigest()


def _fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
