"""A gate verdict in words: headline, notes, failure text, case lines, summary line.

Everything here reads a :class:`~pytest_gpo.gate.verdict.GateVerdict` (data) and returns text:
the message pytest shows for a failing suite, the notes the reports list, the one-line summary
over many suites, and the number formats every report shares (:func:`format_score`,
:func:`format_delta`, :func:`format_p`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_gpo.gate.baseline import UPDATE_COMMAND
from pytest_gpo.gate.excerpt import excerpt, got_excerpt
from pytest_gpo.gate.verdict import EPSILON, CaseChange, GateVerdict
from pytest_gpo.llm.types import ErrorKind, error_text
from pytest_gpo.results import CaseResult, SuiteRun, runs_rule
from pytest_gpo.suites.model import METRIC_TEXT, Suite
from pytest_gpo.suites.paths import display

#: How many cases a verdict's message lists before "and N more".
MESSAGE_CASES = 10


def format_p(p: float | None) -> str:
    """``0.5``, ``0.0193``, ``3.9e-04``: three significant digits, tiny ones in e-notation."""
    if p is None:
        return "n/a"
    if p >= 0.001:
        return f"{p:.3g}"
    return f"{p:.1e}"


def format_score(x: float | None, missing: str = "n/a") -> str:
    """A score with three decimals, or ``missing``."""
    return missing if x is None else f"{x:.3f}"


def format_delta(x: float | None, missing: str = "n/a") -> str:
    """A signed difference with three decimals, or ``missing``."""
    return missing if x is None else f"{x:+.3f}"


def metric_label(v: GateVerdict) -> str:
    """``mean score`` or ``pass rate``."""
    return METRIC_TEXT.get(v.metric, "mean score")


def outcome_word(value: float | None) -> str:
    """``pass`` or ``fail`` for a case's value under the ``pass_rate`` metric (1 or 0)."""
    return "n/a" if value is None else ("pass" if value >= 0.5 else "fail")


def runs_text(c: CaseChange) -> str:
    """The k-of-N rule that decided a repeated case: ``passed 1/3 runs (needs 2)``."""
    return runs_rule(round(c.pass_rate * c.runs), c.runs, c.min_pass)


def case_line(c: CaseChange, metric: str = "mean") -> str:
    """One readable line: ``id: before → after  expected: '…'  got: '…'``.

    The score shown is the case's own score; under the ``pass_rate`` metric a comparison with
    the baseline is shown as outcomes (``pass → fail``) followed by that score.
    """
    score = format_score(c.after if c.score is None else c.score)
    if c.before is None:
        value = score
    elif metric == "pass_rate":
        value = f"{outcome_word(c.before)} → {outcome_word(c.after)}, score {score}"
    else:
        value = f"{format_score(c.before)} → {format_score(c.after)}"
    parts = [f"{c.case_id}: {value}"]
    if c.runs > 1:
        parts.append(runs_text(c))
    if c.expected:
        parts.append(f"expected: '{c.expected}'")
    parts.append(f"got: '{c.got}'")
    if c.reason and c.before is None:
        parts.append(f"({c.reason})")
    return "  ".join(parts)


def _pair(value: float, threshold: float, between: str) -> str:
    """``0.688 < 0.750``, with more digits when three would show two different numbers as
    equal (``0.6875 < 0.6876``, never ``0.688 < 0.688``)."""
    a, b = format_score(value), format_score(threshold)
    if a == b and value != threshold:
        for digits in range(4, 10):
            a, b = f"{value:.{digits}f}", f"{threshold:.{digits}f}"
            if a != b:
                break
    return f"{a}{between}{b}"


def _drop_text(v: GateVerdict) -> str:
    """``0.846 → 0.692``: the gated metric on the common cases, before and after."""
    return f"{format_score(v.baseline_value)} → {format_score(v.current_value)}"


def _over_max_drop(v: GateVerdict) -> str:
    """``drop 0.154 > max_drop 0.1``: how far the metric fell, against the floor it broke."""
    return f"drop {format_score(-(v.delta or 0.0))} > max_drop {v.max_drop:g}"


def _max_drop_only(v: GateVerdict) -> bool:
    return "max_drop" in v.failures and "regressed" not in v.failures


