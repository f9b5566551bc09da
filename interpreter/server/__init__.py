"""The HTTP service (``lci serve``): see ``app.create_app``."""

from __future__ import annotations

import os
import sys
from typing import Any

from ..config import Settings
from .app import create_app

__all__ = ["create_app", "serve"]


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Run the service until SIGINT/SIGTERM. Sandboxes outlive it; a restart re-attaches."""
    import uvicorn
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from .auth import load_keys
    from .protocol import BoundedHttpToolsProtocol
    from .throttle import PeerAddress

    ring = load_keys(settings)
    if ring.created:
        print(
            f"lci: created an API key (stored in {settings.keys_file}, mode 0600; shown only"
            f" this once):\n\n    {ring.created}\n\nSend it as 'Authorization: Bearer <key>'.\n",
            file=sys.stderr,
            flush=True,
        )
    app = create_app(settings, keys=ring)
    # uvicorn's own X-Forwarded-* handling (FORWARDED_ALLOW_IPS, default 127.0.0.1),
    # inside a layer that first keeps the socket peer for the auth throttle
    trusted = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
    proxied: Any = ProxyHeadersMiddleware(app, trusted_hosts=trusted)  # type: ignore[arg-type]
    uvicorn.run(
        PeerAddress(proxied),
        host=host or settings.service.host,
        port=port or settings.service.port,
        http=BoundedHttpToolsProtocol,  # request line and headers bounded
        proxy_headers=False,  # applied above
        log_level="info",
        timeout_graceful_shutdown=10,
        server_header=False,
        access_log=False,  # one line per request costs more than the rest of the HTTP work
    )
