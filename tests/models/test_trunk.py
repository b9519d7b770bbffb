from __future__ import annotations

import os

import pytest
import torch

from mmxfer.errors import AssetError, ConfigError, UnknownNameError
from mmxfer.models import build_task_model, load_state_partial, load_trunk, save_trunk
from mmxfer.models.build import check_sequence_length
from mmxfer.models.trunk import Trunk
from mmxfer.runs import sealed
from mmxfer.testing.tiny import tiny_trunk


def test_tiny_trunk_gives_all_hidden_states_and_xlmr_layout():
    model, tok = load_trunk("tiny")
    assert tok.is_fast
    assert [tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id] == [0, 1, 2, 3]
    assert tok.mask_token_id == len(tok) - 1
    batch = tok(["the cat sat on the mat", "Die Katze"], padding=True, return_tensors="pt")
    out = model(**batch)
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    assert out.last_hidden_state.shape == (2, batch["input_ids"].shape[1], 32)


def test_a_trunk_is_named_model_and_tokenizer_from_a_builder_and_from_a_folder(tmp_path):
    built = load_trunk("tiny")
    assert (
        isinstance(built, Trunk)
        and built.model.config.hidden_size == 32
        and built.tokenizer.is_fast
    )
    save_trunk(built.model, built.tokenizer, tmp_path / "trunk")
    first, again = (
        load_trunk(str(tmp_path / "trunk")),
        load_trunk(str(tmp_path / "trunk")),
    )  # again: from memory
    for loaded in (first, again):
        assert isinstance(loaded, Trunk) and loaded.model.mmxfer_source_dir == str(
            tmp_path / "trunk"
        )
        assert loaded.tokenizer("a cat")["input_ids"] == built.tokenizer("a cat")["input_ids"]
    assert again.model is not first.model  # every load gets its own copy of the weights
    # the task model takes the named trunk apart: its tokenizer gives the MLM head's mask id
    task = build_task_model(built, "caption_mlm")
    assert task.tokenizer is built.tokenizer and task.trunk is built.model
    assert task.head.mask_token_id == built.tokenizer.mask_token_id
    check_sequence_length(built, 0, 128)  # a Trunk and its model alone are checked alike
    with pytest.raises(ConfigError):
        check_sequence_length(built, 0, 129)
    with pytest.raises(ConfigError):
        check_sequence_length(built.model, 0, 129)


def test_tiny_trunk_is_deterministic():
    a, _ = tiny_trunk()
    b, _ = tiny_trunk()
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_save_load_round_trip_is_bit_identical(tmp_path):
    model, tok = tiny_trunk()
    with torch.no_grad():  # move away from the seeded init so the test sees the saved weights
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    out_dir = save_trunk(model, tok, tmp_path / "trunk")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp folder left behind"
    assert (out_dir / "model.safetensors").is_file() and (out_dir / "tokenizer.json").is_file()
    loaded, tok2 = load_trunk(str(out_dir))
    sd1, sd2 = model.state_dict(), loaded.state_dict()
    sd1 = {
        k: v for k, v in sd1.items() if not k.startswith("pooler.")
    }  # trunks load without the pooler
    assert list(sd1) == list(sd2)
    assert all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    text = ["a man is riding a horse", "猫坐在垫子上"]
    assert tok(text)["input_ids"] == tok2(text)["input_ids"]
    model.eval()
    batch = tok(text, padding=True, return_tensors="pt")
    assert torch.equal(model(**batch).last_hidden_state, loaded(**batch).last_hidden_state)


def test_save_trunk_of_a_task_model_carries_no_head_weights(tmp_path):
    tm = build_task_model(tiny_trunk(), "classification", num_labels=3)
    tm.save_trunk(str(tmp_path / "t"))
    from safetensors import safe_open

    with safe_open(str(tmp_path / "t" / "model.safetensors"), framework="pt") as handle:
        keys = list(handle.keys())
    assert keys and not any(k.startswith(("head.", "dense", "out.")) for k in keys)
    assert set(keys) == set(tm.trunk_state())


