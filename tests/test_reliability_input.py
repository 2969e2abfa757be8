"""Reliability, hostile input: suite files, datasets and templates that try to break the loader.

Templates render in Jinja2's immutable sandbox and are rendered once per case at load time, so
an attribute escape is a failing item naming the suite file, the key and the case, before any
model call. YAML is loaded safely. Property tests feed thousands of generated suite files,
case files and templates (odd unicode, huge values, wrong types, deep nesting, NUL bytes,
BOMs, CRLF) to :func:`pytest_gpo.suites.load.load_suite`: the only exceptions allowed are
:class:`~pytest_gpo.errors.GpoError` subclasses whose message names the file and the key, and a
suite that loads can be rendered, hashed and keyed. See docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pytest_gpo.errors import GpoError, SuiteError
from pytest_gpo.evaluate import build_messages
from pytest_gpo.llm.setup import import_litellm
from pytest_gpo.llm.types import Request
from pytest_gpo.scorers.registry import builtin_registry
from pytest_gpo.suites.load import load_suite
from pytest_gpo.suites.model import Suite
from pytest_gpo.suites.paths import display
from pytest_gpo.templates.template import render

pytest_plugins = ["pytester"]

# In-process pytester runs restore sys.modules afterwards: litellm imported inside one would be
# half-forgotten, and the next run's HTTP calls fail ("Connection error"). Importing it while
# collecting, before any run, keeps one copy for the whole test session.
import_litellm()

REGISTRY = builtin_registry()

#: Messages about the file as a whole: they name the file and need no key.
WHOLE_FILE = (
    "malformed YAML",
    "the suite file is empty",
    "the suite file must be a mapping",
    "cannot read the suite file",
    "YAML nested too deeply",
    "the data expands to more than",
    "the data is nested more than",
)

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)


# -- sandbox and safe YAML --------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ticket.__class__.__base__ }}",
    "{{ ticket|attr('__class__') }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ self.__init__.__globals__ }}",
    "{{ range.__self__ }}",
    "{{ '{x.__class__}'.format_map({'x': ticket}) }}",
    "{{ '{0.__class__}'.format(ticket) }}",
    "{% set x = [] %}{{ x.append(1) }}",
    "{% set d = {} %}{{ d.update(a=1) }}",
    "{{ ticket.__init__.__globals__['sys'].modules['os'].system('touch PWNED') }}",
]


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def router_suite(root: Path, prompt: str, extra: str = "") -> Path:
    write(root / "prompt.txt", prompt)
    return write(
        root / "router.gpo.yaml",
        "name: router\nprompt: prompt.txt\n"
        "cases: [{id: k1, vars: {ticket: hello}, expected: billing}]\n" + extra,
    )


@pytest.mark.parametrize("template", ESCAPES)
def test_sandbox_escapes_are_refused_at_load_naming_file_key_and_case(
    tmp_path: Path, template: str
) -> None:
    suite = router_suite(tmp_path, "Ticket: {{ ticket }}\n" + template)
    with pytest.raises(SuiteError) as info:
        load_suite(suite, REGISTRY)
    err = info.value
    assert err.path == display(suite) and err.key == "prompt" and err.case == "k1"
    assert "cannot be rendered" in err.message
    assert "prompt.txt" in err.message  # the template file is named too
    assert not (tmp_path / "PWNED").exists()
    # and the same template given to the renderer at run time (an optimizer candidate)
    with pytest.raises(SuiteError):
        render(template, {"ticket": "hello"}, where="p.txt", case="k1")


def test_the_classic_escape_says_unsafe(tmp_path: Path) -> None:
    suite = router_suite(tmp_path, "{{ ''.__class__.__mro__ }} {{ ticket }}")
    with pytest.raises(SuiteError, match=r"unsafe operation.*__class__"):
        load_suite(suite, REGISTRY)


def test_escape_is_a_failed_item_without_traceback_and_others_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\ngpo_model = gpo-sim/task\n")
    router_suite(pytester.path / "bad", "{{ ''.__class__.__mro__ }} {{ ticket }}")
    write(pytester.path / "good" / "prompt.txt", "Echo: {{ ticket }}\n")
    write(
        pytester.path / "good" / "ok.gpo.yaml",
        "prompt: prompt.txt\ncases: [{id: a, vars: {ticket: x}}]\nscorers: [{type: contains, "
        "value: x}]\nthreshold: 0\n",
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*invalid suite: bad/router.gpo.yaml, key 'prompt', case 'k1': the prompt cannot be "
            "rendered with this case*unsafe operation*"
        ]
    )
    out = result.stdout.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out
    # the broken suite made no model call: only the good suite's single case did
    assert "model calls: 1," in out


YAML_ATTACKS = [
    "!!python/object/apply:os.system ['touch PWNED']",
    "!!python/object/new:subprocess.Popen [['touch', 'PWNED']]",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/object:__main__.Thing {a: 1}",
]


@pytest.mark.parametrize("attack", YAML_ATTACKS)
def test_yaml_python_tags_are_refused_in_suites_and_case_files(
    tmp_path: Path, attack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    suite = router_suite(tmp_path / "a", "{{ ticket }}", extra=f"description: {attack}\n")
    with pytest.raises(SuiteError, match="could not determine a constructor") as info:
        load_suite(suite, REGISTRY)
    assert info.value.path == display(suite)
    write(tmp_path / "b" / "prompt.txt", "{{ ticket }}")
    write(tmp_path / "b" / "cases.yaml", f"- vars:\n    ticket: {attack}\n  expected: x\n")
    suite = write(tmp_path / "b" / "s.gpo.yaml", "prompt: prompt.txt\ncases: cases.yaml\n")
    with pytest.raises(SuiteError, match="could not determine a constructor") as info:
        load_suite(suite, REGISTRY)
    assert info.value.key == "cases" and "cases.yaml" in str(info.value)
    assert not (tmp_path / "PWNED").exists()


RESOURCE_TEMPLATES = [
    "{{ 'a' * 10**10 }}",
    "{{ ticket * 10**10 }}",
    "{{ [1, 2] * 10**9 }}",
    "{{ 3 ** 10000000 }}",
    "{{ 10 ** (10 ** 8) }}",
    "{{ (10 ** 600000) * (10 ** 600000) }}",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{{ " + "(" * 5000 + "ticket" + ")" * 5000 + " }}",
]


def test_resource_hungry_templates_are_refused_quickly_and_within_memory(tmp_path: Path) -> None:
    """``*`` / ``**`` that would build huge values, and runaway recursion, are load errors.

    Run in a child process capped at 1.5 GB of address space and 60 s, so a regression fails
    this test instead of exhausting the machine.
    """
    script = textwrap.dedent(
        """
        import json, resource, sys, time
        resource.setrlimit(resource.RLIMIT_AS, (1536 * 2**20, 1536 * 2**20))
        from pytest_gpo.errors import GpoError
        from pytest_gpo.scorers.registry import builtin_registry
        from pytest_gpo.suites.load import load_suite
        from pathlib import Path
        root = Path(sys.argv[1])
        out = []
        for i, template in enumerate(json.loads(sys.argv[2])):
            d = root / f"t{i}"
            d.mkdir()
            (d / "prompt.txt").write_text("{{ ticket }}" + template)
            suite = d / "s.gpo.yaml"
            suite.write_text("prompt: prompt.txt\\ncases: [{id: k, vars: {ticket: hi}}]\\n"
                             "scorers: [{type: contains, value: x}]\\n")
            start = time.monotonic()
            try:
                load_suite(suite, builtin_registry())
                out.append(["loaded", time.monotonic() - start, ""])
            except GpoError as exc:
                out.append(["refused", time.monotonic() - start, str(exc)])
        print(json.dumps(out))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), json.dumps(RESOURCE_TEMPLATES)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.splitlines()[-1])
    for template, (status, seconds, message) in zip(RESOURCE_TEMPLATES, results, strict=True):
        assert status == "refused", template
        assert seconds < 5, (template, seconds)
        assert "s.gpo.yaml" in message
        assert "case 'k'" in message or "too deeply" in message


