"""The checks the code is written to pass, run by the suite (so CI runs them): ruff's lint
and format, and mypy at the Python version ``requires-python`` names (3.11), over
``interpreter/``, ``kernels/`` and ``images/`` (pyproject's ``[tool.mypy]``)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=280
    )


def test_ruff_lint_and_format() -> None:
    lint = _run("ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout[-4000:]
    fmt = _run("ruff", "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout[-4000:]


def test_mypy_at_the_required_python() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["requires-python"] == ">=3.11"
    assert project["tool"]["mypy"]["python_version"] == "3.11"
    assert {"interpreter", "kernels", "images"} <= set(project["tool"]["mypy"]["files"])
    typed = _run("mypy")
    assert typed.returncode == 0, typed.stdout[-4000:]
