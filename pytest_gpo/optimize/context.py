"""One run's inputs and bookkeeping: each call counted, a fault or cap turned into an abort.

:class:`RunContext` holds what :func:`~pytest_gpo.optimize.loop.optimize` was handed and the
run's :class:`~pytest_gpo.optimize.state.RunState`; its calls count usage, raise
:class:`Abort` when a call fails or a cap is reached, and it sends progress events and saves
checkpoints.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_gpo.llm.types import (
    Completion,
    Embedder,
    ErrorKind,
    ModelClient,
    Request,
    Usage,
    error_text,
)
from pytest_gpo.optimize.checkpoint import fingerprint, save_checkpoint
from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.optimize.estimate import RunPlan
from pytest_gpo.optimize.progress import EventKind, ProgressCallback, ProgressEvent
from pytest_gpo.optimize.result import StepRecord
from pytest_gpo.optimize.retrieval import EmbeddingMemo
from pytest_gpo.optimize.state import RunState
from pytest_gpo.results import SuiteRun
from pytest_gpo.templates.template import template_variables

#: ``evaluate(prompt_text, case_ids)``: render, call the task model, score (the plugin's).
EvaluateFn = Callable[[str, Sequence[str]], Awaitable[SuiteRun]]
#: ``should_stop()``: truthy to stop before the next step; a string is used as the reason.
StopFn = Callable[[], bool | str | None]
#: ``candidate_filter(current, candidate)``: a rejection reason, or ``None`` to keep it.
CandidateFilter = Callable[[str, str], str | None]


class RenderRejected(Exception):
    """A candidate that passed the checks but cannot be rendered for some case."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Abort(Exception):
    """Ends the current phase: a cap was reached or a call failed (never leaves the run)."""

    def __init__(self, reason: str, kind: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


def _run_failure(run: SuiteRun) -> str | None:
    if run.error_kind is None and not run.errors:
        return None
    first = run.errors[0] if run.errors else "unknown error"
    if run.error_kind in (ErrorKind.BUDGET, ErrorKind.CACHE_MISS):
        return f"{error_text(run.error_kind)} while scoring a prompt ({first})"
    more = f" (+{len(run.errors) - 1} more)" if len(run.errors) > 1 else ""
    return f"scoring a prompt failed: {first}{more}"


def _completion_failure(completion: Completion, what: str) -> str | None:
    if completion.ok:
        return None
    if completion.error_kind in (ErrorKind.BUDGET, ErrorKind.CACHE_MISS):
        return f"{error_text(completion.error_kind)} at the {what} call ({completion.error})"
    return f"{what} call failed: {completion.error}"


class RunContext:
    """One run: its inputs, its state (``None`` until started or resumed) and its calls."""

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
        system: str | None = None,
        concurrency: int = 8,
    ) -> None:
        self.suite = suite_name
        self.initial = initial_prompt
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
        #: the task model's system message, shown read-only in optimizer requests
        self.system = system
        #: calls the client runs at once: a racing round scores that many cases
        self.concurrency = max(1, concurrency)
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
        self.state: RunState | None = None
        self.embedding_base = 0.0
        self.budget_hit = False

    def variable_samples(self, batch: Sequence[str], n: int = 4) -> list[Mapping[str, Any]]:
        """Variables of a few cases (the batch's, then eval's) for the sentinel check, and of
        the train and eval cases with the longest and the shortest values: a candidate that
        shows a value only when it is short (or long) is caught on those."""
        pool = [
            i
            for i in dict.fromkeys([*batch, *self.splits.eval, *self.splits.train])
            if i in self.vars_by_id
        ]
        ids = pool[:n]
        if pool:

            def size(case_id: str) -> int:
                return len(repr(self.vars_by_id[case_id]))

            ids += [max(pool, key=size), min(pool, key=size)]
        return [self.vars_by_id[i] for i in dict.fromkeys(ids)]

    async def evaluate(
        self, prompt: str, case_ids: Sequence[str], *, candidate: bool = False
    ) -> SuiteRun:
        """Score ``prompt`` on ``case_ids`` (counted); a failed scoring raises :class:`Abort`.

        With ``candidate``, a prompt the template sandbox cannot render raises
        :class:`RenderRejected` instead: the candidate's fault, not the run's.
        """
        assert self.state is not None
        run = await self.evaluate_fn(prompt, case_ids)
        self.state.evaluations += 1
        self.state.task_usage.merge(run.usage)
        if self.state.task_model is None and run.model:
            self.state.task_model = run.model
        if candidate and run.error_kind == ErrorKind.RENDER:
            # the candidate's fault (e.g. a filter the sandbox refuses), not the provider's
            raise RenderRejected(run.errors[0] if run.errors else "cannot be rendered")
        failure = _run_failure(run)
        if failure is not None:
            self._note_abort(run.error_kind)
            raise Abort(failure, run.error_kind)
        return run

    async def ask(self, request: Request, what: str) -> Completion:
        """Send an optimizer or reflection request (counted); a failed call raises Abort."""
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
            raise Abort(failure, completion.error_kind)
        return completion

    def _note_abort(self, kind: str | None) -> None:
        if kind == "budget":
            self.budget_hit = True

    def emit(self, kind: EventKind, *, message: str = "", step: StepRecord | None = None) -> None:
        """Send a progress event (the totals so far, or those of ``step``) to the callback."""
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
                cost_text=Usage.combined(st.optimizer_usage, st.task_usage).cost_text(),
                message=message,
            )
        )

    def save(self) -> None:
        """Save the state as the checkpoint (a write failure only disables checkpoints)."""
        if self.checkpoint_dir is None or self.state is None:
            return
        self.state.embedding_seconds = self.embedding_seconds()
        try:
            save_checkpoint(self.checkpoint_dir, self.fingerprint, self.state.to_dict())
        except OSError as exc:
            # a run must not fail because its checkpoint cannot be written; it just cannot resume
            self.checkpoint_dir = None
            self.emit("note", message=f"checkpoints disabled: {exc}")

    def embedding_seconds(self) -> float:
        """Seconds spent embedding prompts, in this process and before a resume."""
        return self.embedding_base + (self.memo.seconds if self.memo is not None else 0.0)

    def stop_requested(self) -> str | None:
        """The reason ``should_stop()`` gives to stop before the next step, if any."""
        if self.should_stop is None:
            return None
        answer = self.should_stop()
        if not answer:
            return None
        return answer if isinstance(answer, str) else "stop requested"

    def cap_reason(self, t: int, batch_size: int) -> str | None:
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

    def affordable(self, calls: int) -> bool:
        """Whether the call cap leaves room for ``calls`` more calls."""
        cap = self.config.max_calls
        return cap is None or self.client.usage.calls + calls <= cap

    def train_affordable(self) -> bool:
        """Whether the call cap leaves room to score both prompts on train (report only)."""
        cfg = self.config
        if cfg.max_calls is None:
            return True
        need = self.repeats * 2 * len(self.splits.train)
        return self.client.usage.calls + need <= cfg.max_calls
