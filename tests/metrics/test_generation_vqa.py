import numpy as np
import pytest
import sacrebleu

from mmxfer import catalog
from mmxfer.errors import AssetError, DataError
from mmxfer.metrics import generation, vqa


def test_chrf_pp_equals_sacrebleu():
    hyps = ["The cat sat on the mat.", "Hello world"]
    refs = ["The cat is on the mat.", "Hello, world!"]
    expected = sacrebleu.corpus_chrf(hyps, [refs], word_order=2).score
    assert generation.chrf_pp(hyps, refs) == pytest.approx(expected, abs=1e-9)
    assert catalog.METRICS.get("chrf_pp").score(refs, hyps)["chrf_pp"] == pytest.approx(
        expected, abs=1e-9
    )
    with pytest.raises(DataError):
        generation.chrf_pp(hyps, refs[:1])


def test_spbleu_offline_without_model_says_where_to_put_it(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MMXFER_FLORES200_SPM", raising=False)
    monkeypatch.setattr(generation, "default_spm_path", lambda: tmp_path / "flores200sacrebleuspm")
    with pytest.raises(AssetError, match="flores200sacrebleuspm"):
        generation.spbleu(["a"], ["a"])
    with pytest.raises(AssetError, match="not found"):
        generation.spbleu(["a"], ["a"], spm_model=tmp_path / "missing.model")


def test_spbleu_with_local_model_equals_bleu_on_pieces(tmp_path):
    spm = pytest.importorskip("sentencepiece")
    text = tmp_path / "train.txt"
    text.write_text(
        "\n".join(["the cat sat on the mat", "a dog runs in the park", "hello world again"] * 30)
    )
    spm.SentencePieceTrainer.train(
        input=str(text),
        model_prefix=str(tmp_path / "m"),
        vocab_size=25,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    model = tmp_path / "m.model"
    sp = spm.SentencePieceProcessor(model_file=str(model))
    hyps, refs = (
        ["the cat sat on a mat", "hello world"],
        ["the cat sat on the mat", "hello world again"],
    )
    pieces = lambda s: " ".join(sp.encode(s, out_type=str))  # noqa: E731
    expected = sacrebleu.corpus_bleu(
        [pieces(h) for h in hyps], [[pieces(r) for r in refs]], tokenize="none"
    ).score
    assert generation.spbleu(hyps, refs, spm_model=model) == pytest.approx(expected)
    assert 0 < expected < 100
    # the bootstrap's summed segment statistics give the same corpus score, also on a resample
    stats = generation.spbleu_stats(refs, hyps, spm_model=str(model))
    assert generation.spbleu_from_stats(stats.sum(0)) == pytest.approx(expected)
    resample = [1, 1, 0]
    direct = generation.spbleu(
        [hyps[i] for i in resample], [refs[i] for i in resample], spm_model=model
    )
    assert generation.spbleu_from_stats(
        np.bincount(resample, minlength=2) @ stats
    ) == pytest.approx(direct)


def test_vqa_accuracy_official_formula():
    answers = ["two"] * 2 + ["2"] * 1 + ["three"] * 7
    # "2" matches 3 normalised answers: each leave-one-out subset has 3 matches (-> 1) except the 3
    # subsets that drop a match (2 matches -> 2/3): (7 * 1 + 3 * 2/3) / 10 = 0.9
    assert vqa.vqa_score("2", answers) == pytest.approx(0.9)
    assert vqa.vqa_score("Three.", answers) == pytest.approx(1.0)
    assert vqa.vqa_score("dog", answers) == 0.0
    out = catalog.METRICS.get("vqa_accuracy").score([answers, ["yes"] * 10], ["2", "yes"])
    assert out["accuracy"] == pytest.approx(95.0)
