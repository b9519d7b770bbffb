"""Frozen lower trunk layers (``trunk.train_top_layers``): the split forward computes what the plain forward
computes, caches only what it may, and trains only the top layers."""

from __future__ import annotations

import pytest
import torch

from mmxfer.errors import ConfigError
from mmxfer.models import frozen
from mmxfer.models.build import build_task_model
from mmxfer.models.embed import encode
from mmxfer.models.fusion import fused_forward
from mmxfer.models.trunk import Trunk, load_trunk, save_trunk
from mmxfer.testing.tiny import tiny_trunk

SENTENCES = [
    "The cat sat on the mat.",
    "Ein Mann reitet am Strand.",
    "猫坐在垫子上看着红色的球。",
    "Two dogs are playing in the snow near a small house. What color is the car?",
    "yes",
]


def _batch(tokenizer, texts=SENTENCES):
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def _deeper_trunk(layers: int = 3):
    """The tiny XLM-R with ``layers`` layers (the shipped tiny trunk has 2)."""
    from transformers import AutoModel

    model, tokenizer = tiny_trunk()
    config = model.config
    config.num_hidden_layers = layers
    torch.manual_seed(0)
    return AutoModel.from_config(config, attn_implementation="sdpa").eval(), tokenizer


def test_frozen_depth_counts_from_the_top():
    model, _ = tiny_trunk()
    assert frozen.frozen_depth(model, None) == 0
    assert frozen.frozen_depth(model, 1) == 1
    assert frozen.frozen_depth(model, 2) == 0
    assert frozen.frozen_depth(model, 4) == 0  # a trunk of K layers or fewer trains all of them


def test_split_forward_equals_the_plain_forward_and_fills_the_cache():
    model, tokenizer = _deeper_trunk(3)
    ids, mask = _batch(tokenizer)
    with torch.no_grad():
        plain = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    cache = frozen.StateCache(2**30)
    frozen.freeze_lower_layers(model, 2, cache)
    with torch.no_grad():
        first = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        again = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    real = mask.bool()
    assert (
        len(cache) == len(SENTENCES)
        and cache.misses == len(SENTENCES)
        and cache.hits == len(SENTENCES)
    )
    for out in (first, again):
        torch.testing.assert_close(
            out.last_hidden_state[real], plain.last_hidden_state[real], atol=1e-5, rtol=1e-5
        )
        assert len(out.hidden_states) == len(plain.hidden_states) == 4
        # below the frozen depth: not computed
        assert out.hidden_states[0] is None and out.hidden_states[1] is None
        for k in (2, 3):
            torch.testing.assert_close(
                out.hidden_states[k][real], plain.hidden_states[k][real], atol=1e-5, rtol=1e-5
            )


def test_a_sentence_gets_the_same_states_in_any_batch():
    model, tokenizer = _deeper_trunk(3)
    frozen.freeze_lower_layers(model, 2, frozen.StateCache(2**30))
    with torch.no_grad():
        alone = [
            model(
                **dict(zip(("input_ids", "attention_mask"), _batch(tokenizer, [s])))
            ).last_hidden_state[0]
            for s in SENTENCES
        ]
        ids, mask = _batch(tokenizer)
        together = model(input_ids=ids, attention_mask=mask).last_hidden_state
    for i, row in enumerate(alone):
        torch.testing.assert_close(together[i, : row.shape[0]], row, atol=1e-5, rtol=1e-5)


def test_the_cache_key_is_the_frozen_weights_not_the_model_object(tmp_path):
    model, tokenizer = _deeper_trunk(3)
    save_trunk(model, tokenizer, tmp_path / "trunk")
    loaded, _ = load_trunk(str(tmp_path / "trunk"))
    assert frozen.lower_fingerprint(loaded, 2) == frozen.lower_fingerprint(model, 2)
    with torch.no_grad():
        # above the frozen depth: same lower states
        loaded.encoder.layer[2].output.dense.weight.add_(1.0)
    assert frozen.lower_fingerprint(loaded, 2) == frozen.lower_fingerprint(model, 2)
    with torch.no_grad():
        loaded.encoder.layer[1].output.dense.weight.add_(1.0)  # a frozen layer: other states
    assert frozen.lower_fingerprint(loaded, 2) != frozen.lower_fingerprint(model, 2)
    assert frozen.lower_fingerprint(model, 1) != frozen.lower_fingerprint(model, 2)


