"""API keys and tenants: every key is a tenant, and a tenant sees only its own things.

Keys come from ``LCI_API_KEYS`` (``key`` or ``tenant:key``, comma-separated) or, when
that is empty, from ``LCI_HOME/api_keys`` (one per line, same forms, ``#`` comments).
With neither, the first start writes a fresh key to that file (mode 0600) and prints
it once. The check is an ASGI middleware, so every route is covered, mounted apps
(``/mcp``) included; the tenant goes into ``scope["state"]["tenant"]``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings
from ..errors import ConfigError

__all__ = ["AuthMiddleware", "KeyRing", "load_keys"]

PUBLIC = ("/healthz", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc")


@dataclass(frozen=True)
class KeyRing:
    keys: dict[bytes, str]  # sha256(key) -> tenant
    created: str | None = None  # a key made on this start, to print once

    def tenant(self, key: str) -> str | None:
        digest = hashlib.sha256(key.encode()).digest()
        for known, tenant in self.keys.items():
            if hmac.compare_digest(known, digest):
                return tenant
        return None


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
        if not tenant or len(key) < 6:
            raise ConfigError(where, item[:4] + "…", "keys of at least 6 characters")
        keys[hashlib.sha256(key.encode()).digest()] = tenant
    return keys


def load_keys(settings: Settings) -> KeyRing:
    if settings.api_keys.strip():
        return KeyRing(_parse(settings.api_keys, "LCI_API_KEYS"))
    path = settings.keys_file
    if path.exists():
        keys = _parse(path.read_text(), str(path))
        if keys:
            return KeyRing(keys)
    key = "lci-" + secrets.token_urlsafe(32)
    _write_private(path, f"# lci API keys: one per line, 'key' or 'tenant:key'\ndefault:{key}\n")
    return KeyRing(_parse(f"default:{key}", str(path)), created=key)


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
    """Refuse requests without a known key (401 in the caller's dialect)."""

    def __init__(
        self,
        app: ASGIApp,
        ring: Callable[[], KeyRing],
        refuse: Callable[[Scope, str], Any],
    ) -> None:
        self.app, self.ring, self.refuse = app, ring, refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC or _is_ui(scope["path"]):
            await self.app(scope, receive, send)
            return
        token = bearer(scope)
        tenant = self.ring().tenant(token) if token else None
        if tenant is None:
            why = "a wrong API key" if token else "no API key (Authorization: Bearer <key>)"
            response = self.refuse(scope, f"The request carried {why}.")
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["tenant"] = tenant
        await self.app(scope, receive, send)
