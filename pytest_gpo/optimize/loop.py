"""The GPO loop (GPO.md, "One run"): score, retrieve, budget, propose, check, evaluate, select.

:func:`optimize` runs one suite's prompt through ``T`` steps and returns an
:class:`~pytest_gpo.optimize.result.OptimizationResult`; it never writes prompt files and never
raises for a provider fault. A call cap (a completion or run with ``error_kind == "budget"``),
a provider error or ``should_stop()`` ends the run cleanly after the last completed step: the
best prompt so far is still scored on the held-out test and judged by the guard. With a
``checkpoint_dir`` every completed step is saved, and a rerun resumes after the last one
without re-scoring anything.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_gpo.calls import Completion, Embedder, ModelClient, Request, Usage
from pytest_gpo.errors import ConfigError
from pytest_gpo.optimize.budget import REJECTIONS, check_candidate
from pytest_gpo.optimize.checkpoint import fingerprint, load_checkpoint, save_checkpoint
from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.optimize.estimate import RunPlan, plan_run
from pytest_gpo.optimize.guard import held_out_verdict
from pytest_gpo.optimize.metaprompt import (
    TaskExample,
    build_meta_prompt,
    build_reflection_prompt,
    pick_examples,
)
from pytest_gpo.optimize.progress import EventKind, ProgressCallback, ProgressEvent
from pytest_gpo.optimize.proposer import (
    candidate_request,
    parse_reply,
    reflection_request,
    with_trailing_whitespace,
)
from pytest_gpo.optimize.result import (
    CandidateRecord,
    CaseOutcome,
    OptimizationResult,
    SplitScore,
    StepRecord,
)
from pytest_gpo.optimize.retrieval import EmbeddingMemo, TrajectoryEntry, retrieve
from pytest_gpo.optimize.schedule import batch_for_step, edit_budget
from pytest_gpo.results import SuiteRun
from pytest_gpo.template import template_variables

#: ``evaluate(prompt_text, case_ids)``: render, call the task model, score (the plugin's).
EvaluateFn = Callable[[str, Sequence[str]], Awaitable[SuiteRun]]
#: ``should_stop()``: truthy to stop before the next step; a string is used as the reason.
StopFn = Callable[[], bool | str | None]
#: ``candidate_filter(current, candidate)``: a rejection reason, or ``None`` to keep it.
CandidateFilter = Callable[[str, str], str | None]


class _RenderRejected(Exception):
    """A candidate that passed the checks but cannot be rendered for some case."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Abort(Exception):
    """Ends the current phase: a cap was reached or a call failed (internal only)."""

    def __init__(self, reason: str, kind: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass
class _State:
    """Everything a resumed run needs; saved after every completed step."""

    t: int
    current: TrajectoryEntry
    trajectory: list[TrajectoryEntry]
    scores: dict[str, float]
    steps: list[StepRecord] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    optimizer_usage: Usage = field(default_factory=Usage)
    task_usage: Usage = field(default_factory=Usage)
    optimizer_requests: int = 0
    reflection_requests: int = 0
    evaluations: int = 0
    embedding_seconds: float = 0.0
    task_model: str | None = None

    def best(self) -> TrajectoryEntry:
        """Best by eval over the trajectory; the earliest wins ties (the initial prompt first)."""
        best = self.trajectory[0]
        for entry in self.trajectory[1:]:
            if entry.score > best.score:
                best = entry
        return best

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "current": list(self.current),
            "trajectory": [list(e) for e in self.trajectory],
            "scores": [[k, v] for k, v in self.scores.items()],
            "steps": [s.to_dict() for s in self.steps],
            "rejected": dict(self.rejected),
            "duplicates": self.duplicates,
            "optimizer_usage": self.optimizer_usage.to_dict(),
            "task_usage": self.task_usage.to_dict(),
            "optimizer_requests": self.optimizer_requests,
            "reflection_requests": self.reflection_requests,
            "evaluations": self.evaluations,
            "embedding_seconds": self.embedding_seconds,
            "task_model": self.task_model,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> _State:
        return cls(
            t=int(d["t"]),
            current=TrajectoryEntry(str(d["current"][0]), float(d["current"][1])),
            trajectory=[TrajectoryEntry(str(p), float(s)) for p, s in d["trajectory"]],
            scores={str(p): float(s) for p, s in d["scores"]},
            steps=[StepRecord.from_dict(s) for s in d.get("steps", [])],
            rejected=Counter({str(k): int(v) for k, v in (d.get("rejected") or {}).items()}),
            duplicates=int(d.get("duplicates", 0)),
            optimizer_usage=Usage.from_dict(d.get("optimizer_usage") or {}),
            task_usage=Usage.from_dict(d.get("task_usage") or {}),
            optimizer_requests=int(d.get("optimizer_requests", 0)),
            reflection_requests=int(d.get("reflection_requests", 0)),
            evaluations=int(d.get("evaluations", 0)),
            embedding_seconds=float(d.get("embedding_seconds", 0.0)),
            task_model=d.get("task_model"),
        )


def _ordered_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """Rejection counts, built-in reasons in their fixed order, then plugin reasons by name."""
    ordered = {k: counts[k] for k in REJECTIONS if counts.get(k)}
    ordered.update({k: v for k, v in sorted(counts.items()) if k not in ordered and v})
    return ordered


def _run_failure(run: SuiteRun) -> str | None:
    if run.error_kind is None and not run.errors:
        return None
    first = run.errors[0] if run.errors else "unknown error"
    if run.error_kind == "budget":
        return f"call budget reached while scoring a prompt ({first})"
    if run.error_kind == "cache_miss":
        return f"replay cache miss while scoring a prompt ({first})"
    more = f" (+{len(run.errors) - 1} more)" if len(run.errors) > 1 else ""
    return f"scoring a prompt failed: {first}{more}"


def _completion_failure(completion: Completion, what: str) -> str | None:
    if completion.ok:
        return None
    if completion.error_kind == "budget":
        return f"call budget reached at the {what} call ({completion.error})"
    if completion.error_kind == "cache_miss":
        return f"replay cache miss at the {what} call ({completion.error})"
    return f"{what} call failed: {completion.error}"


class _Optimizer:
    def __init__(
        self,
        *,
        suite_name: str,
        initial_prompt: str,
        plan: RunPlan,
        expected_by_id: Mapping[str, Any],
        vars_by_id: Mapping[str, Mapping[str, Any]],
        evaluate: EvaluateFn,
        client: ModelClient,
        optimizer_model: str,
        embedder: Embedder | None,
        config: OptimizeConfig,
        progress: ProgressCallback | None,
        checkpoint_dir: Path | None,
        should_stop: StopFn | None,
        dataset_hash: str,
        repeats: int,
        candidate_filter: CandidateFilter | None,
    ) -> None:
        self.suite = suite_name
        self.initial = initial_prompt
        self.plan = plan
        self.splits = plan.splits
        self.total = plan.total_steps
        self.expected_by_id = expected_by_id
        self.vars_by_id = vars_by_id
        self.evaluate_fn = evaluate
        self.client = client
        self.model = optimizer_model
        self.config = config
        self.progress = progress
        self.checkpoint_dir = checkpoint_dir
        self.should_stop = should_stop
        self.dataset_hash = dataset_hash
        self.repeats = max(1, repeats)
        self.candidate_filter = candidate_filter
        self.variables = template_variables(initial_prompt)
        self.memo = EmbeddingMemo(embedder) if embedder is not None else None
        self.fingerprint = fingerprint(
            {
                "initial_prompt": initial_prompt,
                "config": config.fingerprint_dict(),
                "splits": self.splits.to_dict(),
                "optimizer_model": optimizer_model,
                "dataset_hash": dataset_hash,
                "total_steps": self.total,
            }
        )
        self.state: _State | None = None
        self.embedding_base = 0.0
        self.budget_hit = False

    # --- calls -------------------------------------------------------------------------

    async def _evaluate(
        self, prompt: str, case_ids: Sequence[str], *, candidate: bool = False
    ) -> SuiteRun:
        assert self.state is not None
        run = await self.evaluate_fn(prompt, case_ids)
        self.state.evaluations += 1
        self.state.task_usage.merge(run.usage)
        if self.state.task_model is None and run.model:
            self.state.task_model = run.model
        if candidate and run.error_kind == "render":
            # the candidate's fault (e.g. a filter the sandbox refuses), not the provider's
            raise _RenderRejected(run.errors[0] if run.errors else "cannot be rendered")
        failure = _run_failure(run)
        if failure is not None:
            self._note_abort(run.error_kind)
            raise _Abort(failure, run.error_kind)
        return run

    async def _ask(self, request: Request, what: str) -> Completion:
        assert self.state is not None
        completion = await self.client.complete(request)
        if request.purpose == "reflection":
            self.state.reflection_requests += 1
        else:
            self.state.optimizer_requests += 1
        self.state.optimizer_usage.add(completion)
        failure = _completion_failure(completion, what)
        if failure is not None:
            self._note_abort(completion.error_kind)
            raise _Abort(failure, completion.error_kind)
        return completion

    def _note_abort(self, kind: str | None) -> None:
        if kind == "budget":
            self.budget_hit = True

    # --- bookkeeping -------------------------------------------------------------------

    def _emit(self, kind: EventKind, *, message: str = "", step: StepRecord | None = None) -> None:
        if self.progress is None or self.state is None:
            return
        st = self.state
        if step is not None:
            reasons = Counter(c.status for c in step.candidates if c.rejected)
            accepted, rejected = step.valid, step.rejected
            chosen = step.chosen_candidate
            words = chosen.words if chosen is not None else None
        else:
            reasons = st.rejected
            rejected = sum(st.rejected.values())
            accepted = sum(s.valid for s in st.steps)
            words = None
        self.progress(
            ProgressEvent(
                kind=kind,
                suite=self.suite,
                t=st.t,
                total=self.total,
                best_score=st.best().score if st.trajectory else None,
                current_score=st.current.score if st.trajectory else None,
                budget=step.budget if step is not None else None,
                words=words,
                accepted=accepted,
                rejected=rejected,
                rejected_by_reason=dict(reasons),
                optimizer_calls=st.optimizer_requests + st.reflection_requests,
                task_calls=st.task_usage.calls,
                cost=st.optimizer_usage.cost + st.task_usage.cost,
                message=message,
            )
        )

    def _save(self) -> None:
        if self.checkpoint_dir is None or self.state is None:
            return
        self.state.embedding_seconds = self._embedding_seconds()
        try:
            save_checkpoint(self.checkpoint_dir, self.fingerprint, self.state.to_dict())
        except OSError as exc:
            # a run must not fail because its checkpoint cannot be written; it just cannot resume
            self.checkpoint_dir = None
            self._emit("note", message=f"checkpoints disabled: {exc}")

    def _embedding_seconds(self) -> float:
        return self.embedding_base + (self.memo.seconds if self.memo is not None else 0.0)

    def _stop_requested(self) -> str | None:
        if self.should_stop is None:
            return None
        answer = self.should_stop()
        if not answer:
            return None
        return answer if isinstance(answer, str) else "stop requested"

    def _cap_reason(self, t: int, batch_size: int) -> str | None:
        """Stop before a step that could leave too few calls for the held-out test."""
        cfg = self.config
        if cfg.max_calls is None and cfg.max_cost is None:
            return None
        n_eval, n_test = len(self.splits.eval), len(self.splits.test)
        reflection = batch_size if cfg.reflection else 0
        need = (1 + int(cfg.reflection)) + self.repeats * (cfg.candidates * n_eval + reflection)
        reserve = self.repeats * 2 * n_test
        usage = self.client.usage
        if cfg.max_calls is not None and usage.calls + need + reserve > cfg.max_calls:
            return (
                f"stopped before step {t}: the call cap ({cfg.max_calls}, {usage.calls} used) "
                f"leaves too few calls for another step ({need}) and the held-out test "
                f"({reserve})"
            )
        if cfg.max_cost is not None and usage.calls and usage.cost > 0:
            projected = usage.cost + usage.cost / usage.calls * (need + reserve)
            if projected > cfg.max_cost:
                return (
                    f"stopped before step {t}: the cost cap (${cfg.max_cost:g}, "
                    f"${usage.cost:.4f} used) leaves too little for another step and the "
                    "held-out test"
                )
        return None

    # --- the run -----------------------------------------------------------------------

    async def run(self) -> OptimizationResult:
        resumed_from: int | None = None
        saved = (
            load_checkpoint(self.checkpoint_dir, self.fingerprint)
            if self.checkpoint_dir is not None
            else None
        )
        stopped: str | None = None
        if saved is not None:
            self.state = _State.from_dict(saved)
            self.embedding_base = self.state.embedding_seconds
            resumed_from = self.state.t
            self._emit("resume", message=f"{self.state.evaluations} evaluations reused")
        else:
            self.state = _State(
                t=0, current=TrajectoryEntry(self.initial, 0.0), trajectory=[], scores={}
            )
            train, eval_, test = self.splits.sizes()
            self._emit("start", message=f"cases: train {train}, eval {eval_}, test {test}")
            try:
                run = await self._evaluate(self.initial, self.splits.eval)
            except _Abort as abort:
                return self._unscored_result(abort.reason)
            entry = TrajectoryEntry(self.initial, run.score)
            self.state.current = entry
            self.state.trajectory = [entry]
            self.state.scores = {self.initial: run.score}
            self._save()
        state = self.state
        for t in range(state.t + 1, self.total + 1):
            batch = batch_for_step(self.splits.train, t, self.config)
            stopped = self._stop_requested() or self._cap_reason(t, len(batch))
            if stopped:
                break
            try:
                step = await self._step(t, batch)
            except _Abort as abort:
                stopped = abort.reason
                break
            state.steps.append(step)
            state.t = t
            self._save()
            self._emit("step", step=step)
        if stopped:
            self._emit("stop", message=stopped)
        result = await self._final(stopped, resumed_from)
        self._emit("final", message=result.reason)
        return result

    async def _step(self, t: int, batch: tuple[str, ...]) -> StepRecord:
        assert self.state is not None
        st, cfg = self.state, self.config
        budget = edit_budget(t, self.total, cfg)
        retrieved = retrieve(st.trajectory, st.current, cfg.k, cfg.retrieval, self.memo)
        feedback: str | None = None
        if cfg.reflection:
            feedback = await self._reflect(t, batch)
        examples = pick_examples(
            batch, self.vars_by_id, self.expected_by_id, cfg.examples, self.splits.train
        )
        meta = build_meta_prompt(
            current=st.current,
            previous=retrieved[:-1],
            examples=examples,
            budget=budget,
            update=cfg.update,
            retrieval=cfg.retrieval,
            variables=self.variables,
            feedback=feedback,
        )
        request = candidate_request(meta, model=self.model, config=cfg, t=t)
        completion = await self._ask(request, "optimizer")
        replies = completion.texts[: cfg.candidates]
        records: list[CandidateRecord] = []
        seen = set(st.scores)
        new: list[str] = []
        for reply in replies:
            text = with_trailing_whitespace(parse_reply(reply), self.initial)
            check = check_candidate(text, st.current.prompt, budget, self.variables, seen)
            records.append(CandidateRecord(text, check.words, check.status, check.detail))
            if check.status == "accepted" and self.candidate_filter is not None:
                reason = self.candidate_filter(st.current.prompt, text)
                if reason:
                    records[-1].status = str(reason)
                    records[-1].detail = "rejected by a pytest_gpo_filter_candidate hook"
                    continue
            if check.status == "accepted":
                new.append(text)
                seen.add(text)
        outcomes = await asyncio.gather(
            *(self._evaluate(text, self.splits.eval, candidate=True) for text in new),
            return_exceptions=True,
        )
        unrenderable: dict[str, str] = {}
        for text, outcome in zip(new, outcomes, strict=True):
            if isinstance(outcome, _RenderRejected):
                unrenderable[text] = outcome.detail
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                st.scores[text] = outcome.score
        for record in records:
            if record.text in unrenderable and record.status in ("accepted", "duplicate"):
                record.status = "template_error"
                record.detail = unrenderable[record.text]
        chosen: int | None = None
        for i, record in enumerate(records):
            if record.rejected:
                st.rejected[record.status] += 1
                continue
            if record.status == "duplicate":
                st.duplicates += 1
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
        )

    async def _reflect(self, t: int, batch: Sequence[str]) -> str:
        """APO/PE2: score the current prompt on the batch, ask why it failed the worst cases."""
        assert self.state is not None
        run = await self._evaluate(self.state.current.prompt, batch)
        worst = sorted(run.cases, key=lambda c: (c.passed, c.score))[: max(1, self.config.examples)]
        wrong = [
            TaskExample(
                case_id=c.case_id,
                variables=self.vars_by_id.get(c.case_id, c.vars),
                expected=self.expected_by_id.get(c.case_id, c.expected),
                output=c.output,
            )
            for c in worst
        ]
        prompt = build_reflection_prompt(current=self.state.current.prompt, wrong=wrong)
        request = reflection_request(prompt, model=self.model, config=self.config, t=t)
        completion = await self._ask(request, "reflection")
        return completion.text.strip()

    async def _final(self, stopped: str | None, resumed_from: int | None) -> OptimizationResult:
        assert self.state is not None
        st = self.state
        best = st.best()
        changed = best.prompt != self.initial
        scores = {
            "train": SplitScore(),
            "eval": SplitScore(st.scores.get(self.initial), best.score),
            "test": SplitScore(),
        }
        test_before: list[CaseOutcome] = []
        test_after: list[CaseOutcome] = []
        verdict_reason: str
        accepted = False
        paired_name: str | None = None
        paired_p: float | None = None
        try:
            prompts = [self.initial, best.prompt] if changed else [self.initial]
            runs = await asyncio.gather(
                *(self._evaluate(p, self.splits.test) for p in prompts), return_exceptions=True
            )
            for outcome in runs:
                if isinstance(outcome, BaseException):
                    raise outcome
            before_run = runs[0]
            after_run = runs[-1]
            assert isinstance(before_run, SuiteRun) and isinstance(after_run, SuiteRun)
            test_before = [CaseOutcome.from_case_result(c) for c in before_run.cases]
            test_after = [CaseOutcome.from_case_result(c) for c in after_run.cases]
            scores["test"] = SplitScore(before_run.score, after_run.score)
            after_by_id = after_run.by_id()
            paired = [
                (c.score, after_by_id[c.case_id].score)
                for c in before_run.cases
                if c.case_id in after_by_id
            ]
            verdict = held_out_verdict(
                changed=changed,
                eval_before=scores["eval"].before or 0.0,
                test_before=[b for b, _ in paired],
                test_after=[a for _, a in paired],
                min_gain=self.config.min_gain,
                use_paired_test=self.config.use_paired_test,
                alpha=self.config.alpha,
            )
            accepted, verdict_reason = verdict.accepted, verdict.reason
            paired_name, paired_p = verdict.test_name, verdict.p_value
        except _Abort as abort:
            verdict_reason = f"not accepted: the held-out test could not be scored ({abort.reason})"
            stopped = stopped or abort.reason
        if not self.budget_hit and self._train_affordable():
            prompts = [self.initial, best.prompt] if changed else [self.initial]
            train_runs = await asyncio.gather(
                *(self._evaluate(p, self.splits.train) for p in prompts), return_exceptions=True
            )
            first, last = train_runs[0], train_runs[-1]
            # train scores only inform the report: a failure here leaves them unknown
            if isinstance(first, SuiteRun) and isinstance(last, SuiteRun):
                scores["train"] = SplitScore(first.score, last.score)
        return OptimizationResult(
            suite=self.suite,
            initial_prompt=self.initial,
            best_prompt=best.prompt,
            accepted=accepted,
            reason=verdict_reason,
            config=self.config,
            optimizer_model=self.model,
            task_model=st.task_model,
            dataset_hash=self.dataset_hash,
            scores=scores,
            test_before=test_before,
            test_after=test_after,
            steps=list(st.steps),
            trajectory=list(st.trajectory),
            rejected=_ordered_counts(st.rejected),
            duplicates=st.duplicates,
            optimizer_usage=st.optimizer_usage,
            task_usage=st.task_usage,
            optimizer_requests=st.optimizer_requests,
            reflection_requests=st.reflection_requests,
            evaluations=st.evaluations,
            split_sizes=dict(zip(("train", "eval", "test"), self.splits.sizes(), strict=True)),
            total_steps=self.total,
            stopped_reason=stopped,
            resumed_from=resumed_from,
            embedding_seconds=self._embedding_seconds(),
            paired_test=paired_name,
            paired_p=paired_p,
        )

    def _train_affordable(self) -> bool:
        cfg = self.config
        if cfg.max_calls is None:
            return True
        need = self.repeats * 2 * len(self.splits.train)
        return self.client.usage.calls + need <= cfg.max_calls

    def _unscored_result(self, reason: str) -> OptimizationResult:
        assert self.state is not None
        st = self.state
        self._emit("stop", message=reason)
        return OptimizationResult(
            suite=self.suite,
            initial_prompt=self.initial,
            best_prompt=self.initial,
            accepted=False,
            reason=f"not accepted: the initial prompt could not be scored on eval ({reason})",
            config=self.config,
            optimizer_model=self.model,
            task_model=st.task_model,
            dataset_hash=self.dataset_hash,
            scores={k: SplitScore() for k in ("train", "eval", "test")},
            optimizer_usage=st.optimizer_usage,
            task_usage=st.task_usage,
            evaluations=st.evaluations,
            split_sizes=dict(zip(("train", "eval", "test"), self.splits.sizes(), strict=True)),
            total_steps=self.total,
            stopped_reason=reason,
        )