@pytest.mark.parametrize(
    "template",
    ["{{ 'ab' * 1000 }}", "{{ 2 ** 100 }}", "{{ [ticket] * 3 }}", "{{ 1.5 * 2 }}", "{{ 3 * 4 }}"],
)
def test_ordinary_products_and_powers_still_render(tmp_path: Path, template: str) -> None:
    suite = router_suite(
        tmp_path, "{{ ticket }} " + template, "scorers: [{type: contains, value: x}]\n"
    )
    loaded = load_suite(suite, REGISTRY)
    expected = str(eval(template.strip("{} ").replace("ticket", "'hello'")))
    assert render(loaded.prompt_text, {"ticket": "hello"}) == "hello " + expected


# -- known hostile inputs (each one crashed the loader before it was fixed) -------------------

BIG = "1" * 5000
CASE = "cases: [{id: k, vars: {ticket: hi}, expected: hi}]\n"
HOSTILE = [
    # (suite text, extra files, message fragment, key)
    ('prompt: "p\\0.txt"\n' + CASE, {}, "NUL character", "prompt"),
    ("prompt: ~nosuchuser-gpo/p.txt\n" + CASE, {}, "cannot expand the path", "prompt"),
    ("prompt: prompt.txt\n" + CASE + f"threshold: {BIG}\n", {}, "4300 digits", None),
    (
        "prompt: prompt.txt\ncases: c.json\n",
        {"c.json": f'[{{"vars": {{"ticket": {BIG}}}}}]'},
        "bad JSON in c.json",
        "cases",
    ),
    (
        "prompt: prompt.txt\ncases: c.jsonl\n",
        {"c.jsonl": f'{{"vars": {{"ticket": {BIG}}}}}'},
        "bad JSON on line 1",
        "cases",
    ),
    (
        "prompt: prompt.txt\ncases: c.json\n",
        {"c.json": '[{"vars": {"ticket": "\\ud800"}}]'},
        "lone UTF-16 surrogate",
        "cases[0].vars.ticket",
    ),
    (
        "prompt: prompt.txt\n" + CASE + 'description: "\\udfff"\n',
        {},
        "lone UTF-16 surrogate",
        "description",
    ),
    (
        "prompt: prompt.txt\n" + CASE + "params: {temperature: {1: a, b: c}}\n",
        {},
        "mixes keys of different kinds",
        "params.temperature",
    ),
    (
        "prompt: prompt.txt\ncases: [{vars: {ticket: {2001-01-01: a, x: b}}, expected: x}]\n",
        {},
        "mixes keys of different kinds",
        "cases[0].vars.ticket",
    ),
    (
        "prompt: prompt.txt\ncases: [{vars: {ticket: &a [*a]}, expected: x}]\n",
        {},
        "refers to a value that contains it",
        "cases[0].vars.ticket",
    ),
    # "billion laughs": 10 levels of 10 aliases each, 10**10 values once expanded
    (
        "prompt: prompt.txt\ncases: [{vars: {ticket: x}, expected: x}]\ndescription: [&a [x, x, x, "
        "x, x, x, x, x, x, x], "
        + ", ".join(
            f"&{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]" for i in range(9)
        )
        + "]\n",
        {},
        "expands to more than",
        "description",
    ),
    (
        "prompt: prompt.txt\ncases: c.json\n",
        {"c.json": '[{"vars": {"ticket": ' + "[" * 500 + "]" * 500 + "}}]"},
        "nested more than",
        None,
    ),
    ("prompt: prompt.txt\n" + CASE + "repeat: 99999999999999999\n", {}, "from 1 to 1000", "repeat"),
    ('name: "two\\nlines"\nprompt: prompt.txt\n' + CASE, {}, "one short line", "name"),
    ("prompt: prompt.txt\n" + CASE + "optimize: {preset: []}\n", {}, "optimize", None),
    (
        "prompt: prompt.txt\n" + CASE,
        {"prompt.txt": "{% if 1 %}" * 120 + "{% endif %}" * 120},
        "too deeply to compile",
        "prompt",
    ),
    (
        "prompt: prompt.txt\n" + CASE,
        {"prompt.txt": "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}"},
        "nested too deeply to parse",
        "prompt",
    ),
    (
        "prompt: prompt.txt\n" + CASE,
        {"prompt.txt": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"},
        "recursed too deeply",
        "prompt",
    ),
]


@pytest.mark.parametrize(
    ("suite", "files", "fragment", "key"),
    HOSTILE,
    ids=[f"hostile-{i}" for i in range(len(HOSTILE))],
)
def test_known_hostile_inputs_are_named_load_errors(
    tmp_path: Path, suite: str, files: dict[str, str], fragment: str, key: str | None
) -> None:
    write(tmp_path / "prompt.txt", "Ticket: {{ ticket }}\n")
    for name, content in files.items():
        write(tmp_path / name, content)
    path = write(tmp_path / "s.gpo.yaml", suite)
    with pytest.raises(GpoError) as info:
        load_suite(path, REGISTRY)
    err = info.value
    assert fragment in str(err)
    assert err.path == display(path)
    if key is not None:
        assert err.key is not None and err.key.startswith(key), err.key


# -- generated input --------------------------------------------------------------------------

SPECIAL_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ufeff",
    "\ufeffprompt.txt",
    "\r\n",
    "line1\r\nline2",
    "\u202e",
    "💥",
    "ǅ",
    "\u0301",
    "\U0010ffff",
    "\ud800",
    "a\udfffb",
    "~",
    "~nosuchuser/x.txt",
    "..",
    "../../etc/passwd",
    "/dev/null",
    "prompt.txt\x00.png",
    "NUL",
    "CON",
    "*",
    "{{",
    "}}",
    "{% raw %}",
    "{{ ticket }}",
    "&a",
    "*a",
    "!!python/name:os.system",
    "null",
    "True",
    "1e999",
    ".nan",
    "0x10",
    "- x",
    ": x",
    "#",
    "'",
    '"',
    "\\",
    "\t",
    "\x1b[31m",
    "c-" + "0" * 10,
]

