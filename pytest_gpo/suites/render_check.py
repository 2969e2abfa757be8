"""Rendering a suite's prompt with every case at load, within one budget for the whole suite.

Each render is bounded (templates/limits.py: 1,000,000 characters, 5 s), but a suite renders
once per case: 400 cases of a 1 MB prompt held 650 MB, and 20 cases of a 5 s prompt took
110 s. So the suite as a whole is bounded too; past it the suite is an error naming the case
where the budget ran out, never a MemoryError or an endless collection.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from pytest_gpo.errors import SuiteError
from pytest_gpo.suites.model import Case
from pytest_gpo.suites.paths import display
from pytest_gpo.templates.template import render, renders_cleanly

#: Characters of rendered prompts one suite may produce over all its cases (and repeats of
#: them at run time): 50 million, about 50 MB of text.
MAX_SUITE_RENDER_CHARS = 50_000_000
#: Seconds rendering one suite's cases may take at load, in all.
MAX_SUITE_RENDER_SECONDS = 30.0


def check_render(text: str, prompt_path: Path, cases: Sequence[Case], where: str) -> None:
    """Render ``text`` with every case once (raises :class:`SuiteError` naming the case):
    sandbox refusals and filter errors surface at collection, before any model call."""
    template = display(prompt_path)
    started = time.monotonic()
    total = 0
    for case in cases:
        if renders_cleanly(text, case.vars):
            # a plain {{ name }} template: its size is the case's values, already capped
            total += len(text) + sum(len(str(v)) for v in case.vars.values())
        else:
            try:
                total += len(render(text, case.vars, where=template, case=case.id))
            except SuiteError as exc:
                raise SuiteError(
                    f"the prompt cannot be rendered with this case ({case.source}; "
                    f"template {template}): {exc.message}",
                    path=where,
                    key="prompt",
                    case=case.id,
                    fix=exc.fix,
                ) from None
        over_size = total > MAX_SUITE_RENDER_CHARS
        over_time = time.monotonic() - started > MAX_SUITE_RENDER_SECONDS
        if over_size or over_time:
            what = (
                f"more than {MAX_SUITE_RENDER_CHARS:,} characters in all"
                if over_size
                else f"more than {MAX_SUITE_RENDER_SECONDS:g} s in all"
            )
            raise SuiteError(
                f"rendering the prompt for every case takes {what} (template {template})",
                path=where,
                key="prompt",
                case=case.id,
                fix="make the prompt's fixed text shorter, or split the cases over suites",
            )