async def optimize(
    *,
    suite_name: str,
    initial_prompt: str,
    case_ids: Sequence[str],
    expected_by_id: Mapping[str, Any],
    vars_by_id: Mapping[str, Mapping[str, Any]],
    evaluate: EvaluateFn,
    client: ModelClient,
    config: OptimizeConfig,
    optimizer_model: str | None = None,
    embedder: Embedder | None = None,
    progress: ProgressCallback | None = None,
    checkpoint_dir: str | Path | None = None,
    should_stop: StopFn | None = None,
    dataset_hash: str = "",
    repeats: int = 1,
    candidate_filter: CandidateFilter | None = None,
) -> OptimizationResult:
    """Optimize one suite's prompt with GPO (or the preset in ``config``).

    ``evaluate(prompt_text, case_ids)`` scores a prompt on cases (the plugin renders, calls the
    task model through its cache and scores). ``client`` serves the optimizer (and reflection)
    requests. ``optimizer_model`` wins over ``config.optimizer_model``. ``embedder`` is needed
    for relevance retrieval only. ``repeats`` is the suite's samples per case (used to keep
    enough of ``config.max_calls`` for the held-out test). ``candidate_filter(current,
    candidate)`` runs after the built-in checks; a returned reason rejects the candidate.
    ``checkpoint_dir`` is this run's directory (one run per directory; a checkpoint of other
    settings there is ignored and overwritten). Input errors (fewer than 3 cases, no
    optimizer model, relevance without an embedder, a broken template) raise
    :class:`~pytest_gpo.errors.GpoError` before any call; model faults never raise.
    """
    model = optimizer_model or config.optimizer_model
    if not model:
        raise ConfigError(
            "no optimizer model to run GPO with",
            key="optimizer_model",
            fix="pass --gpo-optimizer-model, set GPO_OPTIMIZER_MODEL, or optimize.optimizer_model",
        )
    if config.retrieval == "relevance" and embedder is None:
        raise ConfigError(
            "relevance retrieval needs an embedder",
            key="optimize.retrieval",
            fix="install sentence-transformers, or set retrieval: recency",
        )
    plan = plan_run(case_ids, config)
    runner = _Optimizer(
        suite_name=suite_name,
        initial_prompt=initial_prompt,
        plan=plan,
        expected_by_id=expected_by_id,
        vars_by_id=vars_by_id,
        evaluate=evaluate,
        client=client,
        optimizer_model=model,
        embedder=embedder,
        config=config,
        progress=progress,
        checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir),
        should_stop=should_stop,
        dataset_hash=dataset_hash,
        repeats=repeats,
        candidate_filter=candidate_filter,
    )
    return await runner.run()
