"""promptfoo ``tests`` and ``defaultTest``: merged, var files read, var lists expanded."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from pytest_gpo.errors import SuiteError
from pytest_gpo.suites.describe import did_you_mean, kind_of
from pytest_gpo.suites.model import derive_case_id
from pytest_gpo.suites.promptfoo.files import TEST_SUFFIXES, FileReader
from pytest_gpo.suites.promptfoo.shorthand import test_from_row

#: The keys of a test (and of ``defaultTest``).
TEST_KEYS = (
    "description",
    "vars",
    "assert",
    "threshold",
    "options",
    "metadata",
    "providers",
    "prompts",
)
#: The keys of a test's ``options``.
OPTION_KEYS = ("provider", "disableVarExpansion")
#: Most tests one config may expand to (var lists multiply).
MAX_TESTS = 100_000


@dataclass(frozen=True)
class Test:
    """One promptfoo test after merging ``defaultTest`` and expanding var lists."""

    id: str
    source: str
    vars: dict[str, Any]
    asserts: list[Any]
    threshold: float | None = None
    grader: Any = None
    providers: tuple[str, ...] | None = None
    prompts: tuple[str, ...] | None = None
    key: str = field(default="tests")


def _test_file(text: str) -> bool:
    """``file://tests.csv``, or a bare ``tests.csv`` path as older promptfoo configs write."""
    text = text.strip()
    return text.startswith("file://") or text.lower().endswith(TEST_SUFFIXES)