odd_text = st.one_of(
    st.sampled_from(SPECIAL_TEXT),
    st.text(max_size=12),
    st.text(st.characters(codec="utf-8"), max_size=12),
    st.text(st.characters(categories=["Cs", "Co", "Cn", "Cc", "Zl", "Zp", "Mn"]), max_size=6),
    # long, not huge: the YAML parser is pure Python (a 300 KB value costs a second)
    st.integers(min_value=500, max_value=5_000).map(lambda n: "x" * n),
)
huge_int = st.integers(min_value=10**15, max_value=10**4000) | st.integers(max_value=-(10**15))
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=5),
    huge_int,
    st.floats(allow_nan=True, allow_infinity=True),
    odd_text,
)
odd_key = st.one_of(st.integers(), st.booleans(), st.none(), st.dates(), st.floats())
value = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(odd_text, inner, max_size=4),
        st.lists(inner, max_size=4),
        st.dictionaries(odd_text, inner, max_size=4),
        st.dictionaries(odd_text | odd_key, inner, max_size=2),
    ),
    max_leaves=10,
)
var_name = st.sampled_from(["ticket", "q", "name"]) | odd_text


def rarely(draw: st.DrawFn, n: int = 10) -> bool:
    """True one time in ``n``: how often a generated part is replaced by something odd."""
    return draw(st.integers(0, n - 1)) == 0