def test_partial_load_reports_dropped_missing_and_mismatched(caplog):
    qa = build_task_model(tiny_trunk(), "span_qa")  # an intermediate checkpoint with a QA head
    state = qa.state_dict()
    tagger = build_task_model(tiny_trunk(), "tagging", num_labels=7)
    with caplog.at_level("INFO"):
        report = load_state_partial(tagger, state)
    assert report.dropped == ["head.qa_outputs.bias", "head.qa_outputs.weight"]
    assert report.missing == ["head.classifier.bias", "head.classifier.weight"]
    assert len(report.loaded) == len(qa.trunk_state())
    assert "partial load" in caplog.text and "dropped 2 unexpected" in caplog.text

    other = build_task_model(tiny_trunk(), "tagging", num_labels=5)
    report = load_state_partial(other, tagger.state_dict())
    assert (
        report.mismatched == ["head.classifier.bias", "head.classifier.weight"]
        and report.missing == []
    )

    tm = qa
    trunk, _ = tiny_trunk()
    with torch.no_grad():
        for p in tm.trunk.parameters():
            p.add_(1.0)
    report = load_state_partial(trunk, {**tm.trunk_state(), "lm_head.bias": torch.zeros(3)})
    assert report.dropped == ["lm_head.bias"]
    assert report.missing == [] and report.mismatched == []
    assert torch.equal(
        trunk.embeddings.word_embeddings.weight, tm.trunk.embeddings.word_embeddings.weight
    )


def test_unknown_trunk_name_suggests():
    with pytest.raises(UnknownNameError, match="xlm-roberta-base"):
        load_trunk("xlm-robeta-base")


def test_hub_trunk_offline_names_asset_and_local_dir(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AssetError) as info:
        load_trunk("xlm-roberta-base")
    msg = str(info.value)
    assert "FacebookAI/xlm-roberta-base" in msg and "folder" in msg
    assert os.linesep not in msg


def test_missing_local_dir_is_an_asset_error(tmp_path):
    with pytest.raises(AssetError, match="not found"):
        load_trunk(str(tmp_path / "nope"))


def test_trunk_folders_load_without_the_pooler(tmp_path):
    """The pretraining pooler reaches no loss (DDP would wait for its gradients): dropped on load, whether the
    folder holds pooler weights (hub checkpoints) or not (phase-2 trunks), with every other weight intact."""
    import torch

    from mmxfer.models.trunk import load_trunk, save_trunk
    from mmxfer.testing.tiny import tiny_trunk

    model, tokenizer = tiny_trunk()
    model.save_pretrained(str(tmp_path / "hub"))
    tokenizer.save_pretrained(str(tmp_path / "hub"))
    loaded, tok = load_trunk(str(tmp_path / "hub"))
    assert loaded.pooler is None
    save_trunk(loaded, tok, tmp_path / "phase2")
    again, _ = load_trunk(str(tmp_path / "phase2"))
    assert again.pooler is None
    reference = {k: v for k, v in model.state_dict().items() if not k.startswith("pooler.")}
    assert set(again.state_dict()) == set(reference)
    assert all(torch.equal(again.state_dict()[k], v) for k, v in reference.items())


def test_a_tokenizer_is_read_once_per_content_not_per_folder(tmp_path, monkeypatch):
    from mmxfer.models import trunk as trunk_module
    from mmxfer.models.trunk import load_trunk, save_trunk
    from mmxfer.testing.tiny import tiny_trunk

    model, tokenizer = tiny_trunk()
    save_trunk(model, tokenizer, tmp_path / "a")
    # a phase-2 folder: the same tokenizer files, another place
    save_trunk(model, tokenizer, tmp_path / "b")
    monkeypatch.setattr(trunk_module, "CACHE_MAX_BYTES", 0)  # weights always read from disk
    monkeypatch.setattr(trunk_module, "_tokenizers", type(trunk_module._tokenizers)())
    import transformers

    reads = []
    original = transformers.AutoTokenizer.from_pretrained
    monkeypatch.setattr(
        transformers.AutoTokenizer,
        "from_pretrained",
        lambda *a, **k: reads.append(a[0]) or original(*a, **k),
    )
    first, second = (
        load_trunk(str(tmp_path / "a")).tokenizer,
        load_trunk(str(tmp_path / "b")).tokenizer,
    )
    assert len(reads) == 1 and first is second
    assert first("Die Katze")["input_ids"] == tokenizer("Die Katze")["input_ids"]
    # other content: read again
    (tmp_path / "b" / "tokenizer_config.json").write_text(
        (tmp_path / "b" / "tokenizer_config.json").read_text().replace("128", "64")
    )
    # an edit on purpose, sealed again (else refused as damaged)
    sealed.seal(tmp_path / "b", trunk_module.SEAL_FILE)
    load_trunk(str(tmp_path / "b"))
    assert len(reads) == 2


