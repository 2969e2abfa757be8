"""Racing a step's candidates on eval instead of scoring each on every eval case.

The eval cases are put in one order per step (a stable hash of the seed, the step and the case
id) and cut into rounds; in each round every candidate still in the race is scored on the same
cases. After a round a candidate is dropped when it can no longer be the step's choice:

* ``exact``: its best possible final mean (every remaining case scoring 1) is strictly below
  the worst possible final mean (every remaining case scoring 0) of another candidate. No
  error: the survivors hold every candidate full evaluation could pick, and the first-listed
  best survivor is the one full evaluation picks.
* ``on``: also when a paired test says it will not win. Because the order of the cases is
  random, the cases seen so far are a simple random sample (without replacement) of eval; for
  pass/fail scores (every per-case score 0 or 1) the leader's lead over the candidate on the
  sample is compared with the largest probability any population of paired differences in
  which the candidate still wins (a total difference of at most 0) gives a lead at least that
  large (exact hypergeometric sums). It is dropped when that probability is at most
  ``delta / rounds``, so over the rounds the step's full-evaluation winner is dropped with
  probability at most ``delta``. Fractional scores use the exact rule only.
* ``off``: every candidate is scored on all of eval in one round.

Candidates whose full score is already known (duplicates of earlier prompts) take part with
that score and cost nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

#: ``score_cases(prompt, case_ids)``: each case's score (0..1) under ``prompt``.
ScoreCases = Callable[[str, Sequence[str]], Awaitable[Mapping[str, float]]]

#: The eval cases are cut into this many rounds (fewer when eval is smaller).
ROUNDS = 4

#: Float slack in the comparisons: a candidate is only ever dropped when clearly behind.
_EPS = 1e-9


@dataclass
class RaceOutcome:
    """What a race found.

    ``scores``: the full eval mean of every candidate scored on all of eval. ``dropped``: the
    candidates stopped early, with their mean on the cases they were scored on and how many.
    ``errors``: candidates whose scoring raised (the exception, for the caller to judge).
    ``case_evals`` counts candidate x case scorings made; ``full_case_evals`` what scoring
    every new candidate on all of eval would have made.
    """

    scores: dict[str, float] = field(default_factory=dict)
    dropped: dict[str, tuple[float, int]] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    case_evals: int = 0
    full_case_evals: int = 0

    @property
    def saved(self) -> int:
        """Case scorings saved against full evaluation."""
        return self.full_case_evals - self.case_evals


def race_order(case_ids: Sequence[str], seed: int, t: int) -> list[str]:
    """The step's case order: by sha256 of ``"{seed}:{t}:{case_id}"``."""
    return sorted(case_ids, key=lambda c: hashlib.sha256(f"{seed}:{t}:{c}".encode()).hexdigest())


def _rounds(order: Sequence[str], mode: str) -> list[list[str]]:
    if mode == "off" or len(order) <= 1:
        return [list(order)]
    size = max(1, math.ceil(len(order) / ROUNDS))
    return [list(order[i : i + size]) for i in range(0, len(order), size)]


@lru_cache(maxsize=4096)
def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


@lru_cache(maxsize=65536)
def worst_case_tail(n: int, m: int, lead: int) -> float:
    """Largest P(sample lead >= ``lead``) over populations of ``n`` differences in {-1, 0, 1}
    summing to 0, for a sample of ``m`` drawn without replacement.

    A population summing to less than 0 only makes a large sample lead less likely, so the sum
    0 populations (``a`` cases +1, ``a`` cases -1, the rest 0) are the worst case.
    """
    if lead <= 0:
        return 1.0
    worst = 0.0
    total = _log_comb(n, m)
    for a in range(0, n // 2 + 1):
        zeros = n - 2 * a
        p = 0.0
        for x in range(lead, min(a, m) + 1):
            for y in range(0, min(a, m - x, x - lead) + 1):
                z = m - x - y
                if z > zeros:
                    continue
                p += math.exp(_log_comb(a, x) + _log_comb(a, y) + _log_comb(zeros, z) - total)
        worst = max(worst, p)
    return min(1.0, worst)


def _is_binary(values: Mapping[str, float]) -> bool:
    return all(v in (0.0, 1.0) for v in values.values())


async def race(
    candidates: Sequence[str],
    case_ids: Sequence[str],
    score_cases: ScoreCases,
    *,
    mode: str,
    delta: float,
    seed: int,
    t: int,
    known: Mapping[str, float] | None = None,
    candidate_errors: tuple[type[BaseException], ...] = (),
) -> RaceOutcome:
    """Race ``candidates`` (new, distinct prompts) on ``case_ids``; see the module docstring.

    ``known`` are competitors with a full eval score already (no calls). ``mode`` is ``on``,
    ``exact`` or ``off``; ``delta`` the error rate of ``on``. A ``candidate_errors`` exception
    from scoring a candidate takes it out of the race (kept in ``errors``); any other one is
    raised after the round it happened in.
    """
    known = dict(known or {})
    n = len(case_ids)
    out = RaceOutcome(full_case_evals=len(candidates) * n)
    if not candidates or n == 0:
        return out
    order = list(case_ids) if mode == "off" else race_order(case_ids, seed, t)
    rounds = _rounds(order, mode)
    per_case: dict[str, dict[str, float]] = {c: {} for c in candidates}
    alive = list(candidates)
    seen = 0
    for cases in rounds:
        if not alive:
            break
        results = await asyncio.gather(
            *(score_cases(c, cases) for c in alive), return_exceptions=True
        )
        for cand, result in zip(list(alive), results, strict=True):
            out.case_evals += len(cases)
            if isinstance(result, BaseException):
                if not isinstance(result, candidate_errors):
                    raise result
                out.errors[cand] = result
                alive.remove(cand)
            else:
                per_case[cand].update({cid: float(result[cid]) for cid in cases})
        seen += len(cases)
        if seen >= n:
            break
        for cand in _losers(alive, per_case, known, n, seen, mode, delta / len(rounds)):
            alive.remove(cand)
            scored = per_case[cand]
            out.dropped[cand] = (sum(scored.values()) / len(scored), len(scored))
    for cand in alive:
        out.scores[cand] = sum(per_case[cand][c] for c in case_ids) / n
    return out


def _losers(
    alive: Sequence[str],
    per_case: Mapping[str, Mapping[str, float]],
    known: Mapping[str, float],
    n: int,
    seen: int,
    mode: str,
    level: float,
) -> list[str]:
    """The candidates to drop after ``seen`` of ``n`` cases."""
    if mode == "off" or not alive:
        return []
    sums = {c: sum(per_case[c].values()) for c in alive}
    remaining = n - seen
    floor = max([s / n for s in sums.values()] + list(known.values()))
    losers = [c for c in alive if (sums[c] + remaining) / n < floor - _EPS]
    # ties go to the candidate listed first, so a later one that can at best tie is out too
    for i, cand in enumerate(alive):
        best_case = sums[cand] + remaining
        if cand not in losers and any(sums[j] >= best_case - _EPS for j in alive[:i]):
            losers.append(cand)
    if mode != "on":
        return losers
    leader = max(alive, key=lambda c: sums[c])
    if not _is_binary(per_case[leader]):
        return losers
    for cand in alive:
        if cand == leader or cand in losers or not _is_binary(per_case[cand]):
            continue
        lead = round(sums[leader] - sums[cand])
        if worst_case_tail(n, seen, lead) <= level:
            losers.append(cand)
    return losers
