"""The package's layout rules (STYLE.md), checked by walking the source's ``ast``:

1. the engine core (the flat modules of ``interpreter/`` and ``backends/``) imports no
   face (``assistants``, ``inspection``, ``cli``, ``server``);
2. only ``backends/`` imports ``docker``;
3. no face (``server/``, ``inspection/``, ``cli/``) touches the store: it neither
   imports ``interpreter.store`` nor reaches for a manager's ``.store``; it goes
   through the manager and the other cores' public methods;
4. every module, kernel-side code included, stays under ~400 lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import interpreter

PACKAGE = Path(interpreter.__file__).parent
ROOT = PACKAGE.parent
FACES = ("assistants", "inspection", "cli", "responses", "server")
STORE_FREE = ("server", "inspection", "cli")
MAX_LINES = 430  # "about 400"


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def _imports(name: str, path: Path) -> Iterator[tuple[int, str]]:
    """Every module ``name`` (at ``path``) imports, absolute, with its line."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:  # `from . import store` names a module, too
                yield node.lineno, f"{base}.{alias.name}"


def _family(name: str) -> str | None:
    """The face a module belongs to, or None for the core."""
    parts = name.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in FACES else None


def _is_core(path: Path) -> bool:
    """A flat module of ``interpreter/`` (not the public API, not the entry point), or
    one of ``backends/``."""
    if path.parent == PACKAGE:
        return path.name not in ("__init__.py", "__main__.py")
    return path.parent == PACKAGE / "backends"


def test_the_core_imports_no_face() -> None:
    bad = [
        f"{name}:{line} imports {target}"
        for name, path in _modules()
        if _is_core(path)
        for line, target in _imports(name, path)
        if _family(target + ".x") is not None and target.startswith("interpreter.")
    ]
    assert bad == []


def test_only_backends_import_docker() -> None:
    bad = [
        f"{name}:{line} imports {target}"
        for name, path in _modules()
        if not name.startswith("interpreter.backends")
        for line, target in _imports(name, path)
        if target == "docker" or target.startswith("docker.")
    ]
    assert bad == []


def _reaches_store(node: ast.AST) -> bool:
    """``<...>manager.store``: a face reaching past the manager into its store."""
    if not (isinstance(node, ast.Attribute) and node.attr == "store"):
        return False
    tenant = node.value
    name = tenant.attr if isinstance(tenant, ast.Attribute) else getattr(tenant, "id", "")
    return name in ("manager", "m")


def test_no_face_touches_the_store() -> None:
    bad = []
    for name, path in _modules():
        if _family(name) not in STORE_FREE:
            continue
        for line, target in _imports(name, path):
            if target == "interpreter.store.Store":  # its record types may be named
                bad.append(f"{name}:{line} imports {target}")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if _reaches_store(node):
                bad.append(f"{name}:{getattr(node, 'lineno', '?')} uses {ast.unparse(node)}")
    assert bad == []


def test_the_rules_would_catch_a_breach(tmp_path: Path) -> None:
    """The walkers see what they look for (so the tests above can fail)."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from ..server import app\nimport docker.errors\nfrom ..store import Store\n"
        "x = d.manager.store.get_session('s')\n"
    )
    targets = [t for _, t in _imports("interpreter.cli.probe", probe)]
    assert "interpreter.server" in targets and "docker.errors" in targets
    assert "interpreter.store.Store" in targets
    assert any(_reaches_store(n) for n in ast.walk(ast.parse(probe.read_text())))
    assert _family("interpreter.server.app") == "server" and _family("interpreter.session") is None
    assert _is_core(PACKAGE / "session.py") and not _is_core(PACKAGE / "cli" / "main.py")


def test_faces_are_packages_and_the_core_is_flat() -> None:
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert packages == ["assistants", "backends", "cli", "inspection", "responses", "server"]
    server = PACKAGE / "server"
    faces = sorted(p.name for p in server.iterdir() if (p / "__init__.py").is_file())
    assert faces == ["azure", "openai", "ui"]


def test_modules_stay_small() -> None:
    sources = [*PACKAGE.rglob("*.py"), *(ROOT / "kernels").glob("*.py")]
    if not (ROOT / "kernels").is_dir():  # an installed wheel: kernels/ is inside
        sources += list((PACKAGE / "kernels").glob("*.py"))
    big = {
        str(p.relative_to(ROOT)): n
        for p in sources
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert big == {}
