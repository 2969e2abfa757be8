"""Suite model: what a ``*.gpo.yaml`` file says, loaded and validated (no pytest import).

Loading is strict: unknown keys, missing files, cases missing a template variable and bad
scorer options are :class:`~pytest_gpo.errors.SuiteError` s naming the file, the key or the
case and the fix, raised at collection time so a bad suite never costs a model call.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_gpo.calls import canonical_json
from pytest_gpo.case import Case, derive_case_id
from pytest_gpo.errors import GpoError, SuiteError
from pytest_gpo.paths import display, suite_stem
from pytest_gpo.scorers.base import Scorer, ScorerRegistry
from pytest_gpo.template import render, renders_cleanly, template_variables


@dataclass(frozen=True)
class ScorerSpec:
    """A configured scorer with its weight in the suite's combined score."""

    scorer: Scorer
    weight: float = 1.0
    label: str = ""


@dataclass(frozen=True)
class Suite:
    """A loaded, validated suite.

    ``prompt_text`` is the template source as read from ``prompt_path``; ``prompt_bytes`` is
    the exact file content (the write-back guard compares against it).
    """

    name: str
    path: Path
    prompt_path: Path
    prompt_text: str
    prompt_bytes: bytes
    prompt_encoding: str
    system: str | None
    model: str | None
    params: Mapping[str, Any]
    cases: tuple[Case, ...]
    scorers: tuple[ScorerSpec, ...]
    threshold: float
    threshold_metric: str = "mean"  # "mean" | "pass_rate"
    tolerance: float = 0.0
    alpha: float = 0.05
    repeat: int | None = None
    min_pass: int | None = None
    optimize: Mapping[str, Any] = field(default_factory=dict)
    template_vars: frozenset[str] = frozenset()
    judge_model: str | None = None

    @property
    def prompt_sha256(self) -> str:
        """sha256 of the prompt file's bytes."""
        return hashlib.sha256(self.prompt_bytes).hexdigest()

    def scorer_config_hash(self) -> str:
        """sha256 of the scorer configuration (type, options, weight), order-sensitive."""
        cfg = [{"w": s.weight, **s.scorer.fingerprint()} for s in self.scorers]
        return hashlib.sha256(canonical_json(cfg).encode("utf-8")).hexdigest()

    def dataset_hash(self) -> str:
        """sha256 of the cases (ids, vars, expected): provenance for reports."""
        data = [
            {"id": c.id, "vars": dict(c.vars), "expected": c.expected if c.has_expected else None}
            for c in self.cases
        ]
        return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


SUITE_KEYS = (
    "name",
    "description",
    "prompt",
    "system",
    "model",
    "params",
    "cases",
    "scorers",
    "threshold",
    "tolerance",
    "alpha",
    "repeat",
    "min_pass",
    "optimize",
)
CASE_KEYS = ("id", "vars", "expected", "tags", "description")
DEFAULT_SCORERS: tuple[dict[str, Any], ...] = ({"type": "exact"},)


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    known = "known keys: " + ", ".join(choices)
    return f"did you mean '{close[0]}'? {known}" if close else known


#: Most runs of a case that ``repeat`` / ``min_pass`` may ask for.
MAX_REPEAT = 1000
#: Most values (strings, numbers, list items, mapping entries) a suite or case file may expand
#: to, counting every use of a YAML alias: ``&a [x, x, ...]`` nested a few levels is a "billion
#: laughs" that would otherwise exhaust memory when the cases are hashed or rendered.
MAX_VALUES = 5_000_000
#: Deepest nesting of lists and mappings accepted in suite and case files.
MAX_DEPTH = 200


#: Nesting up to which :func:`_plain` recurses before leaving the data to the careful walk.
_PLAIN_DEPTH = 40


def _plain(data: Any) -> bool:
    """The fast path of :func:`check_data`: True when the data cannot hold any of its problems.

    That is: ASCII text keys only (sortable, no surrogate), ASCII text values, no container
    reached twice (no YAML alias: no cycle, no expansion), shallow, fewer values than the
    limit. Ordinary suite and case files are all of this kind; anything else gets the careful
    walk, which finds the problem, if any, and names its key. About 3 x faster than the walk.
    """
    seen: set[int] = set()
    count = 0

    def plain(value: Any, depth: int) -> bool:
        nonlocal count
        count += 1
        if isinstance(value, str):
            return value.isascii()
        if isinstance(value, dict):
            children: Any = value.values()
            if not all(isinstance(k, str) and k.isascii() for k in value):
                return False
        elif isinstance(value, list | tuple):
            children = value
        else:
            return True
        if depth >= _PLAIN_DEPTH or id(value) in seen or count > MAX_VALUES:
            return False
        seen.add(id(value))
        return all(plain(child, depth + 1) for child in children)

    return plain(data, 0)


