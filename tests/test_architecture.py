"""The package's structure, checked from its source (AST, nothing imported): no module imports a
private name of another module, there are no import circles but the deliberate
``StructureDataset.save/load`` façade over ``io``, and each layer uses only the layers before it
(docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "mlexplore"

#: the layers in order; a module may import its own layer and those before it
LAYERS = ["errors|execution", "data", "io", "descriptors", "datasets", "analysis|models|dft", "training", "simulation", "viz", "widgets",
          "demo", "cli"]
#: the deliberate circle: StructureDataset.save/load read and write through mlexplore.io, so the
#: data and io packages import each other, through mlexplore.data.dataset only
FACADE = "mlexplore.data.dataset"
#: imports below the importer's layer that are deliberate, lazy and documented
ALLOWED_UPWARD = {("mlexplore.data.dataset", "mlexplore.io")}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    return {_module_name(p): (p, ast.parse(p.read_text(encoding="utf-8"), filename=str(p)))
            for p in sorted(ROOT.rglob("*.py"))}


MODULES = _modules()


def _resolve(importer: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = importer.split(".") if path.name == "__init__.py" else importer.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(importer: str) -> list[tuple[str, str | None, int]]:
    """(module, name or None, line) of every import in a module, at any depth (lazy ones too)."""
    path, tree = MODULES[importer]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(importer, path, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.append((sub, None, node.lineno) if sub in MODULES else (target, alias.name, node.lineno))
        elif isinstance(node, ast.Import):
            out.extend((alias.name, None, node.lineno) for alias in node.names)
    return [(m, n, line) for m, n, line in out if m == "mlexplore" or m.startswith("mlexplore.")]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_module_imports_a_private_name_of_another():
    bad = [f"{m} line {line}: {name} from {target}" for m in MODULES for target, name, line in _imports(m)
           if name is not None and _private(name) and target != m]
    # private module attributes reached through an imported module (``symmetry._chunks``)
    for m, (path, tree) in MODULES.items():
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(m, path, node)
                for a in node.names:
                    if f"{target}.{a.name}" in MODULES:
                        aliases[a.asname or a.name] = f"{target}.{a.name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in MODULES and a.asname:
                        aliases[a.asname] = a.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and _private(node.attr)):
                bad.append(f"{m} line {node.lineno}: {node.value.id}.{node.attr}")
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for m in MODULES:
        for target, _, _ in _imports(m):
            while target not in MODULES and "." in target:  # a name inside a module
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != m:
                graph[m].add(target)
    # importing mlexplore.a.b runs mlexplore/a/__init__.py first
    for m in list(graph):
        parts = m.split(".")
        for k in range(2, len(parts)):
            parent = ".".join(parts[:k])
            for importer, targets in graph.items():
                if m in targets and parent in MODULES and not importer.startswith(parent + ".") \
                        and importer != parent:
                    targets.add(parent)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _allowed(component: set[str], graph: dict[str, set[str]]) -> bool:
    """The façade's circle: only data and io modules, and the only data → io imports are the dataset
    module's."""
    def package(m):
        return m.split(".")[1] if m.count(".") else ""

    if not all(package(m) in ("data", "io") for m in component):
        return False
    return all(m == FACADE for m in component if package(m) == "data"
               for t in graph[m] if t in component and package(t) == "io")


def test_no_import_circles():
    graph = _graph()
    circles = [sorted(c) for c in _cycles(graph) if not _allowed(c, graph)]
    assert not circles, "import circles:\n" + "\n".join(" ↔ ".join(c) for c in circles)


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None
    for k, names in enumerate(LAYERS):
        if parts[1] in names.split("|"):
            return k
    return None


def test_each_layer_uses_only_the_layers_before_it():
    bad = []
    for m in MODULES:
        mine = _layer(m)
        for target in _graph()[m]:
            theirs = _layer(target)
            if mine is None or theirs is None or theirs <= mine:
                continue
            if any(m == a and (target == b or target.startswith(b + ".")) for a, b in ALLOWED_UPWARD):
                continue
            bad.append(f"{m} ({LAYERS[mine]}) imports {target} ({LAYERS[theirs]})")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


@pytest.mark.parametrize("snippet, message", [
    ("from .fit import _stop_after\n", "private names"),
    ("from ..descriptors import symmetry\nx = symmetry._chunks\n", "private names"),
    ("import mlexplore.descriptors.symmetry as s\nx = s._chunks\n", "private names"),
])
def test_the_checks_catch_what_they_are_for(snippet, message, monkeypatch):
    """The private-name check fails on a planted private import (so it is not a test that cannot fail)."""
    fake = ROOT / "training" / "_planted_for_test.py"
    tree = ast.parse(snippet)
    monkeypatch.setitem(MODULES, "mlexplore.training._planted_for_test", (fake, tree))
    with pytest.raises(AssertionError, match=message):
        test_no_module_imports_a_private_name_of_another()


def test_the_circle_check_catches_a_planted_circle(monkeypatch):
    a, b = ROOT / "viz" / "_a.py", ROOT / "viz" / "_b.py"
    monkeypatch.setitem(MODULES, "mlexplore.viz._a", (a, ast.parse("from . import _b\n")))
    monkeypatch.setitem(MODULES, "mlexplore.viz._b", (b, ast.parse("from ._a import thing\n")))
    with pytest.raises(AssertionError, match="import circles"):
        test_no_import_circles()


def test_the_layer_check_catches_an_upward_import(monkeypatch):
    planted = ROOT / "descriptors" / "_planted.py"
    monkeypatch.setitem(MODULES, "mlexplore.descriptors._planted",
                        (planted, ast.parse("def f():\n    from ..training import fit\n")))
    with pytest.raises(AssertionError, match="layer order"):
        test_each_layer_uses_only_the_layers_before_it()


def test_one_place_builds_optimisers():
    """``torch.optim`` appears in the training engine only (make_optimizer, the plateau schedule)."""
    import re

    pattern = re.compile(r"torch\.optim|from torch import[^\n]*\boptim\b|import torch\.optim")
    users = sorted(m for m, (path, _) in MODULES.items() if pattern.search(path.read_text(encoding="utf-8")))
    assert users == ["mlexplore.training.engine"]
