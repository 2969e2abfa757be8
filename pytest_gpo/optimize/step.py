"""One step of the loop: reflect, ask for candidates, check and score them, pick the next prompt.

GPO.md, "One run": the trajectory is retrieved and the edit budget set for step ``t``; the
meta-prompt asks the optimizer model for candidates; each is checked (budget, variables, the
plugins' filter) or rejected with a reason; new ones are scored on eval, and the step's
best-scoring candidate becomes the current prompt.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_gpo.optimize.budget import check_candidate
from pytest_gpo.optimize.context import RenderRejected, RunContext
from pytest_gpo.optimize.metaprompt import (
    TaskExample,
    build_meta_prompt,
    build_reflection_prompt,
    pick_examples,
)
from pytest_gpo.optimize.proposer import (
    candidate_request,
    parse_reply,
    reflection_request,
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
    feedback: str | None = None
    if cfg.reflection:
        feedback = await _reflect(ctx, t, batch)
    examples = pick_examples(
        batch, ctx.vars_by_id, ctx.expected_by_id, cfg.examples, ctx.splits.train
    )
    meta = build_meta_prompt(
        current=st.current,
        previous=retrieved[:-1],
        examples=examples,
        budget=budget,
        update=cfg.update,
        retrieval=cfg.retrieval,
        variables=ctx.variables,
        feedback=feedback,
    )
    request = candidate_request(meta, model=ctx.model, config=cfg, t=t)
    completion = await ctx.ask(request, "optimizer")
    replies = completion.texts[: cfg.candidates]
    records: list[CandidateRecord] = []
    seen = set(st.scores)
    new: list[str] = []
    for reply in replies:
        text = with_trailing_whitespace(parse_reply(reply), ctx.initial)
        check = check_candidate(text, st.current.prompt, budget, ctx.variables, seen)
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
    )


async def _score_new(
    ctx: RunContext, t: int, new: Sequence[str], records: Sequence[CandidateRecord]
) -> RaceOutcome:
    """Score the step's new candidates on eval, raced as ``racing`` says (optimize/race.py)."""
    assert ctx.state is not None
    scores = ctx.state.scores
    known = {
        r.text: scores[r.text] for r in records if r.status == "duplicate" and r.text in scores
    }

    async def score_cases(text: str, case_ids: Sequence[str]) -> dict[str, float]:
        run = await ctx.evaluate(text, case_ids, candidate=True)
        return {c.case_id: c.score for c in run.cases}

    return await race(
        new,
        ctx.splits.eval,
        score_cases,
        mode=ctx.config.racing,
        delta=ctx.config.race_delta,
        seed=ctx.config.sampling_seed,
        t=t,
        known=known,
        candidate_errors=(RenderRejected,),
    )


async def _reflect(ctx: RunContext, t: int, batch: Sequence[str]) -> str:
    """APO/PE2: score the current prompt on the batch, ask why it failed the worst cases."""
    assert ctx.state is not None
    run = await ctx.evaluate(ctx.state.current.prompt, batch)
    worst = sorted(run.cases, key=lambda c: (c.passed, c.score))[: max(1, ctx.config.examples)]
    wrong = [
        TaskExample(
            case_id=c.case_id,
            variables=ctx.vars_by_id.get(c.case_id, c.vars),
            expected=ctx.expected_by_id.get(c.case_id, c.expected),
            output=c.output,
        )
        for c in worst
    ]
    prompt = build_reflection_prompt(current=ctx.state.current.prompt, wrong=wrong)
    request = reflection_request(prompt, model=ctx.model, config=ctx.config, t=t)
    completion = await ctx.ask(request, "reflection")
    return completion.text.strip()
