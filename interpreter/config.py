"""Settings: every knob of lci, read once from ``LCI_*`` environment variables.

Secure defaults live here, in code: no network, 1 GiB of memory, one CPU, 256
processes, a read-only root filesystem, 1 GiB of disk (/mnt/data and /tmp together),
uids of its own for every sandbox, and caps on everything the host takes from one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

__all__ = ["Settings", "format_bytes", "parse_bytes"]

MAX_SIZE = 1024**5
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_bytes(value: str | int, name: str = "size") -> int:
    """``"1g"``, ``"512MiB"``, ``"1073741824"`` -> bytes (binary units)."""
    if isinstance(value, int):
        return value
    m = _SIZE.match(value)
    if not m:
        raise ConfigError(name, value, "a size such as 512m, 1g or 1073741824")
    size = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if size > MAX_SIZE:
        raise ConfigError(name, value, "a size of at most 1 PiB")
    return size


def format_bytes(n: int) -> str:
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} B"


def _default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local/share")
    return Path(base) / "lci"


# (field name, env var, parser). Parsers raise ConfigError naming the variable.
def _float(name: str, v: str) -> float:
    try:
        f = float(v)
    except ValueError:
        raise ConfigError(name, v, "a number of seconds") from None
    if f <= 0:
        raise ConfigError(name, v, "a positive number")
    return f


def _days(name: str, v: str) -> float:
    try:
        f = float(v)
    except ValueError:
        raise ConfigError(name, v, "a number of days") from None
    if f < 0:
        raise ConfigError(name, v, "0 (keep forever) or a positive number of days")
    return f


def _size_or_zero(name: str, v: str) -> int:
    return 0 if v.strip() == "0" else parse_bytes(v, name)


def _uid_range(name: str, v: str) -> tuple[int, int]:
    lo, sep, hi = v.partition("-")
    try:
        first, last = int(lo), int(hi)
    except ValueError:
        raise ConfigError(name, v, "a range of uids such as 2000000000-2000999999") from None
    if not sep or not 65536 <= first < last < 2**31 - 1 or last - first < 1023:
        raise ConfigError(
            name, v, "a range of at least 1024 uids between 65536 and 2147483646, first-last"
        )
    return first, last


def _int(name: str, v: str) -> int:
    try:
        i = int(v)
    except ValueError:
        raise ConfigError(name, v, "a whole number") from None
    if i <= 0:
        raise ConfigError(name, v, "a positive whole number")
    return i


_ENV: dict[str, tuple[str, object]] = {
    "home": ("LCI_HOME", lambda n, v: Path(v).expanduser()),
    "image": ("LCI_IMAGE", lambda n, v: v or None),
    "backend": ("LCI_BACKEND", lambda n, v: v),
    "idle_timeout": ("LCI_IDLE_TIMEOUT", _float),
    "exec_timeout": ("LCI_EXEC_TIMEOUT", _float),
    "interrupt_grace": ("LCI_INTERRUPT_GRACE", _float),
    "start_timeout": ("LCI_START_TIMEOUT", _float),
    "memory": ("LCI_MEMORY", lambda n, v: parse_bytes(v, n)),
    "cpus": ("LCI_CPUS", _float),
    "pids_limit": ("LCI_PIDS_LIMIT", _int),
    "network": ("LCI_NETWORK", lambda n, v: v),
    "runtime": ("LCI_RUNTIME", lambda n, v: v.strip() or "runc"),
    "uid_range": ("LCI_UID_RANGE", _uid_range),
    "disk_limit": ("LCI_DISK_LIMIT", _size_or_zero),
    "disk_inodes": ("LCI_DISK_INODES", _int),
    "min_free": ("LCI_MIN_FREE", _size_or_zero),
    "quotas": ("LCI_QUOTAS", lambda n, v: v),
    "tenant_quotas": ("LCI_TENANT_QUOTAS", lambda n, v: v),
    "max_sessions": ("LCI_MAX_SESSIONS", _int),
    "min_available": ("LCI_MIN_AVAILABLE", _size_or_zero),
    "queue_timeout": ("LCI_QUEUE_TIMEOUT", _float),
    "max_log_chars": ("LCI_MAX_LOG_CHARS", _int),
    "max_log_bytes": ("LCI_MAX_LOG_BYTES", lambda n, v: parse_bytes(v, n)),
    "max_message_bytes": ("LCI_MAX_MESSAGE_BYTES", lambda n, v: parse_bytes(v, n)),
    "max_result_bytes": ("LCI_MAX_RESULT_BYTES", lambda n, v: parse_bytes(v, n)),
    "max_image_bytes": ("LCI_MAX_IMAGE_BYTES", lambda n, v: parse_bytes(v, n)),
    "max_upload_bytes": ("LCI_MAX_UPLOAD_BYTES", lambda n, v: parse_bytes(v, n)),
    "max_output_file_bytes": ("LCI_MAX_OUTPUT_FILE_BYTES", lambda n, v: parse_bytes(v, n)),
    "max_code_bytes": ("LCI_MAX_CODE_BYTES", lambda n, v: parse_bytes(v, n)),
    "api_keys": ("LCI_API_KEYS", lambda n, v: v),
    "admin_keys": ("LCI_ADMIN_KEYS", lambda n, v: v),
    "host": ("LCI_HOST", lambda n, v: v),
    "port": ("LCI_PORT", _int),
    "history_days": ("LCI_HISTORY_DAYS", _days),  # 0: keep forever
    "model_base_url": ("LCI_MODEL_BASE_URL", lambda n, v: v.strip()),
    "model_api_key": ("LCI_MODEL_API_KEY", lambda n, v: v.strip()),
    "model_map": ("LCI_MODEL_MAP", lambda n, v: v),
    "model_timeout": ("LCI_MODEL_TIMEOUT", _float),
    "max_tool_calls": ("LCI_MAX_TOOL_CALLS", _int),
    "run_expiry": ("LCI_RUN_EXPIRY", _float),
}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """All configuration. Build with ``Settings.from_env()`` or directly in code and tests."""

    home: Path = field(default_factory=_default_home)
    image: str | None = None  # None: the tag computed from images/ and kernels/
    backend: str = "docker"
    idle_timeout: float = 3600.0
    exec_timeout: float = 120.0
    interrupt_grace: float = 5.0
    start_timeout: float = 60.0
    memory: int = 1024**3
    cpus: float = 1.0
    pids_limit: int = 256
    network: str = "none"
    runtime: str = "runc"  # the engine's OCI runtime: runc, or runsc (gVisor)
    # every session gets two uids of its own from here (launcher, kernel): none may exist
    # on the host, and no two live sessions share one
    uid_range: tuple[int, int] = (2_000_000_000, 2_000_999_999)
    disk_limit: int = 1024**3  # /mnt/data and /tmp of one session together; 0: no cap
    disk_inodes: int = 0  # files and directories on it; 0: one per 16 KiB of disk_limit
    min_free: int = 1024**3  # below this much free space in LCI_HOME, new work is refused
    # tenants' quotas (quotas.py): defaults for all, and rows per tenant
    quotas: str = ""  # "sessions=32,memory=16g,memory_limit=4g,stored=50g,executions=600"
    tenant_quotas: str = ""  # "alice sessions=4 memory=8g; bob stored=1g" (or LCI_HOME/tenants)
    # the host's capacity: beyond it a new sandbox waits in a queue, then HostBusy
    max_sessions: int = 0  # live sandboxes on this host; 0: one per 64 MiB of its memory
    min_available: int = 512 * 1024**2  # memory the host keeps available
    queue_timeout: float = 30.0  # seconds a start waits for room
    max_log_chars: int = 20_000
    max_log_bytes: int = 64 * 1024**2  # the stored log of one execution
    max_message_bytes: int = 16 * 1024**2  # one message from a kernel, all its frames
    max_result_bytes: int = 8 * 1024**2  # rich results (HTML, JSON, ...) of one execution
    max_image_bytes: int = 64 * 1024**2  # images of one execution
    max_upload_bytes: int = 128 * 1024**2
    max_output_file_bytes: int = 256 * 1024**2
    max_code_bytes: int = 1024**2
    api_keys: str = field(default="", repr=False)  # "key,..." or "tenant:key,...": empty: keys_file
    admin_keys: str = field(default="", repr=False)  # "key,...": may read every tenant's /metrics
    host: str = "127.0.0.1"
    port: int = 8000
    # Assistants runs: the chat-completions model behind them and their limits
    model_base_url: str = ""  # e.g. http://127.0.0.1:11434/v1 (empty: runs fail, saying so)
    model_api_key: str = field(default="", repr=False)
    model_map: str = ""  # "gpt-4o=llama3,*=qwen2.5": assistant model name -> served name
    model_timeout: float = 300.0  # seconds for one chat-completions request
    max_tool_calls: int = 20  # tool calls per run before it fails
    run_expiry: float = 600.0  # a run expires this many seconds after creation
    history_days: float = 30.0  # executions older than this are purged; 0 keeps them forever

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, (var, parse) in _ENV.items():
            if var in env:
                values[name] = parse(var, env[var])  # type: ignore[operator]
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    # -- derived paths --------------------------------------------------------------

    @property
    def db_path(self) -> Path:
        return self.home / "lci.db"

    @property
    def blobs_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def sessions_dir(self) -> Path:
        return self.home / "sessions"

    @property
    def keys_file(self) -> Path:
        return self.home / "api_keys"

    @property
    def ui_secret_file(self) -> Path:
        return self.home / "ui_secret"

    @property
    def home_id(self) -> str:
        """Short stable id of this LCI_HOME: labels our containers so two homes never clash."""
        return hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:12]

    @property
    def inodes(self) -> int:
        """Inodes of a session's disk."""
        return self.disk_inodes or max(self.disk_limit // (16 * 1024), 1024)