def test_a_trunk_with_other_lower_weights_never_reads_the_states_of_another():
    a, tokenizer = _deeper_trunk(3)
    b, _ = _deeper_trunk(3)
    with torch.no_grad():
        b.encoder.layer[0].attention.output.dense.weight.mul_(-1.0)
        expected = b(*_batch(tokenizer)).last_hidden_state
    cache = frozen.StateCache(2**30)
    frozen.freeze_lower_layers(a, 2, cache)
    frozen.freeze_lower_layers(b, 2, cache)
    ids, mask = _batch(tokenizer)
    with torch.no_grad():
        a(input_ids=ids, attention_mask=mask)
        got = b(input_ids=ids, attention_mask=mask).last_hidden_state
    assert cache.hits == 0 and len(cache) == 2 * len(SENTENCES)
    torch.testing.assert_close(got[mask.bool()], expected[mask.bool()], atol=1e-5, rtol=1e-5)


def test_only_the_top_layers_train_and_the_frozen_ones_keep_eval_mode():
    model, tokenizer = _deeper_trunk(3)
    task = build_task_model(
        Trunk(model, tokenizer), "classification", num_labels=3, train_top_layers=1
    )
    assert model._mmxfer_frozen.layers == 2
    task.train()
    ids, mask = _batch(tokenizer)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = task(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1, 2, 0, 1]))
    out["loss"].backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(
        grads[n] is None
        for n in grads
        if n.startswith(("embeddings.", "encoder.layer.0.", "encoder.layer.1."))
    )
    assert any(
        grads[n] is not None and grads[n].abs().sum() > 0
        for n in grads
        if n.startswith("encoder.layer.2.")
    )
    torch.optim.SGD([p for p in task.parameters() if p.requires_grad], lr=0.1).step()
    after = model.state_dict()
    assert all(
        torch.equal(before[k], after[k])
        for k in before
        if k.startswith(("embeddings.", "encoder.layer.0.", "encoder.layer.1."))
    )
    assert not torch.equal(
        before["encoder.layer.2.output.dense.weight"], after["encoder.layer.2.output.dense.weight"]
    )
    # dropout off below the frozen depth: the same input gives the same lower states in train mode
    frozen.STATES.clear()
    with torch.no_grad():
        h1 = frozen._lower(model, 2, input_ids=ids, attention_mask=mask)
        h2 = frozen._lower(model, 2, input_ids=ids, attention_mask=mask)
    assert torch.equal(h1, h2) and model.training


def test_visual_tokens_pass_through_the_frozen_layers_with_gradients_to_the_projector():
    model, tokenizer = _deeper_trunk(3)
    ids, mask = _batch(tokenizer)
    visual = torch.randn(ids.shape[0], 4, model.config.hidden_size)
    model.eval()
    with torch.no_grad():
        plain, _ = fused_forward(model, ids, mask, visual)
    cache = frozen.StateCache(2**30)
    frozen.freeze_lower_layers(model, 2, cache)
    visual.requires_grad_(True)
    split, fused_mask = fused_forward(model, ids, mask, visual)
    real = fused_mask.bool()
    torch.testing.assert_close(
        split.last_hidden_state[real], plain.last_hidden_state[real], atol=1e-5, rtol=1e-5
    )
    split.last_hidden_state[real].sum().backward()
    assert visual.grad is not None and visual.grad.abs().sum() > 0
    assert len(cache) == 0  # inputs_embeds are never cached


