"""The one record converter: every record survives JSON unchanged (a property over records)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_gpo.llm.types import ErrorKind, Usage
from pytest_gpo.results import CaseResult, RunResult, SuiteRun
from pytest_gpo.serial import DataError, from_data, to_data

text = st.text(max_size=20)
score = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
json_value: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
runs = st.builds(
    RunResult,
    sample=st.integers(0, 50),
    output=text,
    score=score,
    passed=st.booleans(),
    reason=text,
    error=st.none() | text,
)
cases = st.builds(
    CaseResult,
    case_id=text,
    vars=st.dictionaries(text, json_value, max_size=3),
    expected=json_value,
    runs=st.lists(runs, max_size=4),
    min_pass=st.integers(1, 5),
)
usages = st.builds(
    Usage,
    calls=st.integers(0, 10**6),
    cache_hits=st.integers(0, 10**6),
    prompt_tokens=st.integers(0, 10**9),
    completion_tokens=st.integers(0, 10**9),
    cost=st.floats(min_value=0, max_value=1e6, allow_nan=False),
)
suite_runs = st.builds(
    SuiteRun,
    suite=text,
    model=text,
    prompt_text=text,
    cases=st.lists(cases, max_size=4),
    usage=usages,
    errors=st.lists(text, max_size=3),
    error_kind=st.none() | st.sampled_from(list(ErrorKind)),
)


@settings(max_examples=300, deadline=None)
@given(suite_runs)
def test_a_suite_run_survives_json(run: SuiteRun) -> None:
    wire = json.dumps(to_data(run), allow_nan=False)
    back = from_data(SuiteRun, json.loads(wire))
    assert back == run
    assert to_data(back) == to_data(run)
    assert back.error_kind is None or isinstance(back.error_kind, ErrorKind)
    assert math.isclose(back.score, run.score) or back.score == run.score


def test_wrong_shapes_are_named_errors() -> None:
    with pytest.raises(DataError, match=r"SuiteRun.cases\[0\].runs"):
        from_data(
            SuiteRun,
            {
                "suite": "s",
                "model": "m",
                "prompt_text": "",
                "cases": [{"case_id": "c", "vars": {}, "expected": None, "runs": "nope"}],
            },
        )
    with pytest.raises(DataError, match="ErrorKind"):
        from_data(
            SuiteRun,
            {"suite": "s", "model": "m", "prompt_text": "", "cases": [], "error_kind": "meltdown"},
        )


def test_missing_fields_take_defaults_and_unknown_keys_are_ignored() -> None:
    run = from_data(
        SuiteRun,
        {"suite": "s", "model": "m", "prompt_text": "p", "cases": [], "from_a_newer_version": 1},
    )
    assert run == SuiteRun(suite="s", model="m", prompt_text="p", cases=[])
