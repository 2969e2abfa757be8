"""The ``json`` scorer: valid JSON, required keys, a small JSON-Schema subset, equality.

The schema subset (no jsonschema dependency): ``type`` (a name or a list of names among
object, array, string, number, integer, boolean, null), ``properties``, ``required``,
``items``, ``enum``; ``title``/``description`` are allowed and ignored.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from pytest_gpo.scorers.base import ScoreContext, ScoreResult
from pytest_gpo.scorers.common import OptionScorer, fmt_score, quote, result, strict_json
from pytest_gpo.suites.model import Case

SCHEMA_KEYWORDS: tuple[str, ...] = (
    "type",
    "properties",
    "required",
    "items",
    "enum",
    "title",
    "description",
)
JSON_TYPES: tuple[str, ...] = ("object", "array", "string", "number", "integer", "boolean", "null")

_FENCE = re.compile(r"```[ \t]*(?P<lang>[A-Za-z0-9_-]*)[ \t]*\r?\n(?P<body>.*?)```", re.DOTALL)

Check = tuple[bool, str]


def json_type(value: Any) -> str:
    """The JSON type name of a parsed value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_type(value: Any, name: str) -> bool:
    actual = json_type(value)
    if name == "number":
        return actual in ("integer", "number")
    if name == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    return actual == name


