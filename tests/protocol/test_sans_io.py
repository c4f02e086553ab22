"""The WebSocket core is sans-I/O: no module directly in protocol/ imports an I/O library."""

from __future__ import annotations

import ast
from pathlib import Path

import protocol

FORBIDDEN = {"asyncio", "socket", "ssl", "uvloop", "selectors"}
PROTOCOL_DIR = Path(protocol.__file__).parent


def _imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_sans_io_modules_import_no_io() -> None:
    modules = sorted(p for p in PROTOCOL_DIR.glob("*.py") if p.name != "echo.py")
    names = {p.name for p in modules}
    assert {"connection.py", "frames.py", "handshake.py", "deflate.py"} <= names
    for path in modules:
        roots = _imported_roots(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        bad = roots & FORBIDDEN
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_checker_detects_forbidden_imports() -> None:
    tree = ast.parse("import asyncio.events\nfrom ssl import SSLContext\nimport os\n")
    assert _imported_roots(tree) & FORBIDDEN == {"asyncio", "ssl"}
