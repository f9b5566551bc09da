"""Assistants, threads, messages and runs over one SessionManager: the async core of
the Assistants-compatible API, usable from Python without HTTP::

    async with SessionManager() as manager, Assistants(manager, model=my_model) as api:
        asst = await api.create_assistant(model="gpt-4o", tools=[{"type": "code_interpreter"}])
        thread = await api.create_thread(messages=[{"role": "user", "content": "Plot a sine"}])
        run = await api.wait(thread["id"], (await api.create_run(thread["id"],
                             assistant_id=asst["id"]))["id"])
        messages = await api.list_messages(thread["id"])

Objects are plain dicts shaped as the Assistants API shows them. Runs are asyncio
tasks (runs.py, scheduler.py) that this class starts, expires (``expires_at``, ``LCI_RUN_EXPIRY``
after creation), cancels and resumes after ``submit_tool_outputs``. While a run is
active its thread is locked: no new messages, no other run. ``tenant``
scopes every call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ..chat import ChatModel, HttpChatModel
from ..errors import InvalidRequest, ThreadLocked
from ..manager import SessionManager
from .conversation import check_tools, content_blocks
from .loop import RunContext
from .objects import (
    ASSISTANT_FIELDS,
    new_assistant,
    new_message,
    new_run,
    new_thread,
    resource_files,
    resources,
    stamp,
)
from .scheduler import RunScheduler
from .store import TERMINAL, AssistantsStore

__all__ = ["Assistants"]


class Assistants:
    def __init__(
        self,
        manager: SessionManager,
        model: ChatModel | None = None,
        *,
        max_tool_calls: int | None = None,
        run_expiry: float | None = None,
    ) -> None:
        settings = manager.settings
        self.manager = manager
        self.store = AssistantsStore(manager.store)
        self.model = model
        self.run_expiry = run_expiry or settings.model.run_expiry
        ctx = RunContext(
            self.store, manager, model, max_tool_calls or settings.model.max_tool_calls
        )
        self.runs = RunScheduler(ctx)
        self._own_model: HttpChatModel | None = None

    @classmethod
    def from_manager(cls, manager: SessionManager) -> Assistants:
        """Runs call the model configured by LCI_MODEL_BASE_URL / _API_KEY / _MAP."""
        model = HttpChatModel.from_settings(manager.settings)
        api = cls(manager, model)
        api._own_model = model
        return api

    async def __aenter__(self) -> Assistants:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop every run this object drives (they end ``failed``) and the model client."""
        await self.runs.close()
        if self._own_model is not None:
            await self._own_model.aclose()

    # -- assistants --------------------------------------------------------------------

    async def create_assistant(
        self,
        *,
        tenant: str = "",
        model: str,
        tools: Iterable[Mapping[str, Any]] = (),
        tool_resources: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """``fields``: name, description, instructions, metadata, temperature, top_p,
        response_format."""
        found = resources(tool_resources)
        self._check_files(tenant, found["code_interpreter"]["file_ids"])
        body = new_assistant(model, [dict(t) for t in tools], found, **fields)
        return self.store.add("assistant", tenant, body)

    async def get_assistant(self, assistant_id: str, *, tenant: str = "") -> dict[str, Any]:
        return self.store.get("assistant", assistant_id, tenant)

    async def list_assistants(self, *, tenant: str = "") -> list[dict[str, Any]]:
        return self.store.children("assistant", tenant)

    async def update_assistant(
        self, assistant_id: str, *, tenant: str = "", **changes: Any
    ) -> dict[str, Any]:
        body = self.store.get("assistant", assistant_id, tenant)
        if changes.get("tools") is not None:
            changes["tools"] = [dict(t) for t in changes["tools"]]
            check_tools(changes["tools"])
        if changes.get("tool_resources") is not None:
            body["tool_resources"] = resources(changes["tool_resources"])
            self._check_files(tenant, resource_files(body))
        body.update({k: v for k, v in changes.items() if k in ASSISTANT_FIELDS and v is not None})
        return self.store.put(body)

    async def delete_assistant(self, assistant_id: str, *, tenant: str = "") -> dict[str, Any]:
        self.store.get("assistant", assistant_id, tenant)
        self.store.delete(assistant_id, tenant)
        return {"id": assistant_id, "object": "assistant.deleted", "deleted": True}

    # -- threads -----------------------------------------------------------------------

    async def create_thread(
        self,
        *,
        tenant: str = "",
        messages: Iterable[Mapping[str, Any]] = (),
        tool_resources: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        body = new_thread(resources(tool_resources), metadata)
        self._check_files(tenant, resource_files(body))
        todo = [dict(m) for m in messages]
        self.store.add("thread", tenant, body)
        for m in todo:
            await self.create_message(body["id"], tenant=tenant, **m)
        return body

    async def get_thread(self, thread_id: str, *, tenant: str = "") -> dict[str, Any]:
        return self.store.get("thread", thread_id, tenant)

    async def update_thread(
        self,
        thread_id: str,
        *,
        tenant: str = "",
        metadata: Mapping[str, str] | None = None,
        tool_resources: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = self.store.get("thread", thread_id, tenant)
        if metadata is not None:
            body["metadata"] = dict(metadata)
        if tool_resources is not None:
            body["tool_resources"] = resources(tool_resources)
            self._check_files(tenant, resource_files(body))
        return self.store.put(body)

    async def delete_thread(self, thread_id: str, *, tenant: str = "") -> dict[str, Any]:
        """The thread, its messages and runs (an active run is cancelled) and its session."""
        self.store.get("thread", thread_id, tenant)
        active = self.store.active_run(tenant, thread_id)
        if active is not None:
            task = self.runs.driving(active)
            await self.cancel_run(thread_id, active, tenant=tenant)
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)
        await self.manager.threads.forget(tenant, thread_id, reason="thread deleted")
        self.store.delete_thread(thread_id, tenant)
        return {"id": thread_id, "object": "thread.deleted", "deleted": True}

    # -- messages ----------------------------------------------------------------------

    async def create_message(
        self,
        thread_id: str,
        *,
        tenant: str = "",
        content: Any,
        role: str = "user",
        attachments: Iterable[Mapping[str, Any]] | None = None,
        metadata: Mapping[str, str] | None = None,
        file_ids: Iterable[str] = (),
    ) -> dict[str, Any]:
        """``file_ids`` (Assistants v1) become code_interpreter attachments."""
        self.store.get("thread", thread_id, tenant)
        active = self.store.active_run(tenant, thread_id)
        if active is not None:
            raise ThreadLocked(thread_id, active)
        atts = [
            {"file_id": a["file_id"], "tools": [dict(t) for t in a.get("tools") or []]}
            for a in attachments or []
        ]
        atts += [{"file_id": f, "tools": [{"type": "code_interpreter"}]} for f in file_ids]
        self._check_files(tenant, [a["file_id"] for a in atts])
        body = new_message(
            thread_id, role, content_blocks(content), attachments=atts, metadata=metadata
        )
        return self.store.add("message", tenant, body, thread_id)

    async def list_messages(
        self, thread_id: str, *, tenant: str = "", run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Oldest first."""
        self.store.get("thread", thread_id, tenant)
        msgs = self.store.children("message", tenant, thread_id)
        return [m for m in msgs if run_id is None or m["run_id"] == run_id]

    async def get_message(
        self, thread_id: str, message_id: str, *, tenant: str = ""
    ) -> dict[str, Any]:
        return self.store.get("message", message_id, tenant, thread_id)

    async def update_message(
        self,
        thread_id: str,
        message_id: str,
        *,
        tenant: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        body = self.store.get("message", message_id, tenant, thread_id)
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return self.store.put(body)

    # -- runs --------------------------------------------------------------------------

    async def create_run(
        self,
        thread_id: str,
        *,
        tenant: str = "",
        assistant_id: str,
        additional_messages: Iterable[Mapping[str, Any]] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """``options``: model, instructions, additional_instructions, tools, tool_choice,
        metadata, temperature, top_p, parallel_tool_calls, response_format,
        max_prompt_tokens, max_completion_tokens, truncation_strategy."""
        self.store.get("thread", thread_id, tenant)
        assistant = self.store.get("assistant", assistant_id, tenant)
        run = new_run(thread_id, assistant, options, self.run_expiry)
        active = self.store.active_run(tenant, thread_id)
        if active is not None:
            raise ThreadLocked(thread_id, active, "create a run on")
        for m in additional_messages or []:
            await self.create_message(thread_id, tenant=tenant, **dict(m))
        state = {
            "deadline": time.time() + self.run_expiry,
            "assistant_files": resource_files(assistant),
        }
        self.store.add_run(tenant, run, state)
        self.runs.start(tenant, run["id"])
        return run

    async def create_thread_and_run(
        self,
        *,
        tenant: str = "",
        assistant_id: str,
        thread: Mapping[str, Any] | None = None,
        tool_resources: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        params = dict(thread or {})
        if tool_resources is not None and params.get("tool_resources") is None:
            params["tool_resources"] = tool_resources
        created = await self.create_thread(tenant=tenant, **params)
        return await self.create_run(
            created["id"], tenant=tenant, assistant_id=assistant_id, **options
        )

    async def get_run(self, thread_id: str, run_id: str, *, tenant: str = "") -> dict[str, Any]:
        run = self.store.get("run", run_id, tenant, thread_id)
        return self.runs.reconcile(tenant, run)

    async def list_runs(self, thread_id: str, *, tenant: str = "") -> list[dict[str, Any]]:
        self.store.get("thread", thread_id, tenant)
        return [
            self.runs.reconcile(tenant, r) for r in self.store.children("run", tenant, thread_id)
        ]

    async def update_run(
        self,
        thread_id: str,
        run_id: str,
        *,
        tenant: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        run = self.store.get("run", run_id, tenant, thread_id)
        if metadata is not None:
            run["metadata"] = dict(metadata)
            self.store.put(run)
        return run

    async def cancel_run(self, thread_id: str, run_id: str, *, tenant: str = "") -> dict[str, Any]:
        """A running run goes ``cancelling`` (its code is interrupted) then ``cancelled``."""
        run = await self.get_run(thread_id, run_id, tenant=tenant)
        if run["status"] in TERMINAL:
            raise InvalidRequest(f"Cannot cancel run with status '{run['status']}'.", "run_id")
        return self.runs.cancel(tenant, run)

    async def submit_tool_outputs(
        self,
        thread_id: str,
        run_id: str,
        *,
        tenant: str = "",
        tool_outputs: Iterable[Mapping[str, Any]],
    ) -> dict[str, Any]:
        run = await self.get_run(thread_id, run_id, tenant=tenant)
        if run["status"] != "requires_action":
            raise InvalidRequest(
                f"Runs in status '{run['status']}' do not accept tool outputs.", "run_id"
            )
        state = self.store.state(run_id)
        expected = state["pending"]["calls"]
        outputs = {o.get("tool_call_id"): str(o.get("output") or "") for o in tool_outputs}
        if set(outputs) != set(expected):
            raise InvalidRequest(
                f"Expected tool outputs for call_ids {expected}, got {sorted(map(str, outputs))}.",
                "tool_outputs",
            )
        state["outputs"] = outputs
        run["required_action"] = None
        self.store.put(stamp(run, "queued"), state)
        self.runs.start(tenant, run_id)
        return run

    async def wait(
        self, thread_id: str, run_id: str, *, tenant: str = "", timeout: float | None = None
    ) -> dict[str, Any]:
        """The run once it ends or needs tool outputs (``requires_action``)."""
        deadline = time.monotonic() + (timeout or self.run_expiry + 60)
        while True:
            run = await self.get_run(thread_id, run_id, tenant=tenant)
            if run["status"] not in ("queued", "in_progress", "cancelling"):
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"Run {run_id} is still {run['status']}.")
            await asyncio.sleep(0.05)

    # -- run steps ---------------------------------------------------------------------

    async def list_steps(
        self, thread_id: str, run_id: str, *, tenant: str = ""
    ) -> list[dict[str, Any]]:
        self.store.get("run", run_id, tenant, thread_id)
        return self.store.children("step", tenant, run_id)

    async def get_step(
        self, thread_id: str, run_id: str, step_id: str, *, tenant: str = ""
    ) -> dict[str, Any]:
        self.store.get("run", run_id, tenant, thread_id)
        return self.store.get("step", step_id, tenant, run_id)

    def _check_files(self, tenant: str, file_ids: Iterable[str]) -> None:
        for fid in file_ids:
            self.manager.files.info(fid, tenant)  # NoSuchFile: 404
