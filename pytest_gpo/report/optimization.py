"""Rendering an :class:`OptimizationResult` for a pull request, a CI log and machines.

* :func:`optimize_markdown`: one suite's section of the markdown report (PR comment, CI step
  summary): verdict, unified and word-level prompt diff, scores per split, flipped held-out
  cases, a per-step table with the word budget, a Mermaid chart of the eval score, rejected
  candidates, calls/tokens/cost and provenance.
* :func:`optimize_json`: the same as plain JSON-able data.
* :func:`optimize_terminal_lines`: a few short lines for the terminal summary.

Table cells are escaped here (``|``, newlines, HTML brackets): tabulate does not escape them.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from pytest_gpo.gate.messages import format_delta, format_score
from pytest_gpo.llm.types import Usage
from pytest_gpo.optimize.budget import REJECTION_TEXT, word_edit_distance
from pytest_gpo.optimize.result import CaseOutcome, OptimizationResult, SplitScore
from pytest_gpo.report.cells import outcome_text, sample_text
from pytest_gpo.report.controls import reveal
from pytest_gpo.report.experiments import (
    experiment_json,
    experiment_markdown,
    experiment_terminal_lines,
)
from pytest_gpo.results import runs_rule
from pytest_gpo.serial import to_data

#: What a score cell shows when there is no score (a split without cases, no step chosen).
_MISSING = "–"

_MD_SPECIAL = re.compile(r"([\\`*_~\[\]#|])")


def escape_cell(value: Any, limit: int | None = None) -> str:
    """Text that stays inside one markdown table cell (no ``|``, newlines or raw HTML)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    text = html.escape(text, quote=False).replace("|", "\\|")
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def _escape_inline(word: str) -> str:
    return html.escape(_MD_SPECIAL.sub(r"\\\1", word), quote=False)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return tabulate(
        [list(r) for r in rows],
        headers=list(headers),
        tablefmt="github",
        disable_numparse=True,
    )


def _fenced(text: str, lang: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip(chr(10))}\n{fence}"


