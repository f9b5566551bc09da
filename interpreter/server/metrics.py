"""Prometheus metrics of one service: its own registry, fed by the manager's events
(every execution from any face, sandbox starts, sessions ended); no face counts.

Every series carries a ``tenant`` label (``""`` for the local tenant: the library and
the CLI on the same ``LCI_HOME``). ``render(tenant)`` shows one tenant only its own
series; ``render()`` (an admin key, ``LCI_ADMIN_KEYS``) shows them all.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..manager import SessionManager
from ..results import Execution, ExecutionStatus

__all__ = ["Metrics"]

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
STATUSES = tuple(s.value for s in ExecutionStatus)


class _LiveSessions(Collector):
    """``lci_live_sessions{tenant}``, counted from the store when scraped."""

    def __init__(self) -> None:
        self.manager: SessionManager | None = None

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "lci_live_sessions", "Sessions whose sandbox is running", labels=["tenant"]
        )
        if self.manager is not None:
            records = self.manager.records(live_only=True)
            live = Tally(rec.tenant for rec in records if rec.pool is None)  # pooled: below
            for tenant, n in sorted(live.items()):
                family.add_metric([tenant], n)
        yield family
        # the warm pool belongs to no tenant: an admin's scrape shows it
        ready = GaugeMetricFamily(
            "lci_pool_ready", "Pooled sandboxes ready for a new thread", labels=["runtime"]
        )
        claims = CounterMetricFamily(
            "lci_pool_claims", "New threads' starts: from the pool or cold", labels=["source"]
        )
        if self.manager is not None:
            for runtime, n in sorted(self.manager.pool.ready().items()):
                ready.add_metric([runtime], n)
            for source, n in self.manager.pool.claims.items():
                claims.add_metric([source], n)
        yield ready
        yield claims


class _OneTenant:
    """A registry as one tenant sees it: only the samples labelled with it."""

    def __init__(self, registry: CollectorRegistry, tenant: str) -> None:
        self.registry, self.tenant = registry, tenant

    def collect(self) -> Iterable[Metric]:
        for family in self.registry.collect():
            mine = Metric(family.name, family.documentation, family.type, family.unit)
            mine.samples = [s for s in family.samples if s.labels.get("tenant") == self.tenant]
            yield mine


class Metrics:
    def __init__(self, tenants: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._live = _LiveSessions()
        r.register(self._live)
        self.executions = Counter(
            "lci_executions", "Executions run, by status", ["tenant", "status"], registry=r
        )
        self.duration = Histogram(
            "lci_execution_duration_seconds",
            "Wall time of an execution",
            ["tenant"],
            buckets=BUCKETS,
            registry=r,
        )
        self.starts = Counter("lci_sandbox_starts", "Sandboxes started", ["tenant"], registry=r)
        self.reaped = Counter(
            "lci_sessions_reaped", "Sessions ended for being idle", ["tenant"], registry=r
        )
        self.ended = Counter(
            "lci_sessions_ended", "Sessions ended, by state", ["tenant", "state"], registry=r
        )
        for tenant in tenants:  # show zeros from the start
            for status in STATUSES:
                self.executions.labels(tenant, status)
            self.starts.labels(tenant)
            self.reaped.labels(tenant)

    def watch(self, manager: SessionManager) -> None:
        self._live.manager = manager
        manager.listeners.append(self._on_event)

    def _on_event(self, event: str, fields: dict[str, Any]) -> None:
        tenant = str(fields.get("tenant", ""))
        if event == "execution":
            self._observe(fields["execution"], tenant)
        elif event == "sandbox_started":
            self.starts.labels(tenant).inc()
        elif event == "session_ended":
            self.ended.labels(tenant, str(fields.get("state"))).inc()
            if fields.get("reaped"):
                self.reaped.labels(tenant).inc()

    def _observe(self, exe: Execution, tenant: str) -> None:
        self.executions.labels(tenant, exe.status.value).inc()
        self.duration.labels(tenant).observe(exe.duration_ms / 1000)

    def render(self, tenant: str | None = None) -> bytes:
        """Every series (``tenant=None``), or the ones of ``tenant``."""
        if tenant is None:
            return generate_latest(self.registry)
        return generate_latest(_OneTenant(self.registry, tenant))
