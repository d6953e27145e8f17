"""The layers of minidl, read from the source with ``ast``: no import cycle, nothing
imported upward.

Bottom up: ``minidl._kernels`` (may use ``minidl._threads``), ``minidl.autograd`` (nothing
of minidl), ``minidl.ops`` (not ``nn``, ``optim``, ``data``, ``training``, ``cli``), then
``minidl.nn`` and what is built on it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "minidl"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    """{dotted module name: path} of every Python module under minidl/."""
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _sources()
# compiled kernel modules (Cython): importable names without a .py file
COMPILED = {_module_name(p) for p in PACKAGE.rglob("*.pyx")}


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The minidl modules that one import statement in ``module`` names."""
    known = MODULES.keys() | COMPILED
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "minidl"]
    if node.level:  # relative: from the package containing ``module``
        base = module.split(".")
        if not _is_package(module):
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if source.split(".")[0] != "minidl":
        return []
    # ``from package import submodule`` imports the submodule; any other name is an
    # attribute of ``source`` itself
    return [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source for a in node.names]


def _imports(name: str, module_level_only: bool) -> set[str]:
    tree = ast.parse(MODULES[name].read_text(), str(MODULES[name]))
    if module_level_only:
        nodes = _module_level_imports(tree.body)
    else:
        nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    found = set()
    for node in nodes:
        found.update(_resolve(name, node))
    found.discard(name)
    return found


def _module_level_imports(body: list[ast.stmt]) -> list[ast.stmt]:
    """Imports run when the module is imported: top level, and inside module-level
    if / try blocks (not functions or classes)."""
    found = []
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If):
            found += _module_level_imports(node.body) + _module_level_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                found += _module_level_imports(block)
            for handler in node.handlers:
                found += _module_level_imports(handler.body)
    return found


def _graph(module_level_only: bool = True) -> dict[str, set[str]]:
    return {name: _imports(name, module_level_only) for name in MODULES}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


# ---- the checker itself ---------------------------------------------------------------
def test_find_cycle_finds_a_cycle_and_only_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"a"}}) == ["a", "a"]


def test_resolve_reads_every_import_form():
    def edges(module: str, source: str) -> list[str]:
        return _resolve(module, ast.parse(source).body[0])

    assert edges("minidl.ops.math", "from minidl.ops import _validation as V") == [
        "minidl.ops._validation"
    ]
    assert edges("minidl.ops.math", "from . import _validation") == ["minidl.ops._validation"]
    assert edges("minidl.ops", "from .math import add") == ["minidl.ops.math"]
    assert edges("minidl.models", "from minidl import nn") == ["minidl.nn"]
    assert edges("minidl.models", "from minidl.nn import Module") == ["minidl.nn"]
    assert edges("minidl.models", "from .. import x") == []  # outside the package
    assert edges("minidl.ops.conv", "from minidl import _kernels as K") == ["minidl._kernels"]
    assert edges("minidl.cli", "import minidl.nn.functional as F") == ["minidl.nn.functional"]
    assert edges("minidl.cli", "import numpy as np") == []


def test_every_import_resolves_to_a_module():
    known = MODULES.keys() | COMPILED
    for name, targets in _graph(module_level_only=False).items():
        assert targets <= known, (name, targets - known)


# ---- the tree -------------------------------------------------------------------------
def test_no_import_cycle():
    graph = _graph()
    assert len(graph) > 30  # the walk found the package
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_autograd_imports_nothing_of_minidl():
    assert _imports("minidl.autograd", module_level_only=False) == set()


@pytest.mark.parametrize("module", sorted(n for n in MODULES if _within(n, "minidl.ops")))
def test_ops_import_nothing_above_them(module):
    above = ("minidl.nn", "minidl.optim", "minidl.data", "minidl.training", "minidl.cli")
    upward = {
        t for t in _imports(module, module_level_only=False) if any(_within(t, a) for a in above)
    }
    assert upward == set(), f"{module} imports {sorted(upward)}"


def test_kernels_import_only_threads():
    kernels = [n for n in MODULES if _within(n, "minidl._kernels")]
    assert kernels
    for module in kernels:
        outside = {
            t
            for t in _imports(module, module_level_only=False)
            if not _within(t, "minidl._kernels")
        }
        assert outside <= {"minidl._threads"}, f"{module} imports {sorted(outside)}"
    # the Cython sources too (no ast for them: their import lines)
    line = re.compile(
        r"^\s*(?:from\s+(minidl[\w.]*)\s+c?import\s+([\w, ]*)|c?import\s+(minidl[\w.]*))"
    )
    for path in sorted((PACKAGE / "_kernels").glob("*.p[yx][xd]")):
        for text in path.read_text().splitlines():
            match = line.match(text)
            if not match:
                continue
            source, names, module = match.groups()
            if source == "minidl":  # from minidl import x: the module minidl.x
                targets = [f"minidl.{n.strip()}" for n in names.split(",")]
            else:
                targets = [source or module]
            for target in targets:
                assert _within(target, "minidl._kernels") or target == "minidl._threads", (
                    path.name,
                    target,
                )


# Entry points that import minidl inside their functions (minidl/__init__ never imports
# them, so this is no cycle); every library module imports at module level.
LAZY_ENTRY_POINTS = ("minidl.cli", "minidl.info", "minidl.bench")


def test_no_function_level_import_of_minidl():
    """A minidl module imported inside a function is a dependency the graph above does
    not see (or a cycle hidden from it); third-party packages may still be imported
    lazily."""
    late = {}
    for name in MODULES:
        if any(_within(name, e) for e in LAZY_ENTRY_POINTS):
            continue
        hidden = _imports(name, module_level_only=False) - _imports(name, module_level_only=True)
        if hidden:
            late[name] = sorted(hidden)
    assert late == {}


def test_cython_directives_are_set_only_in_setup_py():
    # a file-level "# cython:" line would override setup.py's debug-build bounds checks
    headers = [
        path.name
        for path in sorted((PACKAGE / "_kernels").glob("*.p[yx][xd]"))
        if any(line.startswith("# cython:") for line in path.read_text().splitlines()[:5])
    ]
    assert headers == []
