"""Racing a step's candidates on eval instead of scoring each on every eval case.

The step picks the first-listed candidate with the highest eval mean, so a candidate can stop
being scored once no result of its remaining cases could make it that pick. The eval cases are
put in one order per step (a stable hash of the seed, the step and the case id), and every
candidate is scored on them in that order. Each round scores the next cases of the candidates
with the highest best possible mean (the first-listed first), up to ``width`` cases a round
(the client's concurrency): the likely winner is scored first and sets the bar, and the others
are stopped against it. After each round a candidate is dropped when its best possible final
mean (every case it has left scoring 1) is below another candidate's worst possible one (every
case left scoring 0), or at best equal to that of a candidate listed before it.

The rule makes no error: the survivors hold the pick full evaluation makes, with its exact
mean, whatever the scores (pass/fail or fractional). ``off`` scores every candidate on all of
eval in one round. Candidates whose full score is already known (duplicates of earlier
prompts) take part with that score, in the place they are listed, and cost nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

#: ``score_cases(prompt, case_ids)``: each case's score (0..1) under ``prompt``.
ScoreCases = Callable[[str, Sequence[str]], Awaitable[Mapping[str, float]]]

#: Float slack in the comparisons: a candidate is only ever dropped when clearly behind.
_EPS = 1e-9


@dataclass
class RaceOutcome:
    """What a race found.

    ``scores``: the full eval mean of every candidate scored on all of eval. ``dropped``: the
    candidates stopped early, with their mean on the cases they were scored on (``None`` when
    none) and how many; ``partial``: their case scores (for a later race). ``errors``:
    candidates whose scoring raised (the exception, for the caller to judge). ``case_evals``
    counts candidate x case scorings made; ``full_case_evals`` what scoring every candidate
    new to the run on all of eval would have made (a step where candidates dropped earlier
    come back may make more). ``rounds`` counts the rounds of calls made one after the other.
    """

    scores: dict[str, float] = field(default_factory=dict)
    dropped: dict[str, tuple[float | None, int]] = field(default_factory=dict)
    partial: dict[str, dict[str, float]] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    case_evals: int = 0
    full_case_evals: int = 0
    rounds: int = 0

    @property
    def saved(self) -> int:
        """Case scorings saved against full evaluation."""
        return self.full_case_evals - self.case_evals


def race_order(case_ids: Sequence[str], seed: int, t: int) -> list[str]:
    """The step's case order: by sha256 of ``"{seed}:{t}:{case_id}"``."""
    return sorted(case_ids, key=lambda c: hashlib.sha256(f"{seed}:{t}:{c}".encode()).hexdigest())


class _Field:
    """The race's state: each candidate's case scores so far (cases scored in the step's order)."""

    def __init__(
        self,
        candidates: Sequence[str],
        known: Mapping[str, float],
        order: Sequence[str],
        prior: Mapping[str, Mapping[str, float]],
    ) -> None:
        self.order = list(order)
        self.n = len(order)
        listed = list(candidates) + [k for k in known if k not in candidates]
        self.pos = {c: i for i, c in enumerate(listed)}
        self.known = {k: v * self.n for k, v in known.items()}
        self.new = [c for c in candidates if c not in known]
        cases = set(order)
        self.scored: dict[str, dict[str, float]] = {
            c: {k: v for k, v in prior.get(c, {}).items() if k in cases} for c in self.new
        }
        self.alive = list(self.new)

    def upper(self, c: str) -> float:
        return sum(self.scored[c].values()) + self.n - len(self.scored[c])

    def lower(self, c: str) -> float:
        return self.known[c] if c in self.known else sum(self.scored[c].values())

    def left(self, c: str) -> list[str]:
        """The cases ``c`` has not been scored on, in the step's order."""
        return [k for k in self.order if k not in self.scored[c]]

    def open(self) -> list[str]:
        """Alive candidates with cases left, the most promising (then first-listed) first."""
        left = [c for c in self.alive if len(self.scored[c]) < self.n]
        return sorted(left, key=lambda c: (-self.upper(c), self.pos[c]))

    def next_round(self, width: int) -> list[tuple[str, list[str]]]:
        """Up to ``width`` cases: the next cases of the most promising candidates."""
        plan: list[tuple[str, list[str]]] = []
        room = width
        for c in self.open():
            if room <= 0:
                break
            take = self.left(c)[:room]
            plan.append((c, take))
            room -= len(take)
        return plan

    def beaten(self, c: str) -> bool:
        """No completion of the cases left makes ``c`` the pick."""
        best = self.upper(c)
        for d in [*self.alive, *self.known]:
            if d == c:
                continue
            low = self.lower(d)
            if low > best + _EPS or (self.pos[d] < self.pos[c] and low >= best - _EPS):
                return True
        return False


async def race(
    candidates: Sequence[str],
    case_ids: Sequence[str],
    score_cases: ScoreCases,
    *,
    mode: str,
    seed: int,
    t: int,
    known: Mapping[str, float] | None = None,
    candidate_errors: tuple[type[BaseException], ...] = (),
    width: int = 8,
    prior: Mapping[str, Mapping[str, float]] | None = None,
) -> RaceOutcome:
    """Race the step's distinct ``candidates`` (in the order listed) on ``case_ids``.

    ``known`` are competitors with a full eval score already (no calls); those not in
    ``candidates`` count as listed after them. ``prior`` holds case scores of candidates from
    an earlier race of this run (they are not scored again, and such a candidate is not counted
    in ``full_case_evals``: full evaluation would have scored it then). ``mode`` is ``on`` or
    ``off``; ``width`` the cases scored at once in a round (at least one candidate's next
    case). A
    ``candidate_errors`` exception from scoring a candidate takes it out of the race (kept in
    ``errors``); any other one is raised after the round it happened in.
    """
    known = dict(known or {})
    n = len(case_ids)
    order = list(case_ids) if mode == "off" else race_order(case_ids, seed, t)
    prior = prior or {}
    state = _Field(candidates, known, order, prior)
    out = RaceOutcome(full_case_evals=sum(1 for c in state.new if c not in prior) * n)
    if not state.new or n == 0:
        return out
    while True:
        plan = (
            [(c, state.left(c)) for c in state.alive if state.left(c)]
            if mode == "off"
            else state.next_round(max(1, width))
        )
        if not plan:
            break
        out.rounds += 1
        results = await asyncio.gather(
            *(score_cases(c, cases) for c, cases in plan), return_exceptions=True
        )
        for (cand, cases), result in zip(plan, results, strict=True):
            out.case_evals += len(cases)
            if isinstance(result, BaseException):
                if not isinstance(result, candidate_errors):
                    raise result
                out.errors[cand] = result
                state.alive.remove(cand)
            else:
                state.scored[cand].update({cid: float(result[cid]) for cid in cases})
        if mode == "off":
            break
        for cand in state.open():
            if state.beaten(cand):
                state.alive.remove(cand)
                part = state.scored[cand]
                out.partial[cand] = dict(part)
                mean = sum(part.values()) / len(part) if part else None
                out.dropped[cand] = (mean, len(part))
    for cand in state.alive:
        # summed in the cases' own order, as full evaluation sums them: equal means stay equal
        out.scores[cand] = sum(state.scored[cand][c] for c in case_ids) / n
    return out