def check_data(data: Any, *, where: str, key: str | None = None, source: str | None = None) -> None:
    """Refuse parsed suite or case data that later steps cannot handle; names the bad key.

    Checked: text that is not valid Unicode (a lone surrogate from a ``\\ud800`` escape: it
    cannot be encoded, hashed or sent), mapping keys that JSON cannot sort (``{1: a, b: c}``,
    a date as a key: cases and params are hashed as canonical JSON), self-referencing YAML
    aliases, nesting deeper than :data:`MAX_DEPTH` and more than :data:`MAX_VALUES` values once
    aliases are expanded.
    """
    if _plain(data):
        return
    prefix = f"{source}: " if source else ""
    # Depth-first, each container once: its size (values once aliases are expanded) and height
    # are memoized, so an alias bomb costs the size of the file, not of its expansion. Paths
    # are linked (parent, step) pairs, spelled out only for an error.
    Where = tuple[Any, Any] | None
    stack: list[tuple[Any, Where, int, bool]] = [(data, None, 0, False)]
    on_path: set[int] = set()
    done: dict[int, tuple[int, int]] = {}  # id -> (size, height)
    containers = (dict, list, tuple)

    def fail(message: str, at: Where, fix: str) -> SuiteError:
        steps: list[str] = []
        while at is not None:
            at, step = at
            steps.append(step)
        text = key or ""
        for step in reversed(steps):
            text += step if step.startswith("[") or not text else "." + step
        if len(text) > 80:
            text = text[:50] + "..." + text[-25:]
        return SuiteError(f"{prefix}{message}", path=where, key=text or key, fix=fix)

    def too_deep(at: Where) -> SuiteError:
        return fail(f"the data is nested more than {MAX_DEPTH} levels deep", at, "flatten the data")

    while stack:
        value, at, depth, leaving = stack.pop()
        if isinstance(value, str):
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise fail(
                        f"text holds an invalid character {value[exc.start]!r} (a lone "
                        "UTF-16 surrogate, from an escape like \\ud800)",
                        at,
                        "escape whole characters (\\U0001F600), not surrogate halves",
                    ) from None
            continue
        if not isinstance(value, containers):
            continue
        ident = id(value)
        if leaving:
            on_path.discard(ident)
            size, height = 1, 1
            for child in (*value.keys(), *value.values()) if isinstance(value, dict) else value:
                if isinstance(child, containers):
                    sub = done[id(child)]
                    size += sub[0]
                    height = max(height, sub[1] + 1)
                else:
                    size += 1
            done[ident] = (size, height)
            if size > MAX_VALUES:
                raise fail(
                    f"the data expands to more than {MAX_VALUES:,} values (YAML "
                    "aliases repeated inside each other?)",
                    at,
                    "write the values out, or split the cases into several suites",
                )
            if depth + height > MAX_DEPTH:
                raise too_deep(at)
            continue
        if ident in done:
            if depth + done[ident][1] > MAX_DEPTH:
                raise too_deep(at)
            continue
        if ident in on_path:
            raise fail(
                "a YAML alias refers to a value that contains it (a cycle)",
                at,
                "remove the self-reference",
            )
        if depth >= MAX_DEPTH:
            raise too_deep(at)
        on_path.add(ident)
        stack.append((value, at, depth, True))
        if isinstance(value, dict):
            keys = list(value) if at is not None or key else []  # top level: see load()
            try:
                if not all(k is None or isinstance(k, str | int | float) for k in keys):
                    raise TypeError
                sorted(keys)
            except TypeError:
                raise fail(
                    "a mapping mixes keys of different kinds (text, numbers, dates); "
                    f"keys: {', '.join(repr(k)[:20] for k in keys[:5])}",
                    at,
                    "quote the keys so that they are all text",
                ) from None
            for k, v in value.items():
                step = (at, k if isinstance(k, str) and k.isprintable() and k else repr(k)[:40])
                stack.append((k, step, depth + 1, False))
                stack.append((v, step, depth + 1, False))
        else:
            for i, v in enumerate(value):
                stack.append((v, (at, f"[{i}]"), depth + 1, False))


