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

__all__ = [
    "Capacity",
    "Limits",
    "ModelSettings",
    "SandboxSettings",
    "ServiceSettings",
    "Settings",
    "Timeouts",
    "format_bytes",
    "parse_bytes",
]

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


def format_bytes(n: int | None, none: str = "-") -> str:
    """``512 MiB``, ``1.5 GiB``: the one byte formatter (``none`` for an unknown size)."""
    if n is None:
        return none
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} B"


def format_duration(seconds: float | None, none: str = "-") -> str:
    """``120 ms``, ``1.5 s``, ``42 s``, ``3m 07s``, ``2h 05m``, ``3d 4h``: the one duration
    formatter, in seconds (``none`` for an unknown one)."""
    if seconds is None:
        return none
    s = max(seconds, 0.0)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    minutes, sec = divmod(int(s), 60)
    if minutes < 60:
        return f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours < 48 else f"{hours // 24}d {hours % 24}h"


def milliseconds(ms: float | None) -> float | None:
    """A stored ``duration_ms`` as seconds, for ``format_duration``."""
    return None if ms is None else ms / 1000


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


def _count(name: str, v: str) -> int:
    try:
        i = int(v)
    except ValueError:
        raise ConfigError(name, v, "a whole number (0 turns it off)") from None
    if not 0 <= i <= 64:
        raise ConfigError(name, v, "a whole number from 0 to 64")
    return i


def _modules(name: str, v: str) -> str:
    names = [m.strip() for m in v.split(",") if m.strip()]
    for m in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", m):
            raise ConfigError(name, v, "module names separated by commas, or empty")
    return ",".join(names)


def _size(name: str, v: str) -> int:
    return parse_bytes(v, name)


def _text(name: str, v: str) -> str:
    return v.strip()


