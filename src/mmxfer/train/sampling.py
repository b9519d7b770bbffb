"""Batch orders: length-grouped batching and multi-task mixing, all a pure function of (seed, epoch).

Nothing here touches a global random generator: an epoch's batch order is recomputed from
``(seed, epoch)``, so a resumed run rebuilds exactly the order of the interrupted one and
skips the batches it had already seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmxfer.config import MultiTaskConfig
from mmxfer.errors import ConfigError

# How many batches form one "mega-batch" that is sorted by length (the transformers
# LengthGroupedSampler uses 50 as well): long enough to group similar lengths, short enough
# to keep the order random.
MEGA_BATCHES = 50


def _rng(seed: int, epoch: int, salt: int = 0) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(epoch), int(salt)])


def epoch_batches(
    n: int,
    batch_size: int,
    seed: int,
    epoch: int,
    *,
    lengths: Sequence[int] | None = None,
    group_by_length: bool = False,
    drop_last: bool = False,
    shuffle: bool = True,
    salt: int = 0,
) -> list[list[int]]:
    """The batches (lists of example indices) of one epoch.

    With ``group_by_length`` the shuffled indices are cut into mega-batches of
    ``MEGA_BATCHES * batch_size`` examples, each sorted by length (longest first) and cut into
    batches, so a batch holds examples of similar length and padding is small; the batch order
    is then shuffled, except that the batch holding the longest example goes first (an
    out-of-memory error shows up at step one, not hours later).
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    if n == 0:
        return []
    rng = _rng(seed, epoch, salt)
    order = rng.permutation(n) if shuffle else np.arange(n)
    if group_by_length and lengths is not None:
        lens = np.asarray(lengths)
        if len(lens) != n:
            raise ValueError(f"lengths has {len(lens)} entries for {n} examples")
        mega = MEGA_BATCHES * batch_size
        chunks = [order[i : i + mega] for i in range(0, n, mega)]
        order = np.concatenate([c[np.argsort(-lens[c], kind="stable")] for c in chunks])
    batches = [order[i : i + batch_size].tolist() for i in range(0, n, batch_size)]
    if drop_last and len(batches[-1]) < batch_size:
        batches.pop()
    if group_by_length and lengths is not None and shuffle and len(batches) > 1:
        lens = np.asarray(lengths)
        longest = int(np.argmax([lens[b].max() for b in batches]))
        rest = [b for i, b in enumerate(batches) if i != longest]
        perm = rng.permutation(len(rest))
        batches = [batches[longest]] + [rest[i] for i in perm]
    return batches


def task_probabilities(sizes: Sequence[int], config: MultiTaskConfig) -> np.ndarray:
    """Mixing probabilities of tasks with ``sizes`` examples.

    - ``proportional``: p_i ∝ min(n_i, K) (examples-proportional mixing with cap K; no cap if null);
    - ``temperature``:  p_i ∝ n_i ** (1 / T);
    - ``uniform``:      p_i = 1 / N.
    """
    n = np.asarray(sizes, dtype=np.float64)
    if len(n) == 0:
        raise ConfigError("multi-task mixing needs at least one task")
    if (n <= 0).any():
        raise ConfigError(
            f"every task in a multi-task mix needs training examples; sizes are {list(sizes)}"
        )
    if config.sampling == "proportional":
        weights = np.minimum(n, config.cap) if config.cap else n
    elif config.sampling == "temperature":
        if config.temperature <= 0:
            raise ConfigError(f"multitask.temperature must be > 0, got {config.temperature}")
        weights = n ** (1.0 / config.temperature)
    else:
        weights = np.ones_like(n)
    return weights / weights.sum()


def multitask_epoch_batches(
    sizes: Sequence[int],
    batch_size: int,
    seed: int,
    epoch: int,
    config: MultiTaskConfig,
    *,
    lengths: Sequence[Sequence[int]] | None = None,
    group_by_length: bool = False,
) -> list[tuple[int, list[int]]]:
    """One multi-task "epoch": a list of ``(task_index, example indices within that task)``.

    Every batch holds examples of one task (each task has its own head and collator). The task
    of each step is drawn from :func:`task_probabilities`; within a task, batches follow that
    task's own shuffled (optionally length-grouped) order, reshuffled whenever it runs out.
    The epoch has as many batches as the capped sizes fill: ``sum(min(n_i, K)) / batch_size``
    for proportional mixing, ``sum(n_i) / batch_size`` otherwise.
    """
    probs = task_probabilities(sizes, config)
    capped = [
        min(s, config.cap) if (config.sampling == "proportional" and config.cap) else s
        for s in sizes
    ]
    n_steps = max(1, int(np.ceil(sum(capped) / batch_size)))
    rng = _rng(seed, epoch, salt=10_007)
    picks = rng.choice(len(sizes), size=n_steps, p=probs)
    cursors = [0] * len(sizes)
    rounds = [0] * len(sizes)
    queues: list[list[list[int]]] = [[] for _ in sizes]
    out: list[tuple[int, list[int]]] = []
    for t in picks.tolist():
        if cursors[t] >= len(queues[t]):
            queues[t] = epoch_batches(
                sizes[t],
                batch_size,
                seed,
                epoch * 1000 + rounds[t],
                lengths=lengths[t] if lengths is not None else None,
                group_by_length=group_by_length,
                salt=t + 1,
            )
            cursors[t] = 0
            rounds[t] += 1
        out.append((t, queues[t][cursors[t]]))
        cursors[t] += 1
    return out
