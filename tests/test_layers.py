"""The package import graph: layers only point down, and no two packages import each other in a circle.

Every module under ``src/mmxfer`` is parsed with ``ast``; every ``import mmxfer...`` and ``from mmxfer...``
counts, at the top of a module or inside a function. Imports under ``if TYPE_CHECKING:`` are left out:
they name types for annotations and never run. The importlib strings of
:func:`mmxfer.catalog.load_plugins` are the registry's plugin mechanism, not static imports.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "mmxfer"

#: package (a subpackage or a top-level module of mmxfer; "mmxfer" is the package's own __init__) -> layer.
#: A package may import packages of its own layer or lower ones, never higher ones.
LAYERS: dict[str, int] = {
    # core: errors, the registry and its catalog, configs, assets, the language table, console output, memory release,
    # run store
    "mmxfer": 0,
    "errors": 0,
    "registry": 0,
    "config": 0,
    "catalog": 0,
    "assets": 0,
    "languages": 0,
    "console": 0,
    "memory": 0,
    "runs": 0,
    # task specs and loaders, metrics, models
    "tasks": 1,
    "metrics": 1,
    "models": 1,
    # one adapter per task kind
    "kinds": 2,
    # training and evaluation
    "train": 3,
    "evaluation": 3,
    # gap analysis
    "compare": 4,
    # tiny models and synthetic data for tests, benchmarks and the rehearsal
    "testing": 5,
    # the study and the commands
    "study": 6,
    "cli": 6,
    "__main__": 6,
}
#: the run store is core: study orchestration and anything above core lives elsewhere
RUNS_MODULES = {"__init__", "store", "atomic", "env", "lock", "interrupt", "sealed"}
#: nothing in the product imports the test helpers (the catalog finds the tiny trunks as a plugin)
ONLY_IMPORTED_BY_ITSELF = {"testing"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file()


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for sub in child.orelse:  # the else branch runs
                yield from _import_nodes(sub)
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        yield from _import_nodes(child)


def imported_modules(path: Path, text: str | None = None) -> list[tuple[str, int]]:
    """(mmxfer module, line) for every static import of an mmxfer module in ``path`` (or in ``text``, read as
    the source of ``path``)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    text = path.read_text(encoding="utf-8") if text is None else text
    out = []
    for node in _import_nodes(ast.parse(text, str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join([*anchor, *([base] if base else [])])
        for alias in node.names:  # `from mmxfer import catalog` imports the module mmxfer.catalog
            full = f"{base}.{alias.name}"
            out.append((full if is_module(full) else base, node.lineno))
    return [
        (name, line)
        for name, line in dict.fromkeys(out)
        if name == "mmxfer" or name.startswith("mmxfer.")
    ]


def import_graph() -> dict[str, list[tuple[str, str, int]]]:
    """package -> [(imported package, importing module, line)] over every module of src/mmxfer."""
    graph: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for path in sorted(ROOT.rglob("*.py")):
        source = module_name(path)
        for target, line in imported_modules(path):
            graph[package_of(source)].append((package_of(target), source, line))
    return graph


def all_packages() -> set[str]:
    return {package_of(module_name(path)) for path in ROOT.rglob("*.py")}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_every_package_has_a_layer():
    missing = sorted(all_packages() - set(LAYERS))
    assert not missing, f"packages without a layer in tests/test_layers.py LAYERS: {missing}"


def upward_imports(graph: dict[str, list[tuple[str, str, int]]]) -> list[str]:
    return [
        f"{source}:{line} imports {target} (layer {LAYERS[package]} -> {LAYERS[target]})"
        for package, edges in graph.items()
        for target, source, line in edges
        if LAYERS.get(target, -1) > LAYERS.get(package, -1)
    ]


def test_layers_only_point_down():
    upward = upward_imports(import_graph())
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)


def test_package_import_graph_has_no_cycle():
    edges = {
        package: {target for target, _, _ in imports if target != package}
        for package, imports in import_graph().items()
    }
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle between packages: " + " -> ".join(cycle or [])


def test_test_helpers_are_not_imported_by_the_product():
    users = [
        f"{source}:{line} imports {target}"
        for package, edges in import_graph().items()
        for target, source, line in edges
        if target in ONLY_IMPORTED_BY_ITSELF and package != target
    ]
    assert not users, "\n".join(users)


def test_run_store_holds_only_the_store():
    assert {p.stem for p in (ROOT / "runs").glob("*.py")} <= RUNS_MODULES


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("from mmxfer import catalog, config\n", ["mmxfer.catalog", "mmxfer.config"]),
        ("from mmxfer import __version__\n", ["mmxfer"]),
        ("import mmxfer.train.run\n", ["mmxfer.train.run"]),
        ("def f():\n    from mmxfer.study import grid\n", ["mmxfer.study.grid"]),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mmxfer.tasks.base import TaskSpec\n",
            [],
        ),
        (
            "from . import stats\nfrom .gaps import compute_gaps\n",
            ["mmxfer.compare.stats", "mmxfer.compare.gaps"],
        ),
    ],
)
def test_the_parser_sees_every_kind_of_import(code, expected):
    probe = ROOT / "compare" / "probe.py"  # a module name for the text; the file need not exist
    assert [name for name, _ in imported_modules(probe, code)] == expected


def test_the_checks_find_an_upward_import_and_a_cycle():
    graph = {
        "runs": [("train", "mmxfer.runs.study", 3)],
        "train": [("runs", "mmxfer.train.run", 5)],
    }
    assert upward_imports(graph) == ["mmxfer.runs.study:3 imports train (layer 0 -> 3)"]
    assert find_cycle({p: {t for t, _, _ in e} for p, e in graph.items()}) == [
        "runs",
        "train",
        "runs",
    ]
