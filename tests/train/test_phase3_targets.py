"""Phase 3 on XTREME targets, on the tiny trunk and release-format fixture files: what it trains on, what it
selects on (the training task's dev, never a reported split; QA: nothing, as XTREME) and what it predicts (every
example of every language: ``max_eval_examples`` caps dev only)."""

from __future__ import annotations

import json

import pytest

from mmxfer import catalog as _catalog
from mmxfer import config
from mmxfer.runs.store import Run
from mmxfer.train import phases

N_TEST = 3  # examples per language; above max_eval_examples on purpose
CAP = 2


def _squad_json(prefix: str, n: int) -> str:
    qas, paras = [], []
    for i in range(n):
        context = f"The cat sat on the mat number {i}."
        qas = [
            {
                "id": f"{prefix}{i}",
                "question": "Where did the cat sit?",
                "answers": [{"text": "on the mat", "answer_start": context.index("on the mat")}],
            }
        ]
        paras.append({"context": context, "qas": qas})
    return json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paras}]})


def _profile(**extra: str) -> config.ExperimentConfig:
    sets = [
        "trunk.name=tiny",
        "trunk.freeze_embeddings=false",
        "target.batch_size=4",
        "target.epochs=1",
        f"target.max_eval_examples={CAP}",
        "target.max_train_examples=8",
        "target.checkpoint_every=0",
    ] + [f"{k}={v}" for k, v in extra.items()]
    return config.load_profile("starter", sets)


@pytest.fixture()
def catalog():
    _catalog.load_plugins()
    return _catalog


@pytest.fixture()
def spy(monkeypatch, tmp_path):
    """Records every split phase 3 loads (task, split, lang, limit) and whether the loop got a dev scorer."""
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    loads, evaluate = [], []
    real_load, real_train = phases._load_split, phases.train_phase

    def load(spec, split, lang, data_dir, limit, text_prefix=""):
        loads.append((spec.name, split, lang, limit))
        return real_load(spec, split, lang, data_dir, limit, text_prefix)

    def train(model, dataset, collate, phase, options):
        evaluate.append(options.evaluate)
        return real_train(model, dataset, collate, phase, options)

    monkeypatch.setattr(phases, "_load_split", load)
    monkeypatch.setattr(phases, "train_phase", train)
    return loads, evaluate


def _run(tmp_path, target: str, data, profile=None) -> tuple[Run, list[dict]]:
    run = Run(tmp_path / "run")
    run.path.mkdir(parents=True)
    rows = phases.run_target(
        run, profile or _profile(), target, trunk="tiny", seed=1, data_dir=str(data)
    )
    return run, rows


def test_xquad_trains_on_squad_keeps_final_weights_and_predicts_every_test_example(
    tmp_path, spy, catalog
):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train-v1.1.json").write_text(_squad_json("tr", 8))
    (data / "dev-v1.1.json").write_text(_squad_json("dv", 4))
    for lang in catalog.task("xquad").languages:
        (data / f"xquad.{lang}.json").write_text(_squad_json(f"{lang}-", N_TEST))
    run, rows = _run(tmp_path, "xquad", data)
    loads, evaluate = spy
    assert loads[0] == ("squad", "train", "en", 8)
    assert not [x for x in loads if x[1] == "validation"]  # XTREME: no dev selection for QA
    assert evaluate == [None]
    tests = [x for x in loads if x[0] == "xquad"]
    assert {x[2] for x in tests} == set(catalog.task("xquad").languages) and {
        x[3] for x in tests
    } == {None}
    assert {r["n"] for r in rows} == {N_TEST}  # max_eval_examples does not cut test languages
    selection = json.loads((run.path / "selection.json").read_text())
    assert selection["selection"].startswith("none")


def test_tydiqa_never_selects_on_the_split_it_reports(tmp_path, spy, catalog):
    data = tmp_path / "data"
    data.mkdir()
    names = {
        "ar": "arabic",
        "bn": "bengali",
        "en": "english",
        "fi": "finnish",
        "id": "indonesian",
        "ko": "korean",
        "ru": "russian",
        "sw": "swahili",
        "te": "telugu",
    }
    train = json.loads(_squad_json("english-tr", 8))
    dev = {
        "version": "1.1",
        "data": [
            a for n in names.values() for a in json.loads(_squad_json(f"{n}-dv", N_TEST))["data"]
        ],
    }
    (data / "tydiqa-goldp-v1.1-train.json").write_text(json.dumps(train))
    (data / "tydiqa-goldp-v1.1-dev.json").write_text(json.dumps(dev))
    _, rows = _run(tmp_path, "tydiqa", data)
    loads, evaluate = spy
    assert evaluate == [None]
    assert loads[0] == ("tydiqa", "train", "en", 8)
    assert [x for x in loads if x[1] == "validation"] == [
        ("tydiqa", "validation", lang, None) for lang in catalog.task("tydiqa").languages
    ]
    assert [(r["lang"], r["metric"], r["n"]) for r in rows] == [
        (lang, "tydiqa", N_TEST) for lang in catalog.task("tydiqa").languages
    ]


def test_xnli_selects_on_the_training_task_dev_and_scores_every_test_example(
    tmp_path, spy, catalog
):
    data = tmp_path / "data"
    (data / "XNLI-1.0").mkdir(parents=True)
    labels = ("entailment", "neutral", "contradiction")
    mnli = [
        {
            "pairID": str(i),
            "sentence1": f"The cat {i}",
            "sentence2": "A cat",
            "gold_label": labels[i % 3],
        }
        for i in range(8)
    ]
    (data / "multinli_1.0_train.jsonl").write_text("\n".join(json.dumps(r) for r in mnli))
    (data / "multinli_1.0_dev_matched.jsonl").write_text("\n".join(json.dumps(r) for r in mnli[:4]))
    lines = ["language\tgold_label\tsentence1\tsentence2\tpairID"]
    lines += [
        f"{lang}\t{labels[i % 3]}\tThe cat {i}\tA cat\t{i}"
        for lang in catalog.task("xnli").languages
        for i in range(N_TEST)
    ]
    (data / "XNLI-1.0" / "xnli.test.tsv").write_text("\n".join(lines) + "\n")
    _, rows = _run(tmp_path, "xnli", data)
    loads, evaluate = spy
    assert loads[:2] == [("mnli", "train", "en", 8), ("mnli", "validation", "en", CAP)]
    assert not [x for x in loads if x[0] == "xnli" and x[1] == "validation"]
    assert evaluate[0] is not None
    assert {r["n"] for r in rows} == {N_TEST} and len(rows) == len(catalog.task("xnli").languages)


def test_target_dev_spec_per_target(catalog):
    dev = {
        t: phases.target_dev_spec(catalog.task(t))
        for t in ("xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "starter-names")
    }
    assert {t: s.name if s else None for t, s in dev.items()} == {
        "xnli": "mnli",
        "pawsx": "pawsx",
        "udpos": "udpos",
        "panx": "panx",
        "xquad": None,
        "mlqa": None,
        "tydiqa": None,
        "starter-names": "starter-names",
    }