@st.composite
def case(draw: st.DrawFn, hostile: bool = True) -> Any:
    """A case: usually plausible (``ticket`` and ``expected`` with odd values), sometimes not."""
    if not hostile:
        item = {"vars": {"ticket": draw(scalar)}, "expected": draw(scalar)}
        if draw(st.booleans()):
            item["id"] = draw(odd_text | st.integers())
        return item
    if rarely(draw, 20):
        return draw(value)
    item: dict[Any, Any] = {}
    if draw(st.booleans()):
        item["id"] = draw(st.one_of(odd_text, st.integers(), huge_int, value))
    if not rarely(draw, 20):
        item["vars"] = (
            draw(st.dictionaries(var_name, value, max_size=3))
            if rarely(draw, 8)
            else {"ticket": draw(value if rarely(draw, 4) else scalar)}
        )
    if not rarely(draw, 8):
        item["expected"] = draw(value if rarely(draw, 4) else scalar)
    if rarely(draw, 20):
        item[draw(odd_text)] = draw(value)
    return item


SCORER_TYPES = [
    "exact",
    "contains",
    "regex",
    "choice",
    "number",
    "fuzzy",
    "json",
    "judge",
    "semantic",
    "nope",
    "Exact",
]


@st.composite
def scorer(draw: st.DrawFn) -> Any:
    if rarely(draw, 20):
        return draw(value)
    spec: dict[Any, Any] = {"type": draw(st.sampled_from(SCORER_TYPES) | odd_text)}
    for key in draw(
        st.lists(
            st.sampled_from(
                [
                    "ignore_case",
                    "value",
                    "pattern",
                    "choices",
                    "tolerance",
                    "weight",
                    "name",
                    "min",
                    "strip",
                    "required",
                    "schema",
                    "equals",
                    "model",
                    "rubric",
                    "threshold",
                    "bogus",
                ]
            ),
            max_size=3,
        )
    ):
        spec[key] = draw(value)
    return spec


GOOD_SCORERS = [
    None,
    [{"type": "exact"}],
    [{"type": "contains", "value": "x"}],
    [{"type": "regex", "pattern": "^a"}],
    [{"type": "fuzzy"}],
    [{"type": "exact", "weight": 2}, {"type": "contains", "value": "y", "ignore_case": True}],
]


