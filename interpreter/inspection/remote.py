"""The Inspector's interface over HTTP: ``lci ... --url`` talks to a running ``lci serve``.

It implements ``interface.Inspector``, as ``LocalInspector`` does on the local store,
over the service's ``/v1/lci/sessions`` routes. The tenant of a remote call is the API
key's; the ``tenant`` arguments are there for the shape and are ignored.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nbformat
from nbformat import NotebookNode

from ..errors import InterpreterError, NoSuchFile, NoSuchSession, SessionEnded
from ..executor import OutputCallback
from ..results import ErrorInfo, Execution, ExecutionStatus, ProducedFile
from .interface import SessionView

__all__ = [
    "AuthenticationFailed",
    "RemoteError",
    "RemoteInspector",
    "ServiceUnreachable",
]

KINDS = {"stdout": "stdout", "stderr": "stderr", "result": "result", "traceback": "error"}


class RemoteError(InterpreterError):
    """The service refused a request."""

    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(f"The service answered {status}: {message}")


class ServiceUnreachable(RemoteError):
    def __init__(self, url: str, detail: str) -> None:
        self.url, self.detail = url, detail
        InterpreterError.__init__(
            self,
            f"No lci service answers at {url} ({detail}). Start one with `lci serve`, or"
            " check --url / LCI_URL.",
        )
        self.status, self.message = 0, detail


class AuthenticationFailed(RemoteError):
    def __init__(self, url: str) -> None:
        self.url = url
        InterpreterError.__init__(
            self,
            f"The service at {url} refused the API key (401). Pass a valid one with"
            " --api-key or LCI_API_KEY.",
        )
        self.status, self.message = 401, "invalid API key"


class RemoteInspector:
    """``async with RemoteInspector(url, key) as insp: await insp.sessions()``"""

    def __init__(self, url: str, api_key: str | None, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout)
        )

    async def __aenter__(self) -> RemoteInspector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    # -- looking ----------------------------------------------------------------------

    async def sessions(self, tenant: str | None = None, *, all: bool = False) -> list[SessionView]:
        body = await self._json("GET", "", params={"all": "true"} if all else None)
        return [_view(d) for d in body["data"]]

    async def session(self, session_id: str, tenant: str | None = None) -> SessionView:
        return _view(await self._json("GET", f"/{session_id}", session_id=session_id))

    async def executions(
        self, session_id: str, tenant: str | None = None, *, last: int | None = None
    ) -> list[dict[str, Any]]:
        params = {"last": str(last)} if last else None
        body = await self._json("GET", f"/{session_id}/executions", session_id, params)
        data: list[dict[str, Any]] = body["data"]
        return data

    async def follow(
        self, session_id: str, tenant: str | None = None, *, last: int = 0
    ) -> AsyncIterator[dict[str, Any]]:
        path = f"/v1/lci/sessions/{session_id}/events"
        async for event, data in self._sse("GET", path, session_id, params={"last": str(last)}):
            if event == "ended":
                data["session"] = _view(data["session"])
            yield data

    async def notebook(self, session_id: str, tenant: str | None = None) -> NotebookNode:
        r = await self._request("GET", f"/v1/lci/sessions/{session_id}/notebook", session_id)
        return nbformat.reads(r.text, as_version=4)

    async def file(self, file_id: str) -> tuple[str, bytes]:
        try:
            info = (await self._request("GET", f"/v1/files/{file_id}")).json()
            data = (await self._request("GET", f"/v1/files/{file_id}/content")).content
        except RemoteError as exc:
            if exc.status == 404:
                raise NoSuchFile(file_id) from None
            raise
        return str(info.get("filename") or file_id), data

    # -- stepping in ------------------------------------------------------------------

    async def execute(
        self,
        session_id: str,
        code: str,
        tenant: str | None = None,
        *,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> Execution:
        body = {"code": code, "timeout": timeout, "stream": True}
        path = f"/v1/lci/sessions/{session_id}/executions"
        async for event, data in self._sse("POST", path, session_id, json_body=body):
            if event in KINDS and on_output is not None:
                on_output(KINDS[event], data.get("text", ""))
            elif event == "execution":
                return _execution(data)
            elif event == "error":
                raise RemoteError(500, data.get("error", {}).get("message", "execution failed"))
        raise RemoteError(0, "the service closed the stream before the execution finished")

    async def interrupt(self, session_id: str, tenant: str | None = None) -> None:
        await self._json("POST", f"/{session_id}/interrupt", session_id)

    async def restart(self, session_id: str, tenant: str | None = None) -> None:
        await self._json("POST", f"/{session_id}/restart", session_id)

    async def stop(self, session_id: str, tenant: str | None = None) -> None:
        await self._json("POST", f"/{session_id}/stop", session_id)

    # -- wire -------------------------------------------------------------------------

    async def _json(
        self,
        method: str,
        path: str,
        session_id: str | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        r = await self._request(method, "/v1/lci/sessions" + path, session_id, params=params)
        body: dict[str, Any] = r.json()
        return body

    async def _request(
        self, method: str, path: str, session_id: str | None = None, **kw: Any
    ) -> httpx.Response:
        try:
            r = await self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise ServiceUnreachable(self.url, str(exc) or type(exc).__name__) from None
        if r.status_code >= 400:
            self._raise(r.status_code, r.text, session_id)
        return r

    async def _sse(
        self,
        method: str,
        path: str,
        session_id: str,
        params: dict[str, str] | None = None,
        json_body: Any = None,
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(event, data) pairs of a Server-Sent Events response."""
        timeout = httpx.Timeout(30.0, read=None)
        request = self._http.build_request(
            method, path, params=params, json=json_body, timeout=timeout
        )
        try:
            r = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise ServiceUnreachable(self.url, str(exc) or type(exc).__name__) from None
        try:
            if r.status_code >= 400:
                self._raise(r.status_code, (await r.aread()).decode(), session_id)
            event, data = "message", ""
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif not line and data:
                    yield event, json.loads(data)
                    event, data = "message", ""
        except httpx.TransportError as exc:
            raise ServiceUnreachable(self.url, f"the stream broke: {exc}") from None
        finally:
            await r.aclose()

    def _raise(self, status: int, text: str, session_id: str | None) -> None:
        try:
            error = json.loads(text).get("error", {})
        except (ValueError, AttributeError):
            error = {}
        message = str(error.get("message") or text[:200])
        if status == 401:
            raise AuthenticationFailed(self.url)
        if status == 404 and session_id is not None and "No route" not in message:
            raise NoSuchSession(session_id)
        if status == 409 and error.get("code") == "session_ended" and session_id:
            view = _ended(message)
            raise SessionEnded(session_id, view[0], view[1])
        raise RemoteError(status, message)


def _view(d: dict[str, Any]) -> SessionView:
    names = {f.name for f in dataclasses.fields(SessionView)}
    return SessionView(**{k: v for k, v in d.items() if k in names})


def _execution(d: dict[str, Any]) -> Execution:
    names = {f.name for f in dataclasses.fields(Execution)}
    kw = {k: v for k, v in d.items() if k in names}
    kw["status"] = ExecutionStatus(d["status"])
    kw["files"] = [ProducedFile(**f) for f in d.get("files") or []]
    kw["error"] = ErrorInfo(**d["error"]) if d.get("error") else None
    return Execution(**kw)


def _ended(message: str) -> tuple[str, str | None]:
    """(state, reason) from "Session X has ended (state: reason)."."""
    inside = message.partition("(")[2].rpartition(")")[0]
    state, _, reason = inside.partition(": ")
    return state or "ended", reason or None
