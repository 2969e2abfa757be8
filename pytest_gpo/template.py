"""Prompt templates: Jinja2 in a sandbox with strict undefined variables.

Templates are compiled once per distinct text (an optimization run renders each candidate over
many cases), and the set of variables a template uses is computed from its syntax tree, so a
case missing one is reported at load time and a rewrite that drops or invents one is caught
before it is scored.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.meta
import jinja2.sandbox
from jinja2.exceptions import SecurityError

from pytest_gpo.errors import SuiteError

_ENV = jinja2.sandbox.ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)


@lru_cache(maxsize=512)
def _compile(text: str) -> jinja2.Template:
    return _ENV.from_string(text)


@lru_cache(maxsize=512)
def _variables(text: str) -> frozenset[str]:
    return frozenset(jinja2.meta.find_undeclared_variables(_ENV.parse(text)))


def template_variables(text: str, *, where: str | None = None) -> frozenset[str]:
    """The variables a template uses; a syntax error is a :class:`SuiteError`."""
    try:
        return _variables(text)
    except jinja2.TemplateSyntaxError as exc:
        raise SuiteError(
            f"template syntax error on line {exc.lineno}: {exc.message}",
            path=where,
            fix="fix the Jinja2 syntax ({{ variable }}, {% if %}...{% endif %})",
        ) from None


def check_syntax(text: str) -> str | None:
    """The syntax error of a template as text, or ``None`` when it compiles."""
    try:
        _variables(text)
    except jinja2.TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    return None


def render(
    text: str, variables: Mapping[str, Any], *, where: str | None = None, case: str | None = None
) -> str:
    """Render a template; undefined variables and sandbox escapes are :class:`SuiteError` s."""
    try:
        return _compile(text).render(**variables)
    except jinja2.UndefinedError as exc:
        raise SuiteError(
            f"template variable is not defined: {exc.message}",
            path=where,
            case=case,
            fix="add the variable to the case's vars, or remove it from the prompt",
        ) from None
    except SecurityError as exc:
        raise SuiteError(
            f"template tried an unsafe operation ({exc}); templates render in a sandbox",
            path=where,
            case=case,
            fix="use plain variables and filters; attribute access to internals is refused",
        ) from None
    except jinja2.TemplateError as exc:
        raise SuiteError(
            f"template error: {exc}", path=where, case=case, fix="fix the prompt template"
        ) from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise SuiteError(
            f"template failed while rendering: {exc}",
            path=where,
            case=case,
            fix="check the filters and the types of the case's vars",
        ) from None
