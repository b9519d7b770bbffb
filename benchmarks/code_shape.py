"""The shape of a source tree, as JSON: its longest functions, its largest parameter lists, the share of lines
over 100 characters and the module tree of its packages.

    python benchmarks/code_shape.py [TREE] [--out FILE] [--top N]

``TREE`` is a package folder (default ``src/mmxfer``); names are given relative to its parent
(``mmxfer/cli.py:12``, ``mmxfer.cli.build_parser``), so trees of two checkouts compare name by name.

- ``longest_functions``: every ``def``/``async def`` (methods and nested functions too, the latter named
  ``outer.<locals>.inner`` as Python's ``__qualname__`` does), longest first; ``lines`` counts from the ``def``
  line to the last line of the body (decorators not counted).
- ``largest_parameter_lists``: the same functions by how many parameters they take (positional-only, ordinary,
  ``*args``, keyword-only and ``**kwargs``), not counting the ``self``/``cls`` of a method.
- ``long_lines``: lines longer than 100 characters over all lines of the tree's ``.py`` files (``share``), and
  over the lines that are not blank (``share_of_non_blank``).
- ``module_tree``: each package's modules with their line counts, and its sub-packages, nested.
"""

from __future__ import annotations

import argparse
import ast
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TREE = ROOT / "src" / "mmxfer"
OUT = ROOT / "benchmarks" / "results" / "code_shape.json"
LONG_LINE = 100


@dataclass(frozen=True)
class Function:
    name: str  # dotted module path + qualified name
    where: str  # file:line of the def, relative to the tree's parent
    lines: int
    parameters: int
    parameter_names: tuple[str, ...]


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> list[str]:
    a = node.args
    names = [p.arg for p in (*a.posonlyargs, *a.args)]
    if method and names and names[0] in ("self", "cls") and not _is_static(node):
        names = names[1:]
    if a.vararg is not None:
        names.append("*" + a.vararg.arg)
    names += [p.arg for p in a.kwonlyargs]
    if a.kwarg is not None:
        names.append("**" + a.kwarg.arg)
    return names


def _is_static(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)


def functions_of(source: str, module: str, where: str) -> list[Function]:
    """Every function defined in ``source`` (module ``module``, file ``where``)."""
    out: list[Function] = []

    def visit(node: ast.AST, prefix: str, in_class: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qual = f"{prefix}{child.name}"
                params = _parameters(child, in_class)
                out.append(
                    Function(
                        f"{module}.{qual}",
                        f"{where}:{child.lineno}",
                        child.end_lineno - child.lineno + 1,
                        len(params),
                        tuple(params),
                    )
                )
                visit(child, f"{qual}.<locals>.", False)
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.", True)
            else:
                visit(child, prefix, in_class)

    visit(ast.parse(source, filename=where), "", False)
    return out


def module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def module_tree(package: Path, line_counts: dict[Path, int]) -> dict[str, Any]:
    """``{"modules": {file: lines}, "packages": {name: <the same, nested>}}`` of one package folder."""
    modules = {p.name: line_counts[p] for p in sorted(package.glob("*.py")) if p in line_counts}
    packages = {
        d.name: module_tree(d, line_counts)
        for d in sorted(package.iterdir())
        if d.is_dir() and (d / "__init__.py").is_file()
    }
    return {"modules": modules, "packages": packages}


def commit_of(folder: Path) -> str | None:
    """The git commit of the checkout ``folder`` is in (None outside one): which tree the figures describe."""
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        return None


def shape(tree: Path, top: int = 15) -> dict[str, Any]:
    """The shape of the package folder ``tree`` (see the module docstring)."""
    tree = tree.resolve()
    base = tree.parent
    files = sorted(p for p in tree.rglob("*.py") if "__pycache__" not in p.parts)
    functions: list[Function] = []
    line_counts: dict[Path, int] = {}
    total = non_blank = long = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        line_counts[path] = len(lines)
        total += len(lines)
        non_blank += sum(1 for line in lines if line.strip())
        long += sum(1 for line in lines if len(line) > LONG_LINE)
        functions += functions_of(text, module_name(path, base), str(path.relative_to(base)))
    longest = sorted(functions, key=lambda f: (-f.lines, f.name))[:top]
    widest = sorted(functions, key=lambda f: (-f.parameters, f.name))[:top]
    return {
        "tree": str(tree.relative_to(ROOT)) if tree.is_relative_to(ROOT) else str(tree),
        "commit": commit_of(tree),
        "files": len(files),
        "functions": len(functions),
        "median_function_lines": statistics.median(f.lines for f in functions)
        if functions
        else None,
        "longest_functions": [
            {"name": f.name, "where": f.where, "lines": f.lines} for f in longest
        ],
        "largest_parameter_lists": [
            {
                "name": f.name,
                "where": f.where,
                "parameters": f.parameters,
                "parameter_names": list(f.parameter_names),
            }
            for f in widest
        ],
        "long_lines": {
            "limit": LONG_LINE,
            "over": long,
            "lines": total,
            "non_blank_lines": non_blank,
            "share": round(long / total, 4) if total else 0.0,
            "share_of_non_blank": round(long / non_blank, 4) if non_blank else 0.0,
        },
        "module_tree": {tree.name: module_tree(tree, line_counts)},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "tree", nargs="?", default=str(DEFAULT_TREE), help="package folder (default src/mmxfer)"
    )
    ap.add_argument(
        "--out",
        default=str(OUT),
        help=f"JSON file to write (default {OUT.relative_to(ROOT)}); - = stdout",
    )
    ap.add_argument("--top", type=int, default=15, help="how many functions each list keeps")
    args = ap.parse_args(argv)
    tree = Path(args.tree)
    if not (tree / "__init__.py").is_file():
        print(f"code_shape: {tree} is not a package folder (no __init__.py)", file=sys.stderr)
        return 2
    text = json.dumps(shape(tree, args.top), indent=1) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
