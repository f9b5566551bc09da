from pathlib import Path

import pytest

from interpreter.config import Settings, format_bytes, parse_bytes
from interpreter.errors import ConfigError


def test_defaults_are_the_secure_ones():
    s = Settings.from_env({})
    assert s.network == "none" and s.memory == 1024**3 and s.idle_timeout == 3600
    assert s.sandbox_user == "1000:1000" and s.pids_limit > 0


def test_env_is_read_through_the_mapping(tmp_path):
    s = Settings.from_env(
        {"LCI_HOME": str(tmp_path), "LCI_MEMORY": "512m", "LCI_IDLE_TIMEOUT": "5"}
    )
    assert s.home == tmp_path and s.memory == 512 * 1024**2 and s.idle_timeout == 5.0


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("LCI_MEMORY", "lots"),
        ("LCI_IDLE_TIMEOUT", "-1"),
        ("LCI_PIDS_LIMIT", "x"),
        ("LCI_HISTORY_DAYS", "-1"),
        ("LCI_HISTORY_DAYS", "a month"),
    ],
)
def test_bad_values_name_the_variable(var, value):
    with pytest.raises(ConfigError, match=var):
        Settings.from_env({var: value})


def test_history_retention_zero_keeps_forever():
    assert Settings().history_days == 30
    assert Settings.from_env({"LCI_HISTORY_DAYS": "0"}).history_days == 0
    assert Settings.from_env({"LCI_HISTORY_DAYS": "0.5"}).history_days == 0.5


def test_sizes():
    assert (
        parse_bytes("1g") == 1024**3
        and parse_bytes("256MiB") == 256 * 1024**2
        and parse_bytes("10") == 10
    )
    assert format_bytes(1024**3) == "1 GiB" and format_bytes(1536 * 1024**2) == "1.5 GiB"


def test_deep_home_gets_a_short_socket_dir():
    deep = Settings(home=Path("/tmp") / ("x" * 80))
    assert len(str(deep.runtime_dir / "sess_0123456789ab" / "sock" / "kernel-1")) < 100
