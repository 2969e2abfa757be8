"""The optimizer side of one step: reflect on failing cases, build the meta-prompt, ask.

Reflection (APO, PE2, SGDM; GPO.md "Details of the reference code") is a separate request at
temperature 0 over the cases the current prompt gets **wrong** on the step's train batch, all
of them up to ``reflection_tokens``; when nothing fails there is nothing to reflect on and
the call is skipped (the step says so). A request the optimizer model refuses as longer than
its context window is shortened and sent again (at most :data:`SHRINK_LEVELS` times):
example values are cut harder, then the examples and the earlier feedback are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pytest_gpo.optimize.context import Abort, RunContext
from pytest_gpo.optimize.metaprompt import (
    TaskExample,
    build_meta_prompt,
    build_reflection_prompt,
    is_context_error,
    pick_examples,
)
from pytest_gpo.optimize.proposer import candidate_request, reflection_request
from pytest_gpo.optimize.retrieval import TrajectoryEntry

#: Shortening rounds after a context-window error: value budget divided by 4, then no examples.
SHRINK_LEVELS = 2


@dataclass
class Asked:
    """What the optimizer returned for a step: the replies, the feedback, notes for the log."""

    replies: list[str]
    feedback: str | None = None
    notes: list[str] = field(default_factory=list)


def _tokens(ctx: RunContext, level: int) -> int:
    return max(16, ctx.config.example_tokens >> (2 * level))


async def reflect(ctx: RunContext, t: int, batch: Sequence[str], notes: list[str]) -> str | None:
    """Feedback on the current prompt from the batch cases it fails, or ``None`` (skipped)."""
    assert ctx.state is not None
    cfg = ctx.config
    run = await ctx.evaluate(ctx.state.current.prompt, batch)
    failing = [c for c in run.cases if not c.passed]
    if not failing:
        notes.append(f"reflection skipped: the current prompt passes all {len(run.cases)} cases")
        return None
    failing.sort(key=lambda c: c.score)
    wrong = [
        TaskExample(
            case_id=c.case_id,
            variables=ctx.vars_by_id.get(c.case_id, c.vars),
            expected=ctx.expected_by_id.get(c.case_id, c.expected),
            output=c.output,
        )
        for c in failing
    ]
    for level in range(SHRINK_LEVELS + 1):
        prompt = build_reflection_prompt(
            current=ctx.state.current.prompt,
            wrong=wrong,
            system=ctx.system,
            example_tokens=_tokens(ctx, level),
            max_tokens=cfg.reflection_tokens >> (2 * level),
        )
        request = reflection_request(prompt, model=ctx.model, config=cfg, t=t)
        try:
            completion = await ctx.ask(request, "reflection")
        except Abort as abort:
            if level == SHRINK_LEVELS or not is_context_error(abort.reason):
                raise
            notes.append(f"reflection request shortened after a context-window error ({level + 1})")
            continue
        return completion.text.strip() or None
    return None


async def ask_candidates(
    ctx: RunContext,
    t: int,
    batch: tuple[str, ...],
    budget: int | None,
    retrieved: Sequence[TrajectoryEntry],
) -> Asked:
    """Reflect when the preset does, then send the step's optimizer request."""
    assert ctx.state is not None
    st, cfg = ctx.state, ctx.config
    notes: list[str] = []
    feedback = await reflect(ctx, t, batch, notes) if cfg.reflection else None
    momentum = (
        [s.reflection for s in st.steps if s.reflection][-cfg.momentum :] if cfg.momentum else []
    )
    examples = pick_examples(
        batch, ctx.vars_by_id, ctx.expected_by_id, cfg.examples, ctx.splits.train
    )
    for level in range(SHRINK_LEVELS + 1):
        meta = build_meta_prompt(
            current=st.current,
            previous=retrieved[:-1],
            examples=examples if level < SHRINK_LEVELS else [],
            budget=budget,
            update=cfg.update,
            retrieval=cfg.retrieval,
            variables=ctx.variables,
            feedback=feedback,
            system=ctx.system,
            example_tokens=_tokens(ctx, level),
            momentum=momentum if level < SHRINK_LEVELS else [],
        )
        request = candidate_request(meta, model=ctx.model, config=cfg, t=t)
        try:
            completion = await ctx.ask(request, "optimizer")
        except Abort as abort:
            if level == SHRINK_LEVELS or not is_context_error(abort.reason):
                raise
            notes.append(f"meta-prompt shortened after a context-window error ({level + 1})")
            continue
        return Asked(list(completion.texts[: cfg.candidates]), feedback, notes)
    return Asked([], feedback, notes)