def resolve_path(directory: Path, value: str, *, where: str, key: str) -> Path:
    """``value`` as a path relative to ``directory`` (``~`` expanded); bad paths are errors."""
    if "\0" in value:
        raise SuiteError(
            "the path contains a NUL character", path=where, key=key, fix="write a plain file path"
        )
    try:
        p = Path(value).expanduser()
    except RuntimeError as exc:  # ~user that does not exist, or no home directory
        raise SuiteError(
            f"cannot expand the path {value[:200]!r}: {exc}",
            path=where,
            key=key,
            fix="write the path relative to the suite file",
        ) from None
    return Path(os.path.normpath(p if p.is_absolute() else directory / p))


#: libyaml's loader (``yaml.CSafeLoader``), when PyYAML was built with it: 5-7 x faster than the
#: pure-Python ``safe_load``, which is most of the time ``pytest --collect-only`` spends per suite.
_C_LOADER: Any = getattr(yaml, "CSafeLoader", None)
#: libyaml composes nested nodes by recursion in C: about 25,000 nested ``[`` (or 100,000
#: nested ``- ``) overflow the C stack and kill the process, where the pure-Python loader raises
#: a RecursionError that becomes a clear error. The C loader only gets text whose nesting depth
#: is provably below this.
_C_DEPTH_LIMIT = 5000


def _nesting_bound(text: str) -> int:
    """An upper bound on the nesting depth of a YAML text, cheap to compute.

    Flow collections need a ``[`` or ``{`` per level; a nested block collection starts further
    right than its parent or after a ``- ``/``? `` on the same line, so it needs a column (at
    most two levels per column, a sequence may sit at its mapping's indentation).
    """
    longest = max(map(len, text.split("\n")))
    return text.count("[") + text.count("{") + 2 * longest + 2


def parse_yaml(text: str) -> Any:
    """``yaml.safe_load``, on libyaml where that is safe; the same errors as ``safe_load``.

    Only the outcome of a successful parse is taken from libyaml: on any error the text is
    parsed again by the pure-Python loader, whose error (line, column, problem) is the one
    users see and the hostile-input tests pin.
    """
    if _C_LOADER is not None and _nesting_bound(text) <= _C_DEPTH_LIMIT:
        try:
            return yaml.load(text, Loader=_C_LOADER)
        except Exception:
            pass  # parsed again below: the pure-Python loader's error is the one shown
    return yaml.safe_load(text)


def _yaml_error(exc: yaml.YAMLError, where: str) -> SuiteError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    line = f" on line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return SuiteError(
        f"malformed YAML{line}: {problem}",
        path=where,
        fix="fix the YAML syntax (indentation, quotes, ':' after keys)",
    )


