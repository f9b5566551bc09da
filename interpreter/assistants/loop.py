"""The run loop: carry one Assistants run from ``queued`` to its end.

One model turn at a time: give the model the instructions, the thread and the tools;
run each ``code_interpreter`` call in the thread's session (one run step per call,
its error going back to the model, which decides whether to fix the code and try
again); stop at ``requires_action`` when the model calls the caller's functions;
finish with an assistant message when the model answers in words. A cap on tool
calls per run fails a run that loops. ``Assistants`` (assistants.py) schedules
these loops as tasks, applies expiry and cancellation, and resumes a loop after
``submit_tool_outputs``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..chat import ChatModel, ChatReply, ask
from ..manager import SessionManager
from ..tool import NAME, CodeInterpreterTool, parse_code, spend_call
from .conversation import (
    assistant_content,
    chat_messages,
    chat_tool_choice,
    chat_tools,
    system_prompt,
)
from .objects import new_message, new_step, now, resource_files, stamp
from .store import AssistantsStore, new_id

__all__ = ["RunContext", "RunLoop", "run_files"]


def run_files(
    store: AssistantsStore, tenant: str, thread_id: str, assistant_files: Iterable[str] = ()
) -> list[str]:
    """The file ids a run's code can read: the assistant's, the thread's, and the
    attachments of the thread's messages that name code_interpreter."""
    ids = [*assistant_files, *resource_files(store.get("thread", thread_id, tenant))]
    for msg in store.children("message", tenant, thread_id):
        for att in msg.get("attachments") or []:
            if any(t.get("type") == "code_interpreter" for t in att.get("tools") or []):
                ids.append(att["file_id"])
    return list(dict.fromkeys(ids))


@dataclass
class RunContext:
    """What a loop works with: where objects live, the engine, the model, the limits."""

    store: AssistantsStore
    manager: SessionManager
    model: ChatModel | None
    max_tool_calls: int
    exec_timeout: float | None = None


