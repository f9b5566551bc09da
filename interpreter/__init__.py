"""lci: a local, sandboxed code interpreter.

Python runs in a Jupyter kernel inside a hardened Docker container, one per
conversation thread; outputs come back as logs and files with IDs.
"""

from .assistants.api import Assistants
from .chat import ChatModel, HttpChatModel
from .config import Settings
from .errors import (
    AssistantsError,
    BackendError,
    ConfigError,
    EngineUnavailable,
    FileError,
    FileTooLarge,
    HostBusy,
    ImageBuildFailed,
    ImageNotFound,
    InterpreterError,
    InvalidCode,
    InvalidFilename,
    InvalidRequest,
    KernelDied,
    ModelError,
    NoSuchFile,
    NoSuchObject,
    NoSuchSession,
    QuotaExceeded,
    SessionClosed,
    SessionError,
    SessionStartFailed,
    StorageFull,
    ThreadLocked,
    ToolCallLimit,
)
from .manager import SessionManager
from .responses import Responses
from .results import ErrorInfo, Execution, ExecutionStatus, FileInfo, ProducedFile, SessionState
from .session import Session
from .sync import SyncSession, SyncSessionManager
from .tool import CodeInterpreterTool

__version__ = "0.1.0.dev0"

__all__ = [
    "Assistants",
    "AssistantsError",
    "BackendError",
    "ChatModel",
    "CodeInterpreterTool",
    "ConfigError",
    "EngineUnavailable",
    "ErrorInfo",
    "Execution",
    "ExecutionStatus",
    "FileError",
    "FileInfo",
    "FileTooLarge",
    "HostBusy",
    "HttpChatModel",
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
    "ProducedFile",
    "QuotaExceeded",
    "Responses",
    "Session",
    "SessionClosed",
    "SessionError",
    "SessionManager",
    "SessionStartFailed",
    "SessionState",
    "Settings",
    "StorageFull",
    "SyncSession",
    "SyncSessionManager",
    "ThreadLocked",
    "ToolCallLimit",
    "__version__",
]