@st.composite
def suite_doc(draw: st.DrawFn, hostile: bool = True) -> Any:
    """A suite mapping: mostly plausible, every key sometimes replaced by something odd.

    ``hostile=False``: a valid suite whose odd parts are only values (case variables, expected
    answers, ids, the name and the description), so that many suites load and are checked.
    """
    if not hostile:
        doc: dict[str, Any] = {
            "prompt": "prompt.txt",
            "cases": draw(st.lists(case(False), min_size=1, max_size=5)),
        }
        scorers = draw(st.sampled_from(GOOD_SCORERS))
        if scorers is not None:
            doc["scorers"] = scorers
        if draw(st.booleans()):
            doc["name"] = draw(st.sampled_from(["router", "my suite", "ünï"]) | odd_text)
        if draw(st.booleans()):
            doc["description"] = draw(odd_text)
        if draw(st.booleans()):
            doc["threshold"] = draw(st.floats(0, 1))
        if draw(st.booleans()):
            doc["params"] = {"temperature": draw(st.floats(0, 2)), "seed": draw(st.integers())}
        return doc
    if rarely(draw, 30):
        return draw(value)

    def maybe(good: st.SearchStrategy[Any]) -> Any:
        return draw(value) if rarely(draw, 12) else draw(good)

    doc = {}
    if draw(st.booleans()):
        doc["name"] = maybe(st.sampled_from(["router", "my suite", "ünï"]) | odd_text)
    if not rarely(draw, 30):
        doc["prompt"] = maybe(st.just("prompt.txt"))
    if not rarely(draw, 30):
        doc["cases"] = maybe(st.lists(case(), min_size=1, max_size=5))
    for key, good in (
        ("scorers", st.lists(scorer(), max_size=3)),
        (
            "threshold",
            st.floats(0, 1) | st.fixed_dictionaries({"pass_rate": st.floats(0, 1)}) | value,
        ),
        ("system", odd_text),
        ("model", odd_text),
        (
            "params",
            st.dictionaries(
                st.sampled_from(["temperature", "n", "stream", "seed", "max_tokens", "api_key"])
                | odd_text,
                value,
                max_size=3,
            ),
        ),
        ("tolerance", st.floats(0, 1)),
        ("alpha", st.floats(0, 1)),
        ("repeat", st.integers(-2, 2000) | huge_int),
        ("min_pass", st.integers(-2, 5)),
        (
            "optimize",
            st.dictionaries(
                st.sampled_from(["steps", "candidates", "preset", "seed", "retrieval", "bogus"]),
                value,
                max_size=3,
            ),
        ),
        ("description", odd_text),
    ):
        if rarely(draw, 6):
            doc[key] = maybe(good)
    if rarely(draw, 20):
        doc[draw(odd_text)] = draw(value)
    return doc


YAML_TAILS = [
    "",
    "\nx: !!python/object/apply:os.system ['touch PWNED']\n",
    "\ndescription: !!binary aGVsbG8=\n",
    "\ndescription: !!set {a, b}\n",
    "\ndescription: 2001-12-14t21:59:43.10-05:00\n",
    "\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n",
    "\n<<: {threshold: 0.5}\n",
    "\ndescription: &r [*r]\n",
    "\nprompt: prompt.txt\nprompt: other.txt\n",
    "\n? [a, b]\n: c\n",
    "\n%YAML 1.1\n---\n",
    "\n---\nsecond: document\n",
    '\ndescription: "\\ud800"\n',
    '\ndescription: "\\0\\x07\\u202e"\n',
]


def mutate(data: bytes, draw: st.DrawFn) -> bytes:
    """Byte-level damage: BOM, CRLF, NUL bytes, invalid UTF-8, truncation, tabs."""
    if not rarely(draw, 4):
        return data
    for op in draw(st.lists(st.integers(0, 7), min_size=1, max_size=2)):
        if op == 0:
            data = b"\xef\xbb\xbf" + data
        elif op == 1:
            data = data.replace(b"\n", b"\r\n")
        elif op == 2 and data:
            at = draw(st.integers(0, len(data)))
            data = data[:at] + b"\x00" + data[at:]
        elif op == 3 and data:
            at = draw(st.integers(0, len(data)))
            junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"]))
            data = data[:at] + junk + data[at:]
        elif op == 4 and data:
            data = data[: draw(st.integers(0, len(data)))]
        elif op == 5:
            data = data.replace(b"  ", b"\t")
        elif op == 6:
            data = data.replace(b"\n", b"\r")
    return data


DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml(doc: Any, draw: st.DrawFn, hostile: bool = True) -> bytes:
    try:
        text = yaml.dump(
            doc,
            Dumper=DUMPER,
            allow_unicode=draw(st.booleans()),
            default_flow_style=draw(st.sampled_from([None, True, False])),
        )
    except (yaml.YAMLError, ValueError, RecursionError):
        text = repr(doc)
    if not hostile:
        return text.encode("utf-8", "surrogatepass")
    if rarely(draw, 3):
        text += draw(st.sampled_from(YAML_TAILS))
    return mutate(text.encode("utf-8", "surrogatepass"), draw)


