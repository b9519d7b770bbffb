"""The split sizes task specs record (what the cost estimate reads): present for every cell of the paper study, and
equal to the real files wherever a copy of them is on the machine (the shipped SIB-200, MMXFER_REAL_DATA)."""

from __future__ import annotations

import gzip

import pytest

from mmxfer import catalog
from mmxfer.config import load_study
from mmxfer.evaluation.suites import suite_tasks
from mmxfer.study.grid import study_profile
from mmxfer.tasks.starter_flores import SHIPPED_LANGS, shipped_root


def _paper_tasks() -> tuple[set[str], set[str]]:
    """(tasks trained on, tasks evaluated on every language) of paper.yaml."""
    catalog.load_plugins()
    study = load_study("paper")
    profile = study_profile(study)
    trained = {catalog.task(t).name for arm in study.arms for t in arm.intermediate}
    evaluated = set()
    for t in study.targets:
        spec = catalog.task(t)
        evaluated.add(spec.name)
        trained.add(spec.train_task or spec.name)
    trained.add(profile.translation.train_task)
    for suite in study.suite.split(","):
        evaluated |= {catalog.task(i.task).name for i in suite_tasks(suite)}
    return trained, evaluated


def test_every_task_of_the_paper_study_records_its_sizes_and_their_source():
    trained, evaluated = _paper_tasks()
    for name in trained:
        spec = catalog.task(name)
        assert spec.sizes and spec.sizes.source, name
        assert spec.sizes.count("train", spec.train_language), name
    for name in evaluated:
        spec = catalog.task(name)
        split = (
            "devtest"
            if "devtest" in spec.splits
            else "test"
            if "test" in spec.splits
            else "validation"
        )
        missing = [lang for lang in spec.languages if not spec.sizes.count(split, lang)]
        assert not missing, f"{name} {split}: {missing}"


def _lines(path) -> int:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return sum(1 for _ in handle)


def test_sib200_sizes_equal_the_shipped_files():
    spec = catalog.task("sib200")
    root = shipped_root() / "data" / "annotated"
    for lang in SHIPPED_LANGS:
        for split, name in (("validation", "dev"), ("test", "test"), ("train", "train")):
            path = root / lang / f"{name}.tsv.gz"
            if path.is_file():  # one header line
                assert _lines(path) - 1 == spec.sizes.count(split, lang), (lang, split)


@pytest.mark.realdata
def test_sizes_equal_the_real_excerpts(realdata):
    tatoeba = catalog.task("tatoeba")
    for path in sorted((realdata / "tatoeba").glob("tatoeba.*-eng.eng")):
        lang = path.name.split(".")[1].split("-")[0]
        assert _lines(path) == tatoeba.sizes.count("test", lang), lang
    xquad = catalog.task("xquad")
    for lang in ("en", "de", "zh", "ar"):
        assert len(xquad.load("test", lang, str(realdata / "xquad"))) == xquad.sizes.count(
            "test", lang
        )
    flores = catalog.task("flores200")
    for path in sorted((realdata / "flores200/devtest").glob("*.devtest.gz")):
        assert _lines(path) == flores.sizes.count("devtest", path.name.split(".")[0])
    pawsx = catalog.task("pawsx")
    assert len(pawsx.load("validation", "de", str(realdata / "pawsx"))) == pawsx.sizes.count(
        "validation", "de"
    )
    multi30k = catalog.task("multi30k")
    assert _lines(realdata / "multi30k/val.de") == multi30k.sizes.count("validation", "de")
