"""The import rules of docs/architecture.md, read from the code itself: no two files of ganforge import
each other in a circle (directly or through others; imports inside functions and under
``TYPE_CHECKING`` count), the layers point one way, and the torch-free packages stay so."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ganforge

PACKAGE = Path(ganforge.__file__).parent
GROUND = ("ganforge.errors", "ganforge.limits", "ganforge.fsutil", "ganforge.runs", "ganforge.values",
          "ganforge.zipcheck", "ganforge.threads", "ganforge.progress", "ganforge.cli")
TORCH_FREE = ("ganforge.inference", "ganforge.serve", "ganforge.directions.principal", *GROUND)


def _modules(package: Path) -> dict[str, Path]:
    """Every module of the package by dotted name (a package's ``__init__`` is a module of its own)."""
    found = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that the file imports, anywhere in it: ``from a import b`` names the
    module ``a.b`` when there is one, else ``a``."""
    def known(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets |= {known(a.name) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else known(base) for a in node.names}
    return {t for t in targets if t and t != name}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    modules = _modules(package)
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def _under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_no_files_import_each_other_in_a_circle():
    graph = import_graph()
    assert len(graph) > 60  # the scan sees the whole package
    found = circles(graph)
    assert not found, "import circles: " + "; ".join(
        " -> ".join(group) + f" (edges: {', '.join(f'{a}->{b}' for a in group for b in sorted(graph[a]) if b in group)})"
        for group in found)


def test_the_scan_finds_circles_through_functions_and_type_checking(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.b import B\n")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .c import g\n")
    (pkg / "sub" / "c.py").write_text("from ..a import thing\n")
    (pkg / "d.py").write_text("import pkg.a\n")
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.sub.c"}
    assert graph["pkg.sub.c"] == {"pkg.a"} and graph["pkg.d"] == {"pkg.a"}
    assert circles(graph) == [["pkg.a", "pkg.sub.b", "pkg.sub.c"]]


def test_the_ground_floor_imports_nothing_above_it():
    graph = import_graph()
    above = {name: sorted(t for t in graph[name] if not _under(t, GROUND) and t != "ganforge")
             for name in graph if _under(name, GROUND)}
    assert not {k: v for k, v in above.items() if v}


@pytest.mark.parametrize("layer, never", [
    ("ganforge.training", ("ganforge.evaluation", "ganforge.export", "ganforge.bench", "ganforge.serve",
                           "ganforge.directions")),
    ("ganforge.inference", ("ganforge.training", "ganforge.export", "ganforge.evaluation", "ganforge.bench",
                            "ganforge.usercode", "ganforge.serve", "ganforge.directions")),
    ("ganforge.usercode", ("ganforge.training", "ganforge.export", "ganforge.evaluation", "ganforge.serve",
                           "ganforge.directions")),
    ("ganforge.statedict", ("ganforge.training", "ganforge.export", "ganforge.evaluation", "ganforge.bench",
                            "ganforge.usercode", "ganforge.inference", "ganforge.serve", "ganforge.directions")),
    # gan-directions sits above evaluation (its evaluator); readers of directions.json use inference's
    ("ganforge.evaluation", ("ganforge.directions", "ganforge.serve", "ganforge.bench")),
    ("ganforge.serve", ("ganforge.directions", "ganforge.training", "ganforge.evaluation", "ganforge.export")),
])
def test_layers_point_one_way(layer, never):
    graph = import_graph()
    bad = {name: sorted(t for t in graph[name] if _under(t, never)) for name in graph if _under(name, (layer,))}
    assert not {k: v for k, v in bad.items() if v}


def test_torch_free_packages_never_import_torch():
    modules = _modules(PACKAGE)
    bad = []
    for name, path in modules.items():
        if not _under(name, TORCH_FREE):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{name}: {n}" for n in names if n.split(".")[0] in ("torch", "torchvision")]
    assert not bad
