"""The chat-completions model behind Assistants runs and Responses.

A model is any async callable that takes a chat-completions request body (a dict:
``model``, ``messages``, ``tools``, ``tool_choice`` ...) and returns either the whole
completion (``{"choices": [{"message": ...}], "usage": ...}``) or just the assistant
message (``{"role": "assistant", "content": ..., "tool_calls": [...]}``). Bring your
own (an ``openai.AsyncOpenAI`` call, a local pipeline, a test script), or use
``HttpChatModel``, which speaks to any OpenAI-compatible endpoint (OpenAI, Azure
OpenAI, vLLM, Ollama, llama.cpp server) configured by ``LCI_MODEL_BASE_URL``,
``LCI_MODEL_API_KEY`` and ``LCI_MODEL_MAP``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .config import Settings
from .errors import ModelError

__all__ = [
    "ChatModel",
    "ChatReply",
    "HttpChatModel",
    "ask",
    "map_model",
    "parse_model_map",
    "parse_reply",
]

ChatModel = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
RETRY_STATUS = {408, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class ChatReply:
    """What one model turn said: the assistant message and the tokens it cost."""

    content: str
    tool_calls: list[dict[str, Any]]
    usage: dict[str, int] | None = None


def parse_reply(raw: Any) -> ChatReply:
    """A completion or a bare assistant message -> ChatReply; ModelError if it is neither."""
    if hasattr(raw, "model_dump"):  # an openai SDK object
        raw = raw.model_dump()
    if not isinstance(raw, dict):
        raise ModelError(f"The model returned {type(raw).__name__}, not a chat completion.")
    usage = raw.get("usage") if isinstance(raw.get("usage"), dict) else None
    message = raw
    if "choices" in raw:
        choices = raw.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            raise ModelError("The model returned a completion without choices.")
        message = choices[0].get("message") or {}
    calls = [_tool_call(c, i) for i, c in enumerate(message.get("tool_calls") or [])]
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ChatReply(content or "", calls, _usage(usage))


NO_MODEL = (
    "No model is configured: set LCI_MODEL_BASE_URL (and LCI_MODEL_API_KEY) to an"
    " OpenAI-compatible chat-completions endpoint, or pass model= to Assistants / Responses."
)


async def ask(model: ChatModel | None, request: dict[str, Any]) -> ChatReply:
    """One model turn, as both loops (Assistants runs, Responses) take it: the reply, or
    ModelError when there is no model, the model failed, or it answered nonsense."""
    if model is None:
        raise ModelError(NO_MODEL)
    try:
        return parse_reply(await model(request))
    except ModelError:
        raise
    except Exception as exc:  # a caller's model callable failed
        raise ModelError(f"The model failed: {type(exc).__name__}: {exc}") from exc


def _tool_call(call: Any, index: int) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not fn.get("name"):
        raise ModelError(f"The model returned a malformed tool call: {call!r:.200}")
    arguments = fn.get("arguments")
    if not isinstance(arguments, str):  # some servers send an object
        arguments = json.dumps(arguments or {})
    call_id = call.get("id") or f"call_{index}"
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": fn["name"], "arguments": arguments},
    }


def _usage(usage: dict[str, Any] | None) -> dict[str, int] | None:
    if not usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }


def parse_model_map(text: str) -> dict[str, str]:
    """``"gpt-4o=llama3, *=qwen2.5"`` -> ``{"gpt-4o": "llama3", "*": "qwen2.5"}``."""
    mapping = {}
    for item in text.split(","):
        name, sep, served = item.partition("=")
        if sep and name.strip() and served.strip():
            mapping[name.strip()] = served.strip()
    return mapping


def map_model(name: str, mapping: dict[str, str]) -> str:
    """The served model for an assistant's model name; ``*`` is the fallback."""
    return mapping.get(name) or mapping.get("*") or name


class HttpChatModel:
    """``POST {base_url}/chat/completions`` with a Bearer key; retries 429 and 5xx twice."""

    def __init__(
        self,
        base_url: str,
        api_key: str = "",
        *,
        model_map: dict[str, str] | None = None,
        timeout: float = 300.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model_map = model_map or {}
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout, transport=transport)

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpChatModel | None:
        """The configured model, or None when ``LCI_MODEL_BASE_URL`` is not set."""
        if not settings.model.base_url:
            return None
        return cls(
            settings.model.base_url,
            settings.model.api_key,
            model_map=parse_model_map(settings.model.model_map),
            timeout=settings.model.timeout,
        )

    async def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        body = {**request, "model": map_model(str(request.get("model", "")), self.model_map)}
        for attempt in range(3):
            try:
                response = await self._client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                if attempt == 2:
                    raise ModelError(f"The model at {self.url} did not answer: {exc!r}.") from exc
            else:
                if response.status_code not in RETRY_STATUS or attempt == 2:
                    return _decode(self.url, response)
            await asyncio.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self._client.aclose()


def _decode(url: str, response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code >= 400:
        detail = data.get("error", data) if isinstance(data, dict) else response.text[:500]
        if isinstance(detail, dict):
            detail = detail.get("message", detail)
        raise ModelError(f"The model at {url} answered {response.status_code}: {detail}")
    if not isinstance(data, dict):
        raise ModelError(f"The model at {url} did not answer with JSON.")
    return data
