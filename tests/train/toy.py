"""Tiny models and synthetic data for the training tests (no tokenizer, no hub)."""

from __future__ import annotations

import torch
from torch import nn


class ToyDataset(torch.utils.data.Dataset):
    """Variable-length token sequences; the label is whether token 1 occurs more often than token 2."""

    def __init__(self, n: int = 64, vocab: int = 16, seed: int = 0, max_len: int = 12) -> None:
        g = torch.Generator().manual_seed(seed)
        self.items = []
        for i in range(n):
            length = int(torch.randint(3, max_len + 1, (1,), generator=g))
            ids = torch.randint(1, vocab, (length,), generator=g)
            label = int((ids == 1).sum() > (ids == 2).sum())
            self.items.append({"id": str(i), "input_ids": ids, "labels": label})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]

    def lengths(self) -> list[int]:
        return [len(x["input_ids"]) for x in self.items]


def collate(items: list[dict]) -> dict:
    width = max(len(x["input_ids"]) for x in items)
    ids = torch.zeros(len(items), width, dtype=torch.long)
    mask = torch.zeros(len(items), width, dtype=torch.long)
    for row, x in enumerate(items):
        ids[row, : len(x["input_ids"])] = x["input_ids"]
        mask[row, : len(x["input_ids"])] = 1
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": torch.tensor([x["labels"] for x in items]),
    }


class ToyClassifier(nn.Module):
    """Embedding + dropout + mean pooling + linear; forward returns {loss, logits} like a TaskModel."""

    def __init__(
        self, vocab: int = 16, dim: int = 32, num_labels: int = 2, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.drop = nn.Dropout(dropout)
        self.ff = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.LayerNorm(dim))
        self.out = nn.Linear(dim, num_labels)

    def forward(self, input_ids, attention_mask, labels=None, **_: object) -> dict:
        h = self.drop(self.embed(input_ids))
        m = attention_mask.unsqueeze(-1).float()
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1)
        logits = self.out(self.drop(self.ff(pooled)))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out
