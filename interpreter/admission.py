"""May one more sandbox start, may these bytes be stored: the manager's gate.

A start must fit the tenant's quota (``quotas.py``: its live sessions and the memory of
starts still under way), the host's capacity (a fair queue), a uid range no host
account uses, and LCI_HOME's room: the new sandbox's whole disk on top of what every
live session's disk may still grow by, and the floor (LCI_MIN_FREE). A sandbox can
never fill the disk the store lives on.
"""

from __future__ import annotations

import grp
import pwd
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from .config import Settings
from .errors import ConfigError
from .files import FileStore
from .layout import session_disk
from .quotas import Capacity, Quotas
from .store import Store

__all__ = ["Admission", "host_ids_in"]


class Admission:
    def __init__(
        self, settings: Settings, store: Store, files: FileStore, quotas: Quotas | None
    ) -> None:
        self.settings, self.store, self.files, self.quotas = settings, store, files, quotas
        self.capacity = Capacity(settings, store.live_count)
        self._pending: dict[str, list[int]] = {}  # tenant -> memory of starts under way
        self._uids_checked = False
        self._reserved_at = (0.0, 0)
        files.reserved = self.reserved
        files.charge = self.charge

    def memory_for(self, tenant: str, asked: int) -> int:
        """The memory limit a start gets: what was asked, clamped to the tenant's largest."""
        if self.quotas is not None and tenant:
            return self.quotas.memory_for(tenant, asked)
        return asked

    @asynccontextmanager
    async def start(self, tenant: str, memory: int) -> AsyncIterator[None]:
        """Admit one start of ``memory`` for ``tenant``; held while the sandbox starts."""
        self._check_host()
        self.check_claim(tenant, memory)
        pending = self._pending.setdefault(tenant, [])
        pending.append(memory)
        try:
            async with self.capacity.slot():
                yield
        finally:
            pending.remove(memory)

    def check_claim(self, tenant: str, memory: int) -> None:
        """The tenant's quota for one more sandbox of ``memory``: every start, and every
        claim of a pooled sandbox (which needs no more room of the host)."""
        if self.quotas is not None and tenant:
            live = [r.memory for r in self.store.list_sessions(tenant=tenant, live_only=True)]
            self.quotas.check_start(tenant, live + self._pending.get(tenant, []), memory)

    def _check_host(self) -> None:
        if not self._uids_checked:
            clash = host_ids_in(*self.settings.sandbox.uid_range)
            if clash:
                raise ConfigError(
                    "LCI_UID_RANGE",
                    "{}-{}".format(*self.settings.sandbox.uid_range),
                    f"a range no host account uses ({clash} is in it)",
                )
            self._uids_checked = True
        self.reserved(fresh=True)
        self.files.check_room(self.settings.sandbox.disk_limit)

    def charge(self, tenant: str, size: int) -> None:
        """Storing ``size`` more bytes for ``tenant``: within its quota?"""
        if self.quotas is not None and tenant:
            self.quotas.check_stored(tenant, self.store.stored_bytes(tenant), size)

    def reserved(self, fresh: bool = False) -> int:
        """What live sessions' disks may still grow by: kept aside from everything else.
        Measured at most once a second, unless ``fresh`` (a new disk is being admitted)."""
        limit = self.settings.sandbox.disk_limit
        if not limit:
            return 0
        when, value = self._reserved_at
        if fresh or time.monotonic() - when > 1.0:
            value = sum(
                max(limit - session_disk(rec, self.settings).used(), 0)
                for rec in self.store.list_sessions(live_only=True)
            )
            self._reserved_at = (time.monotonic(), value)
        return value


def host_ids_in(first: int, last: int) -> str | None:
    """A host user, group or subordinate id range that falls within [first, last], or None."""
    for user in pwd.getpwall():
        if first <= user.pw_uid <= last:
            return f"user {user.pw_name} (uid {user.pw_uid})"
    for group in grp.getgrall():
        if first <= group.gr_gid <= last:
            return f"group {group.gr_name} (gid {group.gr_gid})"
    for sub in ("/etc/subuid", "/etc/subgid"):
        with suppress(OSError):
            for line in Path(sub).read_text().splitlines():
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                    lo, n = int(parts[1]), int(parts[2])
                    if lo <= last and first < lo + n:
                        return f"{sub} range of {parts[0]} ({lo}-{lo + n - 1})"
    return None
