from __future__ import annotations

import pytest
import torch

from mmxfer.config import VisionConfig
from mmxfer.errors import UnknownNameError
from mmxfer.models import build_task_model
from mmxfer.models.fusion import fused_forward, position_ids_for
from mmxfer.testing.tiny import tiny_bert_trunk, tiny_trunk

VISION = VisionConfig(
    model="tiny-vit", pretrained=None, freeze=False, projector="mlp", num_tokens=None
)
TEXTS = ["a cat on a mat", "Die Katze sitzt auf der Matte und schaut"]


@pytest.fixture(scope="module")
def batch():
    _, tok = tiny_trunk()
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    torch.manual_seed(0)
    return enc["input_ids"], enc["attention_mask"], torch.randn(2, 3, 32, 32)


def _labels(head, ids):
    g = torch.Generator().manual_seed(1)
    if head == "classification":
        return {"labels": torch.tensor([0, 2])}
    if head == "span_qa":
        return {"start_positions": torch.tensor([1, 2]), "end_positions": torch.tensor([2, 4])}
    if head == "tagging":
        lab = torch.randint(0, 5, ids.shape, generator=g)
        lab[:, 0] = -100
        return {"labels": lab}
    if head == "vqa":
        return {"labels": torch.tensor([[1.0, 0.3, 0, 0, 0, 0, 0], [0, 0, 0.6, 0, 0, 0, 1.0]])}
    if head == "caption_mlm":
        lab = torch.full_like(ids, -100)
        lab[:, 2] = ids[:, 2]
        return {"mlm_labels": lab}
    return {}


HEAD_KW = {
    "classification": {"num_labels": 3},
    "tagging": {"num_labels": 5},
    "vqa": {"num_labels": 7},
}


@pytest.mark.parametrize(
    "head", ["classification", "span_qa", "tagging", "vqa", "caption_mlm", "caption_contrastive"]
)
def test_fused_forward_backward_each_head(head, batch):
    ids, mask, pixels = batch
    model = build_task_model(tiny_trunk(), head, vision_cfg=VISION, **HEAD_KW.get(head, {}))
    model.train()
    out = model(ids, mask, pixel_values=pixels, **_labels(head, ids))
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    grads = [p.grad for p in model.projector.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.trunk.embeddings.word_embeddings.weight.grad is not None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.vision.parameters())
    if head == "span_qa":
        assert out["start_logits"].shape == ids.shape and out["end_logits"].shape == ids.shape
    elif head == "tagging":
        assert out["logits"].shape == (*ids.shape, 5)
    elif head == "caption_mlm":
        assert out["logits"].shape == (
            2,
            model.trunk.config.vocab_size,
        )  # only the 2 masked positions
    elif head == "caption_contrastive":
        assert out["logits"].shape == (2, 2)
    else:
        assert out["logits"].shape == (2, HEAD_KW[head]["num_labels"])


def test_multiple_choice_flattens_choices(batch):
    ids, mask, _ = batch
    model = build_task_model(tiny_trunk(), "multiple_choice")
    ids3 = torch.stack([ids, ids.flip(0), ids], dim=1)  # [B=2, C=3, L]
    mask3 = torch.stack([mask, mask.flip(0), mask], dim=1)
    out = model(ids3, mask3, labels=torch.tensor([1, 2]))
    assert out["logits"].shape == (2, 3)
    out["loss"].backward()


def test_text_only_heads_without_vision(batch):
    ids, mask, _ = batch
    for head in ("classification", "span_qa", "tagging", "vqa", "caption_mlm"):
        model = build_task_model(tiny_trunk(), head, **HEAD_KW.get(head, {}))
        assert model.vision is None and model.projector is None
        out = model(ids, mask, **_labels(head, ids))
        out["loss"].backward()