class TestReader:
    """Reads ``tests:`` and ``defaultTest:`` of one config."""

    def __init__(self, reader: FileReader) -> None:
        self.reader = reader
        self.where = reader.where

    def err(self, message: str, key: str, fix: str) -> SuiteError:
        return SuiteError(message, path=self.where, key=key, fix=fix)

    def raw_tests(self, value: Any) -> list[tuple[Any, str, str]]:
        """(raw test, source, key) for every test, test files read."""
        if value is None:
            return [({}, "the config (no tests)", "tests")]
        items = value if isinstance(value, list) else [value]
        out: list[tuple[Any, str, str]] = []
        for i, item in enumerate(items):
            key = f"tests[{i}]" if isinstance(value, list) else "tests"
            if isinstance(item, str) and _test_file(item):
                ref = item.strip().removeprefix("file://")
                for raw, source in self.reader.tests(ref, key):
                    if isinstance(raw, dict) and source.split(":")[0].endswith(".csv"):
                        raw = test_from_row(raw, where=self.where, source=source)
                    out.append((raw, source, key))
            elif isinstance(item, dict):
                out.append((item, f"tests[{i}]", key))
            else:
                raise self.err(
                    f"a test must be a mapping or 'file://tests.csv', not {kind_of(item)}",
                    key,
                    "write '- vars: {...}' with 'assert: [...]'",
                )
        return out

    def check_keys(self, test: dict[str, Any], key: str) -> None:
        for name in test:
            if name not in TEST_KEYS:
                raise self.err(
                    f"unsupported test key '{name}'",
                    f"{key}.{name}",
                    did_you_mean(str(name), TEST_KEYS) + " (see docs/promptfoo.md)",
                )
        options = test.get("options") or {}
        if not isinstance(options, dict):
            raise self.err("'options' must be a mapping", f"{key}.options", "write options: {}")
        for name in options:
            if name not in OPTION_KEYS:
                raise self.err(
                    f"unsupported test option '{name}'",
                    f"{key}.options.{name}",
                    "pytest-gpo reads options.provider (the llm-rubric grader) and "
                    "options.disableVarExpansion (see docs/promptfoo.md)",
                )

    def default_test(self, value: Any) -> dict[str, Any]:
        """``defaultTest`` as a mapping (read from its file when it is ``file://``)."""
        if value is None:
            return {}
        if isinstance(value, str) and value.strip().startswith("file://"):
            path = self.reader.path(value.strip()[len("file://") :], "defaultTest")
            value = self.reader.parse(path, "defaultTest")
        if not isinstance(value, dict):
            raise self.err(
                f"'defaultTest' must be a mapping, not {kind_of(value)}",
                "defaultTest",
                "write defaultTest: {assert: [...], vars: {...}}",
            )
        self.check_keys(value, "defaultTest")
        return value

    def vars_of(self, value: Any, key: str) -> dict[str, Any]:
        """A test's ``vars``: a mapping, or ``file://`` var files; ``file://`` values read."""
        if value is None:
            return {}
        if isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            merged: dict[str, Any] = {}
            for ref in [value] if isinstance(value, str) else value:
                if not ref.strip().startswith("file://"):
                    raise self.err(
                        f"'vars' text must be a file://path, got {ref[:60]!r}",
                        key,
                        "write vars: {name: value} or vars: file://vars.yaml",
                    )
                data = self.reader.parse(self.reader.path(ref.strip()[7:], key), key)
                if not isinstance(data, dict):
                    raise self.err(f"{ref} must hold a mapping of vars", key, "fix the file")
                merged.update(data)
            value = merged
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise self.err(
                f"'vars' must be a mapping of names to values, not {kind_of(value)}",
                key,
                "write vars: {question: 'What is 2+2?'}",
            )
        out: dict[str, Any] = {}
        for name, v in value.items():
            if isinstance(v, str) and v.strip().startswith("file://"):
                v = self.reader.var_value(v.strip()[7:], f"{key}.{name}")
            elif isinstance(v, list):
                v = [
                    self.reader.var_value(x.strip()[7:], f"{key}.{name}")
                    if isinstance(x, str) and x.strip().startswith("file://")
                    else x
                    for x in v
                ]
            out[name] = v
        return out

    def read(self, tests: Any, default: Any) -> list[Test]:
        """Every test, ``defaultTest`` merged in and var lists expanded, with unique ids."""
        base = self.default_test(default)
        base_vars = self.vars_of(base.get("vars"), "defaultTest.vars")
        base_asserts = self._asserts(base.get("assert"), "defaultTest.assert")
        base_options = base.get("options") or {}
        out: list[Test] = []
        seen: dict[str, int] = {}
        for raw, source, key in self.raw_tests(tests):
            if not isinstance(raw, dict):
                raise self.err(f"a test must be a mapping ({source})", key, "write {vars: ...}")
            self.check_keys(raw, key)
            options = {**base_options, **(raw.get("options") or {})}
            variables = {**base_vars, **self.vars_of(raw.get("vars"), f"{key}.vars")}
            asserts = base_asserts + self._asserts(raw.get("assert"), f"{key}.assert")
            threshold = raw.get("threshold", base.get("threshold"))
            if threshold is not None and (
                isinstance(threshold, bool)
                or not isinstance(threshold, int | float)
                or not 0 <= threshold <= 1
            ):
                raise self.err(
                    f"a test's 'threshold' must be a number from 0 to 1, got {threshold!r}",
                    f"{key}.threshold",
                    "write threshold: 0.8",
                )
            description = raw.get("description")
            expanded = self._expand(variables, bool(options.get("disableVarExpansion")), key)
            for n, one in enumerate(expanded):
                if isinstance(description, str) and description.strip():
                    case_id = description.strip().splitlines()[0][:180]
                    if len(expanded) > 1:
                        case_id += f" #{n + 1}"
                else:
                    case_id = derive_case_id(one, asserts, True)
                count = seen.get(case_id, 0) + 1
                seen[case_id] = count
                if count > 1:
                    case_id = f"{case_id} ({count})"
                out.append(
                    Test(
                        id=case_id,
                        source=source if len(expanded) == 1 else f"{source} #{n + 1}",
                        vars=one,
                        asserts=asserts,
                        threshold=None if threshold is None else float(threshold),
                        grader=options.get("provider"),
                        providers=self._filter(raw.get("providers"), f"{key}.providers"),
                        prompts=self._filter(raw.get("prompts"), f"{key}.prompts"),
                        key=key,
                    )
                )
                if len(out) > MAX_TESTS:
                    raise self.err(
                        f"the config expands to more than {MAX_TESTS:,} tests",
                        key,
                        "use fewer or shorter var lists",
                    )
        return out

    def _asserts(self, value: Any, key: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.err(
                f"'assert' must be a list of assertions, not {kind_of(value)}",
                key,
                "write assert: [{type: contains, value: Paris}]",
            )
        return list(value)

    def _filter(self, value: Any, key: str) -> tuple[str, ...] | None:
        if value is None:
            return None
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise self.err(
                "a test's providers/prompts filter must be a list of labels or ids",
                key,
                "write e.g. providers: [fast-model, 'openai:*']",
            )
        return tuple(items)

    def _expand(self, variables: dict[str, Any], disabled: bool, key: str) -> list[dict[str, Any]]:
        """promptfoo runs a test once per combination of the values of its list vars."""
        lists = {k: v for k, v in variables.items() if isinstance(v, list)}
        if disabled or not lists:
            return [dict(variables)]
        if any(not v for v in lists.values()):
            empty = next(k for k, v in lists.items() if not v)
            raise self.err(
                f"var '{empty}' is an empty list", f"{key}.vars.{empty}", "give it values"
            )
        total = 1
        for v in lists.values():
            total *= len(v)
        if total > MAX_TESTS:
            raise self.err(
                f"the var lists expand to {total:,} tests, over {MAX_TESTS:,}",
                f"{key}.vars",
                "use shorter var lists",
            )
        names = list(lists)
        out = []
        for combo in itertools.product(*(lists[n] for n in names)):
            one = dict(variables)
            one.update(zip(names, combo, strict=True))
            out.append(one)
        return out
