"""End of a session: baseline update, prompt write-back, reports, the terminal summary.

Runs in the process that owns the session's results: the only process, or the xdist
controller after every worker sent its records home. So the baseline, the prompt files and the
report are each written once, by one process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_gpo.errors import GpoError
from pytest_gpo.plugin.session import GpoSession, SuiteRecord, in_ci
from pytest_gpo.sim import SIM_PREFIX
from pytest_gpo.suites.paths import display

if TYPE_CHECKING:
    from pytest_gpo.optimize.result import OptimizationResult
    from pytest_gpo.report.model import Report, SuiteReport
    from pytest_gpo.settings import Settings
    from pytest_gpo.writeback import WriteOutcome

#: pytest's exit status for a session stopped by Ctrl-C (``pytest.ExitCode.INTERRUPTED``)
INTERRUPTED = 2

#: why nothing is written after Ctrl-C (a rewrite would also change the suite's run key, so
#: the rerun could not resume from the checkpoint of the optimization that finished)
NOT_WRITTEN_INTERRUPTED = (
    "not written: the run was interrupted (rerun to resume: finished suites are kept in their "
    "checkpoints)"
)

SIM_NOTE = (
    "NOTE: this run used the built-in SIMULATED models (gpo-sim/...): scores show the "
    "plugin working offline, not the quality of a real model."
)


@dataclass
class Outcome:
    """What finishing the session did (shown by the terminal summary)."""

    lines: list[str] = field(default_factory=list)
    writes: list[WriteOutcome] = field(default_factory=list)
    report: Report | None = None


def _records(gs: GpoSession) -> list[SuiteRecord]:
    return sorted(gs.records.values(), key=lambda r: r.nodeid)


def _optimizations(gs: GpoSession) -> list[tuple[SuiteRecord, OptimizationResult]]:

    return [(rec, rec.optimization) for rec in _records(gs) if rec.optimization is not None]


def _update_baseline(gs: GpoSession, out: Outcome) -> None:

    entries = {}
    skipped = []
    for rec in _records(gs):
        if rec.gate_entry is not None:
            entries[rec.name] = rec.gate_entry
        elif rec.invalid:
            skipped.append(f"{rec.name} (the suite file could not be loaded)")
        elif rec.run is not None or rec.error:
            skipped.append(f"{rec.name} ({rec.error or 'the run did not complete'})")
        elif rec.optimization is None:
            skipped.append(f"{rec.name} (not run)")
    if entries:
        gs.baseline_store().update(entries)
        out.lines.append(
            f"baseline updated for {len(entries)} suite(s) in "
            f"{display(gs.settings.baseline_path)}: "
            + ", ".join(sorted(entries))
            + " (commit the file)"
        )
    for item in skipped:
        out.lines.append(f"baseline NOT updated for {item}")


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def _sharing(rec: SuiteRecord, users: dict[Path, list[SuiteRecord]]) -> tuple[str, ...]:
    """The other suites of the run (optimized or not) whose prompt is ``rec``'s file too."""
    others = users.get(_resolved(Path(rec.prompt_path)), [])
    return tuple(sorted({o.name for o in others if o.nodeid != rec.nodeid}))


def own_paths(settings: Settings) -> tuple[Path, ...]:
    """pytest-gpo's own files and folders, never rewritten as a prompt: ``.gpo/``, the cache,
    the baseline and every report this run writes."""
    from pytest_gpo.plugin.optimize_driver import RUNS_DIR
    from pytest_gpo.report.files import report_paths

    paths = [
        settings.rootdir / Path(RUNS_DIR).parts[0],
        settings.cache_path,
        settings.baseline_path,
    ]
    if settings.report_path is not None:
        paths += report_paths(settings.report_path)
    if settings.html_path is not None:
        paths.append(settings.html_path)
    return tuple(paths)


