"""Train/eval/test splits of a suite's cases: predefined by the cases, or by a stable hash.

When the cases carry ``split: train|eval|test`` (all of them; the case loader checks), those
are the splits (:func:`predefined_splits`) and the fractions and seed do not matter.
Otherwise:

Cases are ranked by ``sha256(f"{seed}:{case_id}")`` and the ranking is cut at the configured
fractions. The result depends only on the ids, the fractions and the seed: the same on every
run and machine, independent of the order cases are listed in, and adding a case moves at
most a few others across a boundary.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_gpo.errors import SuiteError


@dataclass(frozen=True)
class Splits:
    """Case ids of each split, each in the order the suite lists them."""

    train: tuple[str, ...]
    eval: tuple[str, ...]
    test: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {"train": list(self.train), "eval": list(self.eval), "test": list(self.test)}

    def sizes(self) -> tuple[int, int, int]:
        """(train, eval, test) sizes."""
        return len(self.train), len(self.eval), len(self.test)


def case_rank_key(case_id: str, seed: int) -> str:
    """The hash that orders cases for splitting (hex sha256 of ``"{seed}:{case_id}"``)."""
    return hashlib.sha256(f"{seed}:{case_id}".encode()).hexdigest()


def _counts(n: int, fractions: Sequence[float]) -> list[int]:
    """Largest-remainder apportionment of ``n`` over ``fractions``, each at least 1."""
    exact = [n * f for f in fractions]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    for i in range(len(counts)):
        while counts[i] == 0:
            donor = max(range(len(counts)), key=lambda j: (counts[j], -j))
            counts[donor] -= 1
            counts[i] += 1
    return counts


def split_cases(case_ids: Sequence[str], fractions: Sequence[float], seed: int = 0) -> Splits:
    """Split case ids into train/eval/test by stable hash; every split gets at least one case.

    Raises :class:`SuiteError` for fewer than 3 cases or duplicate ids.
    """
    ids = list(case_ids)
    if len(ids) < 3:
        raise SuiteError(
            f"optimizing needs at least 3 cases (one each for train, eval and test), "
            f"this suite has {len(ids)}",
            key="cases",
            fix="add cases; a useful held-out test needs a few dozen",
        )
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise SuiteError(
            f"case ids must be unique to split them, repeated: {', '.join(dupes[:5])}",
            key="cases",
            fix="give each case its own id",
        )
    if len(fractions) != 3 or any(f <= 0 for f in fractions):
        raise ValueError(f"fractions must be three positive numbers, got {list(fractions)}")
    total = sum(fractions)
    counts = _counts(len(ids), [f / total for f in fractions])
    ranked = sorted(ids, key=lambda cid: case_rank_key(cid, seed))
    train = set(ranked[: counts[0]])
    eval_ = set(ranked[counts[0] : counts[0] + counts[1]])
    return Splits(
        train=tuple(i for i in ids if i in train),
        eval=tuple(i for i in ids if i in eval_),
        test=tuple(i for i in ids if i not in train and i not in eval_),
    )


def predefined_splits(case_ids: Sequence[str], split_by_id: Mapping[str, str]) -> Splits:
    """The splits the cases name (``split_by_id[case_id]`` is ``train``, ``eval`` or ``test``).

    Raises :class:`SuiteError` when a case has no split or a split would be empty.
    """
    ids = list(case_ids)
    groups: dict[str, list[str]] = {"train": [], "eval": [], "test": []}
    for cid in ids:
        name = split_by_id.get(cid)
        if name not in groups:
            raise SuiteError(
                f"case '{cid}' has split {name!r}; with predefined splits every case needs "
                "train, eval or test",
                key="cases",
                case=cid,
                fix="give every case split: train, eval or test",
            )
        groups[name].append(cid)
    empty = [name for name, members in groups.items() if not members]
    if empty:
        raise SuiteError(
            f"no case has split: {empty[0]} (predefined splits need train, eval and test cases)",
            key="cases",
            fix=f"mark some cases split: {empty[0]}, or remove 'split' from every case",
        )
    return Splits(
        train=tuple(groups["train"]), eval=tuple(groups["eval"]), test=tuple(groups["test"])
    )