def unified_prompt_diff(result: OptimizationResult) -> str:
    """A unified diff of the prompt, initial to best ('' when unchanged)."""
    if not result.changed:
        return ""
    before = result.initial_prompt.splitlines(keepends=True)
    after = result.best_prompt.splitlines(keepends=True)
    lines = difflib.unified_diff(
        before, after, fromfile=f"{result.suite} (before)", tofile=f"{result.suite} (after)"
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def word_diff_markdown(before: str, after: str) -> str:
    """A word-level diff: ``~~removed~~`` and ``**added**`` inline, unchanged words plain."""
    a, b = before.split(), after.split()
    out: list[str] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.extend(_escape_inline(w) for w in a[i1:i2])
            continue
        if i2 > i1:
            out.append("~~" + " ".join(_escape_inline(w) for w in a[i1:i2]) + "~~")
        if j2 > j1:
            out.append("**" + " ".join(_escape_inline(w) for w in b[j1:j2]) + "**")
    return " ".join(out)


def _chart(result: OptimizationResult) -> str:
    if not result.trajectory:
        return ""
    start = result.trajectory[0].score
    xs = ["0"] + [str(s.t) for s in result.steps]
    best = [start] + [s.best_score for s in result.steps]
    current = [start] + [s.current_score for s in result.steps]

    def series(values: list[float]) -> str:
        return "[" + ", ".join(f"{v * 100:.1f}" for v in values) + "]"

    title = re.sub(r'["\n\r]', "", f"{result.suite}: eval score per step")
    chart = "\n".join(
        [
            "xychart-beta",
            f'    title "{title}"',
            f'    x-axis "step" [{", ".join(xs)}]',
            '    y-axis "eval score (0-100)" 0 --> 100',
            f"    line {series(best)}",
            f"    line {series(current)}",
        ]
    )
    return (
        _fenced(chart, "mermaid")
        + "\n\nFirst line: best eval score so far; second line: the current prompt's eval score."
    )


def _steps_table(result: OptimizationResult) -> str:
    rows = []
    for step in result.steps:
        chosen = step.chosen_candidate
        used = "–" if chosen is None else str(chosen.words)
        allowed = "∞" if step.budget is None else str(step.budget)
        rows.append(
            [
                str(step.t),
                f"{used} / {allowed}",
                str(step.valid),
                str(step.rejected),
                format_score(None if chosen is None else chosen.score, _MISSING),
                format_score(step.current_score, _MISSING),
                format_score(step.best_score, _MISSING),
                f"{step.eval_calls} ({step.calls_saved} saved)",
            ]
        )
    return _table(
        [
            "step",
            "words used / allowed",
            "valid",
            "rejected",
            "chosen eval",
            "current eval",
            "best eval",
            "eval calls",
        ],
        rows,
    )


def _step_notes(result: OptimizationResult) -> list[str]:
    """What steps did besides the usual: a skipped reflection, a shortened request."""
    notes = [f"- step {step.t}: {note}" for step in result.steps for note in step.notes]
    return ["#### Step notes", "", *notes, ""] if notes else []


def _rejections(result: OptimizationResult) -> list[str]:
    if not result.rejected:
        return []
    summary = ", ".join(
        f"{count} {reason} ({REJECTION_TEXT.get(reason, reason)})"
        for reason, count in result.rejected.items()
    )
    out = ["#### Rejected candidates", "", f"Never scored: {summary}.", ""]
    rows = []
    for step in result.steps:
        allowed = "∞" if step.budget is None else str(step.budget)
        for cand in step.candidates:
            if cand.rejected:
                rows.append(
                    [
                        str(step.t),
                        escape_cell(cand.status),
                        f"{cand.words} / {allowed}",
                        escape_cell(reveal(cand.detail), 60),
                        escape_cell(reveal(cand.text), 120),
                    ]
                )
    if rows:
        out += [
            "<details><summary>Each rejected candidate</summary>",
            "",
            _table(["step", "reason", "words / allowed", "detail", "candidate"], rows),
            "",
            "</details>",
            "",
        ]
    return out


def _session_row(result: OptimizationResult, session: Usage | None) -> list[list[str]]:
    """The requests really sent in this session, when it differs from the whole run's
    counters: a resumed run restored the steps before it from the checkpoint."""
    if session is None or result.resumed_from is None:
        return []
    return [
        [
            "sent in this session",
            f"resumed after step {result.resumed_from}",
            str(session.calls),
            str(session.cache_hits),
            str(session.tokens),
            escape_cell(session.cost_text()),
        ]
    ]


def _outcome_cell(o: CaseOutcome) -> str:
    """``pass``, or for a repeated case the k-of-N rule that decided it."""
    word = outcome_text(o.passed)
    if len(o.runs) > 1:
        word += ": " + runs_rule(sum(r.passed for r in o.runs), len(o.runs), o.min_pass)
    return escape_cell(word)


def _outputs_cell(o: CaseOutcome) -> str:
    """The output; for a repeated case every sample's, each with its pass or fail and score."""
    if len(o.runs) > 1:
        return escape_cell("\n".join(sample_text(r, 60) for r in o.runs))
    return escape_cell(o.output, 60)


def _usage(result: OptimizationResult, session: Usage | None) -> str:
    opt, task = result.optimizer_usage, result.task_usage
    requests = f"{result.optimizer_requests}"
    if result.reflection_requests:
        requests += f" + {result.reflection_requests} reflection"
    rows = [
        [
            "optimizer",
            requests,
            str(opt.calls),
            str(opt.cache_hits),
            str(opt.tokens),
            escape_cell(opt.cost_text()),
        ],
        [
            "task",
            f"{result.evaluations} evaluations",
            str(task.calls),
            str(task.cache_hits),
            str(task.tokens),
            escape_cell(task.cost_text()),
        ],
        [
            "total",
            "",
            str(opt.calls + task.calls),
            str(opt.cache_hits + task.cache_hits),
            str(opt.tokens + task.tokens),
            escape_cell(result.usage.cost_text()),
        ],
        *_session_row(result, session),
    ]
    return _table(["model", "requests", "provider calls", "cache hits", "tokens", "cost"], rows)


def optimize_markdown(result: OptimizationResult, session: Usage | None = None) -> str:
    """One suite's markdown section (starts with a ``###`` heading, ends with a newline).

    ``session`` is what this session really sent for the suite; a resumed run's counters
    include the steps restored from its checkpoint, so both are shown.
    """
    out: list[str] = [f"### GPO: {_escape_inline(result.suite)}", ""]
    verdict = "✅ **accepted**" if result.should_write else "❌ **not accepted**"
    reason = result.reason.split(": ", 1)[1] if ": " in result.reason else result.reason
    out += [f"{verdict}: {escape_cell(reason)}", ""]
    if result.stopped_reason:
        done = f"{result.steps_completed}/{result.total_steps}"
        out += [f"Stopped early after step {done}: {escape_cell(result.stopped_reason)}", ""]

    out += ["#### Prompt", ""]
    diff = unified_prompt_diff(result)
    if diff:
        words = word_edit_distance(result.initial_prompt, result.best_prompt)
        out += [
            _fenced(diff, "diff"),
            "",
            f"Word-level ({words} words changed):",
            "",
            "> " + word_diff_markdown(result.initial_prompt, result.best_prompt),
            "",
        ]
    else:
        out += ["No change: no prompt scored above the initial one on eval.", ""]

    out += ["#### Scores", ""]
    rows = []
    for split in ("train", "eval", "test"):
        score = result.scores.get(split, SplitScore())
        name = f"{split} (held out)" if split == "test" else split
        rows.append(
            [
                name,
                str(result.split_sizes.get(split, "")),
                format_score(score.before, _MISSING),
                format_score(score.after, _MISSING),
                format_delta(score.gain, _MISSING),
            ]
        )
    out += [_table(["split", "cases", "before", "after", "change"], rows), ""]
    if result.paired_p is not None:
        out += [f"Paired test on test: {result.paired_test}, p = {result.paired_p:.3g}.", ""]
    out += experiment_markdown(result, _table)

    flips = result.flipped()
    if flips:
        out += ["#### Test cases that flipped", ""]
        flip_rows = [
            [
                escape_cell(f.case_id),
                _outcome_cell(f.before),
                _outcome_cell(f.after),
                escape_cell(f.after.expected if f.after.expected is not None else "", 60),
                _outputs_cell(f.before),
                _outputs_cell(f.after),
            ]
            for f in flips
        ]
        out += [
            _table(
                ["case", "before", "after", "expected", "output before", "output after"],
                flip_rows,
            ),
            "",
        ]

    if result.steps:
        out += ["#### Steps", "", _steps_table(result), "", _chart(result), ""]
    out += _step_notes(result)
    out += _rejections(result)

    out += ["#### Calls, tokens, cost", "", _usage(result, session), ""]

    cfg = result.config
    provenance = [
        ["task model", escape_cell(result.task_model or "–")],
        ["optimizer model", escape_cell(result.optimizer_model)],
        ["preset", escape_cell(cfg.preset)],
        ["seed", str(result.seed)],
        ["dataset hash", escape_cell(result.dataset_hash[:16] or "–")],
        ["steps", f"{result.steps_completed} / {result.total_steps}"],
    ]
    if result.resumed_from is not None:
        provenance.append(["resumed after step", str(result.resumed_from)])
    if result.embedding_seconds:
        provenance.append(["embedding time", f"{result.embedding_seconds:.2f} s"])
    out += [
        "#### Provenance",
        "",
        _table(["field", "value"], provenance),
        "",
        "<details><summary>Settings</summary>",
        "",
        _fenced(json.dumps(cfg.to_dict(), indent=2, sort_keys=True), "json"),
        "",
        "</details>",
        "",
    ]
    return "\n".join(out)


def optimize_json(result: OptimizationResult) -> dict[str, Any]:
    """The result as JSON-able data, with the diff and the flipped cases added."""
    data = {
        "version": 1,
        **to_data(result),
        "changed": result.changed,
        "seed": result.seed,
        "usage": to_data(result.usage),
    }
    data["should_write"] = result.should_write
    data["diff"] = unified_prompt_diff(result)
    data["words_changed"] = word_edit_distance(result.initial_prompt, result.best_prompt)
    data["flipped"] = [
        {
            "case_id": f.case_id,
            "before": to_data(f.before),
            "after": to_data(f.after),
            "fixed": f.fixed,
        }
        for f in result.flipped()
    ]
    data.update(experiment_json(result))
    return data


def optimize_terminal_lines(result: OptimizationResult, session: Usage | None = None) -> list[str]:
    """A few short lines for the terminal summary (``session``: see :func:`optimize_markdown`)."""
    lines = [f"gpo {result.suite}: {result.reason}"]
    parts = []
    for split in ("eval", "test", "train"):
        score = result.scores.get(split)
        if score is not None and score.before is not None:
            after = format_score(score.after, _MISSING)
            parts.append(f"{split} {format_score(score.before)} -> {after}")
    steps = f"{result.steps_completed}/{result.total_steps} steps"
    lines.append("  " + " | ".join([*parts, steps]))
    rejected = sum(result.rejected.values())
    valid = sum(s.valid for s in result.steps)
    detail = ""
    if result.rejected:
        detail = " (" + ", ".join(f"{k} {v}" for k, v in result.rejected.items()) + ")"
    usage = result.usage
    whole = "" if result.resumed_from is None else " over the whole run"
    lines.append(
        f"  candidates: {valid} valid, {rejected} rejected{detail} | "
        f"calls{whole}: {result.optimizer_usage.calls} optimizer, "
        f"{result.task_usage.calls} task | tokens {usage.tokens} | cost {usage.cost_text()}"
    )
    if result.resumed_from is not None:
        sent = "" if session is None else f"; this session sent {session.calls} calls"
        lines.append(f"  resumed after step {result.resumed_from} from its checkpoint{sent}")
    if result.changed:
        words = word_edit_distance(result.initial_prompt, result.best_prompt)
        # whether it is written (CI, --gpo-dry-run, a refused file) is said with the writes
        action = "accepted for write-back" if result.should_write else "not accepted"
        lines.append(f"  prompt: {words} words changed, {action}")
    if result.stopped_reason:
        lines.append(f"  stopped early: {result.stopped_reason}")
    lines += experiment_terminal_lines(result)
    return lines