def test_a_phase2_folder_saved_from_a_loaded_tokenizer_reuses_it(tmp_path, monkeypatch):
    """save_pretrained of a tokenizer read from a folder adds where-it-was-read fields (``is_local``,
    ``local_files_only``) to tokenizer_config.json, and of a used one its last call's truncation and padding to
    tokenizer.json; neither may make a phase-2 folder's copy of the trunk's tokenizer a second one in memory."""
    from mmxfer.models import trunk as trunk_module

    model, tokenizer = tiny_trunk()
    save_trunk(model, tokenizer, tmp_path / "base")
    monkeypatch.setattr(trunk_module, "CACHE_MAX_BYTES", 0)
    monkeypatch.setattr(trunk_module, "_tokenizers", type(trunk_module._tokenizers)())
    import transformers

    reads = []
    original = transformers.AutoTokenizer.from_pretrained
    monkeypatch.setattr(
        transformers.AutoTokenizer,
        "from_pretrained",
        lambda *a, **k: reads.append(a[0]) or original(*a, **k),
    )
    loaded, loaded_tokenizer = load_trunk(str(tmp_path / "base"))
    encoded = loaded_tokenizer(
        ["Die Katze sitzt auf der Matte"], truncation=True, max_length=4, padding="max_length"
    )
    # after a call that set truncation and padding
    save_trunk(loaded, loaded_tokenizer, tmp_path / "phase2")
    base_config = (tmp_path / "base" / "tokenizer_config.json").read_text()
    phase2_config = (tmp_path / "phase2" / "tokenizer_config.json").read_text()
    assert base_config != phase2_config  # the situation this guards against: the files differ
    assert load_trunk(str(tmp_path / "phase2")).tokenizer is loaded_tokenizer
    assert len(reads) == 1
    again = loaded_tokenizer(
        ["Die Katze sitzt auf der Matte"], truncation=True, max_length=4, padding="max_length"
    )
    # each call still sets its own truncation and padding
    assert again["input_ids"] == encoded["input_ids"]


def test_auto_attention_is_eager_under_bf16_and_sdpa_in_float32(monkeypatch):
    from mmxfer.config import TrunkConfig
    from mmxfer.models import trunk as trunk_module

    auto = TrunkConfig(name="tiny", attn_implementation="auto")
    assert trunk_module.attention_for(auto, "bf16") == "eager"
    assert trunk_module.attention_for(auto, "no") == "sdpa"
    monkeypatch.setattr("mmxfer.runs.env.cpu_bf16_native", lambda: False)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    # auto precision on a CPU without native bf16
    assert trunk_module.attention_for(auto, "auto") == "sdpa"
    assert (
        trunk_module.attention_for(TrunkConfig(name="tiny", attn_implementation="eager"), "no")
        == "eager"
    )
    seen = []
    monkeypatch.setattr(
        trunk_module,
        "load_trunk",
        lambda name, revision, attn_implementation: seen.append(attn_implementation),
    )
    trunk_module.load_profile_trunk("tiny", auto, "bf16")
    assert seen == ["eager"]


def test_a_saved_trunk_that_no_longer_matches_its_checksums_is_refused(tmp_path):
    model, tokenizer = tiny_trunk()
    folder = save_trunk(model, tokenizer, tmp_path / "t")
    assert (folder / "CHECKSUMS.json").is_file()
    load_trunk(str(folder))
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-100] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(
        AssetError, match=r"is damaged: .*model.safetensors: content differs from its sha256"
    ):
        load_trunk(str(folder))
    (
        folder / "CHECKSUMS.json"
    ).unlink()  # a folder without checksums (a hub download, older code) is read as it is
    load_trunk(str(folder))