@pytest.mark.parametrize("builder", [tiny_trunk, tiny_bert_trunk])
def test_text_only_path_equals_plain_trunk(builder, batch):
    ids, mask, _ = batch
    model = build_task_model(builder(), "tagging", num_labels=3, vision_cfg=VISION).eval()
    plain, _ = builder()
    plain.eval()
    with torch.no_grad():
        ours = model(ids, mask)["hidden_states"]
        ref = plain(input_ids=ids, attention_mask=mask).hidden_states
    assert len(ours) == len(ref)
    assert all(torch.equal(a, b) for a, b in zip(ours, ref))


@pytest.mark.parametrize("builder", [tiny_trunk, tiny_bert_trunk])
def test_fused_positions_match_trunk_convention(builder, batch):
    """With zero visual tokens the fused path (inputs_embeds + explicit positions) equals input_ids."""
    ids, mask, _ = batch
    trunk, _ = builder()
    trunk.eval()
    with torch.no_grad():
        fused, ext = fused_forward(trunk, ids, mask, torch.zeros(2, 0, 32))
        plain = trunk(input_ids=ids, attention_mask=mask)
    real = mask.bool()
    assert torch.allclose(fused.last_hidden_state[real], plain.last_hidden_state[real], atol=1e-5)
    pos = position_ids_for(trunk, torch.cat([torch.ones(2, 4, dtype=mask.dtype), mask], 1))
    # RoBERTa: visual tokens take padding_idx+1.., the text continues, pads stay at padding_idx
    if builder is tiny_trunk:
        assert pos[0, :4].tolist() == [2, 3, 4, 5] and pos[0, 4].item() == 6
        assert (pos[0][torch.cat([torch.ones(4), mask[0]]) == 0] == 1).all()
    else:
        assert pos[0].tolist() == list(range(pos.shape[1]))


def test_model_works_under_bf16_autocast(batch):
    ids, mask, pixels = batch
    model = build_task_model(tiny_trunk(), "classification", num_labels=3, vision_cfg=VISION)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(ids, mask, pixel_values=pixels, labels=torch.tensor([0, 1]))
    out["loss"].backward()
    assert torch.isfinite(out["loss"])


def test_frozen_vision_tower_gets_no_grad_and_stays_eval(batch):
    ids, mask, pixels = batch
    cfg = VisionConfig(
        model="tiny-vit", pretrained=None, freeze=True, projector="linear", num_tokens=2
    )
    model = build_task_model(tiny_trunk(), "classification", num_labels=2, vision_cfg=cfg)
    model.train()
    assert not model.vision.training and model.projector.training
    out = model(ids, mask, pixel_values=pixels, labels=torch.tensor([0, 1]))
    out["loss"].backward()
    assert all(p.grad is None for p in model.vision.parameters())
    assert model.visual_tokens(pixels).shape == (
        2,
        2,
        32,
    )  # pooled to num_tokens, projected to trunk width


def test_unknown_head_suggests():
    with pytest.raises(UnknownNameError, match="classification"):
        build_task_model(tiny_trunk(), "clasification", num_labels=2)


def test_caption_mlm_reuses_checkpoint_lm_head(tmp_path):
    from transformers import AutoModelForMaskedLM

    from mmxfer.models import load_trunk

    base, tok = tiny_trunk()
    mlm = AutoModelForMaskedLM.from_config(base.config)
    with torch.no_grad():
        mlm.lm_head.dense.weight.fill_(0.25)
        mlm.lm_head.bias.fill_(0.5)
    mlm.save_pretrained(tmp_path / "mlm")
    tok.save_pretrained(tmp_path / "mlm")
    trunk, _ = load_trunk(str(tmp_path / "mlm"))
    model = build_task_model(trunk, "caption_mlm")
    assert model.head.reused_lm_head
    assert torch.all(model.head.dense.weight == 0.25) and torch.all(model.head.bias == 0.5)
    # decoder tied to the word embeddings
    assert model.head._embeddings[0] is trunk.get_input_embeddings()
    # no LM head in the checkpoint: a fresh tied head
    fresh = build_task_model(tiny_trunk(), "caption_mlm")
    assert not fresh.head.reused_lm_head