@dataclass(frozen=True, kw_only=True)
class SandboxSettings:
    """What a sandbox is: its image and runtime, its identity, its limits and its disk."""

    image: str | None = None  # None: the tag computed from images/ and kernels/
    backend: str = "docker"
    runtime: str = "runc"  # the engine's OCI runtime: runc, or runsc (gVisor)
    network: str = "none"
    memory: int = 1024**3
    cpus: float = 1.0
    pids_limit: int = 256
    # every session gets two uids of its own from here (launcher, kernel): none may exist
    # on the host, and no two live sessions share one
    uid_range: tuple[int, int] = (2_000_000_000, 2_000_999_999)
    disk_limit: int = 1024**3  # /mnt/data and /tmp of one session together; 0: no cap
    disk_inodes: int = 0  # files and directories on it; 0: one per 16 KiB of disk_limit
    # the warm pool (pool.py): ready sandboxes per profile, kept by `lci serve`; 0: none
    pool_size: int = 2
    # what pooled kernels import before they are claimed (names stay out of the
    # user's namespace); matplotlib also draws one figure, so the first plot is warm
    preload: str = "numpy,pandas,matplotlib"

    @property
    def inodes(self) -> int:
        """Inodes of a session's disk."""
        return self.disk_inodes or max(self.disk_limit // (16 * 1024), 1024)


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """How long things may take, in seconds."""

    idle_timeout: float = 3600.0  # a session without activity is shut down
    exec_timeout: float = 120.0  # an execution is interrupted
    interrupt_grace: float = 5.0  # an interrupted execution, before the kernel is restarted
    start_timeout: float = 60.0  # a new sandbox, to answer


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What the host takes from a sandbox, and from a client, at most."""

    max_log_chars: int = 20_000  # log text in a result (head and tail)
    max_log_bytes: int = 64 * 1024**2  # the stored log of one execution
    max_message_bytes: int = 16 * 1024**2  # one message from a kernel, all its frames
    max_result_bytes: int = 8 * 1024**2  # rich results (HTML, JSON, ...) of one execution
    max_image_bytes: int = 64 * 1024**2  # images of one execution
    max_output_file_bytes: int = 256 * 1024**2  # one produced file
    max_upload_bytes: int = 128 * 1024**2
    max_code_bytes: int = 1024**2


@dataclass(frozen=True, kw_only=True)
class Capacity:
    """The host's room: its disk, its sandboxes, its memory."""

    min_free: int = 1024**3  # free space LCI_HOME keeps besides the room of live disks
    max_sessions: int = 0  # live sandboxes on this host; 0: one per 64 MiB of its memory
    min_available: int = 512 * 1024**2  # memory the host keeps available
    queue_timeout: float = 30.0  # seconds a start waits for room, then HostBusy


@dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    """``lci serve``: where it listens, its keys, its tenants' quotas (quotas.py)."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: str = field(default="", repr=False)  # "key,..." or "tenant:key,...": empty: file
    admin_keys: str = field(default="", repr=False)  # "key,...": may read every tenant's /metrics
    quotas: str = ""  # every tenant's: "sessions=32,memory=16g,memory_limit=4g,stored=50g,..."
    tenant_quotas: str = (
        ""  # rows "alice sessions=4 memory=8g; bob stored=1g" (or LCI_HOME/tenants)
    )


@dataclass(frozen=True, kw_only=True)
class ModelSettings:
    """The chat-completions model behind the Assistants and Responses loops."""

    base_url: str = ""  # e.g. http://127.0.0.1:11434/v1 (empty: runs fail, saying so)
    api_key: str = field(default="", repr=False)
    model_map: str = ""  # "gpt-4o=llama3,*=qwen2.5": model names asked -> names served
    timeout: float = 300.0  # seconds for one chat-completions request
    max_tool_calls: int = 20  # tool calls per run (or response) before it fails
    run_expiry: float = 600.0  # a run expires this many seconds after creation


# env var -> (group, field, parser): every setting, read once by Settings.from_env
_ENV: dict[str, tuple[str, str, object]] = {
    "LCI_HOME": ("", "home", lambda n, v: Path(v).expanduser()),
    "LCI_HISTORY_DAYS": ("", "history_days", _days),  # 0: keep forever
    "LCI_IMAGE": ("sandbox", "image", lambda n, v: v or None),
    "LCI_BACKEND": ("sandbox", "backend", _text),
    "LCI_RUNTIME": ("sandbox", "runtime", lambda n, v: v.strip() or "runc"),
    "LCI_NETWORK": ("sandbox", "network", _text),
    "LCI_MEMORY": ("sandbox", "memory", _size),
    "LCI_CPUS": ("sandbox", "cpus", _float),
    "LCI_PIDS_LIMIT": ("sandbox", "pids_limit", _int),
    "LCI_UID_RANGE": ("sandbox", "uid_range", _uid_range),
    "LCI_DISK_LIMIT": ("sandbox", "disk_limit", _size_or_zero),
    "LCI_DISK_INODES": ("sandbox", "disk_inodes", _int),
    "LCI_POOL_SIZE": ("sandbox", "pool_size", _count),
    "LCI_PRELOAD": ("sandbox", "preload", _modules),
    "LCI_IDLE_TIMEOUT": ("timeouts", "idle_timeout", _float),
    "LCI_EXEC_TIMEOUT": ("timeouts", "exec_timeout", _float),
    "LCI_INTERRUPT_GRACE": ("timeouts", "interrupt_grace", _float),
    "LCI_START_TIMEOUT": ("timeouts", "start_timeout", _float),
    "LCI_MAX_LOG_CHARS": ("limits", "max_log_chars", _int),
    "LCI_MAX_LOG_BYTES": ("limits", "max_log_bytes", _size),
    "LCI_MAX_MESSAGE_BYTES": ("limits", "max_message_bytes", _size),
    "LCI_MAX_RESULT_BYTES": ("limits", "max_result_bytes", _size),
    "LCI_MAX_IMAGE_BYTES": ("limits", "max_image_bytes", _size),
    "LCI_MAX_OUTPUT_FILE_BYTES": ("limits", "max_output_file_bytes", _size),
    "LCI_MAX_UPLOAD_BYTES": ("limits", "max_upload_bytes", _size),
    "LCI_MAX_CODE_BYTES": ("limits", "max_code_bytes", _size),
    "LCI_MIN_FREE": ("capacity", "min_free", _size_or_zero),
    "LCI_MAX_SESSIONS": ("capacity", "max_sessions", _int),
    "LCI_MIN_AVAILABLE": ("capacity", "min_available", _size_or_zero),
    "LCI_QUEUE_TIMEOUT": ("capacity", "queue_timeout", _float),
    "LCI_HOST": ("service", "host", _text),
    "LCI_PORT": ("service", "port", _int),
    "LCI_API_KEYS": ("service", "api_keys", lambda n, v: v),
    "LCI_ADMIN_KEYS": ("service", "admin_keys", lambda n, v: v),
    "LCI_QUOTAS": ("service", "quotas", lambda n, v: v),
    "LCI_TENANT_QUOTAS": ("service", "tenant_quotas", lambda n, v: v),
    "LCI_MODEL_BASE_URL": ("model", "base_url", _text),
    "LCI_MODEL_API_KEY": ("model", "api_key", _text),
    "LCI_MODEL_MAP": ("model", "model_map", lambda n, v: v),
    "LCI_MODEL_TIMEOUT": ("model", "timeout", _float),
    "LCI_MAX_TOOL_CALLS": ("model", "max_tool_calls", _int),
    "LCI_RUN_EXPIRY": ("model", "run_expiry", _float),
}
GROUPS = {
    "sandbox": SandboxSettings,
    "timeouts": Timeouts,
    "limits": Limits,
    "capacity": Capacity,
    "service": ServiceSettings,
    "model": ModelSettings,
}
# a field's flat name (``memory``, ``model_base_url``) -> its group, for of() and replace()
_FLAT = {
    (
        f"model_{f.name}"
        if g == "model" and f.name in ("base_url", "api_key", "timeout")
        else f.name
    ): (g, f.name)
    for g, cls in GROUPS.items()
    for f in dataclasses.fields(cls)
}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """All configuration: where state lives, and one small frozen group per concern.

    ``Settings.from_env()`` reads every ``LCI_*`` variable once; ``Settings.of(home=...,
    memory=..., exec_timeout=...)`` and ``settings.replace(...)`` take the fields by name,
    whichever group they are in."""

    home: Path = field(default_factory=_default_home)
    history_days: float = 30.0  # executions older than this are purged; 0 keeps them forever
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    timeouts: Timeouts = field(default_factory=Timeouts)
    limits: Limits = field(default_factory=Limits)
    capacity: Capacity = field(default_factory=Capacity)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    model: ModelSettings = field(default_factory=ModelSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for var, (group, name, parse) in _ENV.items():
            if var in env:
                flat = next(k for k, v in _FLAT.items() if v == (group, name)) if group else name
                values[flat] = parse(var, env[var])  # type: ignore[operator]
        values.update(overrides)
        return cls.of(**values)

    @classmethod
    def of(cls, **values: object) -> Settings:
        """Settings from fields given by name (``home``, ``memory``, ``exec_timeout`` ...)."""
        return cls().replace(**values)

    def replace(self, **changes: object) -> Settings:
        top = {k: v for k, v in changes.items() if k in ("home", "history_days")}
        grouped: dict[str, dict[str, object]] = {}
        for name, value in changes.items():
            if name in top:
                continue
            if name not in _FLAT:
                raise TypeError(f"Settings has no field {name!r}")
            group, field_name = _FLAT[name]
            grouped.setdefault(group, {})[field_name] = value
        for group, values in grouped.items():
            top[group] = dataclasses.replace(getattr(self, group), **values)
        return dataclasses.replace(self, **top)  # type: ignore[arg-type]

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