class _Loader:
    """Loads one suite file; every error names the suite file and the key or case."""

    def __init__(self, path: Path, registry: ScorerRegistry) -> None:
        self.path = path
        self.dir = path.parent
        self.where = display(path)
        self.registry = registry

    def err(
        self,
        message: str,
        *,
        key: str | None = None,
        case: str | None = None,
        fix: str | None = None,
        path: str | None = None,
    ) -> SuiteError:
        return SuiteError(message, path=path or self.where, key=key, case=case, fix=fix)

    def load(self) -> Suite:
        try:
            text = self.path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise self.err(f"cannot read the suite file: {exc}", fix="check the file") from None
        try:
            data = parse_yaml(text)
        except yaml.YAMLError as exc:
            raise _yaml_error(exc, self.where) from None
        except RecursionError:
            raise self.err("YAML nested too deeply", fix="flatten the suite file") from None
        except ValueError as exc:  # e.g. an integer of more than 4300 digits
            raise self.err(
                f"malformed YAML: {exc}", fix="fix the value (numbers must be of a sensible size)"
            ) from None
        if data is None:
            raise self.err(
                "the suite file is empty",
                fix="add at least 'prompt:' and 'cases:' (see docs/suite-format.md)",
            )
        if not isinstance(data, dict):
            raise self.err(
                f"the suite file must be a mapping of keys, not {_kind(data)}",
                fix="start with 'prompt: path/to/prompt.txt' and 'cases: ...'",
            )
        check_data(data, where=self.where)
        for key in data:
            if not isinstance(key, str) or key not in SUITE_KEYS:
                raise self.err(
                    f"unknown key '{key}'", key=str(key), fix=_did_you_mean(str(key), SUITE_KEYS)
                )
        for required in ("prompt", "cases"):
            if required not in data:
                raise self.err(
                    f"missing required key '{required}'",
                    key=required,
                    fix=f"add '{required}:' to the suite (see docs/suite-format.md)",
                )

        name = self.string(data, "name", default=suite_stem(self.path))
        if len(name) > 200 or not name.isprintable():
            raise self.err(
                f"'name' must be one short line of printable text, got {name[:80]!r}",
                key="name",
                fix="write e.g. 'name: ticket_router'",
            )
        prompt_path, prompt_bytes, prompt_text, encoding = self.prompt(data["prompt"])
        try:
            variables = template_variables(prompt_text, where=display(prompt_path))
        except SuiteError as exc:
            raise self.err(
                f"{exc.message} (template {display(prompt_path)})", key="prompt", fix=exc.fix
            ) from None
        system = self.system(data.get("system"))
        model = self.string(data, "model", default=None)
        params = self.params(data.get("params"))
        cases = self.cases(data["cases"], variables)
        self.check_render(prompt_text, prompt_path, cases)
        scorers = self.scorers(data.get("scorers"), cases)
        threshold, metric = self.threshold(data.get("threshold", 1.0))
        tolerance = self.fraction(data, "tolerance", 0.0, low_open=False)
        alpha = self.fraction(data, "alpha", 0.05, low_open=True)
        repeat = self.count(data, "repeat")
        min_pass = self.count(data, "min_pass")
        if min_pass is not None and min_pass > (repeat or 1):
            raise self.err(
                f"min_pass ({min_pass}) is larger than repeat ({repeat or 1})",
                key="min_pass",
                fix="set min_pass between 1 and repeat",
            )
        optimize = data.get("optimize") or {}
        if not isinstance(optimize, dict):
            raise self.err(
                f"'optimize' must be a mapping, not {_kind(optimize)}",
                key="optimize",
                fix="write e.g. 'optimize: {steps: 12, candidates: 8}'",
            )
        self.check_optimize(optimize)
        return Suite(
            name=name,
            path=self.path,
            prompt_path=prompt_path,
            prompt_text=prompt_text,
            prompt_bytes=prompt_bytes,
            prompt_encoding=encoding,
            system=system,
            model=model,
            params=params,
            cases=cases,
            scorers=scorers,
            threshold=threshold,
            threshold_metric=metric,
            tolerance=tolerance,
            alpha=alpha,
            repeat=repeat,
            min_pass=min_pass,
            optimize=optimize,
            template_vars=variables,
        )

    # -- scalar keys --------------------------------------------------------------------------

    def string(self, data: Mapping[str, Any], key: str, *, default: str | None) -> Any:
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.err(
                f"'{key}' must be a non-empty string, not {_kind(value)}",
                key=key,
                fix=f"write '{key}: some-text'",
            )
        return value.strip()

    def fraction(
        self, data: Mapping[str, Any], key: str, default: float, *, low_open: bool
    ) -> float:
        if key not in data or data[key] is None:
            return default
        value = data[key]
        ok = _is_number(value) and (0 < value < 1 if low_open else 0 <= value <= 1)
        if not ok:
            span = "between 0 and 1 (exclusive)" if low_open else "between 0 and 1"
            raise self.err(
                f"'{key}' must be a number {span}, got {value!r}",
                key=key,
                fix=f"write e.g. '{key}: {default if default else 0.05}'",
            )
        return float(value)

    def count(self, data: Mapping[str, Any], key: str) -> int | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_REPEAT:
            huge = isinstance(value, int) and value >= 10**12
            shown = "a huge number" if huge else f"{value!r}"
            raise self.err(
                f"'{key}' must be a whole number from 1 to {MAX_REPEAT}, got {shown}",
                key=key,
                fix=f"write e.g. '{key}: 3'",
            )
        return value

    def threshold(self, value: Any) -> tuple[float, str]:
        metric = "mean"
        if isinstance(value, dict):
            if len(value) != 1 or next(iter(value)) not in ("mean", "pass_rate"):
                raise self.err(
                    "'threshold' mapping must have exactly one of 'mean' or 'pass_rate'",
                    key="threshold",
                    fix="write 'threshold: 0.8' or 'threshold: {pass_rate: 0.9}'",
                )
            metric, value = next(iter(value.items()))
        if not _is_number(value) or not 0 <= value <= 1:
            raise self.err(
                f"threshold must be a number between 0 and 1, got {value!r}",
                key="threshold",
                fix="scores are fractions: write e.g. 'threshold: 0.8' (not 80)",
            )
        return float(value), str(metric)

    # -- files --------------------------------------------------------------------------------

    def resolve(self, value: str, key: str) -> Path:
        return resolve_path(self.dir, value, where=self.where, key=key)

    def check_render(self, text: str, prompt_path: Path, cases: Sequence[Case]) -> None:
        """Render the prompt with every case once: sandbox refusals and filter errors surface
        here, at collection, naming the suite file and the case, before any model call."""
        template = display(prompt_path)
        for case in cases:
            if renders_cleanly(text, case.vars):
                continue  # a plain {{ name }} template with every name defined: cannot fail
            try:
                render(text, case.vars, where=template, case=case.id)
            except SuiteError as exc:
                raise self.err(
                    f"the prompt cannot be rendered with this case ({case.source}; "
                    f"template {template}): {exc.message}",
                    key="prompt",
                    case=case.id,
                    fix=exc.fix,
                ) from None

    def prompt(self, value: Any) -> tuple[Path, bytes, str, str]:
        if not isinstance(value, str) or not value.strip():
            raise self.err(
                f"'prompt' must be the path of a prompt template file, not {_kind(value)}",
                key="prompt",
                fix="write 'prompt: prompts/my_prompt.txt' (relative to this file)",
            )
        path = self.resolve(value.strip(), "prompt")
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise self.err(
                f"prompt file not found: {display(path)}",
                key="prompt",
                fix="create the file or correct the path (relative to the suite file)",
            ) from None
        except OSError as exc:
            raise self.err(
                f"cannot read prompt file {path}: {exc}",
                key="prompt",
                fix="check the path and permissions",
            ) from None
        encoding = "utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "utf-8"
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise self.err(
                f"prompt file {path} is not UTF-8 ({exc.reason} at byte {exc.start})",
                key="prompt",
                fix="save the prompt file as UTF-8",
            ) from None
        if not text.strip():
            raise self.err(
                f"prompt file {path} is empty",
                key="prompt",
                fix="write the prompt template into the file",
            )
        return path, raw, text, encoding

    def system(self, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.err(
                f"'system' must be text or a file path, not {_kind(value)}",
                key="system",
                fix="write 'system: You route tickets.'",
            )
        candidate = value.strip()
        if "\n" not in candidate and len(candidate) < 400:
            path = self.resolve(candidate, "system")
            if path.suffix and path.is_file():
                try:
                    return path.read_text(encoding="utf-8-sig")
                except (OSError, UnicodeDecodeError) as exc:
                    raise self.err(
                        f"cannot read system file {path}: {exc}",
                        key="system",
                        fix="save it as UTF-8 text",
                    ) from None
        return value

    def params(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise self.err(
                f"'params' must be a mapping of litellm parameters, not {_kind(value)}",
                key="params",
                fix="write e.g. 'params: {temperature: 0, max_tokens: 200}'",
            )
        if "n" in value or "stream" in value:
            bad = "n" if "n" in value else "stream"
            raise self.err(
                f"'params.{bad}' is managed by pytest-gpo",
                key=f"params.{bad}",
                fix="remove it; use 'repeat: N' to run each case N times",
            )
        return dict(value)

    # -- cases --------------------------------------------------------------------------------

    def cases(self, value: Any, variables: frozenset[str]) -> tuple[Case, ...]:
        if isinstance(value, str):
            path = self.resolve(value.strip(), "cases")
            raw_cases = read_case_file(path, where=self.where)
        elif isinstance(value, list):
            raw_cases = [(item, f"{self.path.name}: cases[{i}]") for i, item in enumerate(value)]
        else:
            raise self.err(
                f"'cases' must be a list of cases or a file path, not {_kind(value)}",
                key="cases",
                fix="write 'cases: cases.jsonl' or an inline list of {id, vars, expected}",
            )
        if not raw_cases:
            raise self.err("the suite has no cases", key="cases", fix="add at least one case")
        cases: list[Case] = []
        seen: dict[str, str] = {}
        for item, source in raw_cases:
            case = self.case(item, source)
            if case.id in seen:
                raise self.err(
                    f"duplicate case id '{case.id}' ({seen[case.id]} and {source})",
                    key="cases",
                    case=case.id,
                    fix="give every case a unique 'id' (or remove the duplicate)",
                )
            seen[case.id] = source
            missing = sorted(variables - set(case.vars))
            if missing:
                raise self.err(
                    f"case is missing template variable(s) {', '.join(missing)} ({source})",
                    key="cases",
                    case=case.id,
                    fix=f"add {', '.join(missing)} to the case's vars, or remove "
                    f"{{{{ {missing[0]} }}}} from the prompt",
                )
            cases.append(case)
        return tuple(cases)

    def case(self, item: Any, source: str) -> Case:
        if not isinstance(item, dict):
            raise self.err(
                f"a case must be a mapping with 'vars', not {_kind(item)} ({source})",
                key="cases",
                fix="write {vars: {...}, expected: ...}",
            )
        for key in item:
            if key not in CASE_KEYS:
                raise self.err(
                    f"unknown case key '{key}' ({source})",
                    key="cases",
                    case=str(item.get("id", "")) or None,
                    fix=_did_you_mean(str(key), CASE_KEYS),
                )
        vars_ = item.get("vars", {})
        if vars_ is None:
            vars_ = {}
        if not isinstance(vars_, dict) or not all(isinstance(k, str) for k in vars_):
            raise self.err(
                f"case 'vars' must be a mapping of names to values ({source})",
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
                raise self.err(
                    f"case id {raw_id!r} must be one short line ({source})",
                    key="cases",
                    fix="use ids like 'refund-1'",
                )
        else:
            raise self.err(
                f"case id must be a string or a number, not {_kind(raw_id)} ({source})",
                key="cases",
                fix="use ids like 'refund-1'",
            )
        return Case(
            id=case_id, vars=vars_, expected=expected, has_expected=has_expected, source=source
        )

    # -- scorers ------------------------------------------------------------------------------

    def scorers(self, value: Any, cases: Sequence[Case]) -> tuple[ScorerSpec, ...]:
        if value is None:
            value = [dict(s) for s in DEFAULT_SCORERS]
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list) or not value:
            raise self.err(
                "'scorers' must be a non-empty list of {type: ...} mappings",
                key="scorers",
                fix="write 'scorers: [{type: exact}]'",
            )
        specs: list[ScorerSpec] = []
        for i, item in enumerate(value):
            key = f"scorers[{i}]"
            if isinstance(item, str):
                item = {"type": item}
            if not isinstance(item, dict) or "type" not in item:
                raise self.err(
                    f"a scorer must be a mapping with a 'type', not {_kind(item)}",
                    key=key,
                    fix="write e.g. '{type: exact, ignore_case: true}'",
                )
            options = dict(item)
            type_name = options.pop("type")
            weight = options.pop("weight", 1.0)
            label = options.pop("name", None) or str(type_name)
            if not _is_number(weight) or weight <= 0:
                raise self.err(
                    f"scorer weight must be a number > 0, got {weight!r}",
                    key=f"{key}.weight",
                    fix="write e.g. 'weight: 2'",
                )
            try:
                scorer = self.registry.create(
                    str(type_name), options, where=f"{self.where} ({key})"
                )
            except GpoError:
                raise
            except Exception as exc:  # a plugin's scorer failing in __init__
                raise self.err(
                    f"scorer '{type_name}' could not be configured: {exc}",
                    key=key,
                    fix="check the scorer's options",
                ) from None
            if scorer.requires_expected():
                lacking = [c.id for c in cases if not c.has_expected]
                if lacking:
                    shown = ", ".join(lacking[:3]) + (" ..." if len(lacking) > 3 else "")
                    raise self.err(
                        f"scorer '{type_name}' compares with 'expected', but "
                        f"{len(lacking)} case(s) have none: {shown}",
                        key=key,
                        case=lacking[0],
                        fix="add 'expected' to those cases, or use a scorer that does not need it",
                    )
            specs.append(ScorerSpec(scorer=scorer, weight=float(weight), label=str(label)))
        return tuple(specs)

    def check_optimize(self, optimize: Mapping[str, Any]) -> None:
        from pytest_gpo.optimize.config import OptimizeConfig

        try:
            OptimizeConfig.from_mapping(optimize, where=self.where)
        except GpoError:
            raise
        except Exception as exc:  # a value of a type the validator did not expect
            raise self.err(
                f"bad 'optimize' settings: {type(exc).__name__}: {exc}",
                key="optimize",
                fix="see docs/optimize.md for the keys and their values",
            ) from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), f"a {type(value).__name__}"
    )


