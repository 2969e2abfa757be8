"""Every render is bounded: a hostile template stops with a suite error, never a hang or OOM.

The property: for any template built from the growth paths Jinja2 offers (repetition,
concatenation, padding and expanding filters and string methods, format widths, lipsum,
nested loops, big-integer arithmetic), with magnitudes from small to absurd, rendering either
returns at most ``MAX_OUTPUT`` characters or raises a :class:`SuiteError` naming the bound, and
returns promptly (no render here may take more than a few seconds on a loaded machine).
"""

from __future__ import annotations

import textwrap
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_gpo.errors import SuiteError
from pytest_gpo.templates.limits import MAX_OUTPUT
from pytest_gpo.templates.sandbox import render, template_variables

magnitude = st.sampled_from([0, 1, 3, 10, 999, 10**4, 10**5, 10**6, 10**7, 10**9, 2**40])
small = st.integers(0, 60)
text = st.sampled_from(["'a'", "'ab\\n'", "'\\t'", "s", "('x' * N)"])


@st.composite
def growth(draw: st.DrawFn) -> str:
    n, m = draw(magnitude), draw(magnitude)
    base = draw(text).replace("N", str(draw(magnitude)))
    return draw(
        st.sampled_from(
            [
                f"{{{{ ({base} * {n}) * {m} }}}}",
                f"{{{{ {base} ~ {base} ~ ({base} * {n}) }}}}",
                f"{{{{ {base}|indent({n}) }}}}",
                f"{{{{ {base}|center({n}) }}}}",
                f"{{{{ ({base} * {n}).center({m}) }}}}",
                f"{{{{ ({base} * {n}).expandtabs({m}) }}}}",
                f"{{{{ ({base} * {n})|replace('', 'bbbbbbbb') }}}}",
                f"{{{{ '%{n}d' % 1 }}}}",
                f"{{{{ '{{:>{n}}}'.format(1) }}}}",
                f"{{{{ lipsum({n}) }}}}",
                f"{{{{ lipsum(3, False, 1, {n}) }}}}",
                f"{{{{ 2 ** {n} }}}}",
                f"{{{{ (2 ** {n % 400_000}) // (3 ** {m % 200_000}) }}}}",
                f"{{{{ {n} * {m} * {n} * {m} }}}}",
                f"{{% for i in range({n % 100_001}) %}}{{% for j in range({m % 100_001}) %}}"
                f"{{% endfor %}}{{% endfor %}}",
                f"{{% set ns = namespace(s={base}) %}}{{% for i in range({draw(small)}) %}}"
                f"{{% set ns.s = ns.s ~ ns.s %}}{{% endfor %}}{{{{ ns.s|length }}}}",
                f"{{% set ns = namespace(s={base}) %}}{{% for i in range({draw(small)}) %}}"
                f"{{% set ns.s = ns.s + ns.s %}}{{% endfor %}}{{{{ ns.s }}}}",
                f"{{{{ range({n % 100_001})|list|join('-' * {m}) }}}}",
                f"{{{{ ({base} * {n % 1000})|batch({m})|list|length }}}}",
            ]
        )
    )


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(growth())
def test_every_render_is_bounded(template: str) -> None:
    started = time.perf_counter()
    try:
        out = render(template, {"s": "hello\tworld\n"})
    except SuiteError as exc:
        assert "render bound" in exc.message or "template" in exc.message, exc.message
    else:
        assert len(out) <= MAX_OUTPUT
    assert time.perf_counter() - started < 10, template


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{{ (('a'*100000)*10000)|length }}", "'*' would build"),
        ("{{ 'x'|indent(2000000000) }}", "indent"),
        ("{{ lipsum(10**8) }}", "lipsum"),
        ("{{ (2**3000000)//(3**1000000) }}", "bits"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "loops",
        ),
        ("{{ ('{0:>999999999}')['format'](1) }}", "width"),
        # found by a tester told to break the bounds
        (
            "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}"
            "{{ f(40) }}",
            "more than",  # the call budget or, on a slow machine, the 5 s deadline
        ),
        (
            "{% for x in [0,1] recursive %}{% if loop.depth < 40 %}{{ loop([0,1]) }}{% endif %}"
            "{% endfor %}",
            "render",
        ),
        ("{{ '%*s'|format(900000000,'x') }}", "arguments"),
        ("{{ '%*s' % (900000000,'x') }}", "arguments"),
        ("{{ '{:>{}}'.format('x', 900000000) }}", "arguments"),
        ("{% set b = 'a\n'*1500 %}{{ b|indent('y'*1000000) }}", "indent"),
        ("{% set b='a '*2000 %}{{ b|wordwrap(1, true, 'y'*1000000) }}", "wordwrap"),
        ("{{ [[[[range(1000)|list]]]]|tojson(indent=100000) }}", "tojson"),
        ("{% set b='a'*1000000 %}{{ [b]*900 }}", "printing"),
        ("{{ range(100000)|map('string')|map('center',9000)|join }}", "join"),
        ("{{ ([[0]*1000000]*300)|sum(start=[])|length }}", "sum"),
    ],
)
def test_the_reported_hostile_templates_are_suite_errors(template: str, words: str) -> None:
    with pytest.raises(SuiteError, match="render bound") as info:
        render(template, {})
    assert words in info.value.message


def test_a_huge_integer_literal_is_a_suite_error_not_a_crash() -> None:
    with pytest.raises(SuiteError, match="cannot be read"):
        template_variables("{{ " + "9" * 5000 + " }}")


def test_ordinary_templates_render_as_before() -> None:
    template = (
        "Hello {{ name }}!{% for x in items %} {{ loop.index }}:{{ x }}{% endfor %}\n"
        "{{ 'ab' * 3 }} {{ 2 ** 10 }} {{ '%05d' % 42 }} {{ '{:>6}'.format('r') }}"
        " {{ text|indent(2) }} {{ items|join(', ') }} {{ 'a' ~ 'b' }} {{ lipsum(1)|length > 0 }}"
    )
    out = render(template, {"name": "Ada", "items": [1, 2], "text": "a\nb"})
    assert out.startswith("Hello Ada! 1:1 2:2\nababab 1024 00042      r a\n  b 1, 2 ab True")


def test_a_hostile_template_is_a_suite_error_and_other_suites_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\ngpo_model = gpo-sim/task\n")
    for name, prompt in (
        ("bomb", "{{ (('a'*100000)*10000)|length }} {{ ticket }}"),
        (
            "loops",
            "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}"
            "{% endfor %}{{ ticket }}",
        ),
        ("fine", "Route: {{ ticket }}"),
    ):
        pytester.path.joinpath(f"{name}.txt").write_text(prompt, encoding="utf-8")
        pytester.path.joinpath(f"{name}.gpo.yaml").write_text(
            textwrap.dedent(f"""
                prompt: {name}.txt
                cases: [{{vars: {{ticket: a}}, expected: x}}]
                scorers: [{{type: contains, value: x}}]
                threshold: 0
            """),
            encoding="utf-8",
        )
    result = pytester.runpytest("-p", "no:cacheprovider")
    out = result.stdout.str()
    assert "INTERNALERROR" not in out and "MemoryError" not in out and "Traceback" not in out
    assert out.count("render bound") >= 2, out
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1, outcomes
