"""What the service answers, as pydantic models: the schemas of the OpenAPI document.

Handlers build plain dicts (the OpenAI SDK, Azure clients and lci's own CLI read them);
these models only describe them, so an answer costs no second validation. That the two
agree is checked against the running service by ``bench/schemathesis_run.py`` (every
answer against its documented schema). Fields the answers always carry are required;
objects admit more fields, as the APIs they copy do.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Assistant",
    "AzureExecution",
    "AzureFile",
    "AzureFileList",
    "AzureLegacyExecution",
    "AzureSession",
    "AzureSessionList",
    "AzureUpload",
    "Container",
    "ContainerExecution",
    "ContainerFile",
    "Deleted",
    "FileObject",
    "Health",
    "LciExecution",
    "LciSession",
    "LciSessionAction",
    "Message",
    "Page",
    "ResponseItem",
    "ResponseObject",
    "Run",
    "RunStep",
    "SessionList",
    "Thread",
]

T = TypeVar("T")


class _Object(BaseModel):
    model_config = ConfigDict(extra="allow")


class Page(_Object, Generic[T]):
    """A cursor page, as the OpenAI SDK reads it."""

    object: Literal["list"]
    data: list[T]
    first_id: str | None
    last_id: str | None
    has_more: bool


class Deleted(_Object):
    id: str
    object: str = Field(description="file, container.deleted, assistant.deleted, ...")
    deleted: bool


class Health(_Object):
    status: Literal["ok", "unavailable"]
    engine: str = Field(description="ok, or the engine's error")
    store: str = Field(description="ok, or the store's error")
    disk: str = Field(description="ok, or why new work is refused (LCI_MIN_FREE)")


# -- the OpenAI face --------------------------------------------------------------------


class FileObject(_Object):
    id: str
    object: Literal["file"]
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["processed"]
    expires_at: int | None
    status_details: str | None


class ExpiresAfter(_Object):
    anchor: Literal["last_active_at"]
    minutes: int


class NetworkPolicy(_Object):
    type: Literal["disabled"]


class Container(_Object):
    id: str
    object: Literal["container"]
    created_at: int
    status: Literal["running", "expired"]
    expires_after: ExpiresAfter
    last_active_at: int
    memory_limit: str = Field(description="1g, 4g, 512m ...")
    name: str
    network_policy: NetworkPolicy
    runtime: str = Field(description="lci extension: the OCI runtime (runc, runsc)")


class ContainerFile(_Object):
    id: str
    object: Literal["container.file"]
    created_at: int
    bytes: int
    container_id: str
    path: str = Field(description="/mnt/data/...")
    source: str = Field(description="user (uploaded or attached) or assistant (made by code)")


class ProducedFile(_Object):
    file_id: str
    path: str
    bytes: int


class ErrorInfo(_Object):
    ename: str
    evalue: str
    traceback: list[str]


class Execution(_Object):
    """One execution (``Execution.to_dict``): a failure of the user's code is a result
    (``status`` error, timeout, died ...), not an HTTP error."""

    id: str
    session_id: str
    thread_id: str
    code: str
    status: str = Field(description="ok, error, timeout, died, cancelled ...")
    outputs: list[dict[str, Any]]
    files: list[ProducedFile]
    error: ErrorInfo | None
    results: list[dict[str, Any]]
    transcript: list[dict[str, Any]]
    stdout: str
    stderr: str
    log_file_id: str | None
    logs_truncated: bool
    execution_count: int | None
    started_at: float
    duration_ms: int
    kernel_restarted: bool
    state_lost: bool
    notice: str | None
    dropped: list[dict[str, Any]]
    skipped_files: list[dict[str, Any]]


class ContainerExecution(Execution):
    object: Literal["container.execution"]
    container_id: str


# -- the inspector (/v1/lci) ----------------------------------------------------------


class LciExecution(Execution):
    object: Literal["lci.execution"]


class HistoryEntry(_Object):
    """A stored execution: the fields of an execution once it has ended; one still
    running has fewer."""

    id: str
    status: str = Field(description="running, ok, error, timeout, died, cancelled, lost ...")


class SessionView(_Object):
    id: str
    thread_id: str
    tenant: str
    state: str = Field(description="starting, idle, busy, expired, dead")
    created_at: float
    last_activity: float
    age_s: float
    idle_s: float | None
    expires_in_s: float | None
    memory_bytes: int | None
    cpu_percent: float | None
    executions: int
    files: int
    memory_limit: int
    cpus: float
    pids_limit: int
    network: str
    idle_timeout: float
    container: str | None
    ended_at: float | None
    end_reason: str | None


class LciSession(SessionView):
    object: Literal["lci.session"]
    last_executions: list[HistoryEntry]


class SessionList(_Object):
    object: Literal["list"]
    data: list[SessionView]


class HistoryList(_Object):
    object: Literal["list"]
    data: list[HistoryEntry]


class LciSessionAction(_Object):
    id: str
    object: Literal["lci.session.interrupted", "lci.session.restarted", "lci.session.stopped"]


# -- Assistants -------------------------------------------------------------------------


class Assistant(_Object):
    id: str
    object: Literal["assistant"]
    created_at: int
    name: str | None
    description: str | None
    model: str
    instructions: str | None
    tools: list[dict[str, Any]]
    tool_resources: dict[str, Any]
    metadata: dict[str, Any]
    temperature: float | None
    top_p: float | None
    response_format: Any


class Thread(_Object):
    id: str
    object: Literal["thread"]
    created_at: int
    metadata: dict[str, Any]
    tool_resources: dict[str, Any]


class Message(_Object):
    id: str
    object: Literal["thread.message"]
    created_at: int
    thread_id: str
    status: str
    role: Literal["user", "assistant"]
    content: list[dict[str, Any]]
    assistant_id: str | None
    run_id: str | None
    attachments: list[dict[str, Any]]
    metadata: dict[str, Any]


class Run(_Object):
    id: str
    object: Literal["thread.run"]
    created_at: int
    assistant_id: str
    thread_id: str
    status: str = Field(
        description="queued, in_progress, requires_action, cancelling, cancelled, failed,"
        " completed, incomplete, expired"
    )
    started_at: int | None
    expires_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    required_action: dict[str, Any] | None
    last_error: dict[str, Any] | None
    model: str
    instructions: str
    tools: list[dict[str, Any]]
    metadata: dict[str, Any]


class RunStep(_Object):
    id: str
    object: Literal["thread.run.step"]
    created_at: int
    assistant_id: str
    thread_id: str
    run_id: str
    type: str
    status: str
    step_details: dict[str, Any]


# -- the Azure dialects -----------------------------------------------------------------


class ResponseObject(_Object):
    """A Response (openai-python 3.3.1 ``types/responses/response.py``)."""

    id: str
    object: Literal["response"]
    created_at: int
    status: Literal["completed", "failed", "in_progress", "incomplete"]
    model: str
    output: list[dict[str, Any]] = Field(
        description="message, code_interpreter_call and function_call items"
    )
    error: dict[str, Any] | None
    incomplete_details: dict[str, Any] | None
    instructions: str | None
    metadata: dict[str, str]
    parallel_tool_calls: bool
    temperature: float | None
    top_p: float | None
    tool_choice: str | dict[str, Any]
    tools: list[dict[str, Any]]
    usage: dict[str, Any] | None
    previous_response_id: str | None


class ResponseItem(_Object):
    id: str
    type: str = Field(description="message, function_call_output, function_call, ...")


class _AzureObject(_Object):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class LegacyResult(_AzureObject):
    id_: str = Field(alias="$id")
    status: Literal["Success", "Failure"]
    stdout: str
    stderr: str
    result: Any = Field(description="the last expression's value, an image, or ''")
    executionTimeInMilliseconds: int


class AzureLegacyExecution(_AzureObject):
    id_: str = Field(alias="$id")
    properties: LegacyResult


class ExecutionResult(_AzureObject):
    stdout: str
    stderr: str
    executionResult: Any = Field(None, description="Python: the last expression's value")
    executionTimeInMilliseconds: int


class AzureExecution(_AzureObject):
    id: str
    identifier: str
    executionType: Literal["Synchronous"]
    status: str = Field(description="Python: Succeeded or Failed; a shell command: its exit code")
    result: ExecutionResult


class FileProperties(_AzureObject):
    filename: str
    size: int
    lastModifiedTime: str


class AzureFile(_AzureObject):
    id_: str = Field(alias="$id")
    name: str
    type: Literal["File"]
    contentType: str
    sizeInBytes: int
    lastModifiedAt: str
    directory: str
    properties: FileProperties


class AzureUpload(_AzureObject):
    id_: str = Field(alias="$id")
    value: list[AzureFile]


class AzureFileList(AzureUpload):
    nextLink: None


class AzureSession(_AzureObject):
    identifier: str
    createdAt: str
    lastAccessedAt: str
    expireAt: str
    etag: str


class SessionSummary(_AzureObject):
    identifier: str
    createdAt: str
    lastAccessedAt: str
    expireAt: str


class AzureSessionList(_AzureObject):
    sessions: list[SessionSummary]
    nextLink: None
