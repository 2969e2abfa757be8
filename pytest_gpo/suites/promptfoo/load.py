"""Loading a promptfoo config: one :class:`~pytest_gpo.suites.model.Suite` per prompt x provider.

Each suite holds the config's tests as cases and one :class:`~.asserts.PromptfooScorer` that
applies each test's assertions; its threshold is a pass rate of 1.0 (every test must pass, as
``promptfoo eval`` requires). Everything is validated here, at collection: an unsupported key,
assertion type or provider is a :class:`~pytest_gpo.errors.SuiteError` naming the config, the
key and the fix, before any model call.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from pytest_gpo.errors import GpoError, SuiteError
from pytest_gpo.scorers.base import ScorerRegistry
from pytest_gpo.suites.checks import check_data
from pytest_gpo.suites.describe import did_you_mean, kind_of
from pytest_gpo.suites.load import MAX_REPEAT, _Loader
from pytest_gpo.suites.model import Case, ScorerSpec, Suite
from pytest_gpo.suites.paths import MAX_PROMPT_BYTES, Confinement, display, read_confined
from pytest_gpo.suites.promptfoo.asserts import (
    AssertContext,
    PromptfooScorer,
    TestChecks,
    build_checks,
)
from pytest_gpo.suites.promptfoo.files import FileReader
from pytest_gpo.suites.promptfoo.names import config_stem
from pytest_gpo.suites.promptfoo.prompts import Prompt, read_prompts
from pytest_gpo.suites.promptfoo.providers import Provider, litellm_model, read_providers
from pytest_gpo.suites.promptfoo.tests import Test, TestReader
from pytest_gpo.suites.yaml_parse import parse_yaml, yaml_error
from pytest_gpo.templates.template import render, renders_cleanly, template_variables

#: Config keys pytest-gpo reads.
READ_KEYS = (
    "description",
    "prompts",
    "providers",
    "targets",
    "tests",
    "defaultTest",
    "evaluateOptions",
)
#: Config keys that only shape promptfoo's own output or UI: accepted and ignored.
IGNORED_KEYS = ("tags", "outputPath", "sharing", "metadata", "writeLatestResults", "tracing")
#: ``evaluateOptions`` keys: ``repeat`` is read, the rest tune promptfoo's runner.
EVALUATE_KEYS = ("repeat", "maxConcurrency", "delay", "showProgressBar", "cache", "timeoutMs")


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


class PromptfooLoader:
    """Loads one promptfoo config into its suites."""

    def __init__(
        self,
        path: Path,
        registry: ScorerRegistry,
        confinement: Confinement | None = None,
        trusted_params: Iterable[str] = (),
    ) -> None:
        self.path = path
        self.trusted_params = frozenset(trusted_params)
        self.where = display(path)
        self.registry = registry
        self.confinement = confinement or Confinement()
        self.reader = FileReader(path, self.where, self.confinement)

    def err(self, message: str, key: str | None, fix: str, case: str | None = None) -> SuiteError:
        return SuiteError(message, path=self.where, key=key, case=case, fix=fix)

    def read_config(self) -> tuple[dict[str, Any], bytes]:
        try:
            raw = read_confined(
                self.path, self.confinement, where=self.where, key="config", limit=MAX_PROMPT_BYTES
            )
            text = raw.decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise self.err(f"cannot read the config: {exc}", None, "save it as UTF-8") from None
        try:
            data = parse_yaml(text)
        except yaml.YAMLError as exc:
            raise yaml_error(exc, self.where) from None
        except (ValueError, RecursionError) as exc:
            raise self.err(
                f"malformed YAML: {exc or 'nested too deeply'}", None, "fix the YAML"
            ) from None
        if not isinstance(data, dict):
            raise self.err(
                f"a promptfoo config must be a mapping of keys, not {kind_of(data)}",
                None,
                "start with 'prompts:', 'providers:' and 'tests:'",
            )
        check_data(data, where=self.where)
        for key in data:
            if key not in READ_KEYS and key not in IGNORED_KEYS:
                raise self.err(
                    f"unsupported config key '{key}'",
                    str(key),
                    did_you_mean(str(key), READ_KEYS + IGNORED_KEYS)
                    + " (see docs/promptfoo.md for what pytest-gpo reads)",
                )
        return data, raw

    def load(self) -> list[Suite]:
        data, raw = self.read_config()
        prompts = read_prompts(data.get("prompts"), self.reader, raw)
        providers = read_providers(data.get("providers", data.get("targets")), where=self.where)
        params = {p.label: self.params(p, i) for i, p in enumerate(providers)}
        repeat = self.repeat(data.get("evaluateOptions"))
        tests = TestReader(self.reader).read(data.get("tests"), data.get("defaultTest"))
        checks = {t.id: self.checks(t) for t in tests}
        stem = config_stem(self.path, self.confinement.root)
        suites: list[Suite] = []
        for prompt in prompts:
            variables = self.variables(prompt)
            for provider in providers:
                chosen = [t for t in tests if _selected(t, prompt, provider)]
                if not chosen:
                    continue
                cases = tuple(self.case(t, prompt, variables) for t in chosen)
                scorer = PromptfooScorer({t.id: checks[t.id] for t in chosen}, where=self.where)
                name = f"{stem}[{prompt.label}|{provider.label}]"
                if len(name) > 200 or not name.isprintable():
                    raise self.err(
                        f"suite name {name[:80]!r}... is too long or not printable",
                        "prompts",
                        "give the prompt and provider short labels",
                    )
                suites.append(
                    Suite(
                        name=name,
                        path=self.path,
                        prompt_path=prompt.path,
                        prompt_text=prompt.text,
                        prompt_bytes=prompt.raw,
                        system=None,
                        model=provider.model,
                        params=params[provider.label],
                        cases=cases,
                        scorers=(ScorerSpec(scorer=scorer, weight=1.0, label="promptfoo"),),
                        threshold=1.0,
                        threshold_metric="pass_rate",
                        repeat=repeat,
                    )
                )
        if not suites:
            raise self.err(
                "no test runs on any prompt and provider",
                "tests",
                "check the tests' providers/prompts filters, or add tests",
            )
        return suites

    # -- parts ------------------------------------------------------------------------------

    def params(self, provider: Provider, index: int) -> dict[str, Any]:
        """The provider's ``config`` through the suite ``params`` validation (same rules)."""
        try:
            loader = _Loader(self.path, self.registry, self.confinement, self.trusted_params)
            return loader.params(dict(provider.params))
        except SuiteError as exc:
            raise self.err(
                f"providers[{index}].config: {exc.message}",
                f"providers[{index}].config",
                exc.fix or "fix the provider config",
            ) from None

    def repeat(self, value: Any) -> int | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.err("'evaluateOptions' must be a mapping", "evaluateOptions", "write {}")
        for key in value:
            if key not in EVALUATE_KEYS:
                raise self.err(
                    f"unsupported evaluateOptions key '{key}'",
                    f"evaluateOptions.{key}",
                    did_you_mean(str(key), EVALUATE_KEYS),
                )
        repeat = value.get("repeat")
        if repeat is None:
            return None
        if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
            raise self.err(
                f"evaluateOptions.repeat must be a whole number from 1 to {MAX_REPEAT}",
                "evaluateOptions.repeat",
                "write repeat: 3",
            )
        return repeat

    def variables(self, prompt: Prompt) -> frozenset[str]:
        try:
            return template_variables(prompt.text, where=prompt.ref[:60])
        except SuiteError as exc:
            raise self.err(
                f"{exc.message} (prompt {prompt.label})", "prompts", exc.fix or ""
            ) from None

    def checks(self, test: Test) -> TestChecks:
        """The test's assertions as checks; template values rendered with the test's vars."""
        items = [self.rendered(a, test) for a in test.asserts]
        grader = test.grader
        ctx = AssertContext(
            registry=self.registry,
            where=self.where,
            grader=self.model_of(grader, f"{test.key}.options.provider") if grader else None,
            map_model=lambda pid, key: litellm_model(pid, where=self.where, key=key),
            read_value=self.read_value,
        )
        try:
            built = build_checks(items, f"{test.key}.assert", ctx)
        except SuiteError as exc:
            raise SuiteError(
                f"{exc.message} ({test.source})",
                path=exc.path,
                key=exc.key,
                case=test.id,
                fix=exc.fix,
            ) from None
        return TestChecks(built, test.threshold)

    def model_of(self, grader: Any, key: str) -> str:
        pid = grader.get("id") if isinstance(grader, dict) else grader
        if not isinstance(pid, str) or not pid.strip():
            raise self.err(
                f"'provider' must be a provider id, not {kind_of(grader)}",
                key,
                "write provider: openai:gpt-4o-mini",
            )
        return litellm_model(pid.strip(), where=self.where, key=key)

    def read_value(self, text: str, key: str) -> Any:
        path = self.reader.path(text, key)
        if path.suffix.lower() in (".json", ".yaml", ".yml"):
            return self.reader.parse(path, key)
        return self.reader.read_text(path, key)

    def rendered(self, item: Any, test: Test) -> Any:
        """promptfoo renders assertion values with the test's vars (``value: '{{answer}}'``)."""
        if not isinstance(item, dict) or "value" not in item:
            return item
        value = item["value"]
        if _is_template(value):
            value = render(
                value, test.vars, where=f"{self.where} ({test.key}.assert)", case=test.id
            )
        elif isinstance(value, list):
            value = [
                render(v, test.vars, where=self.where, case=test.id) if _is_template(v) else v
                for v in value
            ]
        return {**item, "value": value}

    def case(self, test: Test, prompt: Prompt, variables: frozenset[str]) -> Case:
        missing = sorted(variables - set(test.vars))
        if missing and _renders(prompt.text, test.vars):
            missing = []  # guarded in the prompt ({% if x is defined %}, x | default(''))
        if missing:
            raise self.err(
                f"test is missing var(s) {', '.join(missing)} used by prompt "
                f"'{prompt.label}' ({test.source})",
                f"{test.key}.vars",
                f"add {', '.join(missing)} to the test's vars (or to defaultTest.vars)",
                case=test.id,
            )
        if not renders_cleanly(prompt.text, test.vars):
            try:
                render(prompt.text, test.vars, where=prompt.label, case=test.id)
            except SuiteError as exc:
                raise self.err(
                    f"prompt '{prompt.label}' cannot be rendered with this test "
                    f"({test.source}): {exc.message}",
                    "prompts",
                    exc.fix or "fix the template",
                    case=test.id,
                ) from None
        expected = _expected_output(test)
        return Case(
            id=test.id,
            vars=test.vars,
            expected=expected,
            has_expected=expected is not None,
            source=test.source,
        )