class RunLoop:
    """One run's turns. ``state`` is the run's private, persisted working memory."""

    def __init__(self, ctx: RunContext, tenant: str, run: dict[str, Any]) -> None:
        self.ctx, self.tenant, self.run = ctx, tenant, run
        self.store = ctx.store
        self.state = self.store.state(run["id"])
        self.state.setdefault("tool_calls", 0)
        self.state.setdefault("turns", 0)
        self.state.setdefault("images", [])  # shown since the last message
        self.state.setdefault("files", {})  # /mnt/data path -> file id, made by this run

    def save(self) -> None:
        self.store.put(self.run, self.state)

    async def drive(self) -> None:
        """Run turns until the run completes, fails, or waits for function outputs."""
        if self.run["status"] == "queued":
            stamp(self.run, "in_progress")
            self.run["started_at"] = self.run["started_at"] or now()
            self.save()
        self._take_outputs()
        while True:
            reply = await self._ask()
            if not reply.tool_calls:
                self._answer(reply.content)
                return
            if reply.content.strip():  # words before the calls: a message of their own
                self._message(reply.content, [])
            turn = {"role": "assistant", "content": None, "tool_calls": reply.tool_calls}
            self._turn(turn)
            if await self._tools(reply.tool_calls):
                return

    # -- the model ---------------------------------------------------------------------

    async def _ask(self) -> ChatReply:
        reply = await ask(self.ctx.model, await self._request())
        self.state["turns"] += 1
        self._add_usage(reply.usage)
        return reply

    async def _request(self) -> dict[str, Any]:
        run = self.run
        items = self.store.children("", self.tenant, run["thread_id"], ("message", "turn"))
        names = [self.ctx.manager.files.info(fid, self.tenant).filename for fid in self._files()]
        request: dict[str, Any] = {
            "model": run["model"],
            "messages": chat_messages(system_prompt(run["instructions"], names), items),
        }
        tools = chat_tools(run["tools"])
        if tools:
            request["tools"] = tools
            request["tool_choice"] = chat_tool_choice(run["tool_choice"], self.state["turns"] == 0)
            request["parallel_tool_calls"] = run.get("parallel_tool_calls", True)
        for key in ("temperature", "top_p"):
            if run.get(key) is not None:
                request[key] = run[key]
        if isinstance(run.get("response_format"), dict):
            request["response_format"] = run["response_format"]
        return request

    def _add_usage(self, usage: dict[str, int] | None) -> None:
        if not usage:
            return
        total = self.run.get("usage") or {}
        self.run["usage"] = {k: total.get(k, 0) + v for k, v in usage.items()}

    def _files(self) -> list[str]:
        return run_files(
            self.store, self.tenant, self.run["thread_id"], self.state.get("assistant_files", [])
        )

    # -- tools -------------------------------------------------------------------------

    async def _tools(self, calls: list[dict[str, Any]]) -> bool:
        """Run the code calls; True when the run now waits for function outputs."""
        functions = []
        for call in calls:
            self.state["tool_calls"] = spend_call(self.ctx.max_tool_calls, self.state["tool_calls"])
            if call["function"]["name"] == NAME and self._has_code_interpreter():
                await self._code(call)
            elif any(f["function"]["name"] == call["function"]["name"] for f in self._functions()):
                functions.append(call)
            else:
                self._turn(
                    _tool_reply(call, f"error: there is no tool {call['function']['name']!r}.")
                )
        if not functions:
            return False
        self._require(functions)
        return True

    def _has_code_interpreter(self) -> bool:
        return any(t["type"] == "code_interpreter" for t in self.run["tools"])

    def _functions(self) -> list[dict[str, Any]]:
        return [t for t in self.run["tools"] if t["type"] == "function"]

    async def _code(self, call: dict[str, Any]) -> None:
        code = parse_code(call["function"]["arguments"]) or ""
        detail = {
            "id": call["id"],
            "type": "code_interpreter",
            "code_interpreter": {"input": code, "outputs": []},
        }
        step = new_step(self.run, {"type": "tool_calls", "tool_calls": [detail]}, "in_progress")
        self.store.add("step", self.tenant, step, self.run["id"])
        self.save()
        tool = CodeInterpreterTool(
            self.ctx.manager,
            self.run["thread_id"],
            tenant=self.tenant,
            file_ids=self._unplaced(),
            timeout=self.ctx.exec_timeout,
        )
        result = await tool.handle(call["function"]["arguments"])
        exe = result.execution
        if exe is not None:
            detail["code_interpreter"]["outputs"] = exe.outputs
            self.state["images"] += exe.images
            self.state["files"].update({f.path: f.file_id for f in exe.files})
        self.store.put(stamp(step, "completed", "completed_at"))
        self._turn(_tool_reply(call, result.text))

    def _unplaced(self) -> list[str]:
        """Files not yet placed in this thread's /mnt/data (placed ones may have changed)."""
        thread = self.run["thread_id"]
        placed = set(self.store.state(thread).get("placed", []))
        todo = [fid for fid in self._files() if fid not in placed]
        if todo:
            self.store.put(
                self.store.get("thread", thread, self.tenant),
                {"placed": sorted(placed | set(todo))},
            )
        return todo

    def _require(self, calls: list[dict[str, Any]]) -> None:
        details = [
            {"id": c["id"], "type": "function", "function": {**c["function"], "output": None}}
            for c in calls
        ]
        step = new_step(self.run, {"type": "tool_calls", "tool_calls": details}, "in_progress")
        self.store.add("step", self.tenant, step, self.run["id"])
        self.state["pending"] = {"step": step["id"], "calls": [c["id"] for c in calls]}
        self.run["required_action"] = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {"tool_calls": calls},
        }
        stamp(self.run, "requires_action")
        self.save()

    def _take_outputs(self) -> None:
        """After submit_tool_outputs: the outputs go to the model and into the step."""
        pending, outputs = self.state.pop("pending", None), self.state.pop("outputs", None)
        if not pending or outputs is None:
            return
        step = self.store.get("step", pending["step"], self.tenant)
        for detail in step["step_details"]["tool_calls"]:
            detail["function"]["output"] = outputs.get(detail["id"], "")
            self._turn(
                {
                    "role": "tool",
                    "tool_call_id": detail["id"],
                    "content": outputs.get(detail["id"], ""),
                }
            )
        self.store.put(stamp(step, "completed", "completed_at"))
        self.save()

    # -- output ------------------------------------------------------------------------

    def _turn(self, message: dict[str, Any]) -> None:
        """A tool-call turn: part of the thread's history for the model, not a message."""
        turn = {"id": new_id("turn"), "run_id": self.run["id"], **message}
        self.store.add("turn", self.tenant, turn, self.run["thread_id"])

    def _message(self, text: str, images: Iterable[str]) -> dict[str, Any]:
        files = {
            f"/mnt/data/{p}": e.file_id
            for p, e in self.ctx.manager.threads.placed(self.tenant, self.run["thread_id"]).items()
        }
        files.update(self.state["files"])
        content = assistant_content(text, images, files)
        msg = new_message(self.run["thread_id"], "assistant", content, run=self.run)
        self.store.add("message", self.tenant, msg, self.run["thread_id"])
        details = {"type": "message_creation", "message_creation": {"message_id": msg["id"]}}
        self.store.add(
            "step", self.tenant, new_step(self.run, details, "completed"), self.run["id"]
        )
        return msg

    def _answer(self, text: str) -> None:
        self._message(text, self.state["images"])
        self.state["images"] = []
        stamp(self.run, "completed", "completed_at")
        self.save()


def _tool_reply(call: dict[str, Any], text: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call["id"], "content": text}
