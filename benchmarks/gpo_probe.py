"""A pytest plugin for benchmark children (``-p gpo_probe``; ``benchmarks/`` on PYTHONPATH).

At the end of the run it writes JSON to ``$GPO_PROBE_OUT``: which heavy modules were imported,
the summed setup + call time of the items and how many there were, their span in wall-clock
time (first start to last end, which is what counts under xdist), and the session's wall time
from configure to unconfigure. Without ``GPO_PROBE_OUT`` it records nothing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

HEAVY = ("litellm", "torch", "sentence_transformers", "openai", "aiohttp", "redis")

_state: dict[str, Any] = {"items": 0, "item_seconds": 0.0, "gpo_items": 0, "gpo_seconds": 0.0}


def pytest_configure(config: Any) -> None:
    """Start the session clock; with ``GPO_PROBE_PREIMPORT=litellm`` import litellm first.

    Pre-importing separates litellm's one-off import (seconds) from the time the suite items
    spend on model calls, which is what a throughput ratio should compare.
    """
    if os.environ.get("GPO_PROBE_PREIMPORT") == "litellm":
        start = time.perf_counter()
        from pytest_gpo.llm.setup import import_litellm

        import_litellm()
        _state["preimport_seconds"] = time.perf_counter() - start
    _state["configured"] = time.perf_counter()


def pytest_runtest_logreport(report: Any) -> None:
    """Add up setup and call time per item (teardown is negligible here).

    Also the span of the suite items in wall-clock time, from the first setup's start to the
    last call's end: under pytest-xdist the items of several workers overlap, so their summed
    durations are not the time the run took.
    """
    if report.when not in ("setup", "call"):
        return
    is_gpo = ".gpo.y" in report.nodeid
    _state["item_seconds"] += report.duration
    if is_gpo:
        _state["gpo_seconds"] += report.duration
        start, stop = getattr(report, "start", None), getattr(report, "stop", None)
        if start is not None and stop is not None:
            _state["gpo_first_start"] = min(_state.get("gpo_first_start", start), start)
            _state["gpo_last_stop"] = max(_state.get("gpo_last_stop", stop), stop)
    if report.when == "setup":
        _state["items"] += 1
        if is_gpo:
            _state["gpo_items"] += 1


def pytest_unconfigure(config: Any) -> None:
    """Write what was measured."""
    out = os.environ.get("GPO_PROBE_OUT")
    if not out or hasattr(config, "workerinput"):
        # xdist workers would overwrite the controller's record
        return
    _state["session_seconds"] = time.perf_counter() - _state.pop("configured", time.perf_counter())
    _state["imported"] = {name: name in sys.modules for name in HEAVY}
    if "gpo_first_start" in _state:
        _state["gpo_span_seconds"] = _state["gpo_last_stop"] - _state["gpo_first_start"]
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(_state, handle)