def test_caption_mlm_without_labels_scores_only_mask_tokens(batch):
    ids, mask, pixels = batch
    model = build_task_model(tiny_trunk(), "caption_mlm", vision_cfg=VISION).eval()
    masked = ids.clone()
    masked[0, 2] = masked[1, 3] = model.head.mask_token_id
    with torch.no_grad():
        out = model(masked, mask, pixel_values=pixels)
    assert out["logits"].shape == (2, model.trunk.config.vocab_size) and "loss" not in out


def test_mean_classification_head_pools_the_text_tokens_only(batch):
    ids, mask, _ = batch
    model = build_task_model(tiny_trunk(), "classification_mean", num_labels=3).eval()
    with torch.no_grad():
        logits = model(ids, mask)["logits"]
        # the same sentence with three more pads: pads are left out of the mean, so the logits do not move
        pad = torch.full((ids.shape[0], 3), model.tokenizer.pad_token_id)
        padded = model(torch.cat([ids, pad], 1), torch.cat([mask, torch.zeros_like(pad)], 1))[
            "logits"
        ]
        hidden = model.trunk(input_ids=ids, attention_mask=mask).last_hidden_state
        mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        expected = model.head.out(torch.tanh(model.head.dense(mean)))
    torch.testing.assert_close(padded, logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    out = model.train()(ids, mask, labels=torch.tensor([0, 2]))
    out["loss"].backward()
    assert model.head.dense.weight.grad is not None


def test_a_frozen_tied_decoder_is_cast_once_under_autocast_with_the_same_logits():
    """Under bf16 autocast the frozen decoder weight is cast once and kept while it is unchanged: the logits are
    the ones autocast's own per-step cast gives, bit for bit; a changed or trainable weight is never read stale."""
    from mmxfer.models.heads import CaptionMLMHead

    trunk, _ = tiny_trunk()
    emb = trunk.get_input_embeddings()
    emb.requires_grad_(False)
    head = CaptionMLMHead(trunk.config.hidden_size, trunk=trunk, mask_token_id=4)
    hidden = torch.randn(2, 5, trunk.config.hidden_size, generator=torch.Generator().manual_seed(0))
    mlm = torch.tensor([[-100, 7, -100, 9, -100], [3, -100, -100, -100, 11]])

    def autocast_reference() -> torch.Tensor:
        x = head.layer_norm(torch.nn.functional.gelu(head.dense(hidden[mlm != -100])))
        return torch.nn.functional.linear(x, emb.weight, head.bias)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        first = head(hidden, None, labels={"mlm_labels": mlm})["logits"]
        cast = head._cast[1]
        second = head(hidden, None, labels={"mlm_labels": mlm})["logits"]
        reference = autocast_reference()
    assert (
        first.dtype == torch.bfloat16
        and torch.equal(first, reference)
        and torch.equal(second, reference)
    )
    assert head._cast[1] is cast and cast.dtype == torch.bfloat16  # one cast for both steps

    with torch.no_grad():
        emb.weight.mul_(2.0)  # an in-place change: the kept cast is stale and must be made again
    with torch.autocast("cpu", dtype=torch.bfloat16):
        changed = head(hidden, None, labels={"mlm_labels": mlm})["logits"]
        assert torch.equal(changed, autocast_reference()) and head._cast[1] is not cast

    # another weight (a loaded checkpoint's new parameter), not changed in place: its cast is made, not the old kept
    emb.weight = torch.nn.Parameter(torch.randn_like(emb.weight), requires_grad=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(
            head(hidden, None, labels={"mlm_labels": mlm})["logits"], autocast_reference()
        )

    emb.requires_grad_(True)  # a trained decoder: autocast casts it itself, so gradients reach it
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(hidden, None, labels={"mlm_labels": mlm})
    out["loss"].backward()
    assert head._cast is None and emb.weight.grad is not None
    # fp32
    assert torch.equal(
        head(hidden, None, labels={"mlm_labels": mlm})["logits"], autocast_reference()
    )
