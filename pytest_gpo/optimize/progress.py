"""Progress events of a run and a formatter making one short line each for a CI log."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

EventKind = Literal["start", "resume", "step", "stop", "final", "note"]


@dataclass(frozen=True)
class ProgressEvent:
    """Where a run is. ``t`` is the last completed step (0 before the first).

    Kinds: ``start``, ``resume`` (from a checkpoint), ``step`` (one per completed step),
    ``stop`` (ended early; ``message`` says why), ``final`` (``message`` is the verdict) and
    ``note`` (anything else worth a log line).

    ``budget`` is the step's word budget (``None``: unlimited), ``words`` the words the chosen
    candidate changed; ``accepted``/``rejected`` count the step's candidates (a ``final`` event
    counts the whole run). Calls are requests made so far; ``cost`` is in dollars.
    """

    kind: EventKind
    suite: str
    t: int
    total: int
    best_score: float | None = None
    current_score: float | None = None
    budget: int | None = None
    words: int | None = None
    accepted: int = 0
    rejected: int = 0
    rejected_by_reason: Mapping[str, int] = field(default_factory=dict)
    optimizer_calls: int = 0
    task_calls: int = 0
    cost: float = 0.0
    #: the cost as text, ``unknown`` parts included (:meth:`~pytest_gpo.llm.types.Usage.cost_text`)
    cost_text: str = ""
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


def _pct(score: float | None) -> str:
    return "-" if score is None else f"{score * 100:.1f}"


def format_progress(event: ProgressEvent) -> str:
    """One line, e.g. ``gpo router step 3/18: best 72.5 current 70.0 | budget 12/47 words |
    6 valid, 2 rejected (over_budget 2) | calls 3 opt + 240 task | $0.0123``."""
    head = f"gpo {event.suite}"
    if event.kind == "start":
        return f"{head}: start, {event.total} steps" + (
            f"; {event.message}" if event.message else ""
        )
    if event.kind == "resume":
        return f"{head}: resumed after step {event.t}/{event.total}" + (
            f"; {event.message}" if event.message else ""
        )
    if event.kind == "note":
        return f"{head}: {event.message}"
    if event.kind == "stop":
        return f"{head}: stopped after step {event.t}/{event.total}: {event.message}"
    label = "done" if event.kind == "final" else f"step {event.t}/{event.total}"
    parts = [f"{head} {label}: best {_pct(event.best_score)}"]
    if event.kind == "step":
        parts[0] += f" current {_pct(event.current_score)}"
        if event.budget is not None:
            used = "-" if event.words is None else str(event.words)
            parts.append(f"budget {used}/{event.budget} words")
    counts = f"{event.accepted} valid, {event.rejected} rejected"
    if event.rejected_by_reason:
        counts += (
            " ("
            + ", ".join(f"{k} {v}" for k, v in sorted(event.rejected_by_reason.items()) if v)
            + ")"
        )
    parts.append(counts)
    parts.append(f"calls {event.optimizer_calls} opt + {event.task_calls} task")
    parts.append(event.cost_text or f"${event.cost:.4f}")
    line = " | ".join(parts)
    if event.message:
        line += f" | {event.message}"
    return line
