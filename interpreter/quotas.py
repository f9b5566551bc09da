"""Per-tenant quotas, and the host's capacity with a fair queue in front of it.

A ``Quota`` bounds what one tenant may hold at once: live sessions, the memory limits of
its live sandboxes together, one sandbox's memory limit (a larger ask is clamped), the
bytes its stored files take, and executions per minute. Going over raises
``QuotaExceeded``, which names the quota, its limit and the use now.

Defaults come from the host (its memory, the size of LCI_HOME's filesystem) and
``LCI_QUOTAS``; a tenant's own row in ``LCI_TENANT_QUOTAS`` or ``LCI_HOME/tenants``
overrides them::

    # LCI_HOME/tenants: tenant, then any of the quota names with a value
    alice   sessions=4  memory=8g  memory_limit=2g  stored=10g  executions=120
    bob     sessions=64

``Capacity`` is the host's side: a sandbox starts only while the host runs fewer than
``LCI_MAX_SESSIONS`` and has ``LCI_MIN_AVAILABLE`` memory available. When it has not,
the start waits in a first-come first-served queue (at most ``LCI_QUEUE_TIMEOUT``
seconds) instead of failing at once; ``HostBusy`` after that. The local tenant (the
library, ``lci run``) has no quota; the capacity applies to everyone.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path

from .config import Settings, parse_bytes
from .errors import ConfigError, HostBusy, QuotaExceeded

__all__ = ["Capacity", "Quota", "Quotas", "host_memory"]

SIZES = {"memory", "memory_limit", "stored"}


@dataclass(frozen=True, kw_only=True)
class Quota:
    sessions: int  # live sessions
    memory: int  # bytes: the memory limits of the live sandboxes together
    memory_limit: int  # bytes: one sandbox's limit (a larger ask is clamped to this)
    stored: int  # bytes of stored files (uploads, produced files, images, logs)
    executions: int  # per minute

    def to_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def host_memory() -> int:
    """Bytes of memory the host has (MemTotal)."""
    return _meminfo("MemTotal") or 8 * 1024**3


def available_memory() -> int:
    return _meminfo("MemAvailable") or host_memory()


def _meminfo(key: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == key:
                return int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def default_quota(settings: Settings) -> Quota:
    """What a tenant may hold unless configured: a share of the host, not all of it."""
    ram = host_memory()
    st = os.statvfs(settings.home) if settings.home.exists() else None
    disk = st.f_blocks * st.f_frsize if st else 64 * 1024**3
    base = Quota(
        sessions=64,
        memory=2 * ram,  # limits, not use: an idle sandbox uses a few dozen MiB of its 1 GiB
        # whole gigabytes: what a container reports as its memory_limit must be a valid one
        memory_limit=min(16 * 1024**3, max(ram // 2 // 1024**3 * 1024**3, settings.sandbox.memory)),
        stored=max(disk // 4, 1024**3),
        executions=600,
    )
    return _apply(base, _fields(settings.service.quotas, "LCI_QUOTAS"), "LCI_QUOTAS")


def parse_rows(text: str, where: str) -> dict[str, dict[str, int]]:
    """``tenant key=value ...`` rows (newlines or ``;`` between them, ``#`` comments)."""
    rows: dict[str, dict[str, int]] = {}
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    for row in ";".join(lines).split(";"):
        words = row.replace(":", " ", 1).split()
        if not words:
            continue
        tenant, *pairs = words
        rows[tenant] = _fields(" ".join(pairs), where)
    return rows


def _fields(text: str, where: str) -> dict[str, int]:
    out: dict[str, int] = {}
    names = {f.name for f in fields(Quota)}
    for pair in text.replace(",", " ").split():
        name, sep, value = pair.partition("=")
        if not sep or name not in names:
            raise ConfigError(where, pair, f"name=value with a name among {sorted(names)}")
        if name in SIZES:
            number = parse_bytes(value, f"{where} {name}")
        else:
            try:
                number = int(value)
            except ValueError:
                raise ConfigError(where, pair, "a whole number") from None
        if number < 0:
            raise ConfigError(where, pair, "a number of at least 0")
        out[name] = number
    return out


def _apply(quota: Quota, values: Mapping[str, int], where: str) -> Quota:
    return replace(quota, **values) if values else quota


class Quotas:
    """The service's quota table; ``use`` reports a tenant's current use of a quota."""

    def __init__(self, default: Quota, tenants: Mapping[str, Mapping[str, int]]) -> None:
        self.default = default
        self.tenants = {t: _apply(default, v, "tenants") for t, v in tenants.items()}
        self._runs: dict[str, deque[float]] = defaultdict(deque)

    @classmethod
    def from_settings(cls, settings: Settings) -> Quotas:
        rows = parse_rows(settings.service.tenant_quotas, "LCI_TENANT_QUOTAS")
        table = settings.home / "tenants"
        if not rows and table.is_file():
            rows = parse_rows(table.read_text(), str(table))
        return cls(default_quota(settings), rows)

    def of(self, tenant: str) -> Quota:
        return self.tenants.get(tenant, self.default)

    def memory_for(self, tenant: str, asked: int) -> int:
        """A sandbox's memory limit: what was asked, clamped to the tenant's maximum (in
        whole megabytes, so that it reads back as a valid ``memory_limit``)."""
        return min(asked, self.of(tenant).memory_limit // 1024**2 * 1024**2)

    def check_start(self, tenant: str, live: list[int], memory: int) -> None:
        """Raise unless a sandbox of ``memory`` may start next to ``live`` (their limits)."""
        q = self.of(tenant)
        if len(live) + 1 > q.sessions:
            raise QuotaExceeded(tenant, "sessions", q.sessions, len(live))
        if sum(live) + memory > q.memory:
            raise QuotaExceeded(tenant, "memory", q.memory, sum(live), unit="bytes")

    def check_stored(self, tenant: str, stored: int, more: int) -> None:
        q = self.of(tenant)
        if stored + more > q.stored:
            raise QuotaExceeded(tenant, "stored", q.stored, stored, unit="bytes")

    def check_execution(self, tenant: str, count: bool = True, now: float | None = None) -> None:
        """Count one execution (or only look, ``count=False``); raise when the last minute
        already had the quota's."""
        now = time.monotonic() if now is None else now
        runs, limit = self._runs[tenant], self.of(tenant).executions
        while runs and runs[0] <= now - 60:
            runs.popleft()
        if len(runs) >= limit:
            retry = max(1, int(runs[0] + 60 - now) + 1)
            raise QuotaExceeded(tenant, "executions", limit, len(runs), "per minute", retry)
        if count:
            runs.append(now)


class Capacity:
    """The host's room for one more sandbox, and a fair queue for when it has none."""

    def __init__(self, settings: Settings, live: Callable[[], int]) -> None:
        self.max_sessions = settings.capacity.max_sessions or max(
            host_memory() // (64 * 1024**2), 16
        )
        self.min_available = settings.capacity.min_available
        self.timeout = settings.capacity.queue_timeout
        self._live = live
        self._queue: deque[object] = deque()
        self._starting = 0  # admitted, not yet counted among the live

    def room(self) -> str | None:
        """None when one more sandbox fits; else why not."""
        running = self._live() + self._starting
        if running >= self.max_sessions:
            return f"{running} sandboxes run, the most this host takes (LCI_MAX_SESSIONS)"
        if available_memory() < self.min_available:
            return "the host is short of memory (LCI_MIN_AVAILABLE)"
        return None

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a place for one sandbox while it starts: wait for one, first come first
        served, for at most LCI_QUEUE_TIMEOUT seconds (then HostBusy)."""
        turn = object()
        self._queue.append(turn)
        deadline = time.monotonic() + self.timeout
        try:
            while not (self._queue[0] is turn and self.room() is None):
                if time.monotonic() >= deadline:
                    why = self.room() or "others were waiting before this request"
                    raise HostBusy(why, self.timeout)
                await asyncio.sleep(0.1)
        finally:
            self._queue.remove(turn)
        self._starting += 1
        try:
            yield
        finally:
            self._starting -= 1
