"""The Responses API over one SessionManager, usable from Python without HTTP::

    async with SessionManager() as manager, Responses(manager, model=my_model) as api:
        r = await api.create({"model": "gpt-4.1", "input": "Plot a sine wave",
                              "tools": [{"type": "code_interpreter", "container": "auto"}],
                              "include": ["code_interpreter_call.outputs"]})
        print(r["output"][-1]["content"][0]["text"])
        async for event in api.stream(api.prepare({...,  "stream": True})):
            ...                      # the Responses stream events, with sequence_number

``model`` is any chat-completions callable (chat.py), e.g. ``HttpChatModel``. Objects are
plain dicts shaped as the wire has them (objects.py); stored responses (``store``, true
by default) are kept per ``tenant`` and chain through ``previous_response_id``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

from ..chat import ChatModel, HttpChatModel
from ..errors import NoSuchObject
from ..manager import SessionManager
from .conversation import chat_messages, file_ids, system_prompt
from .loop import LIVE_OUTPUT, Plan, ResponseContext, ResponseLoop
from .objects import OUTPUTS, new_response
from .request import check_request
from .store import ResponsesStore, Stored

__all__ = ["Responses"]

LIVE_QUEUE = 256  # live-output events waiting for a slow client, at most


class Responses:
    def __init__(
        self,
        manager: SessionManager,
        model: ChatModel | None = None,
        *,
        max_tool_calls: int | None = None,
    ) -> None:
        self.manager = manager
        self.store = ResponsesStore(manager.store)
        self.model = model
        self.max_tool_calls = max_tool_calls or manager.settings.model.max_tool_calls
        self._own_model: HttpChatModel | None = None

    @classmethod
    def from_manager(cls, manager: SessionManager) -> Responses:
        """Responses call the model configured by LCI_MODEL_BASE_URL / _API_KEY / _MAP."""
        model = HttpChatModel.from_settings(manager.settings)
        api = cls(manager, model)
        api._own_model = model
        return api

    async def __aenter__(self) -> Responses:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_model is not None:
            await self._own_model.aclose()
            self._own_model = None

    # -- creating --------------------------------------------------------------------

    def prepare(
        self,
        body: Mapping[str, Any],
        *,
        tenant: str = "",
        image_url: Callable[[str], str] | None = None,
    ) -> ResponseLoop:
        """Check a request and resolve what it names (the previous response, the
        container, the files); InvalidRequest / NoSuchObject / NoSuchFile before any
        work starts. ``image_url(file_id)``: how an image output is linked (default: a
        ``data:`` URL)."""
        params = check_request(body)
        chain = self.store.chain(tenant, params["previous_response_id"]) if params.get(
            "previous_response_id"
        ) else []  # fmt: skip
        history = [i for s in chain for i in [*s.input, *s.body["output"]]]
        reads = {k: v for s in chain for k, v in s.state.get("reads", {}).items()}
        replayed = {i["id"] for i in params["input"] if i["type"] == "code_interpreter_call"}
        reads.update(self.store.reads(tenant, replayed - set(reads)))
        items = [*history, *params["input"]]
        container, auto = None, None
        kinds = [t["type"] for t in params.get("tools", [])]
        index = kinds.index("code_interpreter") if "code_interpreter" in kinds else -1
        if index >= 0:
            spec = params["tools"][index]["container"]
            if isinstance(spec, str) and spec != "auto":
                if self.manager.threads.container(tenant, spec) is None:
                    raise NoSuchObject("container", spec, f"tools[{index}].container")
                container = spec
            else:
                auto = spec if isinstance(spec, dict) else {"type": "auto"}
                container = self._auto_container(tenant, chain, params["input"])
        new_files = file_ids(params["input"]) + list((auto or {}).get("file_ids") or [])
        names = {fid: self.manager.files.info(fid, tenant).filename for fid in file_ids(items)}
        names.update({f: self.manager.files.info(f, tenant).filename for f in new_files})
        system = system_prompt(params.get("instructions", ""), names.values() if index >= 0 else ())
        plan = Plan(
            params,
            chat_messages(system, items, reads, names),
            container,
            auto,
            list(dict.fromkeys(new_files)) if index >= 0 else [],
        )
        ctx = ResponseContext(
            self.manager, self.model, self.max_tool_calls, image_url or self._data_url(tenant)
        )
        return ResponseLoop(ctx, tenant, new_response(params), plan)

    def _auto_container(
        self, tenant: str, chain: list[Stored], new_input: list[dict[str, Any]]
    ) -> str | None:
        """The chain's auto container, or the last one a replayed code call names."""
        for stored in reversed(chain):
            if stored.state.get("container"):
                return str(stored.state["container"])
        for item in reversed(new_input):
            cid = item.get("container_id") if item["type"] == "code_interpreter_call" else None
            if isinstance(cid, str) and self.manager.threads.container(tenant, cid) is not None:
                return cid
        return None

    def _data_url(self, tenant: str) -> Callable[[str], str]:
        def url(file_id: str) -> str:
            info = self.manager.files.info(file_id, tenant)
            data = self.manager.files.blob_path(info.sha256).read_bytes()
            return f"data:{info.mime_type};base64,{base64.b64encode(data).decode()}"

        return url

    async def run(self, loop: ResponseLoop) -> dict[str, Any]:
        """Drive a prepared response to its end, store it (unless ``store`` is false),
        and return it as its request shows it."""
        await loop.drive()
        if loop.params.get("store", True):
            auto = loop.container if loop.plan.auto is not None else None
            state = {"container": auto, "reads": loop.reads}
            self.store.put(loop.tenant, Stored(loop.response, loop.params["input"], state))
        return loop.snapshot()

    async def create(self, body: Mapping[str, Any], *, tenant: str = "") -> dict[str, Any]:
        return await self.run(self.prepare(body, tenant=tenant))

    async def stream(self, loop: ResponseLoop) -> AsyncIterator[dict[str, Any]]:
        """The events of a prepared response as it runs, numbered from 0. Closing the
        iterator early (the client went away) cancels the response's work."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def emit(event: dict[str, Any]) -> None:
            # a client reading slower than the code prints skips live output (the call's
            # item keeps its logs); the documented events are never skipped
            if event.get("type") != LIVE_OUTPUT or queue.qsize() < LIVE_QUEUE:
                queue.put_nowait(event)

        loop.emit = emit
        task = asyncio.ensure_future(self.run(loop))
        task.add_done_callback(lambda _: queue.put_nowait(None))
        seq = 0
        try:
            while (event := await queue.get()) is not None:
                yield {**event, "sequence_number": seq}
                seq += 1
            task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait([task])

    # -- reading ---------------------------------------------------------------------

    def get(
        self, response_id: str, *, tenant: str = "", include: Iterable[str] = ()
    ) -> dict[str, Any]:
        body = self.store.get(tenant, response_id).body
        if OUTPUTS not in include:
            for item in body["output"]:
                if item["type"] == "code_interpreter_call":
                    item["outputs"] = None
        return body

    def delete(self, response_id: str, *, tenant: str = "") -> dict[str, Any]:
        self.store.delete(tenant, response_id)
        return {"id": response_id, "object": "response.deleted", "deleted": True}

    def input_items(self, response_id: str, *, tenant: str = "") -> list[dict[str, Any]]:
        """The items of a response's own input, oldest first."""
        return self.store.get(tenant, response_id).input
