"""Runs as asyncio tasks: start, expire, cancel, end.

A run's loop (runs.py) runs in a task under a deadline (its ``expires_at``): past
it the run is ``expired`` and its running code interrupted. Cancelling the task
interrupts the code too; the run ends ``cancelled`` when a client asked
(``cancelling``), ``failed`` when lci is stopping. A run waiting for tool outputs has
no task, only a timer that expires it when the outputs do not come in time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import anyio

from ..errors import AssistantsError, InterpreterError
from .loop import RunContext, RunLoop, stamp

__all__ = ["RunScheduler"]

log = logging.getLogger("lci.runs")
ENDED_AT = {"completed": "completed_at", "failed": "failed_at", "cancelled": "cancelled_at"}
STOPPED = "lci stopped while the run was in progress."


class RunScheduler:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self._drives: dict[str, asyncio.Task[None]] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        for tenant, run in self.store.runs_with_status(("queued", "in_progress", "cancelling")):
            self.finish(tenant, run, "failed", STOPPED)  # left by an earlier process

    def start(self, tenant: str, run_id: str) -> None:
        """Drive the run (queued, or resumed after tool outputs) in a task."""
        self._stop_timer(run_id)
        task = asyncio.create_task(self._drive(tenant, run_id), name=f"lci-{run_id}")
        _keep(self._drives, run_id, task)

    def driving(self, run_id: str) -> asyncio.Task[None] | None:
        task = self._drives.get(run_id)
        return task if task is not None and not task.done() else None

    def cancel(self, tenant: str, run: dict[str, Any]) -> dict[str, Any]:
        """Interrupt a driven run (it goes ``cancelling``), or end a waiting one now."""
        task = self.driving(run["id"])
        if task is None:
            self._stop_timer(run["id"])
            return self.finish(tenant, run, "cancelled")
        if run["status"] != "cancelling":
            self.store.put(stamp(run, "cancelling"))
            task.cancel()
        return run

    async def close(self) -> None:
        tasks = [*self._drives.values(), *self._timers.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _drive(self, tenant: str, run_id: str) -> None:
        loop = RunLoop(self.ctx, tenant, self.store.get("run", run_id, tenant))
        deadline = anyio.current_time() + loop.state["deadline"] - time.time()
        try:
            with anyio.CancelScope(deadline=deadline) as scope:
                await loop.drive()
        except asyncio.CancelledError:
            asked = self.store.get("run", run_id, tenant)["status"] == "cancelling"
            self.finish(tenant, loop.run, *(("cancelled",) if asked else ("failed", STOPPED)))
        except (AssistantsError, InterpreterError) as exc:
            self.finish(tenant, loop.run, "failed", str(exc))
        except Exception as exc:
            log.exception("run %s failed", run_id)
            self.finish(tenant, loop.run, "failed", f"Internal error: {type(exc).__name__}.")
        else:
            if scope.cancelled_caught:
                self.finish(tenant, loop.run, "expired")
            elif loop.run["status"] == "requires_action":
                self._expire_later(tenant, run_id, loop.state["deadline"])

    def _expire_later(self, tenant: str, run_id: str, deadline: float) -> None:
        """Expire a run that waits for tool outputs past its deadline."""

        async def expire() -> None:
            await asyncio.sleep(max(0.0, deadline - time.time()))
            self.reconcile(tenant, self.store.get("run", run_id, tenant))

        task = asyncio.create_task(expire(), name=f"lci-expiry-{run_id}")
        _keep(self._timers, run_id, task)

    def _stop_timer(self, run_id: str) -> None:
        task = self._timers.pop(run_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def reconcile(self, tenant: str, run: dict[str, Any]) -> dict[str, Any]:
        """A run still waiting past its deadline (tool outputs not submitted) is expired."""
        waiting = run["status"] in ("queued", "requires_action") and not self.driving(run["id"])
        deadline = self.store.state(run["id"]).get("deadline", float("inf"))
        if waiting and time.time() >= deadline:
            return self.finish(tenant, run, "expired")
        return run

    def finish(
        self, tenant: str, run: dict[str, Any], status: str, error: str | None = None
    ) -> dict[str, Any]:
        """End ``run`` with ``status``; its unfinished steps end with it."""
        stamp(run, status, ENDED_AT.get(status))
        run["required_action"] = None
        if error is not None:
            run["last_error"] = {"code": "server_error", "message": error}
        step_status = "failed" if status == "failed" else status
        for step in self.store.children("step", tenant, run["id"]):
            if step["status"] == "in_progress":
                self.store.put(stamp(step, step_status, f"{step_status}_at"))
        return self.store.put(run)


def _keep(tasks: dict[str, asyncio.Task[None]], key: str, task: asyncio.Task[None]) -> None:
    """Hold ``task`` under ``key`` until it is done (unless replaced meanwhile)."""
    tasks[key] = task

    def forget(done: asyncio.Task[None]) -> None:
        if tasks.get(key) is done:
            del tasks[key]

    task.add_done_callback(forget)
