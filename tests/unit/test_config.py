import pytest

from interpreter.config import Settings, format_bytes, parse_bytes
from interpreter.errors import ConfigError


def test_defaults_are_the_secure_ones():
    s = Settings.from_env({})
    assert s.sandbox.network == "none" and s.sandbox.memory == 1024**3
    assert s.timeouts.idle_timeout == 3600
    assert s.sandbox.pids_limit > 0 and s.sandbox.runtime == "runc"
    assert (
        s.sandbox.uid_range[0] >= 65536 and s.sandbox.uid_range[1] - s.sandbox.uid_range[0] >= 1023
    )
    assert s.sandbox.disk_limit == 1024**3 and s.sandbox.inodes == 65536
    assert s.capacity.min_free == 1024**3
    assert s.limits.max_message_bytes <= 16 * 1024**2 and s.limits.max_log_bytes <= 64 * 1024**2


def test_env_is_read_through_the_mapping(tmp_path):
    s = Settings.from_env(
        {"LCI_HOME": str(tmp_path), "LCI_MEMORY": "512m", "LCI_IDLE_TIMEOUT": "5"}
    )
    assert s.home == tmp_path and s.sandbox.memory == 512 * 1024**2
    assert s.timeouts.idle_timeout == 5.0


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


@pytest.mark.parametrize("value", ["1000-2000", "0-100000", "x", "3000000-3000010", "5-"])
def test_uid_range_is_checked(value):
    with pytest.raises(ConfigError, match="LCI_UID_RANGE"):
        Settings.from_env({"LCI_UID_RANGE": value})
    assert Settings.from_env({"LCI_UID_RANGE": "3000000-3100000"}).sandbox.uid_range == (
        3000000,
        3100000,
    )


def test_disk_settings_and_size_bounds():
    s = Settings.from_env({"LCI_DISK_LIMIT": "0", "LCI_MIN_FREE": "0", "LCI_DISK_LIMIT_X": "1"})
    assert s.sandbox.disk_limit == 0 and s.capacity.min_free == 0
    assert Settings.from_env({"LCI_DISK_LIMIT": "64m"}).sandbox.inodes == 4096
    with pytest.raises(ConfigError, match="LCI_MEMORY"):
        Settings.from_env({"LCI_MEMORY": "99999999999g"})  # no OverflowError further on


def test_the_pool_size_and_preload_are_read_and_checked() -> None:
    assert Settings.from_env({}).sandbox.pool_size == 2
    assert Settings.from_env({"LCI_POOL_SIZE": "0"}).sandbox.pool_size == 0
    got = Settings.from_env({"LCI_PRELOAD": " numpy, scipy.stats ,"}).sandbox.preload
    assert got == "numpy,scipy.stats"
    assert Settings.from_env({"LCI_PRELOAD": ""}).sandbox.preload == ""
    for var, bad in (("LCI_POOL_SIZE", "-1"), ("LCI_POOL_SIZE", "65"), ("LCI_PRELOAD", "os;rm")):
        with pytest.raises(ConfigError, match=var):
            Settings.from_env({var: bad})


def test_a_pool_profile_leaves_the_idle_timeout_out() -> None:
    from interpreter.pool import Profile

    a, b = Profile("img", "runc", 1024), Profile("img", "runsc", 1024)
    assert a.key == Profile("img", "runc", 1024).key and a.key != b.key