TEMPLATE_PARTS = [
    "Ticket: ",
    "{{ ticket }}",
    "{{ q }}",
    "{{ ticket|upper }}",
    "{{ ticket|int + 1 }}",
    "{{ ticket|length }}",
    "{% if ticket %}yes{% else %}no{% endif %}",
    "{{ ticket[0] }}",
    "{% for c in ticket %}{{ c }}{% endfor %}",
    "{{ ticket|tojson }}",
    "{{ ticket.upper() }}",
    "{{ ticket|join(',') }}",
    "{{ ticket|format(1) }}",
    "{{ ticket ~ 1 }}",
    "{{ 1 / 0 }}",
    "{{ ticket / 2 }}",
    "{{ ticket|round }}",
    "{{ ticket.missing.deeper }}",
    "{{ ticket|attr('x') }}",
    "{{ range(10)|list }}",
    "{{ 'a' * 10**7 }}",
    "{{ 7 ** 7 ** 7 }}",
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "{% endfor %}",
    "{% if %}",
    "{{ ticket| }}",
    "{% raw %}{{ x }}{% endraw %}",
    "{% include 'x.txt' %}",
    "{% extends 'base' %}",
    "{% import 'm' as m %}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "{% set x = ticket %}{{ x }}",
    "{{ ''.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self }}",
    "{{ caller() }}",
    "{{ " + "(" * 500 + "1" + ")" * 500 + " }}",
    "{% if 1 %}" * 150 + "x" + "{% endif %}" * 150,
    "\x00",
    "\ufeff",
    "\r\n",
    "💥",
    "\ud800",
]


@st.composite
def template_bytes(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.sampled_from(TEMPLATE_PARTS) | odd_text, min_size=0, max_size=6))
    return mutate("".join(parts).encode("utf-8", "surrogatepass"), draw)


@st.composite
def dataset(draw: st.DrawFn) -> tuple[str, bytes]:
    """(file suffix, bytes) of a case file, plausible or not."""
    suffix = draw(st.sampled_from([".jsonl", ".json", ".yaml", ".yml", ".csv", ".txt", ""]))
    cases = draw(st.lists(case(), max_size=6))
    style = draw(st.integers(0, 9))
    if style == 0:
        data = draw(st.binary(max_size=200))
    elif suffix == ".jsonl":
        lines = []
        for item in cases:
            try:
                lines.append(json.dumps(item, ensure_ascii=draw(st.booleans()), default=str))
            except (ValueError, TypeError, RecursionError):
                lines.append(repr(item))
        data = "\n".join(lines).encode("utf-8", "surrogatepass")
    elif suffix == ".json":
        wrapped: Any = {"cases": cases} if style == 1 else cases
        try:
            text = json.dumps(wrapped, ensure_ascii=draw(st.booleans()), default=str)
        except (ValueError, TypeError, RecursionError):
            text = repr(wrapped)
        if style == 2:
            text = "[" * 3000 + "]" * 3000
        data = text.encode("utf-8", "surrogatepass")
    elif suffix == ".csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        header = draw(
            st.lists(st.sampled_from(["id", "ticket", "expected", "q"]) | odd_text, max_size=4)
        )
        writer.writerow(header)
        for _ in range(draw(st.integers(0, 5))):
            writer.writerow(draw(st.lists(odd_text, max_size=5)))
        data = buffer.getvalue().encode("utf-8", "surrogatepass")
    else:
        data = dump_yaml({"cases": cases} if style == 1 else cases, draw)
    return suffix, mutate(data, draw)


counter = itertools.count()


def fresh_dir(base: Path) -> Path:
    path = base / f"ex{next(counter)}"
    path.mkdir(parents=True)
    return path


def check_load(suite_path: Path) -> str:
    """Load a suite: a usable Suite, or a GpoError naming the file and the key; else fail."""
    try:
        suite = load_suite(suite_path, REGISTRY)
    except GpoError as exc:
        text = str(exc)
        assert exc.path is not None, text
        assert display(suite_path) in text or suite_path.name in text, text
        named = exc.key is not None or exc.case is not None
        assert named or any(m in exc.message for m in WHOLE_FILE), text
        assert "Traceback" not in text
        return "error"
    check_usable(suite)
    return "loaded"