def headline(v: GateVerdict) -> str:
    """A short verdict for summaries: ``router regressed (0.920 → 0.810, p=0.003)``."""
    if v.status == "error":
        return f"{v.suite} errored ({excerpt(v.error or 'run failed', 60)})"
    if v.status == "invalid":
        first = (v.error or "not loaded").splitlines()[0]
        return f"{v.suite} is not a valid suite file ({excerpt(first, 60)})"
    if v.status == "not_run":
        return f"{v.suite} was not run"
    if v.status == "regressed" and _max_drop_only(v):
        return f"{v.suite} dropped more than max_drop ({_drop_text(v)}: {_over_max_drop(v)})"
    if v.status == "regressed":
        return f"{v.suite} regressed ({_drop_text(v)}, p={format_p(v.p_worse)})"
    if v.status == "below_threshold":
        return f"{v.suite} below threshold ({_pair(v.metric_value, v.threshold, ' < ')})"
    if v.status == "improved":
        return f"{v.suite} improved ({_drop_text(v)}, p={format_p(v.p_better)})"
    unseen = f", {_unseen_short(v)}" if v.unseen_drop else ""
    if v.status == "no_baseline":
        return f"{v.suite} passed without a baseline ({format_score(v.metric_value)})"
    return f"{v.suite} passed ({format_score(v.metric_value)}{unseen})"


def _too_few_moved(v: GateVerdict) -> bool:
    """True when the drop is unseen because fewer cases got worse than the test needs."""
    return len(v.worse) < (v.cases_needed or 0)


def _unseen_short(v: GateVerdict) -> str:
    if not _too_few_moved(v):
        return (
            f"untested drop {_drop_text(v)}: {len(v.worse)} worse, {len(v.better)} better, "
            f"p={format_p(v.p_worse)}"
        )
    return (
        f"untested drop {_drop_text(v)}: {len(v.worse)} {_cases(len(v.worse))} got worse, "
        f"the test needs {v.cases_needed}"
    )


def short_note(v: GateVerdict) -> str | None:
    """What a suites table adds to a verdict cell: a max_drop failure or an untested drop."""
    if v.status == "regressed" and "max_drop" in v.failures:
        return _over_max_drop(v)
    if v.unseen_drop and not _too_few_moved(v):
        return f"untested drop: {len(v.worse)} worse, {len(v.better)} better"
    if v.unseen_drop:
        return f"untested drop: {len(v.worse)} worse, {v.cases_needed} needed"
    return None


def notes(v: GateVerdict) -> list[str]:
    """The verdict in a few lines, without case lists or hints (reports render those as tables)."""
    if v.status == "error":
        return _error_notes(v)
    if v.status == "invalid":
        text = (v.error or "").replace("\r\n", "\n").split("\n")
        return [
            "invalid suite file: it could not be loaded, so it was not run; this fails the "
            "session until the file is fixed",
            *(f"  {line.strip()}" for line in text if line.strip()),
        ]
    if v.status == "not_run":
        why = "not run: the session ended before this suite ran (-x, --maxfail or an interrupt)"
        # an optimization stopped by Ctrl-C says where its checkpoint is (plugin/finish.py)
        return [why, *([v.error] if v.error and v.error != "not run" else [])]
    below = "below_threshold" in v.failures
    lines: list[str] = []
    m = metric_label(v)
    between = " < threshold " if below else " ≥ threshold "
    threshold_text = f"{m} {_pair(v.metric_value, v.threshold, between)}"
    tested = "regressed" in v.failures
    if tested:
        lines.append(
            f"regressed against the baseline: {_comparison_line(v)}; "
            f"{v.test} p={format_p(v.p_worse)} < alpha {v.alpha:g}"
        )
    if "max_drop" in v.failures:
        lines.append(
            f"dropped more than max_drop: {m} {_drop_text(v)} ({_over_max_drop(v)}); "
            "this floor fails such a drop, significant or not"
        )
    if v.status == "regressed":
        if below:
            lines.append(f"also below threshold: {threshold_text}")
    elif v.status == "below_threshold":
        passed_count = v.cases - len(v.failing)
        lines.append(f"below threshold: {threshold_text} ({passed_count} of {v.cases} passed)")
    elif v.status == "improved":
        lines.append(
            f"improved on the baseline: {_comparison_line(v)}; "
            f"{v.test} p={format_p(v.p_better)} < alpha {v.alpha:g}"
        )
        lines.append(threshold_text)
    elif v.status == "no_baseline":
        lines.append(f"passed: {threshold_text}; no baseline recorded for this suite")
    else:
        lines.append(f"passed: {threshold_text}")

    if v.has_baseline and not tested and v.status != "improved":
        if v.common == 0:
            lines.append("baseline: no cases in common with the baseline, nothing to compare")
        else:
            lines.append(f"baseline: {_comparison_line(v)}; {_noise_note(v)}")
    if v.changed:
        lines.append(f"changed since the baseline: {', '.join(v.changed)}")
    elif v.status == "regressed":
        lines.append(
            "prompt, model and scorers are unchanged since the baseline: the drop comes from "
            "the model's outputs (sampling or a provider-side model update)"
        )
    if v.added or v.removed:
        lines.append(
            f"cases since the baseline: {v.added} added, {v.removed} removed "
            f"(only the {v.common} common cases are compared)"
        )
    if v.repeats > 1:
        spread_text = f"; suite score per sample {v.spread.text()}" if v.spread else ""
        lines.append(f"repeats: {v.repeats} runs per case{spread_text}")
    return lines


