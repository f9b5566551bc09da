"""The CLI's failures are one clear line and an exit code (no Docker engine here)."""

import os
import subprocess
import sys


def run(*args: str, tmp_path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LCI_HOME": str(tmp_path),
        "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",
    }
    return subprocess.run(
        [sys.executable, "-m", "interpreter", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_no_engine_is_one_clear_line(tmp_path):
    p = run("run", "--thread", "t", "1", tmp_path=tmp_path)
    assert p.returncode == 5
    assert p.stderr.startswith("EngineUnavailable: No Docker engine answers")
    assert "Traceback" not in p.stderr


def test_bad_setting_names_the_variable(tmp_path):
    env = {**os.environ, "LCI_HOME": str(tmp_path), "LCI_MEMORY": "lots"}
    p = subprocess.run(
        [sys.executable, "-m", "interpreter", "sessions"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 5 and p.stderr.startswith("ConfigError: LCI_MEMORY='lots'")


def test_usage_errors_exit_2(tmp_path):
    assert run("run", tmp_path=tmp_path).returncode == 2
