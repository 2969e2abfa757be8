"""Plain ``{{ name }}`` templates are recognised without Jinja2, exactly as Jinja2 reads them.

Collection skips Jinja2 for templates that only substitute variables by name, so the
recogniser must never call a template plain when Jinja2 would read it differently: any
disagreement would let a broken template through collection, or report wrong variables.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import nodes

from pytest_gpo.errors import SuiteError
from pytest_gpo.templates.template import (
    check_syntax,
    plain_variables,
    render,
    renders_cleanly,
    template_variables,
)

ENV = jinja2.Environment(keep_trailing_newline=True)


def jinja_reading(text: str) -> frozenset[str] | None:
    """The names of a template Jinja2 parses as text and ``{{ name }}`` only, else None."""
    try:
        tree = ENV.parse(text)
    except jinja2.TemplateSyntaxError:
        return None
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if not isinstance(child, nodes.TemplateData | nodes.Name):
                return None
    return frozenset(jinja2.meta.find_undeclared_variables(tree))


pieces = st.sampled_from(
    [
        "{{",
        "}}",
        "{%",
        "%}",
        "{#",
        "#}",
        "{",
        "}",
        " ",
        "\n",
        "-",
        "+",
        "x",
        "y_1",
        "true",
        "None",
        "range",
        "if",
        "loop",
        ".",
        "|",
        "(",
        ")",
        "'",
        "$",
        "Ticket: ",
        "\u00e9",
        "\t",
    ]
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(pieces, max_size=14).map("".join))
def test_plain_only_when_jinja_reads_only_substitutions(text: str) -> None:
    names = plain_variables(text)
    if names is not None:
        assert jinja_reading(text) == names, text


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Ticket: {{ ticket }}\n", {"ticket"}),
        ("{{a}}{{ b }}{{\n c\n}} and $ {{ a }}", {"a", "b", "c"}),
        ("no variables at all", set()),
        ("} odd braces { but no substitution }", set()),
        ("{{ x }}}", {"x"}),
    ],
)
def test_plain_templates(text: str, names: set[str]) -> None:
    assert plain_variables(text) == frozenset(names) == jinja_reading(text)
    assert template_variables(text) == frozenset(names)
    assert check_syntax(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "{{ x | upper }}",
        "{{ x.y }}",
        "{{- x }}",
        "{{{ x }}}",
        "{% if x %}{{ x }}{% endif %}",
        "{# note #}{{ x }}",
        "{{ true }}",
        "{{ range }}",
        "{{ 'a' }}",
        "{{ x }",
        "{{ é }}",
    ],
)
def test_everything_else_goes_to_jinja(text: str) -> None:
    assert plain_variables(text) is None


def test_jinja_still_judges_templates_that_are_not_plain() -> None:
    assert template_variables("{% for t in tickets %}{{ t | upper }}{% endfor %}") == {"tickets"}
    assert check_syntax("{% if x %}") is not None
    with pytest.raises(SuiteError, match="syntax error"):
        template_variables("{{ x | }}")


def test_renders_cleanly_is_exactly_when_rendering_cannot_fail() -> None:
    assert renders_cleanly("Hi {{ name }}", {"name": 1})
    assert not renders_cleanly("Hi {{ name }}", {"other": 1})
    with pytest.raises(SuiteError, match="not defined"):
        render("Hi {{ name }}", {"other": 1})
    # not plain: the caller must render to know
    assert not renders_cleanly("Hi {{ name | upper }}", {"name": "x"})


@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c"]),
        st.one_of(
            st.text(),
            st.integers(),
            st.none(),
            st.booleans(),
            st.lists(st.integers()),
            st.floats(allow_nan=False),
        ),
        max_size=3,
    )
)
@settings(max_examples=300, deadline=None)
def test_a_clean_plain_template_really_renders(variables: dict[str, Any]) -> None:
    text = "A {{ a }} B {{b}} C {{ c }}."
    if renders_cleanly(text, variables):
        assert render(text, variables).startswith("A ")
    else:
        with pytest.raises(SuiteError):
            render(text, variables)


def test_collecting_plain_suites_never_imports_jinja(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("Ticket: {{ ticket }}\n", encoding="utf-8")
    (tmp_path / "s.gpo.yaml").write_text(
        "prompt: p.txt\ncases: [{vars: {ticket: hi}, expected: hi}]\n", encoding="utf-8"
    )
    (tmp_path / "q.txt").write_text("{{ ticket | upper }}\n", encoding="utf-8")
    (tmp_path / "t.gpo.yaml").write_text(
        "prompt: q.txt\ncases: [{vars: {ticket: hi}, expected: HI}]\n", encoding="utf-8"
    )
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from pytest_gpo.scorers.registry import builtin_registry
        from pytest_gpo.suites.load import load_suite
        load_suite(Path({str(tmp_path / "s.gpo.yaml")!r}), builtin_registry())
        print("plain:", "jinja2" in sys.modules)
        load_suite(Path({str(tmp_path / "t.gpo.yaml")!r}), builtin_registry())
        print("filter:", "jinja2" in sys.modules)
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "plain: False" in out and "filter: True" in out
