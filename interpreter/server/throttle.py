"""Failed authentication, throttled per client address.

Every wrong key (a bearer key on any route, a key typed into ``/ui/login``) adds one
to its address's score, which leaks away at one every 30 s. The first ``BURST`` (10)
cost nothing; past them the address is locked for 1 s, then 2, 4, 8, ... up to 60 s
per further failure. While it is locked, a key from it is not checked at all: the
answer is a 429 with ``Retry-After``. A key that did authenticate from that address
in the last day is let through anyway (the "device cookie" idea of OWASP's
guessing-attack advice): a client that works keeps working while someone else at the
same address guesses. Requests without a key cost nothing: there is nothing to guess.

The address is the socket peer (``PeerAddress`` records it before uvicorn applies
``X-Forwarded-For``, which any local client could forge); IPv6 addresses count by
their /64, the block one host usually owns. The table is bounded (LRU).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["PeerAddress", "Throttle", "client_address"]

BURST = 10  # failures an address may make before it waits
LEAK = 1 / 30  # failures forgotten per second
MAX_DELAY = 60.0  # the longest lock, in seconds
TRUST = 24 * 3600.0  # how long a key that worked from an address stays let through
MAX_ADDRESSES = 4096
MAX_TRUSTED = 32  # keys remembered per address
PEER = "lci.peer"  # the scope key PeerAddress writes


@dataclass
class _Address:
    score: float = 0.0
    at: float = 0.0  # when the score was last brought up to date
    until: float = 0.0  # locked until then
    trusted: dict[bytes, float] = field(default_factory=dict)  # key digest -> last success


class Throttle:
    """The per-address state; one per service. ``clock`` is for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._table: OrderedDict[str, _Address] = OrderedDict()

    def wait(self, address: str, digest: bytes) -> float:
        """Seconds until a key from ``address`` may be checked; 0 means now. A key
        that worked from there lately (``digest``) never waits."""
        entry = self._table.get(_block(address))
        if entry is None:
            return 0.0
        now = self.clock()
        left = entry.until - now
        if left <= 0 or now - entry.trusted.get(digest, -math.inf) < TRUST:
            return 0.0
        return left

    def failed(self, address: str) -> float:
        """Count one wrong key; return the lock it caused (0 while within the burst)."""
        entry, now = self._entry(address), self.clock()
        entry.score = max(0.0, entry.score - (now - entry.at) * LEAK) + 1
        entry.at = now
        if entry.score <= BURST:
            return 0.0
        delay = min(MAX_DELAY, 2.0 ** (entry.score - BURST - 1))
        entry.until = now + delay
        return delay

    def succeeded(self, address: str, digest: bytes) -> None:
        entry = self._entry(address)
        entry.trusted[digest] = self.clock()
        if len(entry.trusted) > MAX_TRUSTED:
            oldest = min(entry.trusted, key=entry.trusted.__getitem__)
            del entry.trusted[oldest]

    def _entry(self, address: str) -> _Address:
        key = _block(address)
        entry = self._table.get(key)
        if entry is None:
            entry = self._table[key] = _Address(at=self.clock())
            while len(self._table) > MAX_ADDRESSES:
                self._table.popitem(last=False)
        else:
            self._table.move_to_end(key)
        return entry


@lru_cache(maxsize=1024)
def _block(address: str) -> str:
    """The unit an address is counted in: itself, or its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # a unix socket, a test client
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def client_address(scope: Scope) -> str:
    """The address that sent this request: the socket peer when ``PeerAddress``
    recorded it, else what the server put in ``client``."""
    peer = scope.get(PEER) or scope.get("client")
    return str(peer[0]) if peer else "unknown"


class PeerAddress:
    """Outermost ASGI layer: remember the socket peer before the proxy-headers
    middleware inside it replaces ``client`` with what ``X-Forwarded-For`` claims."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[PEER] = scope.get("client")
        await self.app(scope, receive, send)