def resume_note(rec: SuiteRecord) -> str | None:
    """For a suite whose optimization started but never finished (Ctrl-C): that its checkpoint
    exists and the next run resumes from it (``None`` when there is no checkpoint)."""
    from pytest_gpo.optimize.checkpoint import checkpoint_path

    if rec.ran or not rec.run_dir or not checkpoint_path(rec.run_dir).is_file():
        return None
    return (
        "not run: interrupted while optimizing; its checkpoint "
        f"({display(Path(rec.run_dir))}) exists and the next run resumes from it"
    )


def _write_back(gs: GpoSession, out: Outcome, exitstatus: int) -> int | None:
    from pytest_gpo.writeback import PlannedWrite, WriteOutcome, WriteStatus, apply

    plans = []
    protected = own_paths(gs.settings)
    users: dict[Path, list[SuiteRecord]] = {}  # prompt file -> every suite of the run using it
    for other in _records(gs):
        if other.prompt_path:
            users.setdefault(_resolved(Path(other.prompt_path)), []).append(other)
    for rec, result in _optimizations(gs):
        if result.should_write:
            plans.append(
                PlannedWrite(
                    rec.name,
                    Path(rec.prompt_path),
                    rec.prompt_sha256,
                    result.best_prompt,
                    root=gs.settings.rootdir,
                    protected=protected,
                    shared_with=_sharing(rec, users),
                )
            )
        else:
            out.lines.append(f"{rec.name}: prompt kept ({result.reason})")
    if not plans:
        return None
    s = gs.settings
    if exitstatus == INTERRUPTED:  # Ctrl-C: write nothing, the checkpoints resume the run
        out.writes = [
            WriteOutcome(p.suite, p.path, WriteStatus.INTERRUPTED, NOT_WRITTEN_INTERRUPTED)
            for p in plans
        ]
    else:
        out.writes = apply(plans, dry_run=s.dry_run, ci=in_ci(), allow_in_ci=s.optimize == "write")
    for w in out.writes:
        out.lines.append(f"{w.suite}: {w.message}")
    written = [w for w in out.writes if w.written]
    path = s.report_path  # written after this, in every optimize run
    report = f" and {display(path)}" if path is not None else ""
    if written:
        # the exit status is 1 only when pytest itself would exit 0 or 1
        exits = " (this run exits 1, like --force-regen)" if exitstatus in (0, 1) else ""
        out.lines.append(
            f"{len(written)} prompt file(s) rewritten: review the diff (git diff){report}, "
            f"then re-run pytest to check them{exits}"
        )
        return 1
    return None


def _optimize_headline(gs: GpoSession, writes: list[WriteOutcome]) -> str:
    """The report's first line for an optimization run: what improved, what was written."""
    results = [r for _, r in _optimizations(gs)]
    improved = [r for r in results if r.should_write]
    written = {w.suite for w in writes if w.written}
    unwritten = {w.suite: w.message for w in writes if not w.written}
    parts = []
    for r in improved:
        test = r.scores.get("test")
        if test is not None and test.before is not None and test.after is not None:
            parts.append(f"{r.suite} {test.before:.3f} → {test.after:.3f} on held-out test")
        else:
            parts.append(r.suite)
        if written and r.suite in unwritten:  # some written, not this one: say why here
            parts[-1] += f" ({unwritten[r.suite]})"
    kept = len(results) - len(improved)
    errored = [rec.name for rec in _records(gs) if rec.error]
    failed = f"; {len(errored)} could not be optimized (error): {', '.join(errored)}"
    if not improved:
        head = f"⚪ GPO: no prompt improved on the held-out split ({len(results)} kept)"
        return head + (failed if errored else "")
    verb = "rewritten" if written else "not written (see below)"
    if any(w.status == "interrupted" for w in writes):
        verb = NOT_WRITTEN_INTERRUPTED
    if written and unwritten:
        verb = f"{len(written)} rewritten"
    head = f"✍️ GPO: {len(improved)} of {len(results)} prompt(s) improved and {verb}: "
    return (
        head + "; ".join(parts) + (f"; {kept} kept" if kept else "") + (failed if errored else "")
    )


