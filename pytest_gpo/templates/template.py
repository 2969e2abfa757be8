"""Prompt templates: Jinja2 in a sandbox with strict undefined variables.

Rendering is :mod:`.sandbox`'s (Jinja2's immutable sandbox, bounded ``*``/``**``).
Most prompts only substitute variables by name (``Ticket: {{ ticket }}``); for those, the
variables are read off the text and a case that defines them all cannot fail to render, so
collecting suites never needs Jinja2 at all (importing and compiling it is most of what a
suite costs at collection). Anything else, or any doubt, goes to Jinja2.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

#: ``{{ name }}`` with an ASCII identifier; the only construct of a "plain" template.
_SUBSTITUTION = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
#: Names Jinja2 reads as something other than a variable of the case: constants, operators,
#: and its default globals (defined without being in the case's vars).
_NOT_PLAIN = frozenset(
    {
        "true",
        "false",
        "none",
        "True",
        "False",
        "None",
        "and",
        "or",
        "not",
        "in",
        "is",
        "if",
        "else",
        "self",
        "range",
        "dict",
        "lipsum",
        "cycler",
        "joiner",
        "namespace",
    }
)


@lru_cache(maxsize=2048)
def plain_variables(text: str) -> frozenset[str] | None:
    """The variables of a template that only substitutes them by name, else ``None``.

    "Only" as Jinja2's lexer sees it: outside the ``{{ name }}`` substitutions the text holds
    no ``{{``, ``{%`` or ``{#`` (nor a ``{`` right before a substitution, which would start
    one a character earlier). Such a template renders each variable with ``str`` and can fail
    only on a variable the case does not define.
    """
    parts = _SUBSTITUTION.split(text)
    names = parts[1::2]
    for index, data in enumerate(parts[0::2]):
        if "{{" in data or "{%" in data or "{#" in data:
            return None
        if index < len(names) and data.endswith("{"):
            return None
    if any(name in _NOT_PLAIN for name in names):
        return None
    return frozenset(names)


def template_variables(text: str, *, where: str | None = None) -> frozenset[str]:
    """The variables a template uses; a syntax error is a :class:`SuiteError`."""
    names = plain_variables(text)
    if names is not None:
        return names
    from pytest_gpo.templates import sandbox

    return sandbox.template_variables(text, where=where)


def check_syntax(text: str) -> str | None:
    """The syntax error of a template as text, or ``None`` when it compiles."""
    if plain_variables(text) is not None:
        return None
    from pytest_gpo.templates import sandbox

    return sandbox.check_syntax(text)


def renders_cleanly(text: str, variables: Iterable[str]) -> bool:
    """True when rendering ``text`` with these variables defined is known to succeed.

    Known without rendering only for plain templates (:func:`plain_variables`); for any other
    template the answer is False and the caller renders to find out.
    """
    names = plain_variables(text)
    return names is not None and names.issubset(variables)


def render(
    text: str, variables: Mapping[str, Any], *, where: str | None = None, case: str | None = None
) -> str:
    """Render a template; undefined variables and sandbox escapes are :class:`SuiteError` s."""
    from pytest_gpo.templates import sandbox

    return sandbox.render(text, variables, where=where, case=case)
