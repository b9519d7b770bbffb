"""The token-length table: measured entries are what featurisation of the real data gives; assumed entries say so."""

from __future__ import annotations

import pytest

from mmxfer import catalog
from mmxfer.study import lengths
from mmxfer.tasks.starter_flores import shipped_root


def _xlmr_tokenizer(realdata):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=str(realdata / "xlmr_tokenizer/tokenizer.json"),
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )


@pytest.mark.realdata
def test_measured_sib200_entry_is_the_featurised_shipped_data(realdata, mmxfer_cache):
    """Re-featurise the shipped English SIB-200 training split with the XLM-R vocabulary: the table's quantiles and
    the German length ratio come out again."""
    tok = _xlmr_tokenizer(realdata)
    spec = catalog.task("sib200")
    train = spec.load("train", "eng_Latn", str(shipped_root()))
    measured = lengths.measure(spec, train, tok)
    entry = lengths.task_lengths("sib200")
    assert entry.status == lengths.MEASURED and measured["examples"] == 701
    assert tuple(measured["tokens"]["quantiles"]) == entry.tokens.quantiles
    eng = lengths.mean_pieces(tok, spec.load("test", "eng_Latn", str(shipped_root()))["text_a"])
    deu = lengths.mean_pieces(tok, spec.load("test", "deu_Latn", str(shipped_root()))["text_a"])
    assert lengths.language_ratio("de") == (round(deu / eng, 3), True)


def test_every_entry_names_its_status_and_source():
    table = lengths.table()["tasks"]
    assert {e["status"] for e in table.values()} == {lengths.MEASURED, lengths.ASSUMED}
    for name in table:
        parsed = lengths.task_lengths(name)
        assert parsed.source and parsed.tokens.mean > 2, name
        if catalog.task(name).kind == "multiple_choice":
            assert parsed.choices in (4, 5), name


def test_assumed_lognormal_has_the_stated_mean():
    dist = lengths.lognormal(40.0, 0.5)
    assert dist.mean == pytest.approx(40.0, rel=0.03)
    assert dist.sample(20000, 0).mean() == pytest.approx(40.0, rel=0.03)


def test_unmeasured_language_takes_the_median_ratio():
    ratio, measured = lengths.language_ratio("ace_Latn")
    assert not measured and 0.9 < ratio < 1.5
    assert lengths.language_ratio("eng_Latn") == (1.0, True)
