"""Prometheus metrics of one service: its own registry, fed by the manager's events
and by every execution the service runs."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..manager import SessionManager
from ..results import Execution

__all__ = ["Metrics"]

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.live = Gauge("lci_live_sessions", "Sessions whose sandbox is running", registry=r)
        self.executions = Counter(
            "lci_executions", "Executions run, by status", ["status"], registry=r
        )
        self.duration = Histogram(
            "lci_execution_duration_seconds",
            "Wall time of an execution",
            buckets=BUCKETS,
            registry=r,
        )
        self.starts = Counter("lci_sandbox_starts", "Sandboxes started", registry=r)
        self.reaped = Counter("lci_sessions_reaped", "Sessions ended for being idle", registry=r)
        self.ended = Counter(
            "lci_sessions_ended", "Sessions ended, by state", ["state"], registry=r
        )
        for status in ("ok", "error", "timeout", "died"):
            self.executions.labels(status)  # show zeros from the start

    def watch(self, manager: SessionManager) -> None:
        manager.listeners.append(self._on_event)
        self.live.set_function(lambda: len(manager.store.list_sessions(live_only=True)))

    def _on_event(self, event: str, fields: dict[str, Any]) -> None:
        if event == "sandbox_started":
            self.starts.inc()
        elif event == "session_ended":
            self.ended.labels(str(fields.get("state"))).inc()
            if fields.get("reaped"):
                self.reaped.inc()

    def observe(self, exe: Execution) -> None:
        self.executions.labels(exe.status.value).inc()
        self.duration.observe(exe.duration_ms / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)