def _error_notes(v: GateVerdict) -> list[str]:
    lines = [
        f"error: {error_text(v.error_kind)}; this is not a prompt regression and the gate was "
        "not evaluated",
        f"  {excerpt(v.error, 200)}",
    ]
    if v.error_count > 1:
        lines.append(f"  … and {v.error_count - 1} more errors")
    if v.error_kind == ErrorKind.CACHE_MISS:
        lines.append(
            "fix: run the suite once with `--gpo-cache rw` against the model and commit the cache"
        )
    return lines


def message_lines(v: GateVerdict, more: str = "") -> list[str]:
    """Everything a failure message shows: the notes, the cases that matter, how to accept.

    ``more`` says where the cases beyond the first :data:`MESSAGE_CASES` can be read (only
    name a report that exists).
    """
    lines = notes(v)
    if v.status in ("error", "invalid", "not_run"):
        return lines
    lines += _case_lines(v, more)
    hint = accept_hint(v)
    if hint:
        lines.append(hint)
    return lines


def failure_text(
    v: GateVerdict, suite: Suite | None = None, run: SuiteRun | None = None, more: str = ""
) -> str:
    """The text a failing suite shows in pytest (no traceback): headline, then the message.

    ``suite`` adds the suite file's path to the headline; with ``run``, a suite below its
    threshold shows its failing cases as a table (:func:`failing_case_table`) instead of lines.
    ``more`` says where the cases not listed can be read (see :func:`message_lines`).
    """
    where = f" ({display(suite.path)})" if suite is not None else ""
    lines = [headline(v) + where]
    message = message_lines(v, more)
    if run is None or v.status != "below_threshold":
        return "\n".join([*lines, *message])
    # a table of the failing cases, as in the terminal of a failed unit test
    listed = set(_case_lines(v, more))
    lines += [m for m in message if m not in listed]
    lines.append(failing_case_table(run, more=more))
    return "\n".join(lines)


def _comparison_line(v: GateVerdict) -> str:
    tol = f", tolerance {v.tolerance:g}" if v.tolerance else ""
    return (
        f"{metric_label(v)} {format_score(v.baseline_value)} → "
        f"{format_score(v.current_value)} "
        f"on {v.common} common cases (Δ {format_delta(v.delta)}{tol}); "
        f"{len(v.worse)} worse, {len(v.better)} better"
    )


def _noise_note(v: GateVerdict) -> str:
    if v.delta is None:
        return ""
    if v.unseen_drop and not _too_few_moved(v):
        return (
            f"the drop is not significant ({v.test} p={format_p(v.p_worse)} ≥ alpha "
            f"{v.alpha:g}): {len(v.worse)} {_cases(len(v.worse))} got worse and "
            f"{len(v.better)} better, so the test cannot tell it from noise; to catch a drop "
            "like this, " + ("add cases or set max_drop" if v.max_drop is None else "add cases")
        )
    if v.unseen_drop:
        some = "no case" if not v.worse else f"only {len(v.worse)} {_cases(len(v.worse))}"
        return (
            f"the drop is not significant ({v.test} p={format_p(v.p_worse)} ≥ alpha "
            f"{v.alpha:g}) and cannot be with so few cases moving: {some} got worse, "
            f"{len(v.better)} better, and the test sees a drop only when at least "
            f"{v.cases_needed} cases get worse (none better); to catch a drop like this, "
            + ("add cases or set max_drop" if v.max_drop is None else "add cases")
        )
    if v.delta < -v.tolerance - EPSILON:
        return f"the drop is not significant ({v.test} p={format_p(v.p_worse)} ≥ alpha {v.alpha:g})"
    if v.delta < -EPSILON:
        return f"the drop is within tolerance (p={format_p(v.p_worse)})"
    if v.delta > EPSILON:
        return f"the rise is not significant (p={format_p(v.p_better)})"
    return "no change"


def _cases(n: int) -> str:
    return "case" if n == 1 else "cases"


