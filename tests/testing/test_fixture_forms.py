"""Every task x split x language of the fixtures, from both forms, through ``spec.load``.

The release form is read with ``--data-dir`` (``spec.load(split, lang, data_dir)``), the hub form through
``datasets.load_dataset`` on the Parquet mirror. Each load must give the canonical schema of the task's
kind, exactly the rows the fixture wrote, and - where both forms hold the same data - the same rows.

The fixtures follow the hub contracts (what each dataset's Hub pages show) and the official releases, not
today's loaders: where a loader disagrees, that one case is a strict xfail that names the mismatch, so it
turns into a failure (remove the mark) the day the loader is fixed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from mmxfer import catalog
from mmxfer.errors import DataError, MmxferError
from mmxfer.tasks.common import canonical_schema, features_for, schema_of
from mmxfer.testing.fixtures import HUB, PLANNED_TASKS, RELEASE, plan

MANIFEST = plan()
LANGS_PER_SPLIT = 2

# --- known disagreements between today's loaders and the contracts (strict xfails) -------------------

# (sib200 read Davlan/sib200's loading-script main; it now reads the Parquet export, refs/convert/parquet)
LOAD_XFAIL: dict[tuple[str, str, str], str] = {}
SAME_XFAIL: dict[tuple[str, str], str] = {}
#: hub loaders that must fail with one clear line: (task, split) -> (error words, xfail reason or "")
HUB_ERRORS = {
    ("xnli", "translate_train"): ("--data-dir", ""),
    ("cosmosqa", "train"): ("loading script", ""),
    ("vqa", "train"): ("loading script", ""),
    ("vqa-text", "train"): ("loading script", ""),
    ("flores200", "devtest"): ("loading.script", ""),
    ("flores200-translate", "devtest"): ("loading.script", ""),
    ("gqa", "train"): ("lmms-lab/GQA", ""),
    ("ccg", "train"): ("--data-dir", ""),
    ("flickr30k", "train"): ("--data-dir", ""),
    ("multi30k", "validation"): ("--data-dir", ""),
}
#: tasks whose hub and release ids differ by design (the hub has no id column; the loader numbers rows)
OWN_IDS = {"xnli", "pawsx", "udpos", "panx", "mnli", "qqp"}


def _case(task: str, *rest: str, reason: str = "") -> pytest.param:
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(task, *rest, marks=marks, id="-".join((task, *rest)))


def load_cases() -> list:
    return [
        _case(task, form, split, reason=LOAD_XFAIL.get((task, form, split), ""))
        for task, forms in sorted(MANIFEST.items())
        if task not in PLANNED_TASKS
        for form, splits in sorted(forms.items())
        for split in splits
    ]


def same_cases() -> list:
    return [
        _case(task, split, reason=SAME_XFAIL.get((task, split), ""))
        for task, forms in sorted(MANIFEST.items())
        if task not in PLANNED_TASKS and HUB in forms and RELEASE in forms
        for split in forms[HUB]
        if split in forms[RELEASE]
    ]


def load(fixture_data, task: str, form: str, split: str, lang: str):
    spec = catalog.task(task)
    if form == RELEASE:
        return spec.load(split, lang, str(fixture_data.data_dir))
    return spec.load(split, lang)


# --- the canonical schema ---------------------------------------------------------------------------


def check_canonical(spec, ds) -> None:
    """Columns and types of the task's canonical schema, and the invariants of its kind."""
    expected = features_for(canonical_schema(spec))
    assert sorted(ds.column_names) == sorted(expected), (ds.column_names, list(expected))
    for name, feature in expected.items():
        assert ds.features[name] == feature, (name, ds.features[name], feature)
    plain = (
        ds.cast_column("image", type(expected["image"])(decode=False))
        if "image" in expected
        else ds
    )
    rows = plain.to_list()
    assert len({r["id"] for r in rows}) == len(rows), "ids are not unique"
    schema = schema_of(spec)
    for r in rows:
        if schema == "classification":
            assert r["text_a"] and 0 <= r["label"] < len(spec.label_names)
        elif schema == "multiple_choice":
            assert len(r["choices"]) >= 2 and 0 <= r["label"] < len(r["choices"])
        elif schema == "span_qa":
            a = r["answers"]
            assert len(a["text"]) == len(a["answer_start"])
            for text, start in zip(a["text"], a["answer_start"]):
                assert r["context"][start : start + len(text)] == text
        elif schema == "tagging":
            assert r["tokens"] and len(r["tokens"]) == len(r["tags"])
            if spec.label_names:
                assert set(r["tags"]) <= set(spec.label_names)
        elif schema == "mining":
            assert r["side"] in ("source", "target") and r["text"]
        elif schema == "retrieval":
            assert r["source"] and r["target"]
        elif schema == "vqa":
            assert r["question"] and all(isinstance(a, str) for a in r["answers"])
        elif schema == "captioning":
            assert r["caption"]
        if "image" in r:
            assert os.path.isfile(r["image"]["path"]) or r["image"]["bytes"], r["image"]
    if schema == "mining":
        ids = {r["id"]: r["side"] for r in rows}
        golds = [r for r in rows if r["gold"]]
        assert golds, "a BUCC split without gold pairs cannot be scored"
        assert all(ids.get(r["gold"]) not in (None, r["side"]) for r in golds)


@pytest.mark.parametrize("task,form,split", load_cases())
def test_every_split_loads_in_canonical_schema(fixture_data, hub_mirror, task, form, split):
    spec = catalog.task(task)
    langs = list(MANIFEST[task][form][split])[:LANGS_PER_SPLIT]
    for lang in langs:
        ds = load(fixture_data, task, form, split, lang)
        check_canonical(spec, ds)
        assert len(ds) == fixture_data.rows(task, form, split, lang), (lang, len(ds))


