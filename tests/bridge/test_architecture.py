"""The bridge package's shape: layers that only point down, no import circles, rooms of a size.

The layering is written out below (:data:`ALLOWED`) so that an arrow that points up fails here
with the edge named, instead of surfacing months later as an import loop or as ``forward/``
reaching into the store's internals. Every ``import`` counts, at module level or inside a
function or an ``if TYPE_CHECKING:`` block: a lazy import is still a dependency, just one that
hides from the reader.

docs/architecture.md draws the same map for people.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import grafana_agent_bridge

PACKAGE = "grafana_agent_bridge"
ROOT = Path(grafana_agent_bridge.__file__).resolve().parent

# What each top-level part may import, besides itself. Read bottom-up:
#   foundation  labels, regex, redact, metrics, decompress, histogram, lifecycle, stopsignals,
#               wakeup,
#               config.units (the one duration/size grammar: a part of its own, see PART_OF)
#   contracts   storage (what a store offers: series, samples, the change feed), config
#   parts       store (implements storage), promql (reads storage), remote_write and
#               remote_write2 (the 1.0 and 2.0 codecs), otlp (OTLP decoding and translation)
#   edges       api (HTTP: promql + storage + the ingest codecs), forward (reads storage,
#               sends with the 1.0 or 2.0 codec),
#               collect (writes storage)
#   top         daemon (wires the parts), cli and __main__, plugin, config_docs, snapconfig
# Nothing below the top may import ``store``: the store is reached through ``storage``.
FOUNDATION = {"<package>", "units"}
# Modules that form a part of their own, below the package they sit in.
PART_OF = {"config.units": "units"}
ALLOWED: dict[str, set[str]] = {
    "<package>": set(),
    "units": set(),
    "regex": set(),
    "redact": set(),
    "decompress": set(),
    "lifecycle": set(),
    "wakeup": set(),
    "stopsignals": {"wakeup"},
    "histogram": set(),
    "metrics": set(),
    "labels": {"regex"},
    "config": {"redact"},
    "logsetup": {"config"},
    "tracing": {"config", "redact"},
    "storage": {"labels", "histogram"},  # series data carry native histogram samples
    "store": {"storage", "labels", "metrics", "redact", "histogram"},
    "promql": {"storage", "labels", "regex", "histogram"},
    "remote_write": {"storage", "labels", "decompress", "histogram"},
    "remote_write2": {"remote_write", "storage", "labels", "decompress", "histogram"},
    "otlp": {"storage", "labels", "decompress", "histogram", "lifecycle", "metrics", "redact"},
    "api": {
        "promql",
        "storage",
        "remote_write",
        "remote_write2",
        "otlp",
        "labels",
        "metrics",
        "lifecycle",
        "tracing",
        "redact",
        "histogram",
        "wakeup",
    },
    "forward": {
        "storage",
        "remote_write",
        "remote_write2",
        "labels",
        "config",
        "metrics",
        "redact",
        "histogram",
    },
    "collect": {"storage", "labels", "config", "metrics", "redact"},
    "snapconfig": {"config", "redact"},
    "config_docs": {"config", "snapconfig"},
    "plugin": {"metrics", "stopsignals", "redact"},
    "daemon": {
        "api",
        "collect",
        "forward",
        "store",
        "promql",
        "storage",
        "remote_write",
        "otlp",
        "config",
        "labels",
        "lifecycle",
        "metrics",
        "redact",
        "stopsignals",
        "tracing",
        "logsetup",
    },
    "cli": {"daemon", "config", "logsetup", "promql", "redact", "store", "storage", "plugin"},
    "__main__": {"cli"},
}
for _part, _allowed in ALLOWED.items():
    if _part not in FOUNDATION:
        _allowed |= FOUNDATION

# Known arrows against the layering, each with why it is still there. A NEW one fails; an entry
# that no longer occurs is only reported (so fixing one never breaks the build).
KNOWN_UPWARD: dict[tuple[str, str], str] = {}

# Inside a part: modules that must not import others of the same part.
INNER_RULES: list[tuple[str, str, str]] = [
    # The evaluator evaluates operands and calls the operators with values: an operator module
    # that imports the engine or the evaluator is the import loop this package used to have.
    ("promql.aggregations", "promql.engine", "operators get values, not the evaluator"),
    ("promql.aggregations", "promql.evaluator", "operators get values, not the evaluator"),
    ("promql.binops", "promql.engine", "operators get values, not the evaluator"),
    ("promql.binops", "promql.evaluator", "operators get values, not the evaluator"),
    ("promql.functions", "promql.engine", "operators get values, not the evaluator"),
    ("promql.functions", "promql.evaluator", "operators get values, not the evaluator"),
    # The engine does not know its test harness.
    ("promql", "promql.promqltest", "the promqltest harness sits on the engine, not in it"),
    # The store's parts own their state; only the facade composes them.
    ("store", "store.db", "the store's parts must not reach back into the facade"),
]
# Modules allowed to import what INNER_RULES forbids to their part (the composers themselves).
INNER_EXEMPT = {
    "promql.promqltest": {"promql.promqltest"},
    "store.db": {"store.db"},
    "store": {"store.db"},  # the package re-exports Store
    "store.metrics": {"store.db"},  # the store's gauges read the composed Store
}

MAX_CLASS_LINES = 400
MAX_FACADE_LINES = 400  # store/db.py: open/close, lock order, delegation
# Known offenders while their split is in flight (a NEW one fails; a fixed one is only stale).
CLASS_SIZE_ALLOWED: dict[str, str] = {}


@dataclass(frozen=True)
class Module:
    name: str
    """Dotted, without the package prefix: ``promql.engine``; ``<package>`` for ``__init__``."""
    path: Path
    is_package: bool

    @property
    def part(self) -> str:
        return PART_OF.get(self.name) or self.name.split(".")[0]


def _modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        name = ".".join(parts) or "<package>"
        found[name] = Module(name, path, is_package)
    return found


MODULES = _modules()


def _resolve(dotted: str) -> str | None:
    """The module a dotted name (``grafana_agent_bridge.x.y[.attr]``) lives in."""
    name = dotted.removeprefix(PACKAGE).removeprefix(".")
    if not name:
        return "<package>"
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or "<package>"


def _imports(module: Module) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import of the package in ``module``."""
    tree = ast.parse(module.path.read_text(), str(module.path))
    here = "" if module.name == "<package>" else module.name
    base = here if module.is_package else here.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    target = _resolve(alias.name)
                    if target is not None:
                        yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                target = ".".join(p for p in (anchor, node.module or "") if p)
                dotted = f"{PACKAGE}.{target}" if target else PACKAGE
            elif node.module and (node.module == PACKAGE or node.module.startswith(PACKAGE + ".")):
                dotted = node.module
            else:
                continue
            for alias in node.names:
                # ``from pkg import submodule`` depends on the submodule, not the package.
                resolved = _resolve(f"{dotted}.{alias.name}")
                if resolved is not None:
                    yield resolved, node.lineno


