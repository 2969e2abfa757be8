"""Choosing the run's best prompt: by eval, ties broken by train, then by the smaller edit.

A small eval split is often saturated (several prompts at 1.000): eval then cannot tell them
apart, and keeping the first of them throws away what train knows. Prompts tied on eval are
scored on train (when the call cap allows); those still tied are told apart by the fewest
words changed from the initial prompt, then by the order they joined the trajectory. The
choice comes with a note for the report whenever eval alone did not decide.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pytest_gpo.optimize.budget import word_edit_distance
from pytest_gpo.optimize.context import RunContext
from pytest_gpo.optimize.estimate import TIE_BREAK_MAX
from pytest_gpo.optimize.retrieval import TrajectoryEntry
from pytest_gpo.results import SuiteRun


def _key(score: float) -> float:
    # scores are means of the same cases: round away float noise before comparing for ties
    return round(score, 9)


@dataclass
class Selection:
    """The chosen entry, the train scores measured to choose it, and the note for the report."""

    best: TrajectoryEntry
    train: dict[str, float] = field(default_factory=dict)
    note: str | None = None
    tied: int = 1


async def select_best(ctx: RunContext) -> Selection:
    """The best trajectory prompt by eval, ties by train then by the smaller edit."""
    assert ctx.state is not None
    entries: dict[str, TrajectoryEntry] = {}
    for entry in ctx.state.trajectory:
        entries.setdefault(entry.prompt, entry)
    top = max(_key(e.score) for e in entries.values())
    tied = [e for e in entries.values() if _key(e.score) == top]
    everything_tied = len(tied) == len(entries) and len(entries) > 1
    if len(tied) == 1:
        return Selection(tied[0])
    train: dict[str, float] = {}
    contenders = tied[:TIE_BREAK_MAX]
    need = ctx.repeats * len(contenders) * len(ctx.splits.train)
    if not ctx.budget_hit and ctx.affordable(need + ctx.repeats * 2 * len(ctx.splits.test)):
        runs = await asyncio.gather(
            *(ctx.evaluate(e.prompt, ctx.splits.train) for e in contenders),
            return_exceptions=True,
        )
        for entry, run in zip(contenders, runs, strict=True):
            # a failed train scoring only loses the tie-break; the held-out test still guards
            if isinstance(run, SuiteRun):
                train[entry.prompt] = run.score
    order = {e.prompt: i for i, e in enumerate(entries.values())}

    def rank(e: TrajectoryEntry) -> tuple[int, float, int, int]:
        t = train.get(e.prompt)
        return (
            0 if t is not None else 1,
            -_key(t) if t is not None else 0.0,
            word_edit_distance(ctx.initial, e.prompt),
            order[e.prompt],
        )

    best = min(tied, key=rank)
    what = (
        f"eval saturated: {len(tied)} candidates tied at {top:.3f}"
        if top >= 1.0
        else (f"{len(tied)} candidates tied on eval at {top:.3f}")
    )
    if train and best.prompt in train:
        best_train = _key(train[best.prompt])
        still = sum(1 for p, v in train.items() if _key(v) == best_train)
        how = (
            "chosen by train"
            if still == 1
            else f"chosen by the smallest edit ({still} also tied on train at {best_train:.3f})"
        )
    else:
        how = "chosen by the smallest edit (no call budget left to score them on train)"
    if len(tied) > len(contenders) and train:
        how += f" (the first {len(contenders)} of them scored on train)"
    note = f"{what}; {how}"
    if everything_tied:
        note = f"no signal on eval: every prompt tried scored {top:.3f}; " + note
    return Selection(best, train, note, len(tied))