def _more(n: int, what: str, more: str) -> str:
    return f"… and {n} more {what}" + (f" ({more})" if more else "")


def _listed(
    title: str, changes: Sequence[CaseChange], metric: str, more: str, limit: int = MESSAGE_CASES
) -> list[str]:
    if not changes:
        return []
    lines = [f"{title}:"]
    lines += [f"  {case_line(c, metric)}" for c in changes[:limit]]
    if len(changes) > limit:
        lines.append("  " + _more(len(changes) - limit, "cases", more))
    return lines


def _case_lines(v: GateVerdict, more: str = "") -> list[str]:
    if v.status == "regressed":
        return _listed("cases that got worse", v.worse, v.metric, more)
    if v.status == "below_threshold":
        return _listed("failing cases", v.failing, v.metric, more)
    return []


def _vars_excerpt(vars: Mapping[str, Any], limit: int = 40) -> str:
    text = ", ".join(f"{k}={v}" for k, v in vars.items())
    return excerpt(text, limit)


def _got_lines(c: CaseResult) -> str:
    """What a case got; for a repeated case each run's output with its pass or fail."""
    if len(c.runs) < 2:
        return excerpt(got_excerpt(c), 40)
    return "\n".join(
        f"#{r.sample + 1} {'pass' if r.passed else 'fail'}: "
        + excerpt(("error: " + r.error) if r.error else r.output, 32)
        for r in c.runs
    )


def failing_case_table(run: SuiteRun, limit: int = MESSAGE_CASES * 2, more: str = "") -> str:
    """A plain-text table of the failing cases: id, score, the k-of-N rule of repeated cases,
    vars excerpt, expected, got (every run of a repeated case), reason.

    ``more`` says where the cases beyond ``limit`` can be read.
    """
    from tabulate import tabulate

    failing = [c for c in run.cases if not c.passed]
    repeated = any(len(c.runs) > 1 for c in failing)
    rows = [
        [
            c.case_id,
            format_score(c.score),
            *([c.rule] if repeated else []),
            _vars_excerpt(c.vars),
            excerpt(c.expected, 30),
            _got_lines(c),
            excerpt(c.reason, 50),
        ]
        for c in failing[:limit]
    ]
    headers = ["case", "score", *(["runs"] if repeated else []), "vars", "expected", "got"]
    table = tabulate(rows, headers=[*headers, "reason"], tablefmt="simple", disable_numparse=True)
    if len(failing) > limit:
        table += "\n" + _more(len(failing) - limit, "failing cases", more)
    return table


def accept_hint(v: GateVerdict) -> str | None:
    """How to accept the verdict's scores as the new baseline, when that is the next step."""
    if v.status == "regressed":
        return (
            f"if this change is intended, accept it: `{UPDATE_COMMAND}` "
            "and commit the baseline file"
        )
    if v.status == "improved":
        return f"record the improvement: `{UPDATE_COMMAND}` and commit the baseline file"
    if v.status == "no_baseline":
        return f"record one: `{UPDATE_COMMAND}` and commit the baseline file"
    return None


def summarize(verdicts: Mapping[str, GateVerdict] | Sequence[GateVerdict]) -> str:
    """One line over many verdicts: ``❌ 1 of 3 suites failed: …`` or ``✅ 3 suites passed``."""
    items = list(verdicts.values()) if isinstance(verdicts, Mapping) else list(verdicts)
    n = len(items)
    if n == 0:
        return "⚪ no prompt suites were run"
    bad = [v for v in items if not v.passed]
    noun = "suite" if n == 1 else "suites"
    if not bad:
        improved = [v for v in items if v.status == "improved"]
        unseen = [v.suite for v in items if v.unseen_drop]
        tails = [f"{len(improved)} improved"] if improved else []
        if unseen:
            tails.append(f"{len(unseen)} with an untested drop: {', '.join(unseen)}")
        tail = f" ({'; '.join(tails)})" if tails else ""
        return f"✅ {n} {noun} passed{tail}" if n > 1 else f"✅ 1 suite passed{tail}"
    errored = sum(1 for v in bad if v.status == "error")
    not_run = sum(1 for v in bad if v.status == "not_run")
    counts = [
        (len(bad) - errored - not_run, "failed"),
        (errored, "errored"),
        (not_run, "not run"),
    ]
    parts: list[str] = []
    for count, what in counts:
        if count:
            parts.append(f"{count} {what}" if parts else f"{count} of {n} {noun} {what}")
    return f"❌ {', '.join(parts)}: " + "; ".join(headline(v) for v in bad)