def _graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: first line}; self-imports dropped."""
    graph: dict[str, dict[str, int]] = {}
    for module in MODULES.values():
        edges: dict[str, int] = {}
        for target, line in _imports(module):
            if target != module.name:
                edges.setdefault(target, line)
        graph[module.name] = edges
    return graph


GRAPH = _graph()


def _where(source: str, target: str) -> str:
    return f"{MODULES[source].path.relative_to(ROOT.parent)}:{GRAPH[source][target]} -> {target}"


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root, edges in graph.items():
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(edges))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, {}))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


# -- the checks ---------------------------------------------------------------------------------


def test_the_scan_sees_the_package() -> None:
    """The graph is not vacuous: the parts and some known arrows are there."""
    assert {"store", "promql", "api", "forward", "storage", "daemon"} <= {
        m.part for m in MODULES.values()
    }
    assert "store" in {t.split(".")[0] for t in GRAPH["daemon"]}
    assert any(t.startswith("promql") for t in GRAPH["api.query"])


def test_every_part_has_a_place_in_the_layering() -> None:
    unplaced = sorted({m.part for m in MODULES.values()} - ALLOWED.keys())
    assert not unplaced, f"new top-level parts {unplaced}: add them to ALLOWED with their arrows"


def test_the_layering_itself_has_no_circle() -> None:
    layering = {part: dict.fromkeys(allowed, 0) for part, allowed in ALLOWED.items()}
    assert _cycles(layering) == []


def test_no_import_circle_between_modules() -> None:
    cycles = _cycles(GRAPH)
    described = [
        " <-> ".join(c) + ": " + "; ".join(_where(a, b) for a in c for b in c if b in GRAPH[a])
        for c in cycles
    ]
    assert not cycles, "import circles:\n" + "\n".join(described)


def _upward() -> list[tuple[str, str]]:
    return [
        (source, target)
        for source, edges in GRAPH.items()
        for target in edges
        if MODULES[target].part != MODULES[source].part
        and MODULES[target].part not in ALLOWED.get(MODULES[source].part, set())
    ]


def test_no_upward_arrow_between_parts() -> None:
    upward = [_where(s, t) for s, t in _upward() if (s, t) not in KNOWN_UPWARD]
    assert not upward, "imports the layering does not allow:\n" + "\n".join(upward)


def test_the_known_exceptions_are_few_and_named() -> None:
    """The allow-lists stay short, and say what they excuse (stale entries are printed)."""
    assert len(KNOWN_UPWARD) + len(CLASS_SIZE_ALLOWED) <= 3
    assert all(why for why in [*KNOWN_UPWARD.values(), *CLASS_SIZE_ALLOWED.values()])
    stale = sorted(set(KNOWN_UPWARD) - set(_upward()))
    if stale:
        print(f"KNOWN_UPWARD entries no longer needed: {stale}")


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize(("source", "forbidden", "why"), INNER_RULES)
def test_no_upward_arrow_inside_a_part(source: str, forbidden: str, why: str) -> None:
    offenders = [
        _where(name, target)
        for name, edges in GRAPH.items()
        if _within(name, source) and not _within(name, forbidden)
        for target in edges
        if _within(target, forbidden) and target not in INNER_EXEMPT.get(name, set())
    ]
    assert any(_within(name, source) for name in GRAPH), f"no module {source}: stale rule"
    assert not offenders, f"{why}:\n" + "\n".join(offenders)


def _classes() -> Iterator[tuple[str, int]]:
    for module in MODULES.values():
        for node in ast.walk(ast.parse(module.path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                yield f"{module.name}.{node.name}", node.end_lineno - node.lineno + 1


def test_no_class_over_the_size_of_a_room() -> None:
    sizes = dict(_classes())
    too_big = {name: n for name, n in sizes.items() if n > MAX_CLASS_LINES}
    unexpected = {n: s for n, s in too_big.items() if n not in CLASS_SIZE_ALLOWED}
    assert not unexpected, f"classes over {MAX_CLASS_LINES} lines: {unexpected}"
    fixed = sorted(set(CLASS_SIZE_ALLOWED) - set(too_big))
    if fixed:
        print(f"CLASS_SIZE_ALLOWED entries that fit now: {fixed}")


def test_the_store_is_a_facade() -> None:
    lines = len(MODULES["store.db"].path.read_text().splitlines())
    assert lines <= MAX_FACADE_LINES, f"store/db.py has {lines} lines: the parts belong elsewhere"


# Metric objects a module must not build at import time: the registry is injected (the daemon
# makes one and hands it down; the plugin process makes its own), so that two daemons in one
# process (the tests) or a tool that opens the store never share counters behind their backs.
IMPORT_TIME_FORBIDDEN = {"Registry", "Counter", "Gauge", "Histogram"}


def _import_time_calls(tree: ast.AST) -> Iterator[ast.Call]:
    """Calls that run when the module is imported: everything but function and lambda bodies
    (decorators and default values do run at import)."""
    todo: list[ast.AST | None] = [tree]
    while todo:
        node = todo.pop()
        if node is None:  # an absent keyword-only default, an absent return annotation
            continue
        if isinstance(node, ast.Call):
            yield node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            todo += [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]
            todo.append(node.returns)
            continue
        if isinstance(node, ast.Lambda):
            todo += [*node.args.defaults, *node.args.kw_defaults]
            continue
        todo += ast.iter_child_nodes(node)


def _metrics_built_at_import(source: str) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for call in _import_time_calls(ast.parse(source)):
        func = call.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name in IMPORT_TIME_FORBIDDEN:
            found.append((name, call.lineno))
    return found


def test_no_module_builds_a_metrics_registry_at_import_time() -> None:
    built = [
        f"{module.path.relative_to(ROOT.parent)}:{line} {name}()"
        for module in MODULES.values()
        for name, line in _metrics_built_at_import(module.path.read_text())
    ]
    assert not built, "module-global metrics; inject the registry instead:\n" + "\n".join(built)


def test_the_import_time_scan_sees_module_globals_and_skips_function_bodies() -> None:
    source = (
        "METRICS = Registry()\n"
        "class A:\n    G = metrics.Gauge('g', 'h')\n"
        "def f(r=Registry()):\n    return Registry()\n"
        "g = lambda: Counter('c', 'h')\n"
    )
    assert sorted(_metrics_built_at_import(source)) == [
        ("Gauge", 3),
        ("Registry", 1),
        ("Registry", 4),
    ]


def test_the_checks_catch_what_they_guard() -> None:
    """The cycle finder and the layering rule fire on a made-up violation."""
    assert _cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {}}) == [["a", "b", "c"]]
    assert "store" not in ALLOWED["promql"] and "store" not in ALLOWED["forward"]
    assert "daemon" not in ALLOWED["api"]