def suite_report(rec: SuiteRecord) -> SuiteReport | None:
    """A suite's place in the report: gated, errored, invalid or not run (``None``: it was
    optimized, and the optimization section reports it)."""
    from pytest_gpo.gate.verdict import error_verdict
    from pytest_gpo.report.model import SuiteReport

    where = display(Path(rec.path)) if rec.path else ""
    if rec.verdict is not None:
        return SuiteReport(rec.verdict, rec.run, file=where, requests=rec.usage)
    if rec.invalid:
        verdict = error_verdict(rec.name, rec.invalid, status="invalid")
        return SuiteReport(verdict, None, file=where)
    if rec.optimization is not None:
        return None
    threshold = rec.threshold if rec.threshold is not None else 0.0
    if rec.error:
        run = rec.run
        kind = run.error_kind if run is not None else None
        verdict = error_verdict(
            rec.name,
            rec.error,
            kind=kind,
            threshold=threshold,
            metric=rec.metric,
            model=rec.model,
            cases=rec.case_count,
        )
        return SuiteReport(verdict, run, file=where, requests=rec.usage)
    verdict = error_verdict(
        rec.name,
        resume_note(rec) or "not run",
        threshold=threshold,
        metric=rec.metric,
        status="not_run",
        cases=rec.case_count,
    )
    return SuiteReport(verdict, None, file=where, requests=rec.usage)


def _build_report(
    gs: GpoSession,
    writes: list[WriteOutcome] | None = None,
    exit_status: int | None = None,
    exit_reason: str | None = None,
) -> Report:
    from pytest_gpo import __version__
    from pytest_gpo.report.model import build_report

    suites = [r for r in map(suite_report, _records(gs)) if r is not None]
    sections = []
    optimizations = _optimizations(gs)
    if optimizations:
        from pytest_gpo.report.optimization import optimize_json, optimize_markdown

        sections.append(
            (
                "Optimization",
                "\n\n".join(optimize_markdown(r, rec.usage) for rec, r in optimizations),
                {r.suite: optimize_json(r) for _, r in optimizations},
            )
        )
    s = gs.settings
    meta: dict[str, Any] = {
        "pytest-gpo": __version__,
        "cache": s.cache,
        "baseline": str(s.baseline),
    }
    if gs.uses_simulated_models():
        meta["simulated models"] = "yes (gpo-sim/...): offline demo models, not a real LLM"
    report = build_report(suites, sections, meta=meta)
    report.exit_status = exit_status
    report.exit_reason = exit_reason
    if optimizations:
        report.title = "pytest-gpo: prompt optimization"
        report.headline = _optimize_headline(gs, writes or [])
    return report


def _attempt(out: Outcome, step: Callable[[], int | None]) -> tuple[bool, int | None]:
    """Run one of the session's writes; a :class:`GpoError` or ``OSError`` becomes an error
    line (path, reason, fix) so the writes after it still happen. ``(ok, status)``."""
    try:
        return True, step()
    except GpoError as exc:
        out.lines.append("ERROR: " + exc.render())
    except OSError as exc:  # a write no GpoError wraps yet: still a line, not a traceback
        where = f" {exc.filename}" if exc.filename else ""
        out.lines.append(f"ERROR: cannot write{where}: {exc.strerror or exc}")
    return False, None


