"""promptfoo assertions mapped to scorers: each type's verdict, not-, weight, threshold, CSV."""

from __future__ import annotations

import asyncio
import json
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_gpo.errors import GpoError, SuiteError
from pytest_gpo.llm.types import Completion, Request, Usage
from pytest_gpo.scorers.base import ScoreContext, ScoreResult
from pytest_gpo.scorers.registry import builtin_registry
from pytest_gpo.suites.model import Suite
from pytest_gpo.suites.paths import Confinement
from pytest_gpo.suites.promptfoo.load import load_promptfoo
from pytest_gpo.suites.promptfoo.shorthand import assertion_from_text

REGISTRY = builtin_registry()
PROVIDERS = "providers: [openai:gpt-4o-mini]\n"


def load(tmp_path: Path, config: str, files: dict[str, str] | None = None) -> list[Suite]:
    for name, text in (files or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    path = tmp_path / "promptfooconfig.yaml"
    path.write_text(textwrap.dedent(config), encoding="utf-8")
    return load_promptfoo(path, REGISTRY, Confinement(tmp_path))


def one_test(tmp_path: Path, asserts: list[dict[str, Any]], **test: Any) -> Suite:
    config = {
        "prompts": ["Answer: {{q}}"],
        "providers": ["openai:gpt-4o-mini"],
        "tests": [{"vars": {"q": "x"}, "assert": asserts, **test}],
    }
    (suite,) = load(tmp_path, json.dumps(config))
    return suite


class LetterEmbedder:
    """A fake embedder: letter counts, normalized (similar texts -> similar vectors)."""

    name = "letters"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            v = [float(text.lower().count(chr(c))) for c in range(97, 123)]
            norm = math.sqrt(sum(x * x for x in v)) or 1.0
            out.append([x / norm for x in v])
        return out


class JudgeClient:
    """A fake judge: scores 9/10 when the output says 'polite', else 2/10; keeps requests."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.requests: list[Request] = []

    async def complete(self, request: Request) -> Completion:
        self.requests.append(request)
        graded = request.messages[-1]["content"].split("RESPONSE TO GRADE:")[-1]
        score = 9 if "polite" in graded else 2
        return Completion(texts=(json.dumps({"score": score, "reason": "graded"}),))

    async def aclose(self) -> None:
        return None


def score(suite: Suite, output: str, ctx: ScoreContext | None = None) -> ScoreResult:
    (spec,) = suite.scorers
    ctx = ctx or ScoreContext(embedder=lambda spec: LetterEmbedder())
    return asyncio.run(spec.scorer.score(output, suite.cases[0], ctx))


@pytest.mark.parametrize(
    ("assertion", "passing", "failing"),
    [
        ({"type": "equals", "value": "Paris"}, "Paris", " Paris"),
        ({"type": "equals", "value": 4}, "4", "4.0"),
        ({"type": "equals", "value": {"a": 1}}, '{"a": 1}', '{"a": 2}'),
        ({"type": "contains", "value": "Paris"}, "It is Paris.", "It is paris."),
        ({"type": "icontains", "value": "Paris"}, "it is PARIS", "it is Rome"),
        ({"type": "contains-any", "value": ["cat", "dog"]}, "a dog", "a bird"),
        ({"type": "contains-any", "value": "cat, dog"}, "a cat", "a Cat"),
        ({"type": "icontains-any", "value": ["cat", "dog"]}, "a DOG", "a bird"),
        ({"type": "contains-all", "value": ["cat", "dog"]}, "cat and dog", "cat only"),
        ({"type": "icontains-all", "value": ["cat", "dog"]}, "CAT and Dog", "cat only"),
        ({"type": "starts-with", "value": "Yes."}, "Yes. Sure", "Well, Yes. Sure"),
        ({"type": "regex", "value": r"\d{3}-\d{4}"}, "call 555-1234", "call 5551234"),
        ({"type": "is-json"}, '{"ok": true}', '```json\n{"ok": true}\n```'),
        (
            {
                "type": "is-json",
                "value": {"type": "object", "required": ["name"]},
            },
            '{"name": "Ann"}',
            '{"nom": "Ann"}',
        ),
        ({"type": "levenshtein", "value": "kitten", "threshold": 3}, "sitting", "sitting down"),
        ({"type": "levenshtein", "value": "hello"}, "hallo!", "goodbye there"),
        ({"type": "similar", "value": "the cat sat"}, "the cat sat!", "xyz qqq"),
        ({"type": "similar", "value": ["zzz", "the cat sat"]}, "the cat sat", "qqq"),
        ({"type": "not-contains", "value": "sorry"}, "Fine.", "I am sorry."),
        ({"type": "not-equals", "value": "no"}, "yes", "no"),
        ({"type": "not-regex", "value": "^As an AI"}, "Sure.", "As an AI, I"),
        ({"type": "not-is-json"}, "plain text", "[1, 2]"),
        ({"type": "not-similar", "value": "the cat sat", "threshold": 0.9}, "qqq", "the cat sat"),
    ],
)
def test_each_assertion_type_passes_and_fails_like_promptfoo(
    tmp_path: Path, assertion: dict[str, Any], passing: str, failing: str
) -> None:
    suite = one_test(tmp_path, [assertion])
    good, bad = score(suite, passing), score(suite, failing)
    assert good.passed and good.score == pytest.approx(1.0, abs=0.2), good.reason
    assert not bad.passed, bad.reason
    assert assertion["type"] in bad.reason


def test_contains_all_is_pass_or_fail_not_partial(tmp_path: Path) -> None:
    suite = one_test(tmp_path, [{"type": "contains-all", "value": ["a1", "b2", "c3"]}])
    assert score(suite, "a1 b2").score == 0.0  # the project's scorer alone would give 0.67


def test_test_passes_only_when_every_assertion_passes(tmp_path: Path) -> None:
    suite = one_test(
        tmp_path,
        [{"type": "contains", "value": "a"}, {"type": "contains", "value": "b", "weight": 3}],
    )
    both, only_a = score(suite, "a b"), score(suite, "a")
    assert both.passed and both.score == 1.0
    assert not only_a.passed and only_a.score == pytest.approx(0.25)  # (1*1 + 3*0) / 4
    assert "1 of 2 failed" in only_a.reason and "contains" in only_a.reason


def test_weight_zero_is_reported_but_never_fails_the_test(tmp_path: Path) -> None:
    suite = one_test(
        tmp_path,
        [{"type": "contains", "value": "a"}, {"type": "contains", "value": "zzz", "weight": 0}],
    )
    result = score(suite, "a")
    assert result.passed and result.score == 1.0
    # shown, never counted: the user still sees what it checked
    assert "not counted (weight 0): failed:" in result.reason and "zzz" in result.reason


def test_test_threshold_passes_on_the_weighted_score(tmp_path: Path) -> None:
    asserts = [
        {"type": "contains", "value": "a", "weight": 3},
        {"type": "contains", "value": "b"},
    ]
    loose = one_test(tmp_path, asserts, threshold=0.7)
    result = score(loose, "a")
    assert result.passed and result.score == pytest.approx(0.75), result.reason
    strict = one_test(tmp_path, asserts, threshold=0.8)
    assert not score(strict, "a").passed


def test_assertion_values_are_rendered_with_the_test_vars(tmp_path: Path) -> None:
    config = """\
        prompts: ["Capital of {{country}}?"]
        providers: [openai:gpt-4o-mini]
        tests:
          - vars: {country: France, capital: Paris}
            assert: [{type: icontains, value: "{{capital}}"}]
        """
    (suite,) = load(tmp_path, config)
    assert score(suite, "paris").passed
    assert not score(suite, "{{capital}}").passed


def test_llm_rubric_asks_the_grader_named_by_default_test(tmp_path: Path) -> None:
    config = """\
        prompts: ["Reply to {{msg}}"]
        providers: [openai:gpt-4o-mini]
        defaultTest:
          options: {provider: anthropic:messages:claude-3-5-haiku-latest}
        tests:
          - vars: {msg: hi}
            assert: [{type: llm-rubric, value: "Is polite"}]
          - vars: {msg: yo}
            assert: [{type: llm-rubric, value: "Is polite", provider: openai:chat:gpt-4o}]
        """
    (suite,) = load(tmp_path, config)
    client = JudgeClient()
    ctx = ScoreContext(client=client, judge_model="ini/grader")
    (spec,) = suite.scorers
    good = asyncio.run(spec.scorer.score("a polite reply", suite.cases[0], ctx))
    bad = asyncio.run(spec.scorer.score("go away", suite.cases[0], ctx))
    asyncio.run(spec.scorer.score("polite", suite.cases[1], ctx))
    assert good.passed and good.score == pytest.approx(0.9)
    assert not bad.passed and "llm-rubric" in bad.reason
    models = [r.model for r in client.requests]
    assert models == [
        "anthropic/claude-3-5-haiku-latest",
        "anthropic/claude-3-5-haiku-latest",
        "openai/gpt-4o",
    ]
    assert "Is polite" in client.requests[0].messages[-1]["content"]


def test_llm_rubric_without_a_grader_uses_the_ini_judge_model(tmp_path: Path) -> None:
    suite = one_test(tmp_path, [{"type": "llm-rubric", "value": "Is polite", "threshold": 0.95}])
    client = JudgeClient()
    ctx = ScoreContext(client=client, judge_model="openai/judge")
    result = asyncio.run(suite.scorers[0].scorer.score("polite", suite.cases[0], ctx))
    assert not result.passed  # 0.9 < the assertion's threshold 0.95
    assert client.requests[0].model == "openai/judge"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Paris", {"type": "equals", "value": "Paris"}),
        ("contains:Paris", {"type": "contains", "value": "Paris"}),
        ("not-icontains:sorry", {"type": "not-icontains", "value": "sorry"}),
        ("contains-any:a,b", {"type": "contains-any", "value": "a,b"}),
        ("regex:^\\d+$", {"type": "regex", "value": "^\\d+$"}),
        ("starts-with:Yes", {"type": "starts-with", "value": "Yes"}),
        ("is-json", {"type": "is-json"}),
        ("similar(0.9):hello", {"type": "similar", "value": "hello", "threshold": 0.9}),
        ("levenshtein(2):hello", {"type": "levenshtein", "value": "hello", "threshold": 2}),
        ("grade:Is polite", {"type": "llm-rubric", "value": "Is polite"}),
        ("llm-rubric:Is polite", {"type": "llm-rubric", "value": "Is polite"}),
        ("javascript:output.length < 10", {"type": "javascript"}),
        ("Note: this is plain", {"type": "equals", "value": "Note: this is plain"}),
        # promptfoo reads every type it knows here, with or without a value: never as text
        ("is-xml", {"type": "is-xml"}),
        ("not-is-refusal", {"type": "not-is-refusal"}),
        ("cost(0.1)", {"type": "cost", "threshold": 0.1}),
        ("finish-reason:stop", {"type": "finish-reason", "value": "stop"}),
        ("hello", {"type": "equals", "value": "hello"}),
    ],
)
def test_csv_expected_shorthands(text: str, expected: dict[str, Any]) -> None:
    assert assertion_from_text(text) == expected


@pytest.mark.parametrize(
    ("assertion", "named"),
    [
        ({"type": "javascript", "value": "output.length < 5"}, "'javascript'"),
        ({"type": "contains-json"}, "'contains-json'"),
        ({"type": "not-python", "value": "True"}, "'not-python'"),
        ({"type": "contains", "value": "a", "transform": "output.trim()"}, "'transform'"),
        ({"type": "contains"}, "needs a 'value'"),
        ({"type": "is-json", "value": {"type": "object", "minProperties": 1}}, "minProperties"),
        ({"type": "regex", "value": "(unclosed"}, "invalid regular expression"),
        ({"type": "contains", "value": "a", "weight": -1}, "'weight'"),
        ({"type": "contains", "value": "a", "provider": "openai:gpt-4o"}, "takes no 'provider'"),
    ],
)
def test_unsupported_or_bad_assertions_are_errors_naming_them(
    tmp_path: Path, assertion: dict[str, Any], named: str
) -> None:
    with pytest.raises(SuiteError) as info:
        one_test(tmp_path, [assertion])
    assert named in info.value.render()
    assert "tests[0].assert[0]" in info.value.render()


def test_fingerprint_changes_with_any_assertion(tmp_path: Path) -> None:
    a = one_test(tmp_path, [{"type": "contains", "value": "a"}])
    b = one_test(tmp_path, [{"type": "contains", "value": "a", "weight": 2}])
    c = one_test(tmp_path, [{"type": "not-contains", "value": "a"}])
    hashes = {s.scorer_config_hash() for s in (a, b, c)}
    assert len(hashes) == 3


# -- loading: providers, prompts, vars, filters ------------------------------------------------


@pytest.mark.parametrize(
    ("provider_id", "model"),
    [
        ("openai:gpt-4o-mini", "openai/gpt-4o-mini"),
        ("openai:chat:gpt-4o-mini", "openai/gpt-4o-mini"),
        ("anthropic:messages:claude-3-5-haiku-latest", "anthropic/claude-3-5-haiku-latest"),
        ("azure:chat:my-deployment", "azure/my-deployment"),
        ("vertex:gemini-1.5-pro", "vertex_ai/gemini-1.5-pro"),
        ("google:gemini-2.0-flash", "gemini/gemini-2.0-flash"),
        ("ollama:chat:llama3", "ollama_chat/llama3"),
        ("bedrock:anthropic.claude-3-haiku", "bedrock/anthropic.claude-3-haiku"),
        ("openrouter:meta-llama/llama-3-8b", "openrouter/meta-llama/llama-3-8b"),
        ("litellm:gpo-sim/task", "gpo-sim/task"),
    ],
)
def test_provider_ids_map_to_litellm_models(tmp_path: Path, provider_id: str, model: str) -> None:
    (suite,) = load(tmp_path, json.dumps({"prompts": ["x"], "providers": [provider_id]}))
    assert suite.model == model


def test_provider_config_becomes_params(tmp_path: Path) -> None:
    config = {
        "prompts": ["x"],
        "providers": [
            {"openai:gpt-4o": {"config": {"temperature": 0.2, "max_output_tokens": 9}}},
        ],
    }
    (suite,) = load(tmp_path, json.dumps(config))
    assert suite.params == {"temperature": 0.2, "max_tokens": 9}
    assert suite.name == "promptfooconfig[prompt1|openai:gpt-4o]"


@pytest.mark.parametrize(
    "config", [{"apiBaseUrl": "http://elsewhere.example/v1"}, {"apiKey": "sk-x"}]
)
def test_a_provider_config_cannot_route_or_authenticate_unless_trusted(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    """A config file is data: it may not send the user's key to another host."""
    body = {"prompts": ["x"], "providers": [{"openai:gpt-4o": {"config": config}}]}
    with pytest.raises(SuiteError) as err:
        load(tmp_path, json.dumps(body))
    assert "providers[0].config" in err.value.render()
    assert "gpo_trusted_params" in err.value.render()
    if "apiBaseUrl" in config:
        path = tmp_path / "promptfooconfig.yaml"
        (suite,) = load_promptfoo(path, REGISTRY, Confinement(tmp_path), ("api_base",))
        assert suite.params["api_base"] == "http://elsewhere.example/v1"


def test_a_template_in_a_provider_config_is_refused_not_sent(tmp_path: Path) -> None:
    body = {
        "prompts": ["x"],
        "providers": [{"openai:gpt-4o": {"config": {"apiKey": "{{ env.MY_KEY }}"}}}],
    }
    with pytest.raises(SuiteError) as err:
        load(tmp_path, json.dumps(body))
    assert "holds a template" in err.value.render() and "apiKey" in err.value.render()


def test_a_variable_the_prompt_guards_may_be_missing(tmp_path: Path) -> None:
    prompt = "Convert {{ q }}{% if note is defined %} ({{ note }}){% endif %}{{ x | default('') }}"
    body = {"prompts": [prompt], "providers": ["openai:gpt-4o-mini"], "tests": [{"vars": {"q": 1}}]}
    (suite,) = load(tmp_path, json.dumps(body))
    assert len(suite.cases) == 1
    body["prompts"] = ["Convert {{ q }} {{ note }}"]
    with pytest.raises(SuiteError) as err:
        load(tmp_path, json.dumps(body))
    assert "missing var(s) note" in err.value.render()


def test_a_bare_prompt_path_is_read_as_a_file(tmp_path: Path) -> None:
    files = {"p.txt": "From the file: {{ q }}"}
    (suite,) = load(tmp_path, f"prompts: [p.txt]\n{PROVIDERS}tests: [{{vars: {{q: a}}}}]\n", files)
    assert suite.prompt_text == "From the file: {{ q }}"
    with pytest.raises(SuiteError) as err:
        load(tmp_path, f"prompts: [prompts/missing.txt]\n{PROVIDERS}tests: [{{vars: {{q: a}}}}]\n")
    assert "missing.txt" in err.value.render()
    (plain,) = load(
        tmp_path, f"prompts: ['Answer: {{{{ q }}}}']\n{PROVIDERS}tests: [{{vars: {{q: a}}}}]\n"
    )
    assert plain.prompt_text == "Answer: {{ q }}"


def test_prompt_labels_filters_and_a_prompt_map(tmp_path: Path) -> None:
    config = """\
        prompts:
          file://a.txt: alpha
          file://b.txt: beta
        providers:
          - {id: openai:gpt-4o-mini, label: mini}
          - {id: anthropic:claude-3-5-haiku-latest, label: haiku}
        tests:
          - {description: everywhere, vars: {q: a}}
          - {description: only mini, vars: {q: b}, providers: [mini]}
          - description: only beta on openai
            vars: {q: c}
            prompts: [beta]
            providers: ['openai:*']
        """
    suites = load(tmp_path, config, {"a.txt": "A {{q}}\n", "b.txt": "B {{q}}\n"})
    got = {s.name: [c.id for c in s.cases] for s in suites}
    assert got == {
        "promptfooconfig[alpha|mini]": ["everywhere", "only mini"],
        "promptfooconfig[alpha|haiku]": ["everywhere"],
        "promptfooconfig[beta|mini]": ["everywhere", "only mini", "only beta on openai"],
        "promptfooconfig[beta|haiku]": ["everywhere"],
    }
    assert suites[0].prompt_path == tmp_path / "a.txt" and suites[0].prompt_text == "A {{q}}\n"


def test_var_files_default_test_file_and_list_expansion(tmp_path: Path) -> None:
    config = """\
        prompts: ["{{greeting}} {{who}} {{item}}"]
        providers: [openai:gpt-4o-mini]
        defaultTest: file://default.yaml
        tests:
          - description: people
            vars: {who: [Ann, Bob], item: file://item.json}
          - description: kept whole
            vars: {who: [Ann, Bob], item: x}
            options: {disableVarExpansion: true}
          - vars: file://vars.yaml
        """
    files = {
        "default.yaml": "vars: {greeting: Hello}\nassert: [{type: contains, value: Hello}]\n",
        "item.json": '{"sku": 7}',
        "vars.yaml": "who: Cy\nitem: pen\n",
    }
    (suite,) = load(tmp_path, config, files)
    by_id = {c.id: dict(c.vars) for c in suite.cases}
    assert by_id["people #1"] == {"greeting": "Hello", "who": "Ann", "item": {"sku": 7}}
    assert by_id["people #2"]["who"] == "Bob"
    assert by_id["kept whole"]["who"] == ["Ann", "Bob"]
    (derived,) = [cid for cid in by_id if cid.startswith("c-")]
    assert by_id[derived] == {"greeting": "Hello", "who": "Cy", "item": "pen"}
    checks = suite.scorers[0].scorer.tests  # type: ignore[attr-defined]
    assert all(len(t.checks) == 1 for t in checks.values())  # defaultTest's assert everywhere


def test_repeat_no_tests_and_the_expected_output(tmp_path: Path) -> None:
    config = """\
        prompts: ["Say hi"]
        providers: [openai:gpt-4o-mini]
        evaluateOptions: {repeat: 3, maxConcurrency: 2}
        """
    (suite,) = load(tmp_path, config)
    assert suite.repeat == 3 and len(suite.cases) == 1 and not suite.cases[0].has_expected
    config = """\
        prompts: ["{{q}}"]
        providers: [openai:gpt-4o-mini]
        tests:
          - vars: {q: a, answer: Paris}
            assert: [{type: contains, value: P}, {type: equals, value: "{{answer}}"}]
        """
    (suite,) = load(tmp_path, config)
    assert suite.cases[0].expected == "Paris"


def test_a_bare_test_file_path_is_read_like_file_urls(tmp_path: Path) -> None:
    config = '{"prompts": ["{{q}}"], "providers": ["openai:o"], "tests": "t.csv"}'
    (suite,) = load(tmp_path, config, {"t.csv": "q,__expected\na,contains:a\n"})
    assert [dict(c.vars) for c in suite.cases] == [{"q": "a"}]


def test_duplicate_descriptions_get_distinct_stable_ids(tmp_path: Path) -> None:
    config = {
        "prompts": ["{{q}}"],
        "providers": ["openai:gpt-4o-mini"],
        "tests": [{"description": "same", "vars": {"q": "a"}}] * 2,
    }
    first = [c.id for c in load(tmp_path, json.dumps(config))[0].cases]
    again = [c.id for c in load(tmp_path, json.dumps(config))[0].cases]
    assert first == again == ["same", "same (2)"]


def test_is_json_schema_file_and_similar_embedding_provider(tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_text('{"type": "object", "required": ["id"]}')
    suite = one_test(
        tmp_path,
        [
            {"type": "is-json", "value": "file://schema.json"},
            {
                "type": "similar",
                "value": "hi",
                "provider": "openai:embedding:text-embedding-3-large",
            },
        ],
    )
    checks = suite.scorers[0].scorer.tests[suite.cases[0].id].checks  # type: ignore[attr-defined]
    assert checks[0].scorer.schema == {"type": "object", "required": ["id"]}
    assert checks[1].scorer.model == "openai/text-embedding-3-large"


@pytest.mark.parametrize(
    ("config", "files", "named"),
    [
        ({"prompts": ["{{ x | dump }}"], "tests": [{"vars": {"x": 1}}]}, {}, "dump"),
        ({"prompts": ["file://chat.json"]}, {"chat.json": "[]"}, "chat message lists"),
        ({"prompts": ["file://two.txt"]}, {"two.txt": "a\n---\nb\n"}, "separated by '---'"),
        ({"prompts": ["x"], "tests": "file://t.xlsx"}, {"t.xlsx": ""}, "unsupported test file"),
        ({"prompts": ["x"], "tests": "file://t/*.yaml"}, {}, "glob"),
        ({"prompts": ["x", "x"]}, {}, None),
        ({"prompts": [{"raw": "a", "label": "p"}, {"raw": "b", "label": "p"}]}, {}, "share"),
        ({"prompts": ["x"], "providers": ["python:provider.py"]}, {}, "python:provider.py"),
        (
            {"prompts": ["x"], "tests": [{"vars": {}, "options": {"transform": "x"}}]},
            {},
            "transform",
        ),
        ({"prompts": ["x"], "tests": [{"vars": {"v": []}}]}, {}, "empty list"),
        (
            {"prompts": ["{{q}}"], "tests": "file://t.csv"},
            {"t.csv": "q,__prefix\na,b\n"},
            "__prefix",
        ),
    ],
)
def test_load_errors_name_what_is_wrong(
    tmp_path: Path, config: dict[str, Any], files: dict[str, str], named: str | None
) -> None:
    config.setdefault("providers", ["openai:gpt-4o-mini"])
    if named is None:  # two identical inline prompts: labels prompt1, prompt2 differ -> fine
        assert len(load(tmp_path, json.dumps(config), files)) == 2
        return
    with pytest.raises(SuiteError) as info:
        load(tmp_path, json.dumps(config), files)
    assert named in info.value.render()


# -- scorer options added for promptfoo ---------------------------------------------------------


def test_fuzzy_max_distance_passes_by_edit_distance() -> None:
    from pytest_gpo.errors import ScorerError

    fuzzy = REGISTRY.create("fuzzy", {"max_distance": 2}, where="s")
    close = asyncio.run(fuzzy.score("kitten", _case("sitting"), ScoreContext()))
    far = asyncio.run(fuzzy.score("kitten", _case("sitting!"), ScoreContext()))
    assert not close.passed and "edit distance 3 > 2" in close.reason
    assert not far.passed
    near = asyncio.run(fuzzy.score("sittin", _case("sitting"), ScoreContext()))
    assert near.passed and "edit distance 1 <= 2" in near.reason
    with pytest.raises(ScorerError, match="cannot be combined"):
        REGISTRY.create("fuzzy", {"max_distance": 2, "min": 0.5}, where="s")
    with pytest.raises(ScorerError, match="max_distance"):
        REGISTRY.create("fuzzy", {"max_distance": -1}, where="s")


def test_json_fenced_false_needs_the_whole_output_to_be_json() -> None:
    fenced = '```json\n{"a": 1}\n```'
    strict = REGISTRY.create("json", {"fenced": False}, where="s")
    loose = REGISTRY.create("json", {}, where="s")
    assert asyncio.run(loose.score(fenced, _case(None), ScoreContext())).passed
    assert not asyncio.run(strict.score(fenced, _case(None), ScoreContext())).passed
    assert asyncio.run(strict.score('{"a": 1}', _case(None), ScoreContext())).passed


def _case(expected: Any) -> Any:
    from pytest_gpo.suites.model import Case

    return Case(id="c", vars={}, expected=expected, has_expected=expected is not None)


# -- hostile configs -----------------------------------------------------------------------------

_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["", "x", "{{q}}", "file://a.txt", "file://../x", "openai:gpt-4o", "a,b"]),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=8),
)
_VALUE = st.recursive(
    _SCALAR,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["type", "value", "id", "label", "vars", "assert", "q", "config", "raw"]
            ),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)