def test_retrieval_embeddings_are_the_same_through_the_cache():
    model, tokenizer = _deeper_trunk(3)
    plain = encode(model, tokenizer, SENTENCES, prefix="query: ", progress=False)
    frozen.freeze_lower_layers(model, 2, frozen.StateCache(2**30))
    first = encode(model, tokenizer, SENTENCES, prefix="query: ", progress=False)
    second = encode(model, tokenizer, SENTENCES, prefix="query: ", progress=False)
    torch.testing.assert_close(
        torch.from_numpy(first), torch.from_numpy(plain), atol=1e-5, rtol=1e-5
    )
    assert (first == second).all()
    with pytest.raises(ConfigError, match="layers 0..3"):
        encode(model, tokenizer, SENTENCES, layer=7, progress=False)


def test_the_cache_keeps_to_its_byte_budget():
    cache = frozen.StateCache(max_bytes=3 * 4 * 10)
    for i in range(5):
        cache.put(i, torch.zeros(10))
    assert (
        len(cache) == 3 and cache.bytes == 120 and cache.get(0) is None and cache.get(4) is not None
    )
    cache.put("big", torch.zeros(100))  # larger than the whole budget: not kept
    assert cache.get("big") is None


def test_freezing_a_trunk_that_is_not_bert_shaped_is_one_clear_error():
    with pytest.raises(ConfigError, match="train_top_layers needs a BERT/RoBERTa-style trunk"):
        frozen.frozen_depth(torch.nn.Linear(2, 2), 1)


def test_under_bf16_autocast_states_are_kept_in_bf16_and_read_the_same_cached_or_not():
    model, tokenizer = _deeper_trunk(3)
    ids, mask = _batch(tokenizer)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        plain = model(input_ids=ids, attention_mask=mask).last_hidden_state
        cache = frozen.StateCache(2**30)
        frozen.freeze_lower_layers(model, 2, cache)
        first = model(
            input_ids=ids, attention_mask=mask
        ).last_hidden_state  # computed, rounded, stored
        again = model(input_ids=ids, attention_mask=mask).last_hidden_state  # read from the cache
    assert cache.hits == len(SENTENCES) and {v.dtype for v in cache._items.values()} == {
        torch.bfloat16
    }
    real = mask.bool()
    # a result never depends on whether the sentence was seen
    assert torch.equal(first[real], again[real])
    torch.testing.assert_close(first[real].float(), plain[real].float(), atol=0.05, rtol=0.05)
    with torch.no_grad():  # fp32: another cache entry, kept in fp32
        model(input_ids=ids, attention_mask=mask)
    assert {v.dtype for v in cache._items.values()} == {torch.bfloat16, torch.float32}


def _resident_kib(path: object) -> int:
    """Resident KiB of this process's mappings of ``path`` (/proc/self/smaps)."""
    total, current = 0, False
    with open("/proc/self/smaps", encoding="utf-8", errors="replace") as smaps:
        for line in smaps:
            first = line.split(maxsplit=1)[0]
            if "-" in first and not first.endswith(":"):
                current = line.rstrip().endswith(str(path))
            elif current and first == "Rss:":
                total += int(line.split()[1])
    return total


def _mapped_values(tmp_path) -> tuple[torch.Tensor, torch.Tensor, object]:
    """64 MiB of float32 written to a file (synced, so no page is held for write-back) and mapped from it."""
    import os

    path = tmp_path / "weights.bin"
    values = torch.randn(16 * 2**20, generator=torch.Generator().manual_seed(0))
    with open(path, "wb") as out:
        out.write(values.numpy().tobytes())
        out.flush()
        os.fsync(out.fileno())
    return (
        values,
        torch.from_file(str(path), shared=False, size=values.numel(), dtype=torch.float32),
        path,
    )