def _expected_output(test: Test) -> str | None:
    """The value of the test's first plain ``equals`` assertion: promptfoo's expected output.

    It fills the reports' expected column and is shown to the optimizer as the expected output;
    scoring never reads it (each assertion compares with its own value).
    """
    for item in test.asserts:
        if isinstance(item, dict) and item.get("type") == "equals":
            value = item.get("value")
            if isinstance(value, str) and _is_template(value):  # rendered once already, fine
                value = render(value, test.vars, case=test.id)
            if isinstance(value, str):
                return value
            if isinstance(value, int | float) and not isinstance(value, bool):
                return str(value)
    return None


def _matches(patterns: tuple[str, ...], *names: str) -> bool:
    for pattern in patterns:
        for name in names:
            if pattern == name or fnmatch.fnmatchcase(name, pattern):
                return True
            if ":" not in pattern and name.startswith(pattern + ":"):  # legacy prefix
                return True
    return False


def _selected(test: Test, prompt: Prompt, provider: Provider) -> bool:
    """A test's ``providers`` / ``prompts`` filters (labels, ids, ``openai:*`` wildcards)."""
    if test.providers is not None and not _matches(
        test.providers, provider.label, provider.provider_id
    ):
        return False
    return test.prompts is None or _matches(test.prompts, prompt.label, prompt.ref)


def _renders(text: str, variables: Mapping[str, Any]) -> bool:
    """True when ``text`` renders with ``variables`` (undefined names are errors)."""
    try:
        render(text, variables)
    except GpoError:
        return False
    return True


def load_promptfoo(
    path: Path,
    registry: ScorerRegistry,
    confinement: Confinement | None = None,
    trusted_params: Iterable[str] = (),
) -> list[Suite]:
    """Load a promptfoo config: one suite per prompt x provider (raises :class:`SuiteError`).

    A provider's ``config`` obeys the suite ``params`` rules: keys that route, authenticate or
    price a request (``apiBaseUrl``, ``apiKey``, ...) only when ``trusted_params`` allows them.
    """
    return PromptfooLoader(path, registry, confinement, trusted_params).load()