_ASSERT = st.fixed_dictionaries(
    {"type": st.sampled_from(["contains", "not-equals", "is-json", "similar", "llm-rubric", "x"])},
    optional={"value": _VALUE, "weight": _VALUE, "threshold": _VALUE},
)


def _sometimes(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` four times in five, else anything."""
    return st.integers(0, 4).flatmap(lambda n: _VALUE if n == 4 else good)


def _mostly(*valid: Any) -> st.SearchStrategy[Any]:
    """One of ``valid`` four times in five, else anything."""
    return _sometimes(st.sampled_from(valid))


_TEST = st.fixed_dictionaries(
    {"vars": _sometimes(st.fixed_dictionaries({"q": _SCALAR}))},
    optional={
        "assert": st.lists(_ASSERT, max_size=3),
        "threshold": _sometimes(st.floats(0, 1)),
        "description": _sometimes(st.text(max_size=5)),
        "options": _sometimes(st.just({})),
    },
)
_CONFIG = st.fixed_dictionaries(
    {
        "prompts": _mostly(["Q: {{q}}"], ["file://a.txt"], ["A {{q}}", "B"]),
        "providers": _mostly(["openai:gpt-4o-mini"], [{"id": "openai:o", "label": "o"}]),
        "tests": _sometimes(st.lists(_TEST, min_size=1, max_size=3)),
    },
    optional={
        "defaultTest": _sometimes(st.fixed_dictionaries({"assert": st.lists(_ASSERT, max_size=2)}))
    },
)


@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(config=_CONFIG)
def test_any_config_loads_or_fails_with_a_named_error(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    """Invariant: a config is suites or a GpoError naming the config, never another exception.

    (Most generated configs reach the tests: prompts and providers are usually valid.)
    """
    (tmp_path / "a.txt").write_text("text {{q}}\n")
    try:
        # ensure_ascii=False: YAML reads a JSON surrogate-pair escape as two lone surrogates
        suites = load(tmp_path, json.dumps(config, ensure_ascii=False))
    except GpoError as exc:
        assert "promptfooconfig.yaml" in exc.render()
        return
    assert suites and all(s.cases for s in suites)
    ctx = ScoreContext(
        client=JudgeClient(), judge_model="j", embedder=lambda spec: LetterEmbedder()
    )
    for suite in suites:
        for case in suite.cases:
            verdict = asyncio.run(suite.scorers[0].scorer.score("x a", case, ctx))
            assert 0.0 <= verdict.score <= 1.0 and verdict.reason


def test_the_worked_example_in_the_docs_loads(tmp_path: Path) -> None:
    """docs/promptfoo.md's example config and CSV are valid and give the suites it shows."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "promptfoo.md").read_text()
    config = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    csv_text = doc.split("```\nticket,", 1)[1].split("```", 1)[0]
    folder = tmp_path / "evals" / "router"
    (folder / "prompts").mkdir(parents=True)
    (folder / "prompts" / "route.txt").write_text("Route it.\n\nTicket: {{ticket}}\n")
    (folder / "tests.csv").write_text("ticket," + csv_text)
    (folder / "promptfooconfig.yaml").write_text(config)
    suites = load_promptfoo(folder / "promptfooconfig.yaml", REGISTRY, Confinement(tmp_path))
    assert [s.name for s in suites] == [
        "evals/router[route|mini]",
        "evals/router[route|anthropic:messages:claude-3-5-haiku-latest]",
    ]
    assert [c.id for c in suites[0].cases] == ["charged twice", "crash", "lost parcel", "password"]
    assert f"evals/router/promptfooconfig.yaml::{suites[0].name}" in doc


@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_suite_names_and_case_ids_do_not_depend_on_order(tmp_path: Path, data: Any) -> None:
    """Invariant: reordering tests or providers keeps every suite name and its case ids (the
    baseline keys), as long as no two tests are identical."""
    tests = [
        {"vars": {"q": f"q{i}"}, "assert": [{"type": "contains", "value": str(i)}]}
        for i in range(4)
    ] + [{"description": "named", "vars": {"q": "z"}}]
    providers = ["openai:gpt-4o-mini", {"id": "anthropic:claude-3-5-haiku-latest", "label": "h"}]

    def ids(tests: list[Any], providers: list[Any]) -> dict[str, set[str]]:
        config = {"prompts": ["{{q}}", "file://p.txt"], "providers": providers, "tests": tests}
        (tmp_path / "p.txt").write_text("P {{q}}\n")
        return {s.name: {c.id for c in s.cases} for s in load(tmp_path, json.dumps(config))}

    shuffled = ids(data.draw(st.permutations(tests)), data.draw(st.permutations(providers)))
    assert shuffled == ids(tests, providers)
