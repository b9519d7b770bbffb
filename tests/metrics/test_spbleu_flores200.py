"""spBLEU offline: a local SentencePiece model (config key or MMXFER_FLORES200_SPM, which wins over sacrebleu's
default path) gives exactly sacrebleu's ``BLEU(tokenize="flores200")``; without one, spBLEU rows say so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from mmxfer.errors import AssetError
from mmxfer.evaluation.scoring import score_file_metrics
from mmxfer.metrics import generation

HYPS = [
    "The cat sat on a mat.  ",
    "A man rides a horse at the beach",
    "Hello world !",
    "Red car, blue house.",
]
REFS = [
    "The cat sat on the mat.",
    "A man is riding a horse on the beach.",
    "Hello, world!",
    "A red car and a blue house.",
]


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory):
    spm = pytest.importorskip("sentencepiece")
    folder = tmp_path_factory.mktemp("spm")
    text = folder / "train.txt"
    text.write_text(
        "\n".join(REFS + HYPS + ["the a on at of and is in", "Hello world again and again"]) * 20
    )
    spm.SentencePieceTrainer.train(
        input=str(text),
        model_prefix=str(folder / "m"),
        vocab_size=60,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return folder / "m.model"


def test_spbleu_equals_sacrebleu_flores200_tokenizer(spm_model, tmp_path):
    """sacrebleu reads $SACREBLEU once at import: it runs in a fresh process with the model at its own path."""
    sacre = tmp_path / "sacrebleu"
    (sacre / "models").mkdir(parents=True)
    shutil.copy(spm_model, sacre / "models" / "flores200sacrebleuspm")
    code = (
        "import json, sys\nfrom sacrebleu.metrics import BLEU\n"
        "hyps, refs = json.loads(sys.argv[1])\n"
        "m = BLEU(tokenize='flores200')\n"
        "print(json.dumps([m.corpus_score(hyps, [refs]).score, str(m.get_signature())]))\n"
    )
    env = {**os.environ, "SACREBLEU": str(sacre), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps([HYPS, REFS])],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    expected, signature = json.loads(out.stdout)
    assert 0 < expected < 100
    assert generation.spbleu(HYPS, REFS, spm_model=spm_model) == pytest.approx(expected, abs=1e-9)
    # what mmxfer records is sacrebleu's own signature
    assert generation.spbleu_signature() == signature


def test_environment_variable_wins_over_the_default_path(spm_model, tmp_path, monkeypatch):
    default = tmp_path / "default" / "flores200sacrebleuspm"
    default.parent.mkdir()
    default.write_bytes(b"another model")
    monkeypatch.setattr(generation, "default_spm_path", lambda: default)
    monkeypatch.setenv("MMXFER_FLORES200_SPM", str(spm_model))
    assert generation.resolve_spm_model() == spm_model
    # explicit path
    assert generation.resolve_spm_model(tmp_path / "default" / "flores200sacrebleuspm") == default
    monkeypatch.setenv("MMXFER_FLORES200_SPM", str(tmp_path / "nowhere.model"))
    with pytest.raises(AssetError, match="needs the flores200 SPM model.*MMXFER_FLORES200_SPM"):
        generation.resolve_spm_model()


def test_rows_without_the_model_say_so_and_chrf_still_runs(tmp_path, monkeypatch, spm_model):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MMXFER_FLORES200_SPM", raising=False)
    monkeypatch.setattr(generation, "default_spm_path", lambda: tmp_path / "flores200sacrebleuspm")
    rows = [{"id": str(i), "pred": h, "gold": r} for i, (h, r) in enumerate(zip(HYPS, REFS))]
    out = score_file_metrics("flores200-translate", "devtest", "deu_Latn", rows)
    chrf, spbleu = out
    assert chrf["metric"] == "chrf_pp" and chrf["score"] == pytest.approx(
        generation.chrf_pp(HYPS, REFS)
    )
    assert spbleu["metric"] == "spbleu" and spbleu["score"] is None and spbleu["n"] == 4
    assert "needs the flores200 SPM model" in spbleu["missing"]
    # with the model given (the profile's translation.spm_model), the row is scored and records how
    scored = score_file_metrics(
        "flores200-translate", "devtest", "deu_Latn", rows, spm_model=str(spm_model)
    )[1]
    assert scored["score"] == pytest.approx(generation.spbleu(HYPS, REFS, spm_model=spm_model))
    assert (
        scored["settings"]["spm_model"] == str(spm_model)
        and "tok:flores200" in scored["settings"]["signature"]
    )
