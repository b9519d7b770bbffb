"""The translation model: decoder made from the trunk, compact target vocabulary, SixT stages, beam search."""

from __future__ import annotations

import pytest
import torch

from mmxfer.errors import ConfigError
from mmxfer.kinds.base import pad
from mmxfer.models.seq2seq import build_seq2seq, shift_right, target_vocabulary
from mmxfer.models.trunk import load_trunk

SOURCES = [
    "Die Katze sitzt auf der Matte.",
    "Ein Mann reitet am Strand.",
    "Die Katze schaut den roten Ball an.",
]
TARGETS = [
    "The cat sat on the mat.",
    "A man is riding a horse on the beach.",
    "The cat looked at the red ball.",
]


def _labels(tokenizer, texts):
    return [ids[1:] for ids in tokenizer(texts)["input_ids"]]


@pytest.fixture(params=["tiny", "tiny-bert"])
def trunk(request):
    return load_trunk(request.param)


def test_decoder_starts_from_the_trunk(trunk):
    encoder, tokenizer = trunk
    reference = {k: v.clone() for k, v in encoder.state_dict().items()}
    vocab = target_vocabulary(tokenizer, _labels(tokenizer, TARGETS))
    model = build_seq2seq(trunk, vocab=vocab, layers=1, init="trunk")
    base = model.decoder.base_model
    assert model.decoder.config.num_hidden_layers == 1 and model.decoder.config.add_cross_attention
    for key, value in base.encoder.layer[0].state_dict().items():
        if "crossattention" not in key:
            assert torch.equal(value, reference[f"encoder.layer.0.{key}"]), key
    rows = torch.tensor(vocab)
    assert torch.equal(
        base.embeddings.word_embeddings.weight, reference["embeddings.word_embeddings.weight"][rows]
    )
    out = model.decoder.get_output_embeddings().weight
    # tied output projection
    assert out.data_ptr() == base.embeddings.word_embeddings.weight.data_ptr()
    # random init keeps only the embeddings
    rand = build_seq2seq(
        load_trunk(encoder.config.model_type == "bert" and "tiny-bert" or "tiny"),
        vocab=vocab,
        layers=1,
        init="random",
    )
    layer = rand.decoder.base_model.encoder.layer[0].state_dict()
    assert not torch.equal(
        layer["attention.self.query.weight"],
        reference["encoder.layer.0.attention.self.query.weight"],
    )
    assert torch.equal(
        rand.decoder.base_model.embeddings.word_embeddings.weight,
        reference["embeddings.word_embeddings.weight"][rows],
    )


def test_target_vocabulary_is_compact_and_maps_back(trunk):
    _, tokenizer = trunk
    labels = _labels(tokenizer, TARGETS)
    vocab = target_vocabulary(tokenizer, labels)
    assert vocab == sorted(vocab) and {0, 1, 2, 3} <= set(vocab)
    assert set(vocab) == {0, 1, 2, 3} | {t for row in labels for t in row}
    model = build_seq2seq(trunk, vocab=vocab, layers=1)
    assert model.vocab_size == len(vocab)
    batch = pad(labels, -100)
    compact = model.to_compact(batch)
    assert torch.equal(model.compact_to_full[compact.clamp(min=0)][batch >= 0], batch[batch >= 0])
    unseen = max(set(range(len(tokenizer))) - set(vocab))
    assert model.to_compact(torch.tensor([[unseen, -100]])).tolist() == [[model.ids["unk"], -100]]
    assert shift_right(compact, 0, 1)[:, 0].tolist() == [0, 0, 0]


def test_stages_freeze_what_sixt_freezes(trunk):
    model = build_seq2seq(trunk, layers=1)
    model.set_stage(1)
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert not any(p.requires_grad for p in model.decoder.base_model.embeddings.parameters())
    assert any(
        p.requires_grad for n, p in model.decoder.named_parameters() if "crossattention" in n
    )
    model.train()
    # the frozen encoder runs without dropout
    assert not model.encoder.training and model.decoder.training
    model.set_stage(2, train_decoder_embeddings=False)
    encoder_layers = [p.requires_grad for p in model.encoder.encoder.parameters()]
    assert encoder_layers and all(encoder_layers)
    assert not any(p.requires_grad for p in model.encoder.embeddings.parameters())
    assert not any(p.requires_grad for p in model.decoder.base_model.embeddings.parameters())
    model.train()
    assert model.encoder.training
    model.set_stage(2)
    assert all(p.requires_grad for p in model.decoder.base_model.embeddings.parameters())


def test_too_deep_a_trunk_started_decoder_is_a_config_error():
    with pytest.raises(ConfigError, match="decoder_layers=5"):
        build_seq2seq(load_trunk("tiny"), layers=5, init="trunk")
    with pytest.raises(ConfigError, match="decoder_init"):
        build_seq2seq(load_trunk("tiny"), init="wild")


