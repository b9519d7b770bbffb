"""`mmxfer evaluate --trunk NAME`: the retrieval settings of the profile that defines that trunk (else XTREME's),
never the starter profile's; `layer: null` is XTREME's layer; the command prints what it uses."""

from __future__ import annotations

import json

import pytest

from mmxfer.cli import main
from mmxfer.config import RetrievalConfig
from mmxfer.evaluation import retrieval


def test_layer_null_is_xtremes_convention():
    cfg = RetrievalConfig()
    assert retrieval.resolve_layer(cfg, 24) == 14  # hidden_states[14]: XLM-R Large, Tatoeba / jiant
    assert retrieval.resolve_layer(cfg, 12) == 8  # specific_layer 7 of the last 12
    assert retrieval.resolve_layer(cfg, 6) == 3
    assert retrieval.resolve_layer(RetrievalConfig(layer=-1), 24) == -1


@pytest.mark.parametrize(
    "trunk, profile",
    [
        ("xlm-roberta-large", "xlmr-large"),
        ("FacebookAI/xlm-roberta-large", "xlmr-large"),
        ("xlm-roberta-base", "xlmr-base"),
        ("starter", "starter"),
        ("tiny", "xtreme-defaults"),
    ],
)
def test_a_named_trunk_gets_the_profile_that_defines_it(trunk, profile):
    got = retrieval.trunk_profile(trunk)
    assert got.name == profile
    if profile != "starter":
        assert got.retrieval.prefix == "" and got.retrieval.pooling == "mean"
        assert retrieval.retrieval_max_length(got) == 512
    assert retrieval.trunk_profile(trunk, "starter").name == "starter"  # an explicit --profile wins


def test_a_phase2_trunk_folder_gets_the_profile_of_the_trunk_it_was_trained_from(tmp_path):
    folder = tmp_path / "_intermediate" / "mnli-s1-abc" / "trunk"
    folder.mkdir(parents=True)
    (folder.parent / "phase2.yaml").write_text("trunk: {name: xlm-roberta-large}\n")
    assert retrieval.trunk_profile(str(folder)).name == "xlmr-large"


def _deep_tiny(attn_implementation="sdpa"):
    """A tiny XLM-R of XLM-R Large's depth (24 layers), standing in for the hub download."""
    from transformers import AutoModel, XLMRobertaConfig

    from mmxfer.testing.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    cfg = XLMRobertaConfig(
        vocab_size=len(tok),
        hidden_size=8,
        num_hidden_layers=24,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=130,
        pad_token_id=1,
    )
    model = AutoModel.from_config(cfg)
    model.config.output_hidden_states = True
    return model.eval(), tok


def test_evaluate_xlmr_large_uses_its_profile_and_prints_the_settings(
    tmp_path, monkeypatch, capsys
):
    from mmxfer.models import trunk as trunk_module

    loaded = []
    monkeypatch.setattr(
        trunk_module,
        "load_trunk",
        lambda name, revision=None, **kw: loaded.append(kw) or _deep_tiny(),
    )
    data = tmp_path / "data"
    data.mkdir()
    (data / "tatoeba.kaz-eng.kaz").write_text("Сәлем әлем\nМысық\n")
    (data / "tatoeba.kaz-eng.eng").write_text("Hello world\nA cat\n")
    out = tmp_path / "out"
    code = main(
        [
            "evaluate",
            "--trunk",
            "xlm-roberta-large",
            "--task",
            "tatoeba",
            "--languages",
            "kaz",
            "--data-dir",
            str(data),
            "--out-dir",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert (
        "retrieval settings (profile xlmr-large): layer 14 = hidden_states[14] of 24 layers"
        in printed
    )
    assert "prefix ''" in printed
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    settings = rows[0]["settings"]
    assert (settings["layer"], settings["prefix"], settings["pooling"]) == (14, "", "mean")
    assert loaded == [
        {"attn_implementation": "sdpa"}
    ]  # the profile's attention implementation (xlmr-large: sdpa)
