"""The charm's rooms: ``charm.py`` composes the side modules, nothing imports it back.

The side subjects (query token, peer databags, exchange entries, UID rules, status, snap
source, relation wire formats) each live in their own module under ``src/`` so they can be read
and tested alone. This keeps that true: no import circle among them, none of them imports the
charm, and the charm library in ``lib/`` imports nothing of ``src/`` (it is published on its
own and used by other charms).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
LIB = ROOT / "lib" / "charms" / "grafana_agent_bridge"
MODULES = {path.stem: path for path in SRC.glob("*.py")}


def _imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


GRAPH = {name: _imported_names(path) & MODULES.keys() - {name} for name, path in MODULES.items()}


def _reaches(start: str, goal: str) -> bool:
    seen: set[str] = set()
    todo = list(GRAPH[start])
    while todo:
        name = todo.pop()
        if name == goal:
            return True
        if name not in seen:
            seen.add(name)
            todo.extend(GRAPH.get(name, ()))
    return False


def test_the_scan_sees_the_charm_and_its_rooms() -> None:
    assert {"charm", "peers", "query_token", "exchange", "datasources"} <= MODULES.keys()
    assert {"peers", "query_token", "exchange"} <= GRAPH["charm"]


def test_no_module_imports_the_charm() -> None:
    importers = sorted(name for name, imports in GRAPH.items() if "charm" in imports)
    assert not importers, f"{importers} import charm.py: move what they need into a module"


def test_no_import_circle_among_the_charm_modules() -> None:
    circles = sorted(name for name in GRAPH if _reaches(name, name))
    assert not circles, f"modules on an import circle: {circles}"


def test_the_library_does_not_import_the_charm_source() -> None:
    for path in LIB.rglob("*.py"):
        leaked = _imported_names(path) & MODULES.keys()
        assert not leaked, f"{path.relative_to(ROOT)} imports {sorted(leaked)} from src/"


MAX_CLASS_LINES = 400
"""The size of a room (the same bound tests/bridge/test_architecture.py holds the bridge to)."""


def test_no_charm_class_over_the_size_of_a_room() -> None:
    """The charm class composes the side modules; a subject that grows it past this belongs in
    a module of its own, as the query token, the peers and the snap did."""
    sizes = {
        f"{name}.{node.name}": node.end_lineno - node.lineno + 1
        for name, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and node.end_lineno is not None
    }
    assert "charm.GrafanaAgentBridgeCharm" in sizes
    too_big = {name: n for name, n in sizes.items() if n >= MAX_CLASS_LINES}
    assert not too_big, f"classes of {MAX_CLASS_LINES} lines or more: {too_big}"