def test_beam_search_batched_equals_one_by_one_and_is_deterministic():
    trunk = load_trunk("tiny")
    tokenizer = trunk.tokenizer
    vocab = target_vocabulary(tokenizer, _labels(tokenizer, TARGETS))
    model = build_seq2seq(trunk, vocab=vocab, layers=1).eval()
    enc = tokenizer(SOURCES, padding=True, return_tensors="pt")
    bounds = model.length_bounds(enc["attention_mask"].sum(1), 0.5, 2)
    batched = model.generate(enc["input_ids"], enc["attention_mask"], num_beams=3, bounds=bounds)
    assert set(batched.unique().tolist()) <= set(vocab)  # trunk ids: compact ids were mapped back
    singles = []
    for i in range(len(SOURCES)):
        n = int(enc["attention_mask"][i].sum())
        one = model.generate(
            enc["input_ids"][i : i + 1, :n], None, num_beams=3, bounds=bounds[i : i + 1]
        )
        singles.append(tokenizer.decode(one[0], skip_special_tokens=True))
    assert singles == tokenizer.batch_decode(batched, skip_special_tokens=True)
    assert torch.equal(
        model.generate(enc["input_ids"], enc["attention_mask"], num_beams=3, bounds=bounds), batched
    )
    # fairseq's int(a * source length + b), capped by the decoder's positions
    assert model.length_bounds(torch.tensor([10, 3]), 1.2, 10).tolist() == [22, 13]
    # tiny: 130 positions from pad + 1 = 2 on, 128 to feed: the start token and up to 127 hypothesis tokens
    assert model.length_bounds(torch.tensor([7]), 0.0, 200).tolist() == [127]
    assert model.length_bounds(torch.tensor([10_000]), 1.2, 10).tolist() == [127]


def _never_ending(trunk):
    """A decoder that never chooses its end token by itself (its output bias for it is -1e4)."""
    tokenizer = trunk.tokenizer
    model = build_seq2seq(
        trunk, vocab=target_vocabulary(tokenizer, _labels(tokenizer, TARGETS)), layers=1
    ).eval()
    model.decoder.get_output_embeddings().bias.data[model.ids["end"]] = -1e4
    return model


@pytest.mark.parametrize("beams", [1, 4])
def test_each_sentence_ends_exactly_at_its_own_bound_inside_the_search(trunk, beams):
    """fairseq (sequence_generator.py:286-288): at step max_len only the end token may follow. A decoder that never
    ends by itself gives, per sentence, exactly int(a * length + b) tokens and then the end token."""
    model = _never_ending(trunk)
    tokenizer = trunk.tokenizer
    enc = tokenizer([SOURCES[0], SOURCES[0] + " " + SOURCES[2]], padding=True, return_tensors="pt")
    lengths = enc["attention_mask"].sum(1)
    bounds = model.length_bounds(lengths, 0.5, 1)
    assert bounds.tolist() == [int(0.5 * n + 1) for n in lengths.tolist()] and bounds[0] < bounds[1]
    out = model.generate(enc["input_ids"], enc["attention_mask"], num_beams=beams, bounds=bounds)
    end, pad = (
        tokenizer.sep_token_id if tokenizer.eos_token_id is None else tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    )
    for row, bound in zip(out.tolist(), bounds.tolist()):
        body = row[1:]  # after the decoder start token
        assert end not in body[:bound] and pad not in body[:bound]
        assert body[bound] == end and all(t == pad for t in body[bound + 1 :])
    # the search ran no further than the longest bound
    assert out.shape[1] == 1 + int(bounds.max()) + 1


def test_resdrop_removes_exactly_the_residual_of_one_self_attention(trunk):
    """SixT's ResDrop (transformer_sentence_encoder_layer.py:136-137): LayerNorm(dropout(attn(x))) instead of
    LayerNorm(x + dropout(attn(x))) in the named encoder layer, from stage 2 on; nothing else changes."""
    encoder, tokenizer = trunk
    plain = build_seq2seq(trunk, layers=1)
    keys = set(plain.state_dict())
    model = build_seq2seq(trunk, layers=1, resdrop_layer=1)
    assert set(model.state_dict()) == keys  # the same parameters, under the same names
    layer = model.encoder.encoder.layer[1]
    seen: dict[str, torch.Tensor] = {}
    layer.register_forward_pre_hook(
        lambda _m, args, kwargs: seen.__setitem__("x", args[0].detach()), with_kwargs=True
    )
    layer.attention.output.LayerNorm.register_forward_pre_hook(
        lambda _m, args: seen.__setitem__("ln", args[0].detach())
    )
    enc = tokenizer(SOURCES, padding=True, return_tensors="pt")
    model.eval()

    def run():
        with torch.no_grad():
            out = model.encoder(
                input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]
            ).last_hidden_state
        return out, seen["x"], seen["ln"]

    model.set_stage(1)  # stage 1 (the encoder frozen): the layer as pretrained
    normal, x, ln_normal = run()
    model.set_stage(2)
    dropped, x2, ln_dropped = run()
    assert torch.equal(x, x2)  # the same input to the layer (layer 0 is untouched)
    assert torch.allclose(ln_normal - ln_dropped, x, atol=1e-5)  # exactly the residual term
    assert not torch.allclose(normal, dropped)
    with pytest.raises(ConfigError, match="resdrop_layer=5"):
        build_seq2seq(trunk, layers=1, resdrop_layer=5)


def test_training_lowers_the_loss():
    torch.manual_seed(0)
    trunk = load_trunk("tiny")
    tokenizer = trunk.tokenizer
    labels = pad(_labels(tokenizer, TARGETS), -100)
    model = build_seq2seq(
        trunk,
        vocab=target_vocabulary(tokenizer, _labels(tokenizer, TARGETS)),
        layers=1,
        label_smoothing=0.1,
    )
    model.set_stage(2)
    enc = tokenizer(SOURCES, padding=True, return_tensors="pt")
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(10):
        loss = model(enc["input_ids"], enc["attention_mask"], labels=labels)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