def check_usable(suite: Suite) -> None:
    """What a loaded suite must allow: render, hash, key and serialize every case."""
    assert suite.cases
    ids = [c.id for c in suite.cases]
    assert len(set(ids)) == len(ids)
    assert all(i and "\n" not in i and len(i) <= 200 for i in ids)
    suite.dataset_hash()
    suite.scorer_config_hash()
    assert suite.name.isprintable()
    for c in suite.cases:
        messages = build_messages(suite, suite.prompt_text, c)
        Request(model="m", messages=messages, params=suite.params).cache_key()
        json.dumps([m["content"] for m in messages]).encode("utf-8")


def run_fuzz(
    n: int, strategy: st.SearchStrategy[Any], body: Callable[[Any], str]
) -> dict[str, int]:
    outcomes: dict[str, int] = {"loaded": 0, "error": 0}

    @settings(FUZZ, max_examples=n)
    @given(strategy)
    def inner(example: Any) -> None:
        outcomes[body(example)] += 1

    with own_generation():
        inner()
    return outcomes


def test_generated_suite_files_load_or_fail_with_a_named_error(tmp_path: Path) -> None:
    @st.composite
    def example(draw: st.DrawFn) -> tuple[bytes, bytes]:
        hostile = draw(st.booleans())
        template = draw(template_bytes()) if hostile and rarely(draw, 4) else b"Ticket: "
        doc = draw(suite_doc(hostile))
        return dump_yaml(doc, draw, hostile), template + b"{{ ticket }}"

    def body(ex: tuple[bytes, bytes]) -> str:
        root = fresh_dir(tmp_path)
        write(root / "prompt.txt", ex[1])
        return check_load(write(root / "s.gpo.yaml", ex[0]))

    outcomes = run_fuzz(1000, example(), body)
    assert sum(outcomes.values()) >= 1000
    assert outcomes["loaded"] >= 20 and outcomes["error"] >= 500, outcomes
    assert not list(tmp_path.rglob("PWNED"))


def test_generated_case_files_load_or_fail_with_a_named_error(tmp_path: Path) -> None:
    def body(ex: tuple[str, bytes]) -> str:
        suffix, data = ex
        root = fresh_dir(tmp_path)
        write(root / "prompt.txt", "Ticket: {{ ticket }}\n")
        write(root / f"cases{suffix}", data)
        return check_load(
            write(
                root / "s.gpo.yaml",
                f"prompt: prompt.txt\ncases: cases{suffix}\n"
                "scorers: [{type: contains, value: x}]\n",
            )
        )

    # valid case files of every format load (fixed examples: how many generated files are
    # valid depends on what the session imported before, see sample_in_fresh_process)
    valid = {
        ".jsonl": b'{"vars": {"ticket": "a"}, "expected": "x"}\n{"vars": {"ticket": "b"}}\n',
        ".json": b'[{"id": "c1", "vars": {"ticket": "a"}, "expected": "x"}]',
        ".yaml": b"- {vars: {ticket: a}, expected: x}\n",
        ".csv": b"id,ticket,expected\nc1,a,x\n",
    }
    assert [body(item) for item in valid.items()] == ["loaded"] * len(valid)
    outcomes = run_fuzz(600, dataset(), body)
    assert sum(outcomes.values()) >= 600
    # in a full session this generation is less varied (9 to 11 load), because hypothesis draws
    # on the literals of every module imported before; the property is that none crashes
    assert outcomes["loaded"] >= 5 and outcomes["error"] >= 200, outcomes


def test_generated_templates_load_or_fail_with_a_named_error(tmp_path: Path) -> None:
    cases = json.dumps(
        [
            {"id": "k1", "vars": {"ticket": "hello", "q": 3}},
            {"id": "k2", "vars": {"ticket": "", "q": None}},
            {"id": "k3", "vars": {"ticket": "x\x00y\u202e💥", "q": [1, {"a": "b"}]}},
        ]
    )

    def body(data: bytes) -> str:
        root = fresh_dir(tmp_path)
        write(root / "prompt.txt", data)
        write(root / "cases.json", cases)
        return check_load(
            write(
                root / "s.gpo.yaml",
                "prompt: prompt.txt\ncases: cases.json\nscorers: [{type: contains, value: x}]\n",
            )
        )

    outcomes = run_fuzz(600, template_bytes(), body)
    assert sum(outcomes.values()) >= 600
    assert outcomes["loaded"] >= 50 and outcomes["error"] >= 100, outcomes


# -- end to end: broken suites next to good ones ----------------------------------------------


