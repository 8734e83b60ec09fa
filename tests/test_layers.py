"""The architecture rule: a module imports only from its own layer or below, and L0 is sans-IO."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src" / "sippa"

LAYER = {"sip": 0, "sdp": 0, "rtp": 0, "net": 1, "media": 2, "app": 3, "interfaces": 4}
# L0 gets time and randomness as arguments and never touches a socket.
FORBIDDEN_IN_L0 = {
    "asyncio", "socket", "ssl", "time", "random", "secrets", "selectors", "threading",
}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py"))


def test_there_are_modules_to_check() -> None:
    assert len(_modules()) > 5


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_layering(path: Path) -> None:
    parts = path.relative_to(SRC).parts
    if len(parts) < 2 or parts[0] not in LAYER:
        return
    own = LAYER[parts[0]]
    for name in _imports(path):
        top = name.split(".")
        if top[0] == "sippa" and len(top) > 1 and top[1] in LAYER:
            assert LAYER[top[1]] <= own, f"{path.name} (L{own}) imports {name} (L{LAYER[top[1]]})"
        if own == 0:
            assert top[0] not in FORBIDDEN_IN_L0, f"sans-IO module {path.name} imports {name}"
