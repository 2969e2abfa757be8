"""The HTML report of a 5,000-case run: file size, render time, and how fast Chromium opens it.

Builds a report in process (``--suites`` suites of ``--cases`` cases each, every fifth case
repeated three times, outputs of a few hundred characters, a baseline with some cases moved),
writes it with ``write_html_report`` and opens it ``--repeats`` times in headless Chromium
(``tests/chromium.py``, a fresh page load each time). Measured:

- ``render``: Python time to make the file (``render_html``) and its size;
- ``open``: navigation start to the page's "ready" marker (``window.gpoReadyAt``, set when the
  summary and the first page of cases are drawn), and the wall time from ``Page.navigate`` to
  ready as seen from Python;
- ``filter`` and ``search``: a click on "failed" and a search over every case's text, timed in
  the page.

The target (issue #15): a 5,000-case run opens in under 2 seconds.

    .venv/bin/python benchmarks/bench_html.py [--suites 5] [--cases 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import harness

from pytest_gpo.gate.baseline import BaselineEntry
from pytest_gpo.gate.verdict import evaluate
from pytest_gpo.llm.types import Usage
from pytest_gpo.report.files import write_html_report
from pytest_gpo.report.html import render_html
from pytest_gpo.report.model import Report, SuiteReport, build_report
from pytest_gpo.results import CaseResult, RunResult, SuiteRun
from pytest_gpo.suites.model import Suite

READY = "document.documentElement.dataset.ready === '1'"
WORDS = [
    *("the", "order", "arrived", "late", "and", "the", "invoice", "shows"),
    *("a", "different", "total", "than", "the", "cart"),
]


def load_chromium() -> ModuleType:
    """``tests/chromium.py`` as a module (it lives with the tests; we only import it)."""
    name = "chromium"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, harness.TESTS_DIR / "chromium.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _suite(name: str) -> Suite:
    return Suite(
        name=name,
        path=Path(f"{name}.gpo.yaml"),
        prompt_path=Path(f"{name}.txt"),
        prompt_text="p",
        prompt_bytes=b"p",
        system=None,
        model=None,
        params={},
        cases=(),
        scorers=(),
        threshold=0.5,
        threshold_metric="mean",
    )


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _cases(rng: random.Random, n: int, prefix: str) -> list[CaseResult]:
    out = []
    for i in range(n):
        runs = []
        for sample in range(3 if i % 5 == 0 else 1):
            passed = rng.random() < 0.8
            runs.append(
                RunResult(
                    sample,
                    _text(rng, rng.randint(10, 60)),
                    1.0 if passed else rng.choice([0.0, 0.5]),
                    passed,
                    "exact match" if passed else "expected 'billing', got 'technical'",
                )
            )
        ticket = _text(rng, rng.randint(15, 40))
        out.append(CaseResult(f"{prefix}-{i:05d}", {"ticket": ticket}, "billing", runs, min_pass=1))
    return out


def build(suites: int, cases: int, seed: int = 0) -> Report:
    """A report of ``suites`` x ``cases`` cases with a baseline that some cases moved against."""
    rng = random.Random(seed)
    items = []
    for k in range(suites):
        name = f"suite_{k}"
        run = SuiteRun(
            name, "openai/gpt-4o-mini", "p", _cases(rng, cases, name), usage=Usage(calls=cases)
        )
        before = SuiteRun(name, "openai/gpt-4o-mini", "p", _cases(rng, cases, name))
        verdict = evaluate(_suite(name), run, BaselineEntry.from_run(_suite(name), before))
        items.append(SuiteReport(verdict, run, file=f"suites/{name}.gpo.yaml"))
    return build_report(items)


def _timed_click(browser: Any, expression: str) -> float:
    ms: float = browser.evaluate(
        f"(() => {{ const t = performance.now(); {expression}; return performance.now() - t; }})()"
    )
    return ms / 1000


def main() -> None:
    """Build, write and open the report; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suites", type=int, default=5)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    harness.common_args(parser)
    args = parser.parse_args()
    chromium = load_chromium()
    if chromium.chromium_binary() is None:
        sys.exit("chromium is not installed (apt-get install -y chromium)")

    report = build(args.suites, args.cases)
    total = args.suites * args.cases
    renders = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        render_html(report)
        renders.append(time.perf_counter() - t)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gpo-bench-html-") as tmp:
        path = write_html_report(Path(tmp) / "report.html", report)
        size = path.stat().st_size
        ready, wall, failed, search = [], [], [], []
        with chromium.Chromium(Path(tmp) / "profile", timeout=60) as browser:
            for _ in range(args.repeats):
                t = time.perf_counter()
                browser.open(path.as_uri(), ready=READY)
                wall.append(time.perf_counter() - t)
                ready.append(browser.evaluate("window.gpoReadyAt") / 1000)
                assert browser.errors() == [], browser.errors()
                shown = browser.evaluate("document.querySelectorAll('#case-list .case').length")
                assert shown == min(100, total), shown
                failed.append(
                    _timed_click(browser, "document.getElementById('filter-failed').click()")
                )
                search.append(
                    _timed_click(
                        browser,
                        "document.getElementById('filter-all').click();"
                        "const s = document.getElementById('search'); s.value = 'invoice shows';"
                        "s.dispatchEvent(new Event('change'))",
                    )
                )
                matching = browser.evaluate(
                    "document.getElementById('case-count').dataset.matching"
                )
                assert 0 < int(matching) < total, matching

    def row(what: str, values: list[float]) -> dict[str, Any]:
        return {
            "what": what,
            "median s": round(statistics.median(values), 3),
            "max s": round(max(values), 3),
            "target s": 2.0 if what.startswith("open") else "",
        }

    rows = [
        row("render_html (Python)", renders),
        row("open: navigation start to ready (page clock)", ready),
        row("open: Page.navigate to ready (seen from Python)", wall),
        row("filter 'failed' (click to DOM updated)", failed),
        row("filter 'all', then a search over every case's text", search),
    ]
    harness.table(
        f"HTML report of {total:,} cases ({args.suites} suites, {args.repeats} opens)",
        rows,
        notes=[f"file size: {size / 1e6:.2f} MB ({size:,} bytes), one file, no external reference"],
    )
    harness.write_json(
        args.json,
        "html",
        {"cases": total, "suites": args.suites, "size_bytes": size, "rows": rows},
    )


if __name__ == "__main__":
    main()
