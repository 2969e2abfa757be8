"""One step of the loop: reflect, ask for candidates, check and score them, pick the next prompt.

GPO.md, "One run": the trajectory is retrieved and the edit budget set for step ``t``; the
meta-prompt asks the optimizer model for candidates; each is checked (budget, variables, the
plugins' filter) or rejected with a reason; new ones are scored on eval, and the step's
best-scoring candidate becomes the current prompt.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_gpo.optimize.asking import ask_candidates
from pytest_gpo.optimize.budget import CandidateCheck, check_candidate
from pytest_gpo.optimize.context import RenderRejected, RunContext
from pytest_gpo.optimize.proposer import (
    missing_markers_detail,
    parse_reply,
    with_trailing_whitespace,
)
from pytest_gpo.optimize.race import RaceOutcome, race
from pytest_gpo.optimize.result import CandidateRecord, StepRecord
from pytest_gpo.optimize.retrieval import TrajectoryEntry, retrieve
from pytest_gpo.optimize.schedule import edit_budget


async def run_step(ctx: RunContext, t: int, batch: tuple[str, ...]) -> StepRecord:
    """Run step ``t`` on the train ``batch``: the new current prompt is in ``ctx.state``."""
    assert ctx.state is not None
    st, cfg = ctx.state, ctx.config
    budget = edit_budget(t, ctx.total, cfg)
    retrieved = retrieve(st.trajectory, st.current, cfg.k, cfg.retrieval, ctx.memo)
    asked = await ask_candidates(ctx, t, batch, budget, retrieved)
    feedback, replies = asked.feedback, asked.replies
    for note in asked.notes:
        ctx.emit("note", message=f"step {t}: {note}")
    samples = ctx.variable_samples(batch)
    records: list[CandidateRecord] = []
    seen = set(st.scores)
    new: list[str] = []
    for reply in replies:
        parsed = parse_reply(reply)
        if parsed is None:
            check = CandidateCheck("no_markers", 0, missing_markers_detail(reply))
            text = reply
        else:
            text = with_trailing_whitespace(parsed, ctx.initial)
            check = check_candidate(text, st.current.prompt, budget, ctx.variables, seen, samples)
        records.append(CandidateRecord(text, check.words, check.status, check.detail))
        if check.status == "accepted" and ctx.candidate_filter is not None:
            reason = ctx.candidate_filter(st.current.prompt, text)
            if reason:
                records[-1].status = str(reason)
                records[-1].detail = "rejected by a pytest_gpo_filter_candidate hook"
                continue
        if check.status == "accepted":
            new.append(text)
            seen.add(text)
    raced = await _score_new(ctx, t, new, records)
    unrenderable: dict[str, str] = {}
    for text, error in raced.errors.items():
        assert isinstance(error, RenderRejected)
        unrenderable[text] = error.detail
    st.scores.update(raced.scores)
    st.partial.update(raced.partial)
    for text in raced.scores:
        st.partial.pop(text, None)
    for record in records:
        if record.text in unrenderable and record.status in ("accepted", "duplicate"):
            record.status = "template_error"
            record.detail = unrenderable[record.text]
        elif record.text in raced.dropped and record.status == "accepted":
            record.partial_score, record.dropped_after = raced.dropped[record.text]
    chosen: int | None = None
    for i, record in enumerate(records):
        if record.rejected:
            st.rejected[record.status] += 1
            continue
        if record.status == "duplicate":
            st.duplicates += 1
        if record.text not in st.scores:
            continue  # dropped by the race (a duplicate of it too): it cannot be the choice
        record.score = st.scores[record.text]
        best = None if chosen is None else records[chosen].score
        if best is None or record.score > best:
            chosen = i
    if chosen is not None:
        winner = records[chosen]
        assert winner.score is not None
        st.current = TrajectoryEntry(winner.text, winner.score)
        st.trajectory.append(st.current)
    return StepRecord(
        t=t,
        budget=budget,
        batch=list(batch),
        candidates=records,
        chosen=chosen,
        current_score=st.current.score,
        best_score=st.best().score,
        retrieved=[e.score for e in retrieved],
        reflection=feedback,
        completions=len(replies),
        eval_calls=raced.case_evals * ctx.repeats,
        eval_calls_full=raced.full_case_evals * ctx.repeats,
        notes=asked.notes,
    )


async def _score_new(
    ctx: RunContext, t: int, new: Sequence[str], records: Sequence[CandidateRecord]
) -> RaceOutcome:
    """Score the step's new candidates on eval, raced as ``racing`` says (optimize/race.py).

    Duplicates of earlier prompts race with their known score, in the place they are listed;
    a candidate an earlier race stopped goes on from the cases it was scored on; a round
    scores as many cases as the client runs at once.
    """
    assert ctx.state is not None
    scores = ctx.state.scores
    known = {
        r.text: scores[r.text] for r in records if r.status == "duplicate" and r.text in scores
    }
    fresh = set(new)
    listed = list(dict.fromkeys(r.text for r in records if r.text in fresh or r.text in known))

    async def score_cases(text: str, case_ids: Sequence[str]) -> dict[str, float]:
        run = await ctx.evaluate(text, case_ids, candidate=True)
        return {c.case_id: c.score for c in run.cases}

    return await race(
        listed,
        ctx.splits.eval,
        score_cases,
        mode=ctx.config.racing,
        seed=ctx.config.sampling_seed,
        t=t,
        known=known,
        candidate_errors=(RenderRejected,),
        width=max(1, ctx.concurrency // ctx.repeats),
        prior=ctx.state.partial,
    )
