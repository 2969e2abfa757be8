"""The adversarial corpus: hostile templates, regexes, answers and checkpoints, run and counted.

The data lives beside this module (``templates.yaml``, ``regexes.yaml``, ``answers.yaml``,
``suites.yaml``); ``tests/test_reliability_adversarial.py`` runs every entry and asserts the
counts, and ``python tests/adversarial/corpus.py`` prints them (the figures in
docs/reliability.md come from that command).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent


def entries(name: str) -> list[dict[str, Any]]:
    """The entries of one corpus file."""
    data = yaml.safe_load((HERE / name).read_text(encoding="utf-8"))
    assert isinstance(data, list)
    return data


def source_of(entry: dict[str, Any], key: str = "source") -> str:
    """An entry's text: ``source`` (or ``answer``), else ``head + unit * times + tail``."""
    if key in entry:
        return str(entry[key])
    return (
        str(entry.get("head", ""))
        + str(entry["unit"]) * int(entry["times"])
        + str(entry.get("tail", ""))
    )


@dataclass
class Tally:
    """Outcomes of one corpus file, and the slowest entry."""

    outcomes: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    max_seconds: float = 0.0
    slowest: str = ""
    max_bytes: int = 0
    resumed: list[str] = field(default_factory=list)

    def timed(self, entry_id: str, seconds: float) -> None:
        if seconds > self.max_seconds:
            self.max_seconds, self.slowest = seconds, entry_id


# -- templates ------------------------------------------------------------------------------


def run_templates(*, measure_memory: bool = True) -> Tally:
    """Load (variables) and render every hostile template as a suite load does."""
    from pytest_gpo.errors import SuiteError
    from pytest_gpo.templates.limits import MAX_OUTPUT
    from pytest_gpo.templates.template import render, template_variables

    tally = Tally()
    for entry in entries("templates.yaml"):
        text = source_of(entry)
        variables = entry.get("vars", {"s": "abc"})
        if measure_memory:
            tracemalloc.start()
        started = time.perf_counter()
        try:
            template_variables(text, where="hostile.txt")
            out = render(text, variables, where="hostile.txt", case="c1")
            outcome = "rendered"
            if len(out) > MAX_OUTPUT:
                tally.problems.append(f"{entry['id']}: rendered {len(out):,} characters")
        except SuiteError as exc:
            outcome = "suite error"
            if "hostile.txt" not in exc.render():
                tally.problems.append(f"{entry['id']}: the error names no file: {exc.render()}")
        except BaseException as exc:  # the corpus counts these: there must be none
            outcome = "aborted"
            tally.problems.append(f"{entry['id']}: {type(exc).__name__}: {str(exc)[:200]}")
        seconds = time.perf_counter() - started
        if measure_memory:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            tally.max_bytes = max(tally.max_bytes, peak)
        tally.outcomes[outcome] += 1
        tally.timed(entry["id"], seconds)
    return tally


# -- regexes --------------------------------------------------------------------------------


def run_regexes() -> Tally:
    """Build a ``regex`` scorer per entry and score its answer (or expect a load error)."""
    from pytest_gpo.errors import GpoError
    from pytest_gpo.scorers.base import ScoreContext
    from pytest_gpo.scorers.registry import builtin_registry
    from pytest_gpo.suites.model import Case

    registry = builtin_registry()
    tally = Tally()
    for entry in entries("regexes.yaml"):
        answer = source_of(entry, "answer")
        options = {"pattern": entry["pattern"], "full": bool(entry.get("full", False))}
        options.update(entry.get("flags", {}))
        started = time.perf_counter()
        try:
            scorer = registry.create("regex", options, where="hostile.gpo.yaml (scorers[0])")
            got = asyncio.run(scorer.score(answer, Case(id="c1", vars={}), ScoreContext()))
            outcome = "match" if got.passed else "no_match"
        except GpoError as exc:
            outcome = "refused"
            reason = str(entry.get("reason", ""))
            if reason not in exc.render() or repr(entry["pattern"]) not in exc.render():
                tally.problems.append(f"{entry['id']}: reason lacks {reason!r}: {exc.render()}")
        except BaseException as exc:
            outcome = "aborted"
            tally.problems.append(f"{entry['id']}: {type(exc).__name__}: {str(exc)[:200]}")
        seconds = time.perf_counter() - started
        if outcome != entry["expect"]:
            tally.problems.append(f"{entry['id']}: expected {entry['expect']}, got {outcome}")
        tally.outcomes[outcome] += 1
        tally.timed(entry["id"], seconds)
    return tally


# -- answers --------------------------------------------------------------------------------

