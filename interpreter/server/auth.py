"""API keys and tenants: every key is a tenant, and a tenant sees only its own things.

Keys come from ``LCI_API_KEYS`` (``key`` or ``tenant:key``, comma-separated) or, when
that is empty, from ``LCI_HOME/api_keys`` (one per line, same forms, ``#`` comments).
With neither, the first start writes a fresh key to that file (mode 0600) and prints
it once. Keys shorter than 32 characters are refused at start-up. ``LCI_ADMIN_KEYS``
are keys that may read every tenant's ``/metrics`` (and nothing else, unless they are
tenant keys too).

The check is an ASGI middleware, so every route is covered, mounted apps (``/mcp``)
included; the tenant goes into ``scope["state"]["tenant"]``. Wrong keys are
throttled per client address (``throttle.py``): a 429 instead of a check.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings
from ..errors import ConfigError
from .throttle import Throttle, client_address

__all__ = ["MIN_KEY_CHARS", "AuthMiddleware", "KeyRing", "load_keys"]

PUBLIC = ("/healthz", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc")
ADMIN_ROUTES = ("/metrics",)
MIN_KEY_CHARS = 32
GENERATE = "python3 -c 'import secrets; print(\"lci-\" + secrets.token_urlsafe(32))'"


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class KeyRing:
    keys: dict[bytes, str]  # sha256(key) -> tenant
    created: str | None = None  # a key made on this start, to print once
    admins: frozenset[bytes] = field(default_factory=frozenset)  # sha256 of LCI_ADMIN_KEYS

    def tenant(self, key: str) -> str | None:
        return self.tenant_of(digest(key))

    def tenant_of(self, key_digest: bytes) -> str | None:
        for known, tenant in self.keys.items():
            if hmac.compare_digest(known, key_digest):
                return tenant
        return None

    def is_admin(self, key_digest: bytes) -> bool:
        return any(hmac.compare_digest(known, key_digest) for known in self.admins)

    @property
    def tenants(self) -> list[str]:
        return sorted(set(self.keys.values()))


def _parse(text: str, where: str) -> dict[bytes, str]:
    keys: dict[bytes, str] = {}
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    for raw in ",".join(lines).split(","):
        item = raw.strip()
        if not item:
            continue
        tenant, sep, key = item.partition(":")
        if not sep:
            tenant, key = "key-" + hashlib.sha256(item.encode()).hexdigest()[:10], item
        tenant, key = tenant.strip(), key.strip()
        if not tenant:
            raise ConfigError(where, f":<key of {len(key)} characters>", "a tenant before ':'")
        if len(key) < MIN_KEY_CHARS:
            shown = f"{tenant}:<{len(key)} characters>" if sep else f"<{len(key)} characters>"
            raise ConfigError(
                where,
                shown,
                f"keys of at least {MIN_KEY_CHARS} characters, which no one can guess; "
                f"make one with {GENERATE}",
            )
        keys[digest(key)] = tenant
    return keys


def load_keys(settings: Settings) -> KeyRing:
    """The service's keys; raises ConfigError (naming the variable or file) for a short one."""
    admins = frozenset(_parse(settings.service.admin_keys, "LCI_ADMIN_KEYS"))
    if settings.service.api_keys.strip():
        return KeyRing(_parse(settings.service.api_keys, "LCI_API_KEYS"), admins=admins)
    path = settings.keys_file
    if path.exists():
        keys = _parse(path.read_text(), str(path))
        if keys:
            return KeyRing(keys, admins=admins)
    key = "lci-" + secrets.token_urlsafe(32)
    _write_private(path, f"# lci API keys: one per line, 'key' or 'tenant:key'\ndefault:{key}\n")
    return KeyRing(_parse(f"default:{key}", str(path)), created=key, admins=admins)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def _is_ui(path: str) -> bool:
    """The web inspector logs in with a cookie of its own (server/ui.py)."""
    return path == "/ui" or path.startswith("/ui/")


def bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


class AuthMiddleware:
    """Refuse requests without a known key: 401 in the caller's dialect, or 429 (the key
    unchecked) while the caller's address is throttled for wrong keys."""

    def __init__(
        self,
        app: ASGIApp,
        ring: Callable[[], KeyRing],
        refuse: Callable[[Scope, str], Any],
        throttled: Callable[[Scope, float], Any],
        throttle: Throttle,
    ) -> None:
        self.app, self.ring, self.refuse = app, ring, refuse
        self.throttled, self.throttle = throttled, throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC or _is_ui(scope["path"]):
            await self.app(scope, receive, send)
            return
        token = bearer(scope)
        if token is None:
            response = self.refuse(
                scope, "The request carried no API key (Authorization: Bearer <key>)."
            )
            await response(scope, receive, send)
            return
        address, key_digest = client_address(scope), digest(token)
        wait = self.throttle.wait(address, key_digest)
        if wait > 0:
            await self.throttled(scope, wait)(scope, receive, send)
            return
        ring = self.ring()
        tenant = ring.tenant_of(key_digest)
        admin = ring.is_admin(key_digest)
        if tenant is None and not (admin and scope["path"] in ADMIN_ROUTES):
            if admin:
                why = "an admin key, which reads /metrics only"
            else:
                why = "a wrong API key"
                self.throttle.failed(address)
            await self.refuse(scope, f"The request carried {why}.")(scope, receive, send)
            return
        self.throttle.succeeded(address, key_digest)
        state = scope.setdefault("state", {})
        state["tenant"], state["admin"] = tenant, admin
        await self.app(scope, receive, send)
