"""A scripted OpenAI-compatible chat-completions server: a real HTTP server on loopback.

Each test scripts the turns of one model name (``script("m", code("..."), say("..."))``);
a request for that model gets the next turn (a dict, or a function of the request),
and every request is recorded, so tests can assert what the model was given.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any

Turn = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]
_ids = count(1)


def say(text: str) -> dict[str, Any]:
    return {"content": text}


def call(name: str, arguments: dict[str, Any], call_id: str | None = None) -> dict[str, Any]:
    return {
        "id": call_id or f"call_{next(_ids)}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def code(source: str, call_id: str | None = None, content: str | None = None) -> dict[str, Any]:
    return {"content": content, "tool_calls": [call("code_interpreter", {"code": source}, call_id)]}


def calls(*tool_calls: dict[str, Any]) -> dict[str, Any]:
    return {"content": None, "tool_calls": list(tool_calls)}


class ScriptedModel:
    def __init__(self, api_key: str = "sk-scripted") -> None:
        self.api_key = api_key
        self.scripts: dict[str, list[Turn]] = defaultdict(list)
        self.forever: dict[str, Turn] = {}
        self.requests: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.auth: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, model: str, *turns: Turn, forever: Turn | None = None) -> None:
        with self._lock:
            self.scripts[model] = list(turns)
            self.requests[model] = []
            if forever is not None:
                self.forever[model] = forever

    def wait_requests(self, model: str, n: int, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.requests[model]) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{model}: {len(self.requests[model])} requests, not {n}")
            time.sleep(0.02)
        return self.requests[model]

    def _next(self, request: dict[str, Any]) -> dict[str, Any] | None:
        model = request.get("model", "")
        with self._lock:
            self.requests[model].append(request)
            turns = self.scripts.get(model)
            turn = turns.pop(0) if turns else self.forever.get(model)
        if turn is None:
            return None
        return turn(request) if callable(turn) else turn

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = json.loads(self.rfile.read(length))
                outer.auth.append(self.headers.get("authorization", ""))
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                turn = outer._next(request)
                if turn is None:
                    message = f"the script for {request.get('model')!r} has no turn left"
                    return self._send(400, {"error": {"message": message}})
                return self._send(200, _completion(request, turn))

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def start(self) -> ScriptedModel:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _completion(request: dict[str, Any], turn: dict[str, Any]) -> dict[str, Any]:
    message = {"role": "assistant", "content": turn.get("content")}
    if turn.get("tool_calls"):
        message["tool_calls"] = turn["tool_calls"]
    return {
        "id": f"chatcmpl-{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if turn.get("tool_calls") else "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


@contextmanager
def scripted_model(api_key: str = "sk-scripted") -> Iterator[ScriptedModel]:
    model = ScriptedModel(api_key).start()
    try:
        yield model
    finally:
        model.stop()