# --- both forms, same rows --------------------------------------------------------------------------


def comparable(spec, ds) -> list:
    """The dataset's rows as the two forms must agree on them (BUCC: the gold pairs, by text)."""
    if schema_of(spec) == "mining":
        text = {r["id"]: r["text"] for r in ds}
        return sorted(
            (r["text"], text[r["gold"]]) for r in ds if r["side"] == "source" and r["gold"]
        )
    if "image" in ds.column_names:
        ds = ds.cast_column("image", type(ds.features["image"])(decode=False))
    rows = ds.to_list()
    for r in rows:
        # the same picture: a file (release, COCO from the hub) or bytes in the Parquet file
        if "image" in r:
            image = r["image"]["bytes"] or Path(r["image"]["path"]).read_bytes()
            r["image"] = hashlib.sha256(image).hexdigest()
        if spec.name in OWN_IDS:
            del r["id"]
    return rows


@pytest.mark.parametrize("task,split", same_cases())
def test_both_forms_give_the_same_rows(fixture_data, hub_mirror, task, split):
    spec = catalog.task(task)
    langs = [lang for lang in MANIFEST[task][HUB][split] if lang in MANIFEST[task][RELEASE][split]]
    for lang in langs[:LANGS_PER_SPLIT]:
        release = comparable(spec, load(fixture_data, task, RELEASE, split, lang))
        hub = comparable(spec, load(fixture_data, task, HUB, split, lang))
        assert release == hub, lang


# --- hub paths that must fail clearly ---------------------------------------------------------------


@pytest.mark.parametrize(
    "task,split", [_case(t, s, reason=HUB_ERRORS[(t, s)][1]) for t, s in HUB_ERRORS]
)
def test_hub_paths_without_a_parquet_source_fail_in_one_line(hub_mirror, task, split):
    spec = catalog.task(task)
    words = HUB_ERRORS[(task, split)][0]
    with pytest.raises(MmxferError, match=words) as info:
        spec.load(split)
    assert "\n" not in str(info.value)


def test_hub_errors_cover_every_task_without_hub_data():
    """A registered task the mirror holds no data for must have its hub failure pinned above."""
    catalog.load_plugins()
    fixture_tasks = {t for t in MANIFEST if t not in PLANNED_TASKS}
    without_hub = {t for t in fixture_tasks if HUB not in MANIFEST[t]}
    assert without_hub == {t for t, _ in HUB_ERRORS} - {"xnli"}


def test_fixtures_cover_every_registered_task():
    catalog.load_plugins()
    generated = {
        name for name in catalog.TASKS if name.startswith("starter-")
    }  # the starter world makes its own
    assert set(catalog.TASKS) - generated - set(MANIFEST) == set()


def test_every_declared_split_is_written():
    """Each task's fixture holds every split it declares (XNLI's translate_train in its release form)."""
    for task, forms in MANIFEST.items():
        if task in PLANNED_TASKS:
            continue
        written = {split for splits in forms.values() for split in splits}
        assert set(catalog.task(task).splits) <= written, task


def test_bucc_release_test_split_has_gold(fixture_data):
    """XTREME's BUCC test is the training files: the gold must be there to score it."""
    spec = catalog.task("bucc")
    release = fixture_data.data_dir / "bucc2018" / "de-en"
    assert (release / "de-en.training.gold").is_file() and not (
        release / "de-en.test.gold"
    ).exists()
    ds = spec.load("validation", "de", str(fixture_data.data_dir))
    # 2 rows a pair
    assert sum(1 for r in ds if r["gold"]) == fixture_data.rows("bucc", HUB, "validation", "de")


def test_translation_fixtures_have_their_shape(fixture_data):
    """WMT14 de-en (hub ``wmt/wmt14`` ``de-en``, ``translation`` = {de, en}; release ``train.{de,en}``)."""
    import datasets

    for split, name in (
        ("train", "train"),
        ("validation", "newstest2013"),
        ("test", "newstest2014"),
    ):
        de = (fixture_data.data_dir / "wmt14-de-en" / f"{name}.de").read_text("utf-8").splitlines()
        en = (fixture_data.data_dir / "wmt14-de-en" / f"{name}.en").read_text("utf-8").splitlines()
        assert len(de) == len(en) == fixture_data.rows("wmt14-de-en", RELEASE, split, "de")
        hub = datasets.load_dataset(
            str(fixture_data.hub_mirror / "wmt" / "wmt14"), "de-en", split=split
        )
        assert hub.features["translation"] == datasets.Translation(languages=["de", "en"])
        assert hub["translation"] == [{"de": d, "en": e} for d, e in zip(de, en)]
    # the FLORES-200 devtest the translation track evaluates on: release files only (the hub has a loading script)
    assert set(fixture_data.splits("flores200-translate", RELEASE)) == {"dev", "devtest"}
    assert fixture_data.splits("flores200-translate", HUB) == {}


def test_release_form_is_reproducible(tmp_path, fixture_data):
    """Writing again gives byte-identical files (same code, same fixtures)."""
    from mmxfer.testing.fixtures import write_release_fixtures

    write_release_fixtures(tmp_path)
    ours = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    theirs = sorted(
        p.relative_to(fixture_data.data_dir)
        for p in fixture_data.data_dir.rglob("*")
        if p.is_file()
    )
    assert ours == theirs
    for rel in ours:
        assert (tmp_path / rel).read_bytes() == (fixture_data.data_dir / rel).read_bytes(), rel


def test_a_hub_split_the_contract_lacks_is_a_data_error(hub_mirror):
    """udpos.Yoruba has only a test split (the contract); asking for train names the split."""
    with pytest.raises(DataError, match="train"):
        catalog.task("udpos").load("train", "yo")
