"""Suite YAML is parsed by libyaml where that is safe, with the pure-Python loader's behaviour.

libyaml is several times faster (collection time is mostly YAML parsing), but it recurses in C
and kills the process on very deep nesting, and its error messages differ. ``parse_yaml`` keeps
both out of the user's sight: same data, same errors, no crash.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_gpo.suites import yaml_parse as suite_module
from pytest_gpo.suites.yaml_parse import _nesting_bound, parse_yaml

needs_libyaml = pytest.mark.skipif(
    getattr(yaml, "CSafeLoader", None) is None, reason="PyYAML built without libyaml"
)

leaves = st.one_of(st.integers(), st.text(max_size=8), st.booleans(), st.none())
nested = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(min_size=1, max_size=5), children, max_size=3),
    ),
    max_leaves=40,
)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(doc=nested, flow=st.booleans(), indent=st.integers(min_value=2, max_value=6))
def test_same_data_as_safe_load_and_bound_covers_the_depth(
    doc: Any, flow: bool, indent: int
) -> None:
    text = yaml.safe_dump(doc, default_flow_style=flow, indent=indent, allow_unicode=True)
    # (not compared with ``doc``: PyYAML's emitter mangles some odd characters, e.g. U+0085)
    parsed = parse_yaml(text)
    assert parsed == yaml.safe_load(text)
    assert _nesting_bound(text) >= depth(parsed) and depth(parsed) == depth(doc)


def test_compact_block_sequences_are_within_the_bound() -> None:
    text = "- " * 40 + "x\n"
    assert depth(yaml.safe_load(text)) == 40 <= _nesting_bound(text)


@needs_libyaml
def test_libyaml_does_the_parsing_of_an_ordinary_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[str] = []
    real_load = yaml.load

    def spy(text: str, Loader: Any) -> Any:
        used.append(Loader.__name__)
        return real_load(text, Loader=Loader)

    monkeypatch.setattr(suite_module.yaml, "load", spy)
    assert parse_yaml("prompt: p.txt\ncases: [{vars: {a: 1}}]\n") == {
        "prompt": "p.txt",
        "cases": [{"vars": {"a": 1}}],
    }
    assert used == ["CSafeLoader"]


@pytest.mark.parametrize(
    "text",
    [
        'description: "\\udfff"\n',  # libyaml refuses the escape; PyYAML decodes it
        "a: [1, 2\n",  # unclosed flow sequence
        "a: b\n c: d\n",  # bad indentation
        "x: !!python/name:os.system\n",  # unsafe tag
    ],
)
def test_errors_and_results_are_the_pure_python_loaders(text: str) -> None:
    try:
        expected: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        with pytest.raises(yaml.YAMLError) as info:
            parse_yaml(text)
        assert str(info.value) == str(exc)
    else:
        assert parse_yaml(text) == expected


@needs_libyaml
@pytest.mark.parametrize("text", ["a: " + "[" * 100_000 + "]" * 100_000, "- " * 100_000 + "x"])
def test_nesting_that_would_crash_libyaml_is_a_clear_error(tmp_path: Path, text: str) -> None:
    # libyaml overflows the C stack on these (a segfault), so run the load in a child process.
    (tmp_path / "p.txt").write_text("Hi {{ a }}\n", encoding="utf-8")
    suite = tmp_path / "deep.gpo.yaml"
    suite.write_text(text, encoding="utf-8")
    code = textwrap.dedent(f"""
        from pathlib import Path
        from pytest_gpo.errors import GpoError
        from pytest_gpo.scorers.registry import builtin_registry
        from pytest_gpo.suites.load import load_suite
        try:
            load_suite(Path({str(suite)!r}), builtin_registry())
        except GpoError as exc:
            print(exc.render())
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "deep.gpo.yaml" in proc.stdout
    assert "nested too deeply" in proc.stdout or "malformed YAML" in proc.stdout