def json_equal(a: Any, b: Any) -> bool:
    """Deep JSON equality: key order ignored, ``1 == 1.0``, but ``true != 1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def _show(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_difference(got: Any, want: Any, path: str = "$") -> str | None:
    """Where two JSON values first differ (``$.items[1].qty: expected 2, got 3``), or None."""
    if isinstance(got, dict) and isinstance(want, dict):
        for key in want:
            if key not in got:
                return f"{path}: missing key {key!r}"
        for key in got:
            if key not in want:
                return f"{path}: unexpected key {key!r}"
        for key in want:
            diff = first_difference(got[key], want[key], f"{path}.{key}")
            if diff:
                return diff
        return None
    if isinstance(got, list) and isinstance(want, list):
        for i, (g, w) in enumerate(zip(got, want, strict=False)):
            diff = first_difference(g, w, f"{path}[{i}]")
            if diff:
                return diff
        if len(got) != len(want):
            return f"{path}: expected {len(want)} items, got {len(got)}"
        return None
    if json_equal(got, want):
        return None
    return f"{path}: expected {_show(want)}, got {_show(got)}"


def extract_json(output: str, *, fenced: bool = True) -> tuple[Any, str | None, str]:
    """Parse ``output`` as JSON, or (``fenced``) the first fenced block that parses.

    Returns ``(value, error, source)``: ``error`` is ``None`` on success; ``source`` says
    where the JSON was found.
    """
    text = output.strip()
    try:
        return strict_json(text), None, "the whole output"
    except json.JSONDecodeError as exc:
        error = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if not fenced:
        return None, error, ""
    blocks = sorted(
        _FENCE.finditer(output), key=lambda m: m.group("lang").lower() not in ("json", "jsonc")
    )
    for block in blocks:
        try:
            return strict_json(block.group("body")), None, f"a ```{block.group('lang')} block"
        except json.JSONDecodeError:
            continue
    return None, error, ""


class JsonScorer(OptionScorer):
    """Checks that the output is JSON (bare, or in a fenced ```json block).

    Options: ``required`` (keys the top-level object must have; ``a.b`` reaches into nested
    objects), ``schema`` (the subset in this module's docstring), ``equals: true`` (the value
    must equal ``expected``, a mapping/list or a JSON string, ignoring key order), ``fenced``
    (default true: a fenced block counts; false: the whole output must be JSON). Every check
    counts once (valid JSON, each required key, each schema rule applied, equality); the score
    is the fraction passed and the scorer passes when all do. Invalid JSON scores 0.
    """

    type_name: ClassVar[str] = "json"
    option_keys: ClassVar[tuple[str, ...]] = ("required", "schema", "equals", "fenced")

    def __init__(self, options: Mapping[str, Any], *, where: str = "") -> None:
        super().__init__(options, where=where)
        self.required = self.opt_str_list("required") or []
        self.equals = self.opt_bool("equals", False)
        self.fenced = self.opt_bool("fenced", True)
        schema = self.options.get("schema")
        if schema is not None:
            self._check_schema(schema, "schema")
        self.schema: Mapping[str, Any] | None = schema

    def requires_expected(self) -> bool:
        """Only with ``equals: true``."""
        return self.equals

    # -- schema validation of the option itself ---------------------------------------------

    def _check_schema(self, schema: Any, where: str) -> None:
        if not isinstance(schema, Mapping):
            raise self.bad_type(where, "a mapping (a JSON-Schema object)", schema)
        for key in schema:
            if key not in SCHEMA_KEYWORDS:
                close = difflib.get_close_matches(str(key), SCHEMA_KEYWORDS, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise self.fail(
                    f"unsupported JSON-Schema keyword '{key}' at {where}",
                    key="schema",
                    fix=hint + "supported: " + ", ".join(SCHEMA_KEYWORDS),
                )
        if "type" in schema:
            names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            bad = [n for n in names if n not in JSON_TYPES]
            if bad or not names:
                raise self.fail(
                    f"unknown type {bad[0] if bad else names!r} at {where}.type",
                    key="schema",
                    fix="types: " + ", ".join(JSON_TYPES),
                )
        if "properties" in schema:
            props = schema["properties"]
            if not isinstance(props, Mapping):
                raise self.bad_type("schema", f"a mapping at {where}.properties", props)
            for name, sub in props.items():
                self._check_schema(sub, f"{where}.properties.{name}")
        if "required" in schema:
            req = schema["required"]
            if not isinstance(req, list) or not all(isinstance(r, str) for r in req):
                raise self.bad_type("schema", f"a list of key names at {where}.required", req)
        if "items" in schema:
            self._check_schema(schema["items"], f"{where}.items")
        if "enum" in schema and (not isinstance(schema["enum"], list) or not schema["enum"]):
            raise self.bad_type("schema", f"a non-empty list at {where}.enum", schema["enum"])

    # -- checks -----------------------------------------------------------------------------

    def _validate(self, value: Any, schema: Mapping[str, Any], path: str, out: list[Check]) -> None:
        if "type" in schema:
            names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            ok = any(_is_type(value, n) for n in names)
            out.append((ok, f"{path}: expected {' or '.join(names)}, got {json_type(value)}"))
            if not ok:
                return
        if "enum" in schema:
            allowed = schema["enum"]
            ok = any(json_equal(value, e) for e in allowed)
            shown = ", ".join(_show(e, 20) for e in allowed)
            out.append((ok, f"{path}: {_show(value)} is not one of [{shown}]"))
        for key in schema.get("required", ()):
            ok = isinstance(value, dict) and key in value
            out.append((ok, f"{path}: missing required key {key!r}"))
        if isinstance(value, dict):
            for key, sub in schema.get("properties", {}).items():
                if key in value:
                    self._validate(value[key], sub, f"{path}.{key}", out)
        if isinstance(value, list) and "items" in schema:
            for i, item in enumerate(value):
                self._validate(item, schema["items"], f"{path}[{i}]", out)

    @staticmethod
    def _has_key(value: Any, key: str) -> bool:
        if isinstance(value, dict) and key in value:
            return True
        node = value
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    def _expected_value(self, case: Case) -> Any:
        expected = case.expected
        if isinstance(expected, str):
            try:
                return json.loads(expected)
            except json.JSONDecodeError:
                return expected
        return expected

    async def score(self, output: str, case: Case, ctx: ScoreContext) -> ScoreResult:
        """Fraction of checks passed; passed when every check passes."""
        missing = self.missing_expected(case)
        if missing is not None:
            return missing
        value, error, source = extract_json(output, fenced=self.fenced)
        if error is not None:
            return result(0.0, False, f"output is not valid JSON ({error}): {quote(output)}")
        checks: list[Check] = [(True, "valid JSON")]
        for key in self.required:
            checks.append((self._has_key(value, key), f"missing key {key!r}"))
        if self.schema is not None:
            self._validate(value, self.schema, "$", checks)
        if self.equals:
            diff = first_difference(value, self._expected_value(case))
            checks.append((diff is None, f"not equal to expected: {diff}"))
        failed = [msg for ok, msg in checks if not ok]
        total = len(checks)
        score = (total - len(failed)) / total
        found = "" if source == "the whole output" else f" (from {source})"
        if not failed:
            if total == 1:
                return result(1.0, True, f"valid JSON{found}")
            return result(1.0, True, f"valid JSON{found}; all {total} checks passed")
        shown = "; ".join(failed[:3])
        more = f" (+{len(failed) - 3} more)" if len(failed) > 3 else ""
        return result(
            score,
            False,
            f"{total - len(failed)}/{total} checks passed (score {fmt_score(score)}){found}: "
            f"{shown}{more}",
        )
