"""Settings: every knob of lci, read once from ``LCI_*`` environment variables.

Secure defaults live here, in code: no network, 1 GiB of memory, one CPU, 256
processes, a read-only root filesystem with a 256 MiB /tmp.
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

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_bytes(value: str | int, name: str = "size") -> int:
    """``"1g"``, ``"512MiB"``, ``"1073741824"`` -> bytes (binary units)."""
    if isinstance(value, int):
        return value
    m = _SIZE.match(value)
    if not m:
        raise ConfigError(name, value, "a size such as 512m, 1g or 1073741824")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


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
    "tmp_size": ("LCI_TMP_SIZE", lambda n, v: parse_bytes(v, n)),
    "network": ("LCI_NETWORK", lambda n, v: v),
    "sandbox_user": ("LCI_SANDBOX_USER", lambda n, v: v),
    "max_log_chars": ("LCI_MAX_LOG_CHARS", _int),
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
    tmp_size: int = 256 * 1024**2
    network: str = "none"
    sandbox_user: str = "1000:1000"
    max_log_chars: int = 20_000
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
    def runtime_dir(self) -> Path:
        """Where the kernels' unix sockets live. Socket paths must stay under 108 bytes,
        so a deep LCI_HOME falls back to a short directory under /tmp."""
        preferred = self.home / "run"
        if len(str(preferred)) <= 60:
            return preferred
        return Path("/tmp") / f"lci-{os.getuid()}" / self.home_id

    @property
    def sandbox_uid_gid(self) -> tuple[int, int]:
        uid, _, gid = self.sandbox_user.partition(":")
        try:
            return int(uid), int(gid or uid)
        except ValueError:
            raise ConfigError("LCI_SANDBOX_USER", self.sandbox_user, "uid:gid numbers") from None
