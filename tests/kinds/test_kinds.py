"""The kind adapters: one per task kind, looked up from the spec, and a layer below train and evaluation."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mmxfer import catalog
from mmxfer.errors import MmxferError, UnknownNameError
from mmxfer.kinds import TaskKind, kind_of
from mmxfer.tasks.base import Kind

KINDS_DIR = Path(__file__).resolve().parents[2] / "src" / "mmxfer" / "kinds"
ABOVE = (
    "mmxfer.train",
    "mmxfer.evaluation",
    "mmxfer.compare",
    "mmxfer.study",
    "mmxfer.runs.study",
    "mmxfer.runs.launch",
    "mmxfer.cli",
)


def test_every_declared_kind_has_an_adapter_and_every_task_finds_its_own():
    catalog.load_plugins()
    assert set(catalog.KINDS.names()) == set(Kind.__args__)
    for name, spec in catalog.TASKS.items():
        kind = kind_of(spec)
        assert isinstance(kind, TaskKind) and kind.name == spec.kind and kind.spec is spec, name


def test_dev_metric_is_decoded_except_for_kinds_without_predictions():
    catalog.load_plugins()
    decoded = {name for name, cls in catalog.KINDS.items() if cls.dev_metric == "decoded"}
    assert decoded == {
        "classification",
        "multiple_choice",
        "span_qa",
        "tagging",
        "vqa",
        "translation",
    }
    assert kind_of(catalog.task("starter-caption")).dev_metric_name() == "starter-caption:neg_loss"
    assert (
        kind_of(catalog.task("starter-vqa")).dev_metric_name()
        == "starter-vqa:vqa_accuracy.accuracy"
    )


def test_only_retrieval_is_evaluated_on_the_trunk():
    catalog.load_plugins()
    assert {name for name, cls in catalog.KINDS.items() if cls.trunk_only} == {"retrieval"}


def test_the_feature_shapes_the_cost_model_reads_are_properties_of_the_kinds():
    catalog.load_plugins()
    kinds = catalog.KINDS.items()
    assert {name for name, cls in kinds if cls.windowed} == {"span_qa"}
    assert {name for name, cls in kinds if cls.per_choice} == {"multiple_choice"}
    assert {name for name, cls in kinds if cls.generates} == {"translation"}


def test_kinds_without_decoding_say_so():
    catalog.load_plugins()
    bitext = kind_of(catalog.task("starter-bitext"))
    with pytest.raises(MmxferError, match="no prediction decoding for task kind 'retrieval'"):
        bitext.decode([], [], {}, {})
    with pytest.raises(MmxferError, match="no per-example golds"):
        bitext.golds([])


def test_unknown_kind_is_a_clear_error():
    import dataclasses

    catalog.load_plugins()
    spec = dataclasses.replace(catalog.task("pawsx"), kind="clasification")
    with pytest.raises(UnknownNameError, match="did you mean"):
        kind_of(spec)


def test_kinds_import_nothing_above_them():
    for path in sorted(KINDS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert not name.startswith(ABOVE), f"{path.name} imports {name}"
