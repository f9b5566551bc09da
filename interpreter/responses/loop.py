"""One response: model turns, code_interpreter calls in a container, a function-call stop.

The engine is the Assistants runs' (assistants/loop.py): a model turn is ``chat.ask``,
a code call is ``tool.CodeInterpreterTool`` (its ``describe`` is what the model reads
back), the cap on tool calls is ``tool.spend_call``. Each turn's words become a
``message`` item, each code call a ``code_interpreter_call`` item (its error goes back
to the model, which decides whether to fix the code and retry in the same container);
when the model calls the caller's functions the response ends with ``function_call``
items and the next request answers them (``function_call_output``).

The code runs in a container of ``/v1/containers``: the one the tool names, or an
``auto`` one, made on first use and kept along the ``previous_response_id`` chain; an
expired auto container is replaced, and the model is told. Progress is reported
through ``emit`` as the Responses stream events, in the order openai-python 3.3.1's
``responses.stream()`` helper requires (``lib/streaming/responses/_responses.py``:
``response.created`` first; an item's ``output_item.added`` before its events; a message
added with ``content: []`` and a ``content_part.added`` before its text deltas; a
function call added with ``arguments: ""``; ``response.completed`` carrying the whole
response) and the event types of ``types/responses/response_stream_event.py``
(``response.code_interpreter_call_code.delta`` has the ``_code`` infix), plus the lci
extension event
``lci.code_interpreter_call.output`` (``item_id``, ``output_index``, ``stream``,
``text``) carrying what running code prints, as it prints it.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..chat import ChatModel, ask
from ..errors import ContainerExpired, InterpreterError
from ..manager import SessionManager
from ..threads import TIERS, ThreadState
from ..tool import DEFINITION, NAME, CodeInterpreterTool, ToolResult, parse_code, spend_call
from .objects import OUTPUTS, citations, code_call, code_outputs, function_call, message, usage

__all__ = ["LIVE_MAX", "LIVE_OUTPUT", "ResponseContext", "ResponseLoop"]

LIVE_OUTPUT = "lci.code_interpreter_call.output"
LIVE_MAX = 256 * 1024  # characters of live output streamed per code call; the rest is cut
Emit = Callable[[dict[str, Any]], None]
_WORD = re.compile(r"\S+\s*|\s+")


@dataclass
class ResponseContext:
    """What a response works with: the engine, the model, the limits, image URLs."""

    manager: SessionManager
    model: ChatModel | None
    max_tool_calls: int
    image_url: Callable[[str], str]
    exec_timeout: float | None = None


@dataclass
class Plan:
    """One request, checked: its settings, the chat so far, where its code runs."""

    params: dict[str, Any]
    messages: list[dict[str, Any]]
    container: str | None  # the container the chain used (auto) or the tool names
    auto: dict[str, Any] | None  # the auto container's settings, if the tool asks for one
    file_ids: list[str] = field(default_factory=list)


class ResponseLoop:
    def __init__(
        self, ctx: ResponseContext, tenant: str, response: dict[str, Any], plan: Plan
    ) -> None:
        self.ctx, self.tenant, self.response, self.plan = ctx, tenant, response, plan
        self.params = plan.params
        self.include = OUTPUTS in self.params.get("include", [])
        self.container = plan.container
        self.messages = plan.messages
        self.reads: dict[str, str] = {}
        self.written: list[str] = []  # file ids the code wrote
        self.produced: dict[str, str] = {}  # /mnt/data path -> file id
        self.notice: str | None = None
        self.used = self.turns = 0
        self.tokens: dict[str, int] = {}
        self.emit: Emit = lambda event: None
        tools = self.params.get("tools", [])
        self.functions = {t["name"] for t in tools if t["type"] == "function"}
        self.code = any(t["type"] == "code_interpreter" for t in tools)
        cap = self.params.get("max_tool_calls")
        self.cap = min(ctx.max_tool_calls, cap) if isinstance(cap, int) else ctx.max_tool_calls

    # -- events ----------------------------------------------------------------------

    def view(self, item: dict[str, Any]) -> dict[str, Any]:
        """An item as this request shows it (code outputs only when included)."""
        shown = copy.deepcopy(item)
        if shown["type"] == "code_interpreter_call" and not self.include:
            shown["outputs"] = None
        return shown

    def snapshot(self) -> dict[str, Any]:
        body = copy.deepcopy(self.response)
        body["output"] = [self.view(i) for i in self.response["output"]]
        return body

    def _event(self, kind: str, **fields: Any) -> None:
        self.emit({"type": kind, **fields})

    def _add(self, item: dict[str, Any]) -> int:
        self.response["output"].append(item)
        index = len(self.response["output"]) - 1
        self._event("response.output_item.added", output_index=index, item=self.view(item))
        return index

    # -- the turns -------------------------------------------------------------------

    async def drive(self) -> dict[str, Any]:
        """Run turns to the end; the response, completed or failed (never raises for
        the engine's or the model's failures: they are the response's ``error``)."""
        self._event("response.created", response=self.snapshot())
        self._event("response.in_progress", response=self.snapshot())
        try:
            await self._turns()
        except InterpreterError as exc:
            self.response.update(
                status="failed", error={"code": "server_error", "message": str(exc)}
            )
        else:
            self.response.update(status="completed", completed_at=_now())
        self.response["usage"] = usage(self.tokens)
        done = "response.completed" if self.response["status"] == "completed" else "response.failed"
        self._event(done, response=self.snapshot())
        return self.response

    async def _turns(self) -> None:
        while True:
            reply = await ask(self.ctx.model, self._request())
            self.turns += 1
            for k, v in (reply.usage or {}).items():
                self.tokens[k] = self.tokens.get(k, 0) + v
            calls = reply.tool_calls
            if calls and self.params.get("parallel_tool_calls") is False:
                calls = calls[:1]
            if not calls:
                self._say(reply.content)
                return
            if reply.content.strip():
                self._say(reply.content)
            self.messages.append({"role": "assistant", "content": None, "tool_calls": calls})
            functions = []
            for call in calls:
                self.used = spend_call(self.cap, self.used)
                name = call["function"]["name"]
                if name == NAME and self.code:
                    await self._code(call)
                elif name in self.functions:
                    functions.append(call)
                else:
                    self._answer(call, f"error: there is no tool {name!r}.")
            if functions:
                for call in functions:
                    self._function(call)
                return

    def _request(self) -> dict[str, Any]:
        p = self.params
        request: dict[str, Any] = {"model": p["model"], "messages": self.messages}
        functions = {t["name"]: t for t in reversed(p.get("tools", [])) if t["type"] == "function"}
        tools = [{"type": "function", "function": _function_tool(t)} for t in functions.values()]
        tools.reverse()  # the first of a name wins, in the order given
        if self.code:
            tools.insert(0, DEFINITION)
        if tools:
            request["tools"] = tools
            request["tool_choice"] = _tool_choice(p.get("tool_choice"), self.turns == 0)
            if "parallel_tool_calls" in p:
                request["parallel_tool_calls"] = p["parallel_tool_calls"]
        for key in ("temperature", "top_p"):
            if key in p:
                request[key] = p[key]
        if "max_output_tokens" in p:
            request["max_tokens"] = p["max_output_tokens"]
        fmt = (p.get("text") or {}).get("format") or {}
        if fmt.get("type") == "json_object":
            request["response_format"] = {"type": "json_object"}
        elif fmt.get("type") == "json_schema":
            schema = {k: v for k, v in fmt.items() if k != "type"}
            request["response_format"] = {"type": "json_schema", "json_schema": schema}
        return request

    def _answer(self, call: dict[str, Any], text: str) -> None:
        self.messages.append({"role": "tool", "tool_call_id": call["id"], "content": text})

    # -- code ------------------------------------------------------------------------

    async def _code(self, call: dict[str, Any]) -> None:
        code = parse_code(call["function"]["arguments"]) or ""
        item = code_call(code, await self._container())
        index = self._add(item)
        ids = {"item_id": item["id"], "output_index": index}
        self._event("response.code_interpreter_call.in_progress", **ids)
        self._event("response.code_interpreter_call_code.delta", **ids, delta=code)
        self._event("response.code_interpreter_call_code.done", **ids, code=code)
        self._event("response.code_interpreter_call.interpreting", **ids)
        item["status"] = "interpreting"

        sent = 0

        def live(kind: str, text: str) -> None:
            # bounded: the events queue for a client that may read slowly (the logs, cut,
            # are in the item; the whole log in the execution's log file)
            nonlocal sent
            if sent >= LIVE_MAX:
                return
            room = LIVE_MAX - sent
            sent += len(text)
            if len(text) > room:
                text = text[:room] + f"\n[live output cut at {LIVE_MAX} characters]\n"
            self._event(LIVE_OUTPUT, **ids, stream=kind, text=text)

        try:
            result = await self._run(item, call["function"]["arguments"], live)
        except InterpreterError:  # the engine could not run it (a quota, the sandbox)
            item["status"] = "failed"
            self._event("response.output_item.done", output_index=index, item=self.view(item))
            raise
        exe = result.execution
        text = result.text if not self.notice else f"note: {self.notice}\n{result.text}"
        self.notice = None
        if exe is not None:
            item["outputs"] = code_outputs(exe, self.ctx.image_url)
            self.written += [f.file_id for f in exe.files]
            self.produced.update({f.path: f.file_id for f in exe.files})
        item["status"] = "completed" if exe is not None else "failed"
        self.reads[item["id"]] = text
        self._event("response.code_interpreter_call.completed", **ids)
        self._event("response.output_item.done", output_index=index, item=self.view(item))
        self._answer(call, text)

    async def _run(
        self, item: dict[str, Any], arguments: str, live: Callable[[str, str], None]
    ) -> ToolResult:
        for attempt in range(2):
            tool = CodeInterpreterTool(
                self.ctx.manager,
                item["container_id"],
                tenant=self.tenant,
                file_ids=self.plan.file_ids,
                timeout=self.ctx.exec_timeout,
            )
            try:
                result = await tool.handle(arguments, live)
            except ContainerExpired as exc:
                if self.plan.auto is None or attempt:
                    return ToolResult("", None, f"error: {exc}")
                item["container_id"] = await self._replace(item["container_id"])
                continue
            self.plan.file_ids = []
            return result
        raise AssertionError("unreachable")

    async def _container(self) -> str:
        """Where this response's code runs: the tool's container, the chain's auto
        container while it lives, else a new auto container."""
        if self.container is not None:
            threads = self.ctx.manager.threads
            gone = threads.container(self.tenant, self.container) is None
            if self.plan.auto is None or not (
                gone or threads.state(self.tenant, self.container) is ThreadState.ENDED
            ):
                return self.container
            return await self._replace(self.container)
        return await self._open()

    async def _replace(self, old: str) -> str:
        new = await self._open()
        self.notice = (
            f"the container {old} had expired, so this code ran in a new container {new}:"
            " variables, imports and files from before are gone (files given to the"
            " conversation were placed again)."
        )
        return new

    async def _open(self) -> str:
        auto = self.plan.auto or {}
        settings = self.ctx.manager.settings
        memory = TIERS.get(auto.get("memory_limit") or "", settings.sandbox.memory)
        rec = await self.ctx.manager.threads.open_container(
            self.tenant,
            f"response {self.response['id']}",
            idle_timeout=20 * 60.0,
            memory=memory,
            file_ids=self.plan.file_ids,
        )
        self.plan.file_ids = []
        self.container = rec.id
        return rec.id

    # -- answers -----------------------------------------------------------------------

    def _function(self, call: dict[str, Any]) -> None:
        item = function_call(call)
        final = item["arguments"]
        item.update(status="in_progress", arguments="")
        index = self._add(item)
        ids = {"item_id": item["id"], "output_index": index}
        self._event("response.function_call_arguments.delta", **ids, delta=final)
        self._event(
            "response.function_call_arguments.done", **ids, name=item["name"], arguments=final
        )
        item.update(status="completed", arguments=final)
        self._event("response.output_item.done", output_index=index, item=self.view(item))

    def _say(self, text: str) -> None:
        self.messages.append({"role": "assistant", "content": text})
        files: dict[str, str] = {}
        if self.container is not None:
            placed = self.ctx.manager.threads.placed(self.tenant, self.container)
            files = {f"/mnt/data/{p}": e.file_id for p, e in placed.items()}
        files.update(self.produced)
        notes = citations(text, self.container, files, self.written)
        self.written = []
        item = message("", [], "in_progress")
        index = self._add(item)
        ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
        part = item["content"][0]
        self._event("response.content_part.added", **ids, part=copy.deepcopy(part))
        pos, pending = 0, list(enumerate(notes))
        for delta in _WORD.findall(text):
            pos += len(delta)
            part["text"] += delta
            self._event("response.output_text.delta", **ids, delta=delta, logprobs=[])
            while pending and pending[0][1]["end_index"] <= pos:
                n, note = pending.pop(0)
                part["annotations"].append(note)
                self._event(
                    "response.output_text.annotation.added",
                    **ids,
                    annotation_index=n,
                    annotation=note,
                )
        for n, note in pending:  # at the very end (zero-width, after the text)
            part["annotations"].append(note)
            self._event(
                "response.output_text.annotation.added", **ids, annotation_index=n, annotation=note
            )
        self._event("response.output_text.done", **ids, text=text, logprobs=[])
        self._event("response.content_part.done", **ids, part=copy.deepcopy(part))
        item["status"] = "completed"
        self._event("response.output_item.done", output_index=index, item=self.view(item))


def _function_tool(tool: dict[str, Any]) -> dict[str, Any]:
    fn = {"name": tool["name"], "parameters": tool.get("parameters") or {"type": "object"}}
    if tool.get("description"):
        fn["description"] = tool["description"]
    if tool.get("strict") is not None:
        fn["strict"] = tool["strict"]
    return fn


def _tool_choice(choice: Any, first_turn: bool) -> Any:
    """``none`` holds for the whole response; a forced choice (``required``, a named
    tool) for its first turn only, so the model can answer once the tool has run."""
    if choice in (None, "auto", "none"):
        return choice or "auto"
    if not first_turn:
        return "auto"
    if choice == "required":
        return "required"
    name = NAME if choice["type"] == "code_interpreter" else choice["name"]
    return {"type": "function", "function": {"name": name}}


def _now() -> int:
    return int(time.time())
