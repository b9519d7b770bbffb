"""Each FLORES-200 track is scored with its own metric: re-scoring a run that holds xSIM and translation
predictions, and translations made elsewhere (`mmxfer evaluate --hypotheses DIR`)."""

from __future__ import annotations

import json

import pytest
import sacrebleu

from mmxfer.cli import main
from mmxfer.evaluation.scoring import rescore_run
from mmxfer.runs.store import Run
from mmxfer.testing.flores import sentence, write_flores


@pytest.fixture()
def no_spm(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MMXFER_FLORES200_SPM", raising=False)
    monkeypatch.setattr("mmxfer.metrics.generation.default_spm_path", lambda: tmp_path / "no-spm")


def test_rescore_scores_each_track_with_its_own_metric(tmp_path, no_spm):
    run = Run(tmp_path / "run")
    run.path.mkdir()
    run.write_predictions(
        "flores200",
        "devtest",
        "deu_Latn",
        [
            {"id": str(i), "pred": p, "gold": i, "direction": d}
            for d in ("xx-en", "en-xx")
            for i, p in enumerate([0, 1, 1, 3])
        ],
    )
    hyps, refs = ["The cat on the mat.", "A dog."], ["The cat sat on the mat.", "A dog runs."]
    run.write_predictions(
        "flores200-translate",
        "devtest",
        "deu_Latn",
        [{"id": str(i), "pred": h, "gold": r} for i, (h, r) in enumerate(zip(hyps, refs))],
    )
    rows = rescore_run(run)
    heads = {(r["task"], r["metric"]): r for r in rows if not r.get("part")}
    assert set(heads) == {
        ("flores200", "xsim"),
        ("flores200-translate", "chrf_pp"),
        ("flores200-translate", "spbleu"),
    }
    assert heads[("flores200", "xsim")]["score"] == pytest.approx(25.0)
    assert heads[("flores200-translate", "chrf_pp")]["score"] == pytest.approx(
        sacrebleu.corpus_chrf(hyps, [refs], word_order=2).score
    )
    assert heads[("flores200-translate", "spbleu")]["score"] is None
    assert {r["part"] for r in rows if r.get("part")} == {"xx-en", "en-xx"}


def test_hypotheses_made_elsewhere(tmp_path, no_spm, capsys):
    data = write_flores(tmp_path / "data", ["eng_Latn", "deu_Latn", "swh_Latn"], n=5)
    hyp_dir = tmp_path / "hyps"
    hyp_dir.mkdir()
    refs = [sentence("eng_Latn", 1000 + i) for i in range(5)]
    good = refs[:3] + ["The cat.", "A horse on the snow."]
    (hyp_dir / "deu_Latn.txt").write_text("\n".join(good) + "\n", encoding="utf-8")
    # ISO 639-1 name for swh_Latn
    (hyp_dir / "sw.txt").write_text("\n".join(["x"] * 5) + "\n", encoding="utf-8")
    out = tmp_path / "scored"
    assert (
        main(
            [
                "evaluate",
                "--hypotheses",
                str(hyp_dir),
                "--data-dir",
                str(data),
                "--out-dir",
                str(out),
                "--output",
                str(tmp_path / "scores.json"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "missing: spBLEU needs the flores200 SPM model" in printed
    scores = json.loads((tmp_path / "scores.json").read_text())["flores200-translate"]
    assert scores["deu_Latn"]["chrf_pp"] == pytest.approx(
        sacrebleu.corpus_chrf(good, [refs], word_order=2).score
    )
    assert scores["swh_Latn"]["chrf_pp"] < scores["deu_Latn"]["chrf_pp"]
    assert (
        scores["deu_Latn"]["spbleu"] is None and "SPM model" in scores["deu_Latn"]["spbleu.missing"]
    )
    assert (out / "predictions" / "flores200-translate" / "devtest-swh_Latn.jsonl").is_file()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 4
    # the scored folder re-scores like a run
    assert {r["metric"] for r in rescore_run(out)} == {"chrf_pp", "spbleu"}


@pytest.mark.parametrize(
    "name,content,message",
    [
        (
            "deu_Latn.txt",
            "one line\n",
            "1 lines but flores200-translate devtest deu_Latn has 5 sentences",
        ),
        ("klingon.txt", "x\n", "klingon.txt: not a language of flores200-translate"),
    ],
)
def test_bad_hypotheses_are_one_clear_error(tmp_path, no_spm, capsys, name, content, message):
    data = write_flores(tmp_path / "data", ["eng_Latn", "deu_Latn"], n=5)
    hyp_dir = tmp_path / "hyps"
    hyp_dir.mkdir()
    (hyp_dir / name).write_text(content, encoding="utf-8")
    assert (
        main(
            [
                "evaluate",
                "--hypotheses",
                str(hyp_dir),
                "--data-dir",
                str(data),
                "--out-dir",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
