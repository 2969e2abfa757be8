"""A suite's cases: read from its case file or written inline, validated into Cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_gpo.errors import SuiteError
from pytest_gpo.suites.casefiles import read_case_file
from pytest_gpo.suites.describe import did_you_mean, kind_of
from pytest_gpo.suites.model import Case, derive_case_id
from pytest_gpo.suites.paths import Confinement, resolve_path

#: The keys a case may have.
CASE_KEYS = ("id", "vars", "expected", "tags", "description", "split")
#: The values of a case's ``split`` (a predefined optimization split).
SPLIT_NAMES = ("train", "eval", "test")


def load_cases(
    value: Any,
    variables: frozenset[str],
    *,
    suite_path: Path,
    where: str,
    confinement: Confinement | None = None,
) -> tuple[Case, ...]:
    """The ``cases:`` of a suite (a case-file path or an inline list) as validated Cases.

    Every case must define the prompt's ``variables``; ids must be unique.
    """
    if isinstance(value, str):
        path = resolve_path(suite_path.parent, value.strip(), where=where, key="cases")
        confinement = confinement or Confinement()
        confinement.check(path, where=where, key="cases")  # before anything about the file
        raw_cases = read_case_file(path, where=where, confinement=confinement)
    elif isinstance(value, list):
        raw_cases = [(item, f"{suite_path.name}: cases[{i}]") for i, item in enumerate(value)]
    else:
        raise SuiteError(
            f"'cases' must be a list of cases or a file path, not {kind_of(value)}",
            path=where,
            key="cases",
            fix="write 'cases: cases.jsonl' or an inline list of {id, vars, expected}",
        )
    if not raw_cases:
        raise SuiteError(
            "the suite has no cases", path=where, key="cases", fix="add at least one case"
        )
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for item, source in raw_cases:
        case = _case(item, source, where)
        if case.id in seen:
            raise SuiteError(
                f"duplicate case id '{case.id}' ({seen[case.id]} and {source})",
                path=where,
                key="cases",
                case=case.id,
                fix="give every case a unique 'id' (or remove the duplicate)",
            )
        seen[case.id] = source
        missing = sorted(variables - set(case.vars))
        if missing:
            raise SuiteError(
                f"case is missing template variable(s) {', '.join(missing)} ({source})",
                path=where,
                key="cases",
                case=case.id,
                fix=f"add {', '.join(missing)} to the case's vars, or remove "
                f"{{{{ {missing[0]} }}}} from the prompt",
            )
        cases.append(case)
    _check_splits(cases, where)
    return tuple(cases)


def _check_splits(cases: list[Case], where: str) -> None:
    """Predefined splits are all or nothing: a case without one would silently join no split."""
    with_split = [c for c in cases if c.split is not None]
    if not with_split or len(with_split) == len(cases):
        return
    odd = next(c for c in cases if c.split is None)
    raise SuiteError(
        f"case has no 'split' but {len(with_split)} of {len(cases)} cases do ({odd.source})",
        path=where,
        key="cases",
        case=odd.id,
        fix="give every case split: train, eval or test, or remove 'split' from all cases "
        "to split them by hash",
    )


def _case(item: Any, source: str, where: str) -> Case:
    if not isinstance(item, dict):
        raise SuiteError(
            f"a case must be a mapping with 'vars', not {kind_of(item)} ({source})",
            path=where,
            key="cases",
            fix="write {vars: {...}, expected: ...}",
        )
    for key in item:
        if key not in CASE_KEYS:
            raise SuiteError(
                f"unknown case key '{key}' ({source})",
                path=where,
                key="cases",
                case=str(item.get("id", "")) or None,
                fix=did_you_mean(str(key), CASE_KEYS),
            )
    vars_ = item.get("vars", {})
    if vars_ is None:
        vars_ = {}
    if not isinstance(vars_, dict) or not all(isinstance(k, str) for k in vars_):
        raise SuiteError(
            f"case 'vars' must be a mapping of names to values ({source})",
            path=where,
            key="cases",
            fix="write vars: {ticket: '...'}",
        )
    has_expected = "expected" in item
    expected = item.get("expected")
    raw_id = item.get("id")
    if raw_id is None or raw_id == "":
        case_id = derive_case_id(vars_, expected, has_expected)
    elif isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool):
        case_id = str(raw_id).strip()
        if not case_id or len(case_id) > 200 or "\n" in case_id:
            raise SuiteError(
                f"case id {raw_id!r} must be one short line ({source})",
                path=where,
                key="cases",
                fix="use ids like 'refund-1'",
            )
    else:
        raise SuiteError(
            f"case id must be a string or a number, not {kind_of(raw_id)} ({source})",
            path=where,
            key="cases",
            fix="use ids like 'refund-1'",
        )
    split = item.get("split")
    if split is not None and split not in SPLIT_NAMES:
        raise SuiteError(
            f"case 'split' must be train, eval or test, got {split!r} ({source})",
            path=where,
            key="cases",
            case=case_id,
            fix="write split: train, split: eval or split: test (or leave it out of every case)",
        )
    return Case(
        id=case_id,
        vars=vars_,
        expected=expected,
        has_expected=has_expected,
        source=source,
        split=split,
    )
