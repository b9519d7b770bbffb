"""benchmarks/code_shape.py on a tiny package whose figures are counted by hand."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("code_shape", ROOT / "benchmarks" / "code_shape.py")
code_shape = importlib.util.module_from_spec(_spec)
sys.modules["code_shape"] = code_shape  # its dataclass looks its module up there
_spec.loader.exec_module(code_shape)

TOP = """def short(a):
    return a


class Box:
    def method(self, a, b, *rest, c=1, **more):
        def inner(x):
            return x
        return inner(a)

    @staticmethod
    def static(self_named, b):
        return b
"""
SUB = "X = 1\n" + "y = '" + "z" * 100 + "'\n"  # one line of 106 characters


def _tree(tmp_path: Path) -> Path:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "top.py").write_text(TOP, encoding="utf-8")
    (pkg / "sub" / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "sub" / "leaf.py").write_text(SUB, encoding="utf-8")
    (pkg / "notes").mkdir()  # a folder without __init__.py is no package
    return pkg


def test_shape_of_a_tiny_tree(tmp_path):
    shape = code_shape.shape(_tree(tmp_path), top=3)
    assert shape["files"] == 4 and shape["functions"] == 4
    assert shape["longest_functions"] == [
        {"name": "pkg.top.Box.method", "where": "pkg/top.py:6", "lines": 4},
        {
            "name": "pkg.top.Box.method.<locals>.inner",
            "where": "pkg/top.py:7",
            "lines": 2,
        },  # ties: by name
        {
            "name": "pkg.top.Box.static",
            "where": "pkg/top.py:12",
            "lines": 2,
        },  # the decorator is not counted
    ]
    widest = shape["largest_parameter_lists"]
    assert [(f["name"], f["parameters"]) for f in widest] == [
        ("pkg.top.Box.method", 5),
        ("pkg.top.Box.static", 2),
        ("pkg.top.Box.method.<locals>.inner", 1),
    ]
    assert widest[0]["parameter_names"] == [
        "a",
        "b",
        "*rest",
        "c",
        "**more",
    ]  # self is not a parameter
    assert widest[1]["parameter_names"] == [
        "self_named",
        "b",
    ]  # a static method's first parameter is one
    assert shape["median_function_lines"] == 2
    total = TOP.count("\n") + SUB.count("\n")
    assert shape["long_lines"] == {
        "limit": 100,
        "over": 1,
        "lines": total,
        "non_blank_lines": total - 3,
        "share": round(1 / total, 4),
        "share_of_non_blank": round(1 / (total - 3), 4),
    }
    assert shape["module_tree"] == {
        "pkg": {
            "modules": {"__init__.py": 0, "top.py": 13},
            "packages": {"sub": {"modules": {"__init__.py": 0, "leaf.py": 2}, "packages": {}}},
        }
    }


def test_cli_writes_json_and_refuses_a_folder_that_is_no_package(tmp_path, capsys):
    out = tmp_path / "shape.json"
    assert code_shape.main([str(_tree(tmp_path)), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["functions"] == 4
    assert code_shape.main([str(tmp_path / "pkg" / "notes"), "--out", str(out)]) == 2
    assert "not a package folder" in capsys.readouterr().err