def finish_session(gs: GpoSession, exitstatus: int) -> int | None:
    """Update the baseline, write prompts back, write reports; a new exit status or None.

    Each write is attempted even when an earlier one failed (an unwritable baseline still
    gets its report); a failed write the user asked for makes the exit status non-zero.
    """
    out = Outcome()
    gs.outcome = out
    status: int | None = None
    if not gs.records:
        return None
    ok = True
    if gs.settings.update_baseline:
        done, _ = _attempt(out, lambda: _update_baseline(gs, out))
        ok = ok and done
    if gs.settings.optimize:
        done, status = _attempt(out, lambda: _write_back(gs, out, exitstatus))
        ok = ok and done
        out.lines += [f"{r.name}: {note}" for r in _records(gs) if (note := resume_note(r))]
    final = status if status is not None and exitstatus in (0, 1) else exitstatus
    reason = "prompt files were rewritten; re-run pytest to check them" if status else None
    if not ok and final == 0:
        final = 1
        reason = "a file pytest-gpo was asked to write could not be written (see the ERROR line)"
    report = _build_report(gs, out.writes, final, reason if final == status or not ok else None)
    out.report = report
    html: list[Path] = []
    if gs.settings.html_path is not None:
        done, _ = _attempt(out, lambda: _write_html(gs, out, report, html))
        ok = ok and done
        if not done and not report.exit_status:
            # the reports written next must not say "passed" while pytest exits 1
            report.exit_status = 1
            report.exit_reason = "the HTML report could not be written"
    done, _ = _attempt(out, lambda: _write_reports(gs, out, report, html[0] if html else None))
    ok = ok and done
    if not ok:
        return 1 if exitstatus == 0 else None
    if status is not None and exitstatus in (0, 1):
        return status
    return None


def _write_html(gs: GpoSession, out: Outcome, report: Report, written: list[Path]) -> None:
    """Write the HTML report (``--gpo-html``); its path goes into ``written``."""
    target = gs.settings.html_path
    if target is None:
        return
    from pytest_gpo.report.files import write_html_report

    path = write_html_report(target, report)
    written.append(path)
    out.lines.append(f"HTML report: {display(path)}")


def _write_reports(gs: GpoSession, out: Outcome, report: Report, html: Path | None) -> None:
    path = gs.settings.report_path
    if path is not None:
        from pytest_gpo.report.files import write_reports

        def hook(payload: dict[str, Any]) -> None:
            if gs.hook is not None:
                gs.hook.pytest_gpo_report(report=payload)

        written = write_reports(path, report, json_hook=hook, html=html)
        out.lines.append(f"report: {display(written.markdown)} (and {written.json.name})")
        if written.step_summary_error:
            out.lines.append(written.step_summary_error)
    else:
        from pytest_gpo.report.files import append_step_summary
        from pytest_gpo.report.markdown import render_markdown

        try:
            append_step_summary(render_markdown(report))
        except OSError as exc:
            out.lines.append(f"cannot append to $GITHUB_STEP_SUMMARY: {exc}")


def summary_lines(gs: GpoSession) -> list[str]:
    """Lines of the terminal summary: the suite table, optimizations, writes, notes."""
    lines: list[str] = []
    out: Outcome | None = gs.outcome
    report = out.report if out is not None else None
    if report is None and gs.records:
        report = _build_report(gs)
    if report is not None and report.suites:
        from pytest_gpo.report.terminal import terminal_lines

        lines.extend(terminal_lines(report, show_all=gs.settings.show_all))
    optimizations = _optimizations(gs)
    if optimizations:
        from pytest_gpo.report.optimization import optimize_terminal_lines

        for rec, result in optimizations:
            lines.extend(optimize_terminal_lines(result, rec.usage))
    usage = gs.total_usage()
    lines.append(
        f"model calls: {usage.calls}, cache hits: {usage.cache_hits}, misses: "
        f"{usage.cache_misses}, tokens: {usage.tokens}, cost: {usage.cost_text()}"
        + (" (requests sent in this session)" if optimizations else "")
    )
    if out is not None:
        lines.extend(out.lines)
    lines.extend(gs.warnings)
    for warning in dict.fromkeys(w for rec in _records(gs) for w in rec.warnings):
        lines.append("WARNING: " + warning)
    if any(rec.model.startswith(SIM_PREFIX) for rec in gs.records.values()):
        lines.append(SIM_NOTE)
    from pytest_gpo.report.controls import visible

    return [visible(line) for line in lines]
