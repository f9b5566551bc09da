"""The exception tree of lci.

An error in the *user's* code is never an exception here: it is a result
(``Execution.status == "error"``). These exceptions mean the engine itself could
not do what was asked::

    InterpreterError
    ├── ConfigError (ValueError)            bad setting or environment variable
    ├── BackendError                        the sandbox engine (Docker) failed
    │   ├── EngineUnavailable               no engine answers
    │   ├── ImageNotFound                   the sandbox image is missing
    │   └── ImageBuildFailed                building the sandbox image failed
    ├── InvalidCode (ValueError)            code the kernel cannot be sent (a lone surrogate)
    ├── SessionError
    │   ├── NoSuchSession (KeyError)        unknown session / thread id
    │   ├── SessionClosed                   the session (or manager) was closed
    │   ├── SessionStartFailed              the sandbox or its kernel did not come up
    │   ├── ContainerExpired                a container's session expired: it stays ended
    │   ├── SessionEnded                    stepping into a session that has ended
    │   └── KernelDied                      the kernel died and could not be restarted
    ├── FileError
    │   ├── NoSuchFile (KeyError)           unknown file id
    │   ├── InvalidFilename (ValueError)    traversal, absolute path, NUL, empty ...
    │   └── FileTooLarge (ValueError)       over a configured size limit
    ├── StorageFull (OSError)               LCI_HOME is below its free-space floor
    ├── QuotaExceeded                       a tenant is at one of its quotas
    ├── HostBusy                            the host had no room for a sandbox in time
    └── AssistantsError                     the Assistants layer (assistants, threads, runs)
        ├── NoSuchObject (KeyError)         unknown assistant / thread / message / run / step
        ├── InvalidRequest (ValueError)     a request the API refuses (bad tool, bad state)
        │   └── ThreadLocked                a run is active on the thread
        ├── ModelError                      the chat-completions model failed or is missing
        └── ToolCallLimit                   a run made the most tool calls it may

``ModelError`` and ``ToolCallLimit`` never reach an API client: they fail the run,
and their message becomes the run's ``last_error``.

Every class builds its own message from its fields, and the message says what
to do next.
"""

from __future__ import annotations

__all__ = [
    "AssistantsError",
    "BackendError",
    "ConfigError",
    "ContainerExpired",
    "EngineUnavailable",
    "FileError",
    "FileTooLarge",
    "HostBusy",
    "ImageBuildFailed",
    "ImageNotFound",
    "InterpreterError",
    "InvalidCode",
    "InvalidFilename",
    "InvalidRequest",
    "KernelDied",
    "ModelError",
    "NoSuchFile",
    "NoSuchObject",
    "NoSuchSession",
    "QuotaExceeded",
    "SessionClosed",
    "SessionEnded",
    "SessionError",
    "SessionStartFailed",
    "StorageFull",
    "ThreadLocked",
    "ToolCallLimit",
]


class InterpreterError(Exception):
    """Root of every error lci raises on purpose."""


class ConfigError(InterpreterError, ValueError):
    def __init__(self, name: str, value: object, expected: str) -> None:
        self.name, self.value, self.expected = name, value, expected
        super().__init__(f"{name}={value!r} is not valid: expected {expected}.")


class BackendError(InterpreterError):
    """The sandbox engine failed; the message carries the engine's own words."""


class EngineUnavailable(BackendError):
    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(
            f"No Docker engine answers ({detail}). Start one (`bash run.sh` installs and starts "
            "dockerd on Debian), or point DOCKER_HOST at a running engine."
        )


class ImageNotFound(BackendError):
    def __init__(self, image: str) -> None:
        self.image = image
        super().__init__(
            f"The sandbox image {image!r} is not present. Build it with `lci image build`."
        )


class ImageBuildFailed(BackendError):
    def __init__(self, step: str, detail: str) -> None:
        self.step, self.detail = step, detail
        super().__init__(f"Building the sandbox image failed at {step}: {detail}")


class InvalidCode(InterpreterError, ValueError):
    def __init__(self, position: int, problem: str) -> None:
        self.position, self.problem = position, problem
        super().__init__(
            f"The code cannot be run: it holds {problem} at position {position}, which is not"
            " text. Send valid Unicode (UTF-8)."
        )


class SessionError(InterpreterError):
    pass


class NoSuchSession(SessionError, KeyError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)

    def __str__(self) -> str:
        return f"No session {self.key!r}: it never existed or it was removed."


class SessionClosed(SessionError):
    def __init__(self, what: str = "session") -> None:
        self.what = what
        super().__init__(f"Cannot use a closed {what}: open a new one.")


