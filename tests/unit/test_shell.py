"""The Azure shellCommand snippet: fixed code calling kernels/lci_shell.py, the command
passed as data, and the exit-code MIME type the same on both sides."""

from __future__ import annotations

import ast
import runpy
from pathlib import Path

from interpreter.server.azure import shell

KERNELS = Path(__file__).parents[2] / "kernels"


def test_host_and_kernel_agree_on_the_exit_mime_type() -> None:
    kernel = runpy.run_path(str(KERNELS / "lci_shell.py"), run_name="lci_shell")
    assert kernel["EXIT_MIME"] == shell.EXIT_MIME
    assert shell.SHELL == "/opt/lci/kernels/lci_shell.py"  # where images/Dockerfile puts it


def test_the_command_is_data_never_code() -> None:
    hostile = "'); import os; os.system('x'); ('\n\"\"\"\\"
    tree = ast.parse(shell.snippet(hostile))
    (stmt,) = tree.body
    call = stmt.value  # exec(<fixed code>, {<names>})
    assert isinstance(stmt, ast.Expr) and isinstance(call, ast.Call)
    code, names = call.args
    assert isinstance(code, ast.Constant) and code.value == ast.literal_eval(
        ast.parse(shell.snippet("true")).body[0].value.args[0]  # type: ignore[attr-defined]
    )
    assert ast.literal_eval(names) == {"SHELL": shell.SHELL, "CMD": hostile}
