"""tangrnn_core's imports: no cycle among modules, no private name taken from another module, every verb found.

The import graph is read from the source (``ast``), not by importing: a cycle that happens to import in today's
order is still caught, and no module runs. A module-level import is any outside a function body (in a
``try``, an ``if`` or a class body too), except under ``if TYPE_CHECKING:``, which never runs; an import inside
a function runs when the function is called, after every module has loaded, so it breaks no cycle and makes
none. Private names (``_name``) are refused wherever the import stands: they are their module's own business,
and a module that needs one from elsewhere needs a public name there.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import tangrnn_core
from tangrnn_core import cli

PACKAGE = "tangrnn_core"
ROOT = Path(tangrnn_core.__file__).resolve().parent


@dataclass(frozen=True)
class Import:
    """One import of a module of the package by another (or the same) module of the package.

    Args:
        source: the importing module.
        target: the imported module (for ``from X import name``: ``X.name`` if that is a module, else ``X``).
        names: the names taken (``from X import a, b``); empty for ``import X``.
        line: the line of the statement.
        module_level: whether it runs when the importing module loads.
    """

    source: str
    target: str
    names: tuple[str, ...]
    line: int
    module_level: bool


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package under ``root``: dotted name -> file (``pkg.sub`` for ``pkg/sub/__init__.py``)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(tree: ast.Module):
    """(import statement, whether it runs at module load) for every import of ``tree``, outside ``if
    TYPE_CHECKING:`` blocks."""

    def walk(node: ast.AST, module_level: bool):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:  # the else branch is what runs
                yield from walk(child, module_level)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, module_level
            return
        inner = module_level and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            yield from walk(child, inner)

    yield from walk(tree, True)


def imports_of(module: str, path: Path, modules: dict[str, Path], package: str) -> list[Import]:
    """The imports of the package's modules in ``module`` (at ``path``); relative imports are resolved."""
    is_package = path.name == "__init__.py"
    found = []
    for node, module_level in _statements(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == package or alias.name.startswith(package + "."):
                    found.append(Import(module, alias.name, (), node.lineno, module_level))
            continue
        base = node.module or ""
        if node.level:  # from .x import y: relative to the module's package
            anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
            base = ".".join(anchor + ([base] if base else []))
        if base != package and not base.startswith(package + "."):
            continue
        names = tuple(alias.name for alias in node.names)
        submodules = [f"{base}.{name}" for name in names if f"{base}.{name}" in modules]
        for target in submodules:
            found.append(Import(module, target, (target.rsplit(".", 1)[1],), node.lineno, module_level))
        others = tuple(name for name in names if f"{base}.{name}" not in modules)
        if others:
            found.append(Import(module, base, others, node.lineno, module_level))
    return found


def import_graph(root: Path, package: str) -> dict[str, list[Import]]:
    """Every module of the package -> its imports of the package's modules."""
    modules = module_files(root, package)
    return {module: imports_of(module, path, modules, package) for module, path in modules.items()}


def cycles(graph: dict[str, list[Import]]) -> list[list[str]]:
    """The cycles among module-level imports, one per strongly connected component, each as a path of modules
    that ends where it starts (``[a, b, a]``)."""
    edges = {
        module: sorted({i.target for i in imports if i.module_level and i.target in graph})
        for module, imports in graph.items()
    }
    # Tarjan's strongly connected components, iteratively (no recursion limit to think about).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges[node]:
                    components.append(set(component))
    return [_path_through(component, edges) for component in components]


def _path_through(component: set[str], edges: dict[str, list[str]]) -> list[str]:
    """A shortest cycle through the component's first module (breadth first, inside the component)."""
    start = min(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in edges[node]:
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if child in component and child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a strongly connected component always has one


def private_imports(imports: list[Import]) -> list[Import]:
    """The imports that take a private name (``_name``, not ``__dunder__``) from another module."""
    return [
        i
        for i in imports
        if i.target != i.source
        and any(name.startswith("_") and not (name.startswith("__") and name.endswith("__")) for name in i.names)
    ]


GRAPH = import_graph(ROOT, PACKAGE)
CYCLES = cycles(GRAPH)


def _where(module: str) -> str:
    return str(module_files(ROOT, PACKAGE)[module].relative_to(ROOT.parent))


# -- the package ---------------------------------------------------------------------------------------------


def test_the_walk_sees_the_package():
    # Guards the tests below against passing on an empty or misread graph.
    assert len(GRAPH) > 40 and "tangrnn_core.cli" in GRAPH and "tangrnn_core.decoding" in GRAPH
    cli_targets = {i.target for i in GRAPH["tangrnn_core.cli"] if i.module_level}
    assert {"tangrnn_core.arguments", "tangrnn_core.errors"} <= cli_targets


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_import_cycle_through(module):
    for cycle in CYCLES:
        assert module not in cycle, "module-level import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_private_name_from_another_module(module):
    found = private_imports(GRAPH[module])
    assert not found, "; ".join(
        f"{_where(module)}:{i.line} imports {', '.join(n for n in i.names if n.startswith('_'))} from {i.target}"
        for i in found
    )


# -- the checker itself, on a made-up package ----------------------------------------------------------------


def test_the_checker_finds_cycles_and_private_names_and_ignores_what_does_not_count(tmp_path):
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "from pkg.b import thing\n",
        "b.py": "import pkg.c\nthing = 1\n",
        "c.py": "from . import a\n",  # a -> b -> c -> a
        "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.e import E\n",
        "e.py": "def f():\n    from pkg.d import _hidden\n    return _hidden\nfrom pkg.d import __doc__\n",
        "sub/__init__.py": "from .f import _own\n",
        "sub/f.py": "_own = 1\nclass K:\n    from pkg.sub import g\n",
        "sub/g.py": "from ..sub import f\n",  # f -> g (class body: module level) -> f
    }
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    graph = import_graph(root, "pkg")
    assert sorted(cycles(graph)) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"], ["pkg.sub.f", "pkg.sub.g", "pkg.sub.f"]]
    found = {(i.source, i.line, i.names) for module in graph for i in private_imports(graph[module])}
    # e's lazy import is private too (counted wherever it stands); __doc__ is no private name
    assert found == {("pkg.e", 2, ("_hidden",)), ("pkg.sub", 1, ("_own",))}


# -- the verb table ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("verb", list(cli.VERBS))
def test_every_verb_resolves_to_a_function(verb):
    target = cli.VERBS[verb].target
    assert callable(cli.resolve(target)), f"{verb}: {target} is not callable"


def test_the_table_lists_the_verbs_lightning_cli_knows():
    from tangrnn_core.lightning_cli import TangrnnCLI

    assert [name for name, verb in cli.VERBS.items() if verb.lightning] == list(TangrnnCLI.subcommands())