#: Characters no terminal line or markdown file may receive raw from an answer.
FORBIDDEN = set(map(chr, [*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0)])) | set(
    "\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def run_answers() -> Tally:
    """Every hostile answer through the terminal summary, the markdown and the JSON report."""
    from pytest_gpo.gate.verdict import error_verdict
    from pytest_gpo.report.json import report_json, report_text
    from pytest_gpo.report.markdown import render_markdown
    from pytest_gpo.report.model import SuiteReport, build_report
    from pytest_gpo.report.terminal import terminal_lines

    tally = Tally()
    for entry in entries("answers.yaml"):
        answer = source_of(entry, "answer")
        verdict = error_verdict(f"suite {entry['id']}", f"provider said: {answer}")
        report = build_report([SuiteReport(verdict, None, file="hostile.gpo.yaml")])
        shown = {
            "terminal": "\n".join(terminal_lines(report, show_all=True)),
            "markdown": render_markdown(report),
        }
        raw = {name: sorted({c for c in text if c in FORBIDDEN}) for name, text in shown.items()}
        data = json.loads(report_text(report_json(report)))
        exact = any(answer in text for text in _strings(data))
        if any(raw.values()):
            tally.problems.append(f"{entry['id']}: raw control characters {raw}")
            tally.outcomes["leaked"] += 1
        elif not exact:
            tally.problems.append(f"{entry['id']}: the JSON report does not keep the exact text")
            tally.outcomes["altered in JSON"] += 1
        else:
            tally.outcomes["escaped"] += 1
    return tally


def _strings(data: Any) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from _strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _strings(value)


# -- checkpoints ----------------------------------------------------------------------------


def checkpoint_mutations(state: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """``(name, checkpoint JSON value)``: a real checkpoint's state broken one way at a time.

    Each field removed, and set to each wrongly typed value; then whole-file damage.
    """
    wrong: list[Any] = [None, "x", -1, 10**30, 1.5e308, [], {}, [[]], [["p", "NaN"]], True]
    for key in sorted(state):
        broken = dict(state)
        del broken[key]
        yield f"state without {key}", broken
        for value in wrong:
            broken = dict(state)
            broken[key] = value
            yield f"state.{key} = {json.dumps(value)}", broken
    yield "t past the end", {**state, "t": 10**6}
    yield "empty trajectory", {**state, "trajectory": []}


def run_checkpoints(directory: Path) -> Tally:
    """Interrupt a real (fake-model) optimization after one step, then rerun it over each
    damaged copy of its checkpoint: every rerun completes, and one that does not resume says
    once that the checkpoint was ignored."""
    sys.path.insert(0, str(HERE.parent))
    from test_optimize_fakes import ScriptedClient, steps_script
    from test_optimize_loop import SCRIPT, _config, _evaluator, _run

    cfg = _config()
    steps: list[int] = []
    _run(
        cfg,
        _evaluator(cfg),
        ScriptedClient(steps_script(SCRIPT)),
        checkpoint_dir=directory,
        progress=lambda e: steps.append(e.t) if e.kind == "step" else None,
        should_stop=lambda: "interrupted" if len(steps) >= 1 else None,
    )
    path = directory / "checkpoint.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    cases: list[tuple[str, Any]] = [
        (name, {**data, "state": state}) for name, state in checkpoint_mutations(data["state"])
    ]
    cases += [
        ("version 2", {**data, "version": 2}),
        ("no version", {k: v for k, v in data.items() if k != "version"}),
        ("state a list", {**data, "state": []}),
        ("a JSON list", [data]),
        ("a JSON string", "checkpoint"),
    ]
    tally = Tally()
    for name, damaged in cases:
        path.write_text(json.dumps(damaged), encoding="utf-8")
        notes: list[str] = []
        note = notes.append
        started = time.perf_counter()
        try:
            result = _run(
                cfg,
                _evaluator(cfg),
                ScriptedClient(steps_script(SCRIPT)),
                checkpoint_dir=directory,
                progress=lambda e, note=note: note(e.message) if e.kind == "note" else None,
            )
        except BaseException as exc:
            tally.outcomes["aborted"] += 1
            tally.problems.append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        tally.timed(name, time.perf_counter() - started)
        if result.steps_completed != cfg.steps:
            tally.problems.append(f"{name}: {result.steps_completed} steps completed")
        if result.resumed_from is not None:
            tally.outcomes["resumed"] += 1
            tally.resumed.append(name)
            if notes:
                tally.problems.append(f"{name}: resumed, yet noted {notes}")
            continue
        tally.outcomes["started afresh"] += 1
        ok = (
            len(notes) == 1
            and "checkpoint.json ignored: " in notes[0]
            and notes[0].endswith("; starting afresh")
            and len(notes[0]) < 400
            and "\n" not in notes[0]
        )
        if not ok:
            tally.problems.append(f"{name}: notes {notes}")
    return tally


def _summary(tallies: dict[str, Tally]) -> list[str]:
    lines = []
    for name, tally in tallies.items():
        counts = ", ".join(f"{k} {v}" for k, v in sorted(tally.outcomes.items()))
        total = sum(tally.outcomes.values())
        line = (
            f"{name}: {total} entries: {counts}; aborted {tally.outcomes['aborted']}, "
            f"problems {len(tally.problems)}"
        )
        if tally.slowest:
            line += f"; slowest {tally.max_seconds:.2f} s ({tally.slowest})"
        if tally.max_bytes:
            line += f"; peak traced memory {tally.max_bytes / 2**20:.1f} MiB"
        lines.append(line)
        lines += [f"  problem: {p}" for p in tally.problems]
    return lines


def main() -> int:
    """Print the corpus figures (for docs/reliability.md)."""
    with tempfile.TemporaryDirectory() as scratch:
        tallies = {
            "hostile templates": run_templates(),
            "hostile regexes": run_regexes(),
            "hostile answers": run_answers(),
            "damaged checkpoints": run_checkpoints(Path(scratch)),
        }
    print("\n".join(_summary(tallies)))
    return 1 if any(t.problems for t in tallies.values()) else 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent.parent))
    sys.exit(main())
