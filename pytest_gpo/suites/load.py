"""Reading a suite file: ``load_suite`` parses and validates a ``*.gpo.yaml`` into a Suite.

Loading is strict: unknown keys, missing files, cases missing a template variable and bad
scorer options are :class:`~pytest_gpo.errors.SuiteError` s naming the file, the key or the
case and the fix, raised at collection time so a bad suite never costs a model call.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from pytest_gpo.errors import GpoError, SuiteError
from pytest_gpo.llm.trust import check_untrusted_params
from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.scorers.base import ScorerRegistry
from pytest_gpo.suites.cases import load_cases
from pytest_gpo.suites.checks import check_data
from pytest_gpo.suites.describe import did_you_mean, kind_of
from pytest_gpo.suites.model import (
    MAX_WEIGHT,
    THRESHOLD_METRICS,
    Case,
    ScorerSpec,
    Suite,
    ThresholdMetric,
)
from pytest_gpo.suites.paths import (
    MAX_PROMPT_BYTES,
    Confinement,
    display,
    looks_like_text_file,
    read_confined,
    resolve_path,
    suite_stem,
)
from pytest_gpo.suites.render_check import check_render
from pytest_gpo.suites.yaml_parse import parse_yaml, yaml_error
from pytest_gpo.templates.template import template_variables

#: The keys a suite file may have.
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
    "max_drop",
    "optimize",
)
#: The scorers of a suite that names none.
DEFAULT_SCORERS: tuple[dict[str, Any], ...] = ({"type": "exact"},)

#: Most runs of a case that ``repeat`` / ``min_pass`` may ask for.
MAX_REPEAT = 1000


class _Loader:
    """Loads one suite file; every error names the suite file and the key or case."""

    def __init__(
        self,
        path: Path,
        registry: ScorerRegistry,
        confinement: Confinement | None = None,
        trusted_params: Iterable[str] = (),
    ) -> None:
        self.confinement = confinement or Confinement()
        self.trusted_params = frozenset(trusted_params)
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
    ) -> SuiteError:
        return SuiteError(message, path=self.where, key=key, case=case, fix=fix)

    def load(self) -> Suite:
        try:
            text = self.path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise self.err(f"cannot read the suite file: {exc}", fix="check the file") from None
        try:
            data = parse_yaml(text)
        except yaml.YAMLError as exc:
            raise yaml_error(exc, self.where) from None
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
                f"the suite file must be a mapping of keys, not {kind_of(data)}",
                fix="start with 'prompt: path/to/prompt.txt' and 'cases: ...'",
            )
        check_data(data, where=self.where)
        for key in data:
            if not isinstance(key, str) or key not in SUITE_KEYS:
                raise self.err(
                    f"unknown key '{key}'", key=str(key), fix=did_you_mean(str(key), SUITE_KEYS)
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
        prompt_path, prompt_bytes, prompt_text = self.prompt(data["prompt"])
        try:
            variables = template_variables(prompt_text, where=display(prompt_path))
        except SuiteError as exc:
            raise self.err(
                f"{exc.message} (template {display(prompt_path)})", key="prompt", fix=exc.fix
            ) from None
        system, system_path = self.system(data.get("system"))
        model = self.string(data, "model", default=None)
        params = self.params(data.get("params"))
        cases = load_cases(
            data["cases"],
            variables,
            suite_path=self.path,
            where=self.where,
            confinement=self.confinement,
        )
        self.check_render(prompt_text, prompt_path, cases)
        scorers = self.scorers(data.get("scorers"), cases)
        threshold, metric = self.threshold(data.get("threshold", 1.0))
        tolerance = self.fraction(data, "tolerance", 0.0, low_open=False)
        alpha = self.fraction(data, "alpha", 0.05, low_open=True)
        max_drop = (
            None
            if data.get("max_drop") is None
            else self.fraction(data, "max_drop", 0.1, low_open=False)
        )
        repeat = self.count(data, "repeat")
        min_pass = self.count(data, "min_pass")
        if min_pass is not None and min_pass > (repeat or 1):
            raise self.err(
                f"min_pass ({min_pass}) is larger than repeat ({repeat or 1})",
                key="min_pass",
                fix="set min_pass between 1 and repeat",
            )
        optimize = self.optimize(data.get("optimize") or {})
        return Suite(
            name=name,
            path=self.path,
            prompt_path=prompt_path,
            prompt_text=prompt_text,
            prompt_bytes=prompt_bytes,
            system=system,
            system_path=system_path,
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
            max_drop=max_drop,
            optimize=optimize,
        )

    # -- scalar keys --------------------------------------------------------------------------

    def string(self, data: Mapping[str, Any], key: str, *, default: str | None) -> Any:
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.err(
                f"'{key}' must be a non-empty string, not {kind_of(value)}",
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
                fix=f"write e.g. '{key}: {default or 0.05:g}'",
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

    def threshold(self, value: Any) -> tuple[float, ThresholdMetric]:
        metric: ThresholdMetric = "mean"
        if isinstance(value, dict):
            if len(value) != 1 or next(iter(value)) not in THRESHOLD_METRICS:
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
        return float(value), metric

    # -- files --------------------------------------------------------------------------------

    def resolve(self, value: str, key: str) -> Path:
        return resolve_path(self.dir, value, where=self.where, key=key)

    def check_render(self, text: str, prompt_path: Path, cases: Sequence[Case]) -> None:
        check_render(text, prompt_path, cases, self.where)

    def prompt(self, value: Any) -> tuple[Path, bytes, str]:
        if not isinstance(value, str) or not value.strip():
            raise self.err(
                f"'prompt' must be the path of a prompt template file, not {kind_of(value)}",
                key="prompt",
                fix="write 'prompt: prompts/my_prompt.txt' (relative to this file)",
            )
        path = self.resolve(value.strip(), "prompt")
        try:
            raw = read_confined(
                path, self.confinement, where=self.where, key="prompt", limit=MAX_PROMPT_BYTES
            )
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
        return path, raw, text

    def system(self, value: Any) -> tuple[str | None, Path | None]:
        """The system message, and the file it was read from (``None``: written inline)."""
        if value is None:
            return None, None
        if not isinstance(value, str):
            raise self.err(
                f"'system' must be text or a file path, not {kind_of(value)}",
                key="system",
                fix="write 'system: You route tickets.'",
            )
        candidate = value.strip()
        if "\n" not in candidate and len(candidate) < 400:
            path = self.resolve(candidate, "system")
            if path.suffix and path.exists():
                try:
                    raw = read_confined(
                        path,
                        self.confinement,
                        where=self.where,
                        key="system",
                        limit=MAX_PROMPT_BYTES,
                    )
                    return raw.decode("utf-8-sig"), path
                except (OSError, UnicodeDecodeError) as exc:
                    raise self.err(
                        f"cannot read system file {path}: {exc}",
                        key="system",
                        fix="save it as UTF-8 text",
                    ) from None
            if looks_like_text_file(candidate):
                # 'prompts/sytem.txt' (a typo) must not be sent to the model as the message
                raise self.err(
                    f"system file not found: {candidate}",
                    key="system",
                    fix="fix the path (relative to the suite file), or write the system "
                    "message itself as text",
                )
        return value, None

    def params(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise self.err(
                f"'params' must be a mapping of litellm parameters, not {kind_of(value)}",
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
        check_untrusted_params(value, trusted=self.trusted_params, where=self.where)
        return dict(value)

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
                    f"a scorer must be a mapping with a 'type', not {kind_of(item)}",
                    key=key,
                    fix="write e.g. '{type: exact, ignore_case: true}'",
                )
            options = dict(item)
            type_name = options.pop("type")
            weight = options.pop("weight", 1.0)
            label = options.pop("name", None) or str(type_name)
            if not _is_number(weight) or not 0 < weight <= MAX_WEIGHT:
                raise self.err(
                    f"scorer weight must be a finite number > 0 and at most {MAX_WEIGHT:,}, "
                    f"got {weight!r}",
                    key=f"{key}.weight",
                    fix="write e.g. 'weight: 2' (weights are relative: only their ratio counts)",
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
            check_cases = getattr(scorer, "check_cases", None)
            if callable(check_cases):  # e.g. regex: each case's expected must compile
                check_cases(cases)
            specs.append(ScorerSpec(scorer=scorer, weight=float(weight), label=str(label)))
        return tuple(specs)

    def optimize(self, value: Any) -> OptimizeConfig:
        if not isinstance(value, dict):
            raise self.err(
                f"'optimize' must be a mapping, not {kind_of(value)}",
                key="optimize",
                fix="write e.g. 'optimize: {steps: 12, candidates: 8}'",
            )
        if value.get("optimizer_params") is not None:
            # optimizer requests (E): the same trust rules as the suite's own params
            try:
                self.params(value["optimizer_params"])
            except SuiteError as exc:
                raise self.err(
                    exc.message.replace("'params", "'optimize.optimizer_params"),
                    key=f"optimize.optimizer_{exc.key}" if exc.key else "optimize",
                    fix=exc.fix,
                ) from None
        try:
            return OptimizeConfig.from_mapping(value, where=self.where)
        except GpoError:
            raise
        except Exception as exc:  # a value of a type the validator did not expect
            raise self.err(
                f"bad 'optimize' settings: {type(exc).__name__}: {exc}",
                key="optimize",
                fix="see docs/optimize.md for the keys and their values",
            ) from None


def _is_number(value: Any) -> bool:
    """A finite number (not a bool, not ``.nan`` or ``.inf``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)


def load_suite(
    path: Path,
    registry: ScorerRegistry,
    confinement: Confinement | None = None,
    trusted_params: Iterable[str] = (),
) -> Suite:
    """Load and validate a suite file (raises :class:`SuiteError` / :class:`ScorerError`).

    ``confinement`` says where the suite's files may be (the plugin passes pytest's rootdir);
    without it, anywhere. ``trusted_params`` are the request parameters the user allows suite
    files to set besides the safe ones (see :mod:`pytest_gpo.llm.trust`).
    """
    return _Loader(path, registry, confinement, trusted_params).load()
