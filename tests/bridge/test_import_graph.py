"""The bridge package's import graph has no loop, and the PromQL operators do not reach back
into the evaluator (they get values and a context, so they must not need it).

Every import counts, including those inside functions: a lazy import hides a loop from the
interpreter, not from a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grafana_agent_bridge

ROOT = Path(grafana_agent_bridge.__file__).parent


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for f in ROOT.rglob("*.py"):
        parts = list(f.relative_to(ROOT.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the bridge modules it imports (``from pkg import mod`` counts as ``mod``)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, (path, is_pkg) in mods.items():
        base = name.split(".") if is_pkg else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                prefix = base[: len(base) - node.level + 1] if node.level else []
                target = ".".join(prefix + ([node.module] if node.module else []))
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
                found = subs if len(subs) == len(node.names) else [target, *subs]
            elif isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            else:
                continue
            graph[name].update(t for t in found if t in mods and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_bridge_package_has_no_import_loop() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_loop() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_promql_operators_do_not_import_the_evaluator() -> None:
    graph = import_graph()
    evaluator = {"grafana_agent_bridge.promql.evaluator", "grafana_agent_bridge.promql.engine"}
    operators = [
        m
        for m in graph
        if m.startswith("grafana_agent_bridge.promql.functions")
        or m.rsplit(".", 1)[-1] in ("aggregations", "binops", "info", "numeric", "values")
    ]
    assert len(operators) > 5
    for m in operators:
        assert not graph[m] & evaluator, m


def test_promql_does_not_depend_on_the_store() -> None:
    graph = import_graph()
    for m, deps in graph.items():
        if m.startswith("grafana_agent_bridge.promql"):
            assert not any(d.startswith("grafana_agent_bridge.store") for d in deps), m