class ContainerExpired(SessionError):
    def __init__(self, container_id: str, idle_timeout: float) -> None:
        self.container_id, self.idle_timeout, self.param = (
            container_id,
            idle_timeout,
            "container_id",
        )
        super().__init__(
            f"Container {container_id} has expired (idle for over {idle_timeout / 60:g}"
            " minutes); an expired container stays expired: create a new container."
        )


class SessionEnded(SessionError):
    """Stepping into a session that has ended (expired, stopped or dead)."""

    def __init__(self, session_id: str, state: str, reason: str | None) -> None:
        self.session_id, self.state, self.reason = session_id, state, reason
        super().__init__(
            f"Session {session_id} has ended ({state}: {reason or 'no reason recorded'})."
            f" Its history stays readable: `lci logs {session_id}`."
        )


class SessionStartFailed(SessionError):
    def __init__(self, session_id: str, detail: str) -> None:
        self.session_id, self.detail = session_id, detail
        super().__init__(f"Session {session_id} did not start: {detail}")


class KernelDied(SessionError):
    def __init__(self, session_id: str, detail: str) -> None:
        self.session_id, self.detail = session_id, detail
        super().__init__(f"The kernel of session {session_id} died: {detail}")


class FileError(InterpreterError):
    pass


class NoSuchFile(FileError, KeyError):
    def __init__(self, file_id: str) -> None:
        self.file_id = file_id
        super().__init__(file_id)

    def __str__(self) -> str:
        return f"No file {self.file_id!r}: check the id (files.list() shows the known ones)."


class InvalidFilename(FileError, ValueError):
    def __init__(self, filename: str, reason: str) -> None:
        self.filename, self.reason = filename, reason
        super().__init__(f"Invalid filename {filename!r}: {reason}.")


class FileTooLarge(FileError, ValueError):
    def __init__(self, what: str, size: int, limit: int) -> None:
        self.what, self.size, self.limit = what, size, limit
        super().__init__(f"{what} is {size} bytes, over the limit of {limit} bytes.")


class StorageFull(InterpreterError, OSError):
    def __init__(self, free: int, floor: int) -> None:
        self.free, self.floor = free, floor
        super().__init__(
            f"LCI_HOME is short of space: {free} bytes free, and lci keeps at least {floor}"
            " (LCI_MIN_FREE) besides the room promised to running sandboxes. New sandboxes"
            " and uploads are refused until space is freed: delete files or stop sessions."
        )

    def __str__(self) -> str:
        return str(self.args[0])


class QuotaExceeded(InterpreterError):
    def __init__(
        self,
        tenant: str,
        quota: str,
        limit: int,
        used: int,
        unit: str = "",
        retry_after: int | None = None,
    ) -> None:
        self.tenant, self.quota, self.limit, self.used = tenant, quota, limit, used
        self.unit, self.retry_after = unit, retry_after
        what = f"{limit} {unit}".strip()
        wait = f" Retry in {retry_after} s." if retry_after else ""
        super().__init__(
            f"Quota {quota!r} of tenant {tenant!r} reached: the limit is {what}, {used} in use."
            f" Free some (stop sessions, delete files) or ask for a larger quota.{wait}"
        )


class HostBusy(InterpreterError):
    def __init__(self, why: str, waited: float) -> None:
        self.why, self.waited = why, waited
        super().__init__(
            f"No sandbox could start: {why}. The request waited {waited:g} s in the queue;"
            " try again later."
        )


class AssistantsError(InterpreterError):
    pass


class NoSuchObject(AssistantsError, KeyError):
    def __init__(self, kind: str, object_id: str, param: str | None = None) -> None:
        self.kind, self.object_id, self.param = kind, object_id, param
        super().__init__(object_id)

    def __str__(self) -> str:
        return f"No {self.kind} found with id '{self.object_id}'."


class InvalidRequest(AssistantsError, ValueError):
    def __init__(self, message: str, param: str | None = None) -> None:
        self.message, self.param = message, param
        super().__init__(message)


class ThreadLocked(InvalidRequest):
    def __init__(self, thread_id: str, run_id: str, action: str = "add messages to") -> None:
        self.thread_id, self.run_id = thread_id, run_id
        super().__init__(
            f"Can't {action} {thread_id} while a run {run_id} is active. Wait until the run"
            " ends (or cancel it) and try again."
        )


class ModelError(AssistantsError):
    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class ToolCallLimit(AssistantsError):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"The run was stopped after {limit} tool calls, the most one run may make"
            f" (LCI_MAX_TOOL_CALLS={limit}): the model kept calling tools without answering."
            " Ask for something smaller, or raise the limit."
        )
