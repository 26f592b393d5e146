#!/usr/bin/env python3
"""Find import cycles in spikemllm, between modules and between packages; exit 1 if there are any.

Why a script and not a linter plug-in: the rule is the project's own (the package is a tree of layers, each
importing only those below it), and the check must run in the tests with nothing extra installed.

Every ``import`` / ``from ... import`` counts, also inside functions: a local import that only dodges a cycle
at start-up still ties the two modules together. Imports under ``if TYPE_CHECKING:`` do not count (they never
run). ``from pkg import name`` counts as importing the module ``pkg.name`` when that module exists, else
``pkg`` itself.

Two graphs are checked:

* modules: ``spikemllm.nn.spike_linear -> spikemllm.nn.stats -> spikemllm.nn.spike_linear`` is a cycle;
* packages: each module stands for its top-level part of spikemllm (``spikemllm.nn``, ``spikemllm.config``);
  ``spikemllm.energy -> spikemllm.hardware -> spikemllm.energy`` is a cycle even when no two modules form one.
  The root ``spikemllm/__init__.py`` (the public facade) is its own node, ``spikemllm``.

Usage: ``python scripts/check_imports.py [package_dir]`` (default: ``spikemllm`` next to this script's folder).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Line numbers of statements inside ``if TYPE_CHECKING:`` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            t = node.test
            name = t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                for stmt in node.body:
                    for sub in ast.walk(stmt):
                        if hasattr(sub, "lineno"):
                            lines.add(sub.lineno)
    return lines


def imports_of(root: Path, path: Path, modules: set[str]) -> set[str]:
    """The spikemllm modules that ``path`` imports."""
    me = module_name(root, path)
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip = _type_checking_lines(tree)
    out: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in modules:
                    out.add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = me.split(".") if is_pkg else me.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not (target == root.name or target.startswith(root.name + ".")):
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.add(sub if sub in modules else target)
    out.discard(me)
    return {m for m in out if m in modules}


def package_of(name: str, root_name: str) -> str:
    parts = name.split(".")
    return name if len(parts) == 1 else ".".join(parts[:2])


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def one_cycle(graph: dict[str, set[str]], comp: list[str]) -> list[str]:
    """A shortest closed path through the component's first node, for the message."""
    start, members = comp[0], set(comp)
    prev: dict[str, str] = {}
    frontier, seen = [start], {start}
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, ())):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return list(reversed(path)) + [start]
                if w in members and w not in seen:
                    seen.add(w)
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp


def check(root: Path) -> list[str]:
    """Messages, one per cycle (empty: no cycles)."""
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    modules = {module_name(root, p) for p in files}
    graph = {module_name(root, p): imports_of(root, p, modules) for p in files}
    pkg_graph: dict[str, set[str]] = {}
    for m, deps in graph.items():
        a = package_of(m, root.name)
        pkg_graph.setdefault(a, set()).update(package_of(d, root.name) for d in deps if package_of(d, root.name) != a)
    msgs = [f"module cycle: {' -> '.join(one_cycle(graph, c))}" for c in find_cycles(graph)]
    msgs += [f"package cycle: {' -> '.join(one_cycle(pkg_graph, c))}" for c in find_cycles(pkg_graph)]
    return msgs


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "spikemllm"
    msgs = check(root.resolve())
    for m in msgs:
        print(m)
    if not msgs:
        print(f"no import cycles in {root}")
    return 1 if msgs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
