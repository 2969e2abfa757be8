"""Steps, train batches and the edit budget schedule (GPO's learning rate and its decay).

Formulas are GPO.md's: with n_max = ``max_words``, n_min = ``min_words``, T total steps and
t = 1..T,

* cosine: ``int(n_min + (n_max - n_min) * 0.5 * (1 + cos(pi * t / T)))``
* linear: ``int(n_max - (n_max - n_min) * t / T)``
* fixed:  ``n_max``
* none:   no budget
* warmup (any schedule), as the reference code computes it: ``int(n_max * t / warmup)`` for
  ``t <= warmup`` (at least 1 word: a zero budget would reject every change), reaching n_max
  at ``t = warmup``; after it the schedule above restarts from n_max over the remaining
  steps, with ``t - warmup`` of ``T - warmup`` (warmup 5 of 18: 10, 20, 30, 40, 50, 49, 47,
  ...).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from pytest_gpo.optimize.config import OptimizeConfig


def steps_per_epoch(n_train: int, batch_size: int = 8) -> int:
    """Full batches of the train split, plus one for a remainder of at least half a batch.

    At least 1, so a tiny train split still gets a step per epoch.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    full, remainder = divmod(max(0, n_train), batch_size)
    if remainder * 2 >= batch_size:
        full += 1
    return max(1, full)


def total_steps(config: OptimizeConfig, n_train: int) -> int:
    """``config.steps`` when set, else ``epochs x steps_per_epoch(n_train, batch_size)``."""
    if config.steps is not None:
        return config.steps
    return config.epochs * steps_per_epoch(n_train, config.batch_size)


def edit_budget(t: int, total: int, config: OptimizeConfig) -> int | None:
    """Words the prompt may change at step ``t`` of ``total`` (``None``: unlimited)."""
    if config.schedule == "none":
        return None
    if not 1 <= t <= max(total, 1):
        raise ValueError(f"step {t} is outside 1..{total}")
    n_max, n_min = config.max_words, config.min_words
    if config.warmup:
        if t <= config.warmup:
            return max(1, int(n_max * t / config.warmup))
        t, total = t - config.warmup, total - config.warmup
    if config.schedule == "fixed":
        return n_max
    if config.schedule == "linear":
        return int(n_max - (n_max - n_min) * t / total)
    return int(n_min + (n_max - n_min) * 0.5 * (1 + math.cos(math.pi * t / total)))


def batch_for_step(train_ids: Sequence[str], t: int, config: OptimizeConfig) -> tuple[str, ...]:
    """The train batch of step ``t`` (1-based).

    Each epoch visits the train split in its own seeded order (sha256 of seed, epoch and case
    id), so batches are reproducible without any stored random state. A short last batch (the
    half-batch remainder) is used as is; a remainder under half a batch sits out that epoch.
    """
    ids = list(train_ids)
    if not ids:
        return ()
    per_epoch = steps_per_epoch(len(ids), config.batch_size)
    epoch, index = divmod(t - 1, per_epoch)
    order = sorted(
        ids,
        key=lambda cid: hashlib.sha256(f"{config.seed}:{epoch}:{cid}".encode()).hexdigest(),
    )
    size = config.batch_size
    batch = order[index * size : (index + 1) * size]
    return tuple(batch) if batch else tuple(order[:size])
