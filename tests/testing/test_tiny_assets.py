"""The tiny models saved to disk load through the real paths: ``trunk.name=<folder>``, ``vision.checkpoint=<file>``."""

from __future__ import annotations

import json

import pytest
import torch

from mmxfer.config import VisionConfig
from mmxfer.models.trunk import load_trunk
from mmxfer.models.vision import build_vision_tower


def test_tiny_trunk_folder_is_a_hugging_face_xlmr_folder(tiny_models):
    folder, _ = tiny_models
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "xlm-roberta" and config["architectures"] == ["XLMRobertaModel"]
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()


def test_tiny_trunk_folder_loads_as_the_tiny_trunk(tiny_models):
    from mmxfer.testing.tiny import tiny_trunk

    folder, _ = tiny_models
    model, tok = load_trunk(str(folder))
    ref_model, ref_tok = tiny_trunk()
    assert type(model).__name__ == "XLMRobertaModel" and tok.is_fast
    # the folder path, not a builder
    assert getattr(model, "mmxfer_source_dir", None) == str(folder)
    text = ["Die Katze sitzt auf der Matte.", "猫坐在垫子上"]
    batch, ref_batch = (
        tok(text, padding=True, return_tensors="pt"),
        ref_tok(text, padding=True, return_tensors="pt"),
    )
    assert torch.equal(batch["input_ids"], ref_batch["input_ids"])
    ref_model.eval()
    with torch.no_grad():
        assert torch.equal(
            model(**batch).last_hidden_state, ref_model(**ref_batch).last_hidden_state
        )


def test_tiny_trunk_folder_is_made_once(tiny_models):
    from mmxfer.testing.saved import tiny_trunk_dir

    folder, _ = tiny_models
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert tiny_trunk_dir(folder.parent) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_tiny_vision_checkpoint_loads_into_the_tiny_tower(tiny_models):
    from safetensors.torch import load_file

    _, checkpoint = tiny_models
    state = load_file(str(checkpoint))
    assert state and all(k.startswith("visual.") for k in state)
    tower = build_vision_tower(
        VisionConfig(model="tiny-vit", pretrained=None, checkpoint=str(checkpoint))
    )
    fresh = build_vision_tower(VisionConfig(model="tiny-vit", pretrained=None))
    loaded = tower.visual.state_dict()
    assert all(torch.equal(loaded[k.removeprefix("visual.")], v) for k, v in state.items())
    assert any(not torch.equal(fresh.visual.state_dict()[k], v) for k, v in loaded.items())
    assert tower(torch.zeros(1, 3, 32, 32)).shape[-1] == tower.width


def test_a_small_trunk_folder_is_read_once_per_process(tiny_models, tmp_path, monkeypatch):
    """Later loads of an unchanged small folder are deep copies of the first: same weights, independent
    modules, no disk read; a rewritten folder is read again."""
    import shutil

    from mmxfer.models import trunk

    folder = tmp_path / "trunk"
    shutil.copytree(tiny_models[0], folder)
    reads = []
    real = trunk._read_dir
    monkeypatch.setattr(
        trunk, "_read_dir", lambda path, attn: reads.append(path) or real(path, attn)
    )
    first, tok = load_trunk(str(folder))
    with torch.no_grad():
        first.embeddings.word_embeddings.weight.add_(1.0)  # training the first copy ...
    second, tok2 = load_trunk(str(folder))
    assert len(reads) == 1 and second is not first and tok2 is not tok
    reference = load_file_state(folder)
    # ... leaves the cache as read
    assert all(torch.equal(v, reference[k]) for k, v in second.state_dict().items())
    assert not second.training and second.config.output_hidden_states
    assert getattr(second, "mmxfer_source_dir", None) == str(folder)
    trunk.save_trunk(first, tok, folder)  # a new phase-2 trunk in the same place
    third, _ = load_trunk(str(folder))
    assert len(reads) == 2
    assert torch.equal(
        third.embeddings.word_embeddings.weight, first.embeddings.word_embeddings.weight
    )


def load_file_state(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_the_spbleu_stand_in_model_is_deterministic_and_covers_the_fixture_text(tmp_path):
    """The rehearsal's SentencePiece model (spBLEU offline): made once, byte-identical on a second machine (a
    second folder), and every fixture sentence of the FLORES languages splits into known pieces."""
    import sentencepiece as spm

    from mmxfer.metrics.generation import spbleu
    from mmxfer.testing import corpus
    from mmxfer.testing.saved import tiny_spm_model

    first = tiny_spm_model(tmp_path / "a")
    stamp = first.stat().st_mtime_ns
    assert tiny_spm_model(tmp_path / "a") == first and first.stat().st_mtime_ns == stamp
    assert tiny_spm_model(tmp_path / "b").read_bytes() == first.read_bytes()
    model = spm.SentencePieceProcessor(model_file=str(first))
    for lang in ("eng_Latn", "deu_Latn", "zho_Hans", "arb_Arab"):
        text = corpus.sentence(lang, "flores", "devtest", 3)
        assert model.unk_id() not in model.encode(text), lang
    ref = corpus.sentence("eng_Latn", "flores", "devtest", 3)
    assert spbleu([ref], [ref], spm_model=first) == pytest.approx(100.0)
