"""The code_interpreter tool on its own: a function-tool definition and an async handler.

For agent frameworks that run their own model loop::

    tool = CodeInterpreterTool(manager, thread_id="chat-42")
    reply = await llm(messages, tools=[tool.definition])       # chat-completions tools
    for call in reply.tool_calls:
        text = await tool(call.function.arguments)              # '{"code": "..."}' -> str
        messages.append({"role": "tool", "tool_call_id": call.id, "content": text})

Calls on one thread share one session: variables, imports and /mnt/data persist, so
the model can fix failing code and retry. What the model reads back (``describe``):
the printed output, the error with its traceback cut to the frames that help,
images shown, and files written as ``sandbox:/mnt/data/...`` links.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import ToolCallLimit
from .executor import OutputCallback
from .manager import SessionManager
from .results import Execution, ExecutionStatus
from .session import Session

__all__ = [
    "DEFINITION",
    "NAME",
    "CodeInterpreterTool",
    "ToolResult",
    "describe",
    "parse_code",
    "shorten_traceback",
    "spend_call",
]

NAME = "code_interpreter"
DESCRIPTION = (
    "Run Python code in a stateful Jupyter kernel in a sandbox (no internet access). "
    "Variables and imports persist between calls. Files are in /mnt/data; save files "
    "for the user there and link them as sandbox:/mnt/data/<name>. plt.show() displays "
    "a chart to the user. If the code fails, read the error, fix the code and call again."
)
DEFINITION: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": NAME,
        "description": DESCRIPTION,
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "The Python code to run."}},
            "required": ["code"],
        },
    },
}
MAX_TEXT = 8_000  # characters of output the model reads back per call
MAX_FRAME_LINES = 12
_CELL = re.compile(r"^(Cell In\[\d+\]|Input In \[\d+\]|File <ipython-input)")


@dataclass(frozen=True)
class ToolResult:
    """One call: the code, its execution, and the text for the model."""

    code: str
    execution: Execution | None  # None when the arguments carried no code
    text: str


def spend_call(cap: int, used: int) -> int:
    """The one tool-call cap of the model loops (Assistants runs, Responses): ``used + 1``,
    or ToolCallLimit when ``used`` already reached ``cap``."""
    if used >= cap:
        raise ToolCallLimit(cap)
    return used + 1


def parse_code(arguments: str | dict[str, Any]) -> str | None:
    """The code from a tool call's arguments (``{"code": ...}``); a bare string counts."""
    if isinstance(arguments, dict):
        code = arguments.get("code")
        return code if isinstance(code, str) else None
    try:
        data = json.loads(arguments)
    except ValueError:
        return arguments if arguments.strip() else None  # some models send raw code
    if isinstance(data, dict):
        return parse_code(data)
    return data if isinstance(data, str) else None


def shorten_traceback(lines: Iterable[str]) -> str:
    """Keep the frames of the user's code and the frame that raised; drop the rest."""
    frames = [f.rstrip("\n") for f in lines if f.strip() and not set(f.strip()) <= {"-"}]
    frames = [f for f in frames if "Traceback (most recent call last)" not in f]
    if not frames:
        return ""
    *stack, last = frames
    kept: list[str] = []
    skipped = 0
    for i, frame in enumerate(stack):
        if _CELL.match(frame) or i == len(stack) - 1:
            if skipped:
                kept.append(f"... ({skipped} library frame{'s' * (skipped > 1)} left out)")
                skipped = 0
            kept.append(_clip(frame))
        else:
            skipped += 1
    return "\n".join([*kept, last])


def _clip(frame: str) -> str:
    lines = frame.splitlines()
    if len(lines) <= MAX_FRAME_LINES:
        return frame
    half = MAX_FRAME_LINES // 2
    return "\n".join([*lines[:half], "...", *lines[-half:]])


def describe(exe: Execution) -> str:
    """What the model reads back from one execution."""
    parts = [f"status: {exe.status.value}"]
    if exe.notice:
        parts.append(f"note: {exe.notice}")
    printed = exe.stdout + exe.stderr
    parts.append("output:\n" + printed.rstrip("\n") if printed.strip() else "output: (none)")
    for bundle in exe.results[-1:]:
        text = bundle.get("data", {}).get("text/plain")
        if bundle.get("type") == "execute_result" and isinstance(text, str):
            parts.append("result:\n" + text)
    if exe.error is not None:
        parts.append(_error_text(exe))
    if exe.images:
        n = len(exe.images)
        parts.append(f"images: {n} image{'s' * (n > 1)} displayed to the user")
    for f in exe.files:
        parts.append(f"file written: sandbox:{f.path} ({f.bytes} bytes)")
    for skipped in exe.skipped_files:
        parts.append(f"file not collected: {skipped['path']}: {skipped['reason']}")
    for d in exe.dropped:
        parts.append(f"output dropped: {d['count']} {d['what']}(s), over {d['limit']}")
    text = "\n".join(parts)
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT // 2] + "\n...(output cut)...\n" + text[-MAX_TEXT // 2 :]
    return text


def _error_text(exe: Execution) -> str:
    assert exe.error is not None
    head = f"error: {exe.error.ename}: {exe.error.evalue}"
    if exe.status is ExecutionStatus.TIMEOUT:
        return head + "\nThe code ran too long and was stopped; make it faster or smaller."
    if exe.status is ExecutionStatus.DIED:
        return head + "\nThe kernel died: variables and imports from earlier calls are gone."
    tb = shorten_traceback(exe.error.traceback)
    return f"{head}\ntraceback:\n{tb}" if tb else head


class CodeInterpreterTool:
    """The tool bound to one thread's session (started on first use)."""

    name = NAME
    definition = DEFINITION

    def __init__(
        self,
        manager: SessionManager,
        thread_id: str | None = None,
        *,
        tenant: str = "",
        file_ids: Iterable[str] = (),
        timeout: float | None = None,
    ) -> None:
        self.manager, self.tenant, self.timeout = manager, tenant, timeout
        self.thread_id = thread_id
        self._file_ids = list(file_ids)

    async def _session(self) -> Session:
        """The thread's session; a container's (``/v1/containers``) with its settings,
        raising ContainerExpired once it has ended."""
        threads = self.manager.threads
        if self.thread_id and threads.container(self.tenant, self.thread_id) is not None:
            session = await threads.session(self.tenant, self.thread_id)
            if self._file_ids:
                await session.add_files(self._file_ids)
            return session
        return await self.manager.session(
            self.thread_id, tenant=self.tenant, file_ids=self._file_ids
        )

    async def run(self, code: str, on_output: OutputCallback | None = None) -> ToolResult:
        """Run ``code`` in the thread's session; ``on_output(kind, text)`` sees what it
        prints while it runs."""
        session = await self._session()
        self.thread_id, self._file_ids = session.thread_id, []
        exe = await session.execute(code, self.timeout, on_output=on_output)
        return ToolResult(code, exe, describe(exe))

    async def handle(
        self, arguments: str | dict[str, Any], on_output: OutputCallback | None = None
    ) -> ToolResult:
        """One tool call: its arguments as the model sent them."""
        code = parse_code(arguments)
        if code is None or not code.strip():
            text = 'error: the arguments must be JSON {"code": "<python source>"}; no code ran.'
            return ToolResult("", None, text)
        return await self.run(code, on_output)

    async def __call__(self, arguments: str | dict[str, Any]) -> str:
        return (await self.handle(arguments)).text
