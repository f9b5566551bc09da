"""lci: a local, sandboxed code interpreter.

Python runs in a Jupyter kernel inside a hardened Docker container, one per
conversation thread; outputs come back as logs and files with IDs.
"""

from .config import Settings
from .errors import (
    BackendError,
    ConfigError,
    EngineUnavailable,
    FileError,
    FileTooLarge,
    ImageBuildFailed,
    ImageNotFound,
    InterpreterError,
    InvalidFilename,
    KernelDied,
    NoSuchFile,
    NoSuchSession,
    SessionClosed,
    SessionError,
    SessionStartFailed,
)
from .manager import SessionManager
from .results import ErrorInfo, Execution, ExecutionStatus, FileInfo, ProducedFile, SessionState
from .session import Session
from .sync import SyncSession, SyncSessionManager

__version__ = "0.1.0.dev0"

__all__ = [
    "BackendError",
    "ConfigError",
    "EngineUnavailable",
    "ErrorInfo",
    "Execution",
    "ExecutionStatus",
    "FileError",
    "FileInfo",
    "FileTooLarge",
    "ImageBuildFailed",
    "ImageNotFound",
    "InterpreterError",
    "InvalidFilename",
    "KernelDied",
    "NoSuchFile",
    "NoSuchSession",
    "ProducedFile",
    "Session",
    "SessionClosed",
    "SessionError",
    "SessionManager",
    "SessionStartFailed",
    "SessionState",
    "Settings",
    "SyncSession",
    "SyncSessionManager",
    "__version__",
]
