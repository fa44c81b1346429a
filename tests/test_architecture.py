"""The shape the README promises: imports point downward only (`tools -> adapters -> ledger ->
schemas`), and no module imports another that imports it back (imports inside functions included:
a cycle hidden in a function is still a cycle)."""

from __future__ import annotations

import ast
from functools import cache

from tests.conftest import ROOT

LAYERS = ("schemas", "ledger", "adapters", "tools")  # each may import only those before it


@cache
def project_modules() -> dict[str, set[str]]:
    """Every module of the four layers and the project modules it imports, anywhere in its code."""
    files = {}
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            files[name] = path
    graph = {}
    for name, path in files.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in files}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = {f"{node.module}.{a.name}" for a in node.names} & set(files)
                found |= subs if len(subs) == len(node.names) else subs | ({node.module} & set(files))
        graph[name] = found - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_imports_point_downward_only():
    graph = project_modules()
    upward = sorted((m, i) for m, imports in graph.items() for i in imports
                    if LAYERS.index(i.split(".")[0]) > LAYERS.index(m.split(".")[0]))
    assert upward == []
    assert len(graph) > 100  # the walk found the project


def test_no_module_imports_one_that_imports_it_back():
    assert cycles(project_modules()) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