def read_case_file(path: Path, *, where: str) -> list[tuple[Any, str]]:
    """Read cases from .jsonl / .json / .yaml / .yml / .csv: (raw case, source) pairs."""
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".json", ".yaml", ".yml", ".csv"):
        raise SuiteError(
            f"unsupported cases file type '{suffix or path.name}'",
            path=where,
            key="cases",
            fix="use a .jsonl, .json, .yaml or .csv file",
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SuiteError(
            f"cases file not found: {display(path)}",
            path=where,
            key="cases",
            fix="create the file or correct the path (relative to the suite file)",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(
            f"cannot read cases file {path}: {exc}",
            path=where,
            key="cases",
            fix="save it as UTF-8 text",
        ) from None
    name = path.name
    if suffix == ".jsonl":
        out: list[tuple[Any, str]] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append((json.loads(line), f"{name}:{lineno}"))
            except (ValueError, RecursionError) as exc:
                raise SuiteError(
                    f"bad JSON on line {lineno} of {name}: {exc}",
                    path=where,
                    key="cases",
                    fix=f"fix line {lineno} of {path}",
                ) from None
        check_data([item for item, _ in out], where=where, key="cases", source=name)
        return out
    if suffix == ".csv":
        return _read_csv(text, path, where)
    kind = "JSON" if suffix == ".json" else "YAML"
    try:
        data = json.loads(text) if suffix == ".json" else parse_yaml(text)
    except yaml.YAMLError as exc:
        err = _yaml_error(exc, str(path))
        raise SuiteError(err.message, path=where, key="cases", fix=f"fix {path}") from None
    except (ValueError, RecursionError) as exc:
        detail = str(exc) or f"{kind} nested too deeply"
        raise SuiteError(
            f"bad {kind} in {name}: {detail}", path=where, key="cases", fix=f"fix {path}"
        ) from None
    check_data(data, where=where, key="cases", source=name)
    if isinstance(data, dict) and "cases" in data:
        data = data["cases"]
    if not isinstance(data, list):
        raise SuiteError(
            f"{name} must hold a list of cases, not {_kind(data)}",
            path=where,
            key="cases",
            fix="write a list of {id, vars, expected}",
        )
    return [(item, f"{name}[{i}]") for i, item in enumerate(data)]


def _read_csv(text: str, path: Path, where: str) -> list[tuple[Any, str]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise SuiteError(
            f"bad CSV in {path.name}: {exc}", path=where, key="cases", fix=f"fix {path}"
        ) from None
    if not rows:
        return []
    header = [h.strip() for h in rows[0]]
    if not header or any(not h for h in header) or len(set(header)) != len(header):
        raise SuiteError(
            f"{path.name}: the header row needs unique, non-empty column names",
            path=where,
            key="cases",
            fix="write e.g. 'id,ticket,expected'",
        )
    out: list[tuple[Any, str]] = []
    for lineno, row in enumerate(rows[1:], 2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise SuiteError(
                f"bad CSV row on line {lineno} of {path.name}: {len(row)} fields, the header has "
                f"{len(header)}",
                path=where,
                key="cases",
                fix="quote fields that contain commas, and give every row all columns",
            )
        record = dict(zip(header, row, strict=True))
        case: dict[str, Any] = {
            "vars": {k: v for k, v in record.items() if k not in ("id", "expected")}
        }
        if "id" in record and record["id"].strip():
            case["id"] = record["id"]
        if "expected" in record:
            case["expected"] = record["expected"]
        out.append((case, f"{path.name}:{lineno}"))
    return out


def load_suite(path: Path, registry: ScorerRegistry) -> Suite:
    """Load and validate a suite file (raises :class:`SuiteError` / :class:`ScorerError`)."""
    return _Loader(path, registry).load()