@st.composite
def fuzzed_suite(draw: st.DrawFn) -> tuple[bytes, bytes, str, bytes]:
    """(suite file, template, case file suffix, case file) of one generated suite."""
    hostile = draw(st.booleans())
    doc = draw(suite_doc(hostile))
    suffix, data = draw(dataset())
    if hostile and isinstance(doc, dict) and draw(st.booleans()):
        doc["cases"] = f"cases{suffix}"
    template = draw(template_bytes()) if hostile else b"Ticket: "
    return dump_yaml(doc, draw, hostile), template + b"{{ ticket }}", suffix, data


@contextlib.contextmanager
def own_generation() -> Iterator[None]:
    """Generation that depends on the strategy and the seed only.

    Hypothesis mixes into its generation the string and number literals of every "local"
    module in ``sys.modules`` (``providers._get_local_constants``), and an editable checkout
    makes every pytest-gpo module local: a refactor that adds or renames a literal anywhere in
    the package changes what a derandomized strategy generates (once: thirty identical suites).
    The fuzz tests here state their variety floors for the strategy itself, so they generate
    without that pool. If a hypothesis release moves the hook, generation falls back to the
    default (the floors were met that way too, in a fresh interpreter).
    """
    from hypothesis.internal.conjecture import providers

    original = getattr(providers, "_get_local_constants", None)
    if original is None:
        yield
        return
    empty = providers.Constants()
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE.cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = original
        providers.CONSTANTS_CACHE.cache.clear()


def sample(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """``n`` generated examples, deterministic (hypothesis' first, simplest ones skipped)."""
    found: list[Any] = []

    @settings(FUZZ, max_examples=n + 10, phases=[Phase.generate])
    @given(strategy)
    def collect(example: Any) -> None:
        found.append(example)

    with own_generation():
        collect()
    assert len(found) >= n
    return found[-n:]


def sample_in_fresh_process(strategy_name: str, n: int) -> list[Any]:
    """:func:`sample` in a fresh interpreter.

    Hypothesis mixes into its generation the constants (string and number literals) of every
    "local" module in ``sys.modules`` (``hypothesis.internal.conjecture.providers.
    _get_local_constants``): not test files, but pytest-gpo's own modules, which this editable
    checkout makes local, and the ``conftest.py`` files pytester writes under /tmp. So what a
    derandomized strategy generates depends on what the session imported before: in a full
    session this strategy came out as thirty identical suites. A fresh interpreter gives the
    generation this test was written for.
    """
    import pickle

    code = (
        "import pickle, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import test_reliability_input as m\n"
        f"sys.stdout.buffer.write(pickle.dumps(m.sample(m.{strategy_name}(), {n})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=True, timeout=300
    )
    result: list[Any] = pickle.loads(done.stdout)
    return result


def test_thirty_generated_suites_end_to_end_no_internal_error(pytester: pytest.Pytester) -> None:
    specs = sample_in_fresh_process("fuzzed_suite", 30)
    pytester.makeini("[pytest]\ngpo_model = gpo-sim/task\ngpo_max_calls = 400\n")
    root = pytester.path
    for i, (suite_file, template, suffix, data) in enumerate(specs):
        d = root / f"s{i:02d}"
        write(d / "prompt.txt", template)
        write(d / f"cases{suffix}", data)
        write(d / f"fuzz{i:02d}.gpo.yaml", suite_file)
    write(root / "good" / "prompt.txt", "Echo: {{ ticket }}\n")
    write(
        root / "good" / "good.gpo.yaml",
        "name: zz_good\nprompt: prompt.txt\n"
        "cases: [{id: a, vars: {ticket: x}}]\nscorers: [{type: contains, value: x}]\n"
        "threshold: 0\n",
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--gpo-report", ".gpo/report.md", "--junitxml", "junit.xml"
    )
    out = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in out and "Traceback" not in out, out[-3000:]
    assert "during collection" not in out, out[-3000:]
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), out[-3000:]
    outcomes = result.parseoutcomes()
    assert sum(outcomes.get(k, 0) for k in ("passed", "failed", "errors")) == 31, outcomes
    # some generated suites were refused at load, some ran (scored on the simulated model)
    refused = [line for line in result.stdout.lines if line.startswith("invalid suite:")]
    assert 3 <= len(refused) <= 27, outcomes
    # the good suite ran and passed next to 30 generated ones
    cases = ElementTree.parse(root / "junit.xml").getroot().iter("testcase")
    good = [c for c in cases if c.get("name") == "zz_good"]
    assert len(good) == 1
    assert all(child.tag in ("properties", "system-out", "system-err") for child in good[0])
    assert (root / ".gpo" / "report.json").is_file()
    assert not list(root.rglob("PWNED"))
