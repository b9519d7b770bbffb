"""BUCC as XTREME defines it: sample files = dev, training files = test (the official test gold is not public);
no gold is an error, never F1 0; every number scored from the hub copy says it is an upper bound."""

from __future__ import annotations

import datasets
import pytest

from mmxfer import catalog
from mmxfer.config import RetrievalConfig, SuiteTaskConfig
from mmxfer.errors import DataError
from mmxfer.evaluation.runner import evaluate_retrieval
from mmxfer.evaluation.scoring import rescore_run
from mmxfer.runs.store import Run

PAIRS = [
    ("Hallo Welt", "Hello world"),
    ("Der Hund schläft", "The dog sleeps"),
    ("Ein rotes Auto", "A red car"),
    ("Wir essen Brot", "We eat bread"),
]


def _files(folder, stem: str, prefix: str, gold: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.de").write_text(
        "".join(f"de-{prefix}{i}\t{d}\n" for i, (d, _) in enumerate(PAIRS))
    )
    (folder / f"{stem}.en").write_text(
        "".join(f"en-{prefix}{i}\t{e}\n" for i, (_, e) in enumerate(PAIRS))
    )
    if gold:
        (folder / f"{stem}.gold").write_text(
            "".join(f"de-{prefix}{i}\ten-{prefix}{i}\n" for i in range(len(PAIRS)))
        )


def _ids(ds, side="source") -> set[str]:
    return {r["id"] for r in ds if r["side"] == side}


def test_raw_release_layout_sample_is_dev_training_is_test(tmp_path):
    catalog.load_plugins()
    folder = tmp_path / "bucc2018" / "de-en"
    _files(folder, "de-en.sample", "s")
    _files(folder, "de-en.training", "tr")
    _files(folder, "de-en.test", "official", gold=False)  # the official test: no public gold
    spec = catalog.task("bucc")
    assert _ids(spec.load("validation", "de", str(tmp_path))) == {f"de-s{i}" for i in range(4)}
    assert _ids(spec.load("test", "de", str(tmp_path))) == {f"de-tr{i}" for i in range(4)}


def test_xtreme_renamed_layout_dev_and_test(tmp_path):
    catalog.load_plugins()
    _files(tmp_path / "bucc2018", "de-en.dev", "d")
    _files(tmp_path / "bucc2018", "de-en.test", "t")
    spec = catalog.task("bucc")
    assert _ids(spec.load("validation", "de", str(tmp_path))) == {f"de-d{i}" for i in range(4)}
    assert _ids(spec.load("test", "de", str(tmp_path)), "target") == {f"en-t{i}" for i in range(4)}


def test_test_files_without_gold_are_an_error_not_f1_zero(tmp_path):
    catalog.load_plugins()
    _files(tmp_path / "bucc2018" / "de-en", "de-en.test", "official", gold=False)
    with pytest.raises(DataError, match="gold"):
        catalog.task("bucc").load("test", "de", str(tmp_path))
    with pytest.raises(DataError, match="gold"):
        catalog.METRICS.get("bucc_f1").score([None, None], [["de-1", "en-1"], None])


def test_hub_numbers_carry_the_upper_bound_caveat_everywhere(
    tmp_path, monkeypatch, ngram_embedder, capsys
):
    from mmxfer import assets
    from mmxfer.cli.evaluate import _print_suite_scores, _print_table
    from mmxfer.evaluation.suites import suite_scores

    catalog.load_plugins()
    table = datasets.Dataset.from_dict(
        {
            "source_sentence": [d for d, _ in PAIRS],
            "target_sentence": [e for _, e in PAIRS],
            "source_lang": ["x"] * 4,
            "target_lang": ["y"] * 4,
        }
    )
    monkeypatch.setattr(assets, "load_hub_dataset", lambda *a, **k: table)
    monkeypatch.setattr(assets, "is_offline", lambda: False)
    item = SuiteTaskConfig(
        task="bucc", metric="bucc_f1", languages=("de",), params={"threshold_source": "dev"}
    )
    out = tmp_path / "run"
    rows = evaluate_retrieval(
        item, ngram_embedder[0], RetrievalConfig(), out, layer=None, progress=False
    )
    assert rows and all(r["caveat"] == "upper bound, no distractors" for r in rows)
    _print_table(rows)
    _print_suite_scores(suite_scores(rows, "xtreme-retrieval"), "xtreme-retrieval")
    printed = capsys.readouterr().out
    assert printed.count("upper bound, no distractors") == 2 and "*" in printed
    run = Run(out)
    run.write_metrics(rows)
    # re-scoring keeps it
    assert all(r["caveat"] == "upper bound, no distractors" for r in rescore_run(run))
    # the same task from local release files carries no caveat
    _files(tmp_path / "data" / "bucc2018" / "de-en", "de-en.sample", "s")
    _files(tmp_path / "data" / "bucc2018" / "de-en", "de-en.training", "tr")
    local = evaluate_retrieval(
        item,
        ngram_embedder[0],
        RetrievalConfig(),
        tmp_path / "local",
        layer=None,
        data_dir=str(tmp_path / "data"),
        progress=False,
    )
    assert not any(r.get("caveat") for r in local)


def test_tidy_results_table_has_the_caveat_column(tmp_path):
    from mmxfer.compare.results import build_results
    from mmxfer.runs.store import run_id_for

    config = {
        "study": "s",
        "seed": 1,
        "target": None,
        "arm": {"name": "baseline", "intermediate": [], "modality": "none"},
        "profile": {"name": "p", "trunk": {"name": "t"}, "suite": "xtreme-retrieval", "study": "s"},
    }
    run = Run(tmp_path / "s" / run_id_for(config, "baseline-retrieval"))
    run.path.mkdir(parents=True)
    run.write_config(config)
    run.write_metrics(
        [
            {
                "task": "bucc",
                "lang": "de",
                "split": "test",
                "metric": "bucc_f1",
                "score": 90.0,
                "caveat": "upper bound, no distractors",
            },
            {
                "task": "tatoeba",
                "lang": "deu",
                "split": "test",
                "metric": "tatoeba_accuracy",
                "score": 50.0,
            },
        ]
    )
    run.mark_done()
    frame = build_results([tmp_path]).set_index("task")
    assert (
        frame.loc["bucc", "caveat"] == "upper bound, no distractors"
        and frame.loc["tatoeba", "caveat"] == ""
    )