@pytest.mark.skipif(
    not __import__("sys").platform.startswith("linux"), reason="/proc and madvise are Linux's"
)
def test_fingerprinting_weights_mapped_from_a_file_leaves_them_unread_in_memory(tmp_path):
    """Trunk weights stay mapped from their safetensors file; the fingerprint reads every byte (same digest as an
    in-memory copy) but gives the file's pages back, so a 64 MiB matrix is not left resident."""
    from mmxfer import memory

    values, mapped, path = _mapped_values(tmp_path)
    if not memory.file_mapped_ranges():
        pytest.skip("no /proc/self/maps here")
    assert memory._in_ranges(mapped.data_ptr(), memory.file_mapped_ranges(), mapped.numel() * 4)
    if not memory.give_back_file_pages(mapped.data_ptr(), 2 * 2**20):
        pytest.skip("the kernel refuses MADV_PAGEOUT here")
    fingerprint = frozen.tensors_fingerprint(iter([("w", mapped)]))
    assert fingerprint == frozen.tensors_fingerprint(iter([("w", values.clone())]))
    assert _resident_kib(path) < 8 * 1024  # of 65536 KiB read
    assert torch.equal(mapped, values)  # the content is what the file holds, read again on demand


def test_hashing_a_mapped_file_gives_back_chunks_on_chunk_edges_and_hashes_every_byte(monkeypatch):
    """The chunks end on multiples of HASH_CHUNK in the address space (page boundaries), cover the data once, and
    the digest is the one-piece digest; data outside the file ranges, or no larger than a chunk, is not given back."""
    import hashlib

    from mmxfer import memory

    given: list[tuple[int, int]] = []
    monkeypatch.setattr(
        memory, "give_back_file_pages", lambda address, length: given.append((address, length))
    )
    data = memoryview(bytes(range(256)) * (3 * memory.HASH_CHUNK // 256 + 77))
    address = 5 * memory.HASH_CHUNK - 12345  # not page-aligned
    digest = hashlib.sha256()
    memory.hash_giving_back_file_pages(digest, data, address, [(0, 2**48)])
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert given[0] == (address, 12345) and sum(length for _, length in given) == len(data)
    assert all((a + n) % memory.HASH_CHUNK == 0 for a, n in given[:-1])
    assert all(a + n == b for (a, n), (b, _) in zip(given, given[1:]))
    given.clear()
    # not inside
    memory.hash_giving_back_file_pages(hashlib.sha256(), data, address, [(address, address + 100)])
    memory.hash_giving_back_file_pages(
        hashlib.sha256(), data[: memory.HASH_CHUNK], address, [(0, 2**48)]
    )
    assert given == []


def test_without_madvise_the_fingerprint_is_the_same_and_nothing_is_given_back(
    tmp_path, monkeypatch
):
    from mmxfer import memory

    values, mapped, _ = _mapped_values(tmp_path)
    expected = frozen.tensors_fingerprint(iter([("w", values)]))
    monkeypatch.setattr(memory, "_madvise", lambda: None)
    assert memory.give_back_file_pages(mapped.data_ptr(), 2 * 2**20) is False
    assert frozen.tensors_fingerprint(iter([("w", mapped)])) == expected


def test_only_plain_files_count_as_file_mappings():
    """Anonymous memory, the heap, devices, shared memory and memfd are not given back (that would swap them)."""
    from mmxfer.memory import file_ranges

    maps = "\n".join(
        [
            "7f0000001000-7f0000002000 r--p 00000000 fd:01 1234  /models/trunk/model.safetensors",
            "7f0000000000-7f0000001000 r--p 00000000 fd:01 99    /usr/lib/libc.so.6 (deleted)",
            "55d000000000-55d000100000 rw-p 00000000 00:00 0     [heap]",
            "7f0000003000-7f0000004000 rw-p 00000000 00:00 0 ",
            "7f0000005000-7f0000006000 rw-s 00000000 00:05 77    /dev/nvidia0",
            "7f0000007000-7f0000008000 rw-s 00000000 00:1a 78    /dev/shm/torch_123",
            "7f0000009000-7f000000a000 rw-s 00000000 00:01 79    /memfd:pytorch (deleted)",
            "7f000000b000-7f000000c000 rw-s 00000000 00:01 0     /SYSV00000000",
        ]
    )
    assert file_ranges(maps) == [(0x7F0000000000, 0x7F0000001000), (0x7F0000001000, 0x7F0000002000)]
