"""Jinja2 in a sandbox with strict undefined variables: the engine behind :mod:`.template`.

Templates are compiled once per distinct text (an optimization run renders each candidate over
many cases), and the set of variables a template uses is computed from its syntax tree, so a
case missing one is reported at load time and a rewrite that drops or invents one is caught
before it is scored. Use the functions of :mod:`.template`; this module is imported
by them when a template needs Jinja2.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.meta
import jinja2.sandbox
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context

from pytest_gpo.errors import SuiteError

#: The largest string, list or number (in characters, items or decimal digits, roughly) that
#: ``*`` and ``**`` may build while rendering. One such operator is all it takes to ask for
#: gigabytes (``{{ 'a' * 10**10 }}``) or minutes of CPU (``{{ 9 ** (9 ** 9) }}``).
MAX_OPERATOR_RESULT = 1_000_000


class _BoundedSandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """The immutable sandbox, with ``*`` and ``**`` refused when their result would be huge.

    Intercepting them also stops Jinja2 from folding such constants at compile time.
    """

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            _check_power(left, right)
        else:
            _check_product(left, right)
        return super().call_binop(context, operator, left, right)


def _size(value: Any) -> int | None:
    """Characters, items or decimal digits of an operand; None for other types."""
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return max(1, value.bit_length() * 3 // 10)
    if isinstance(value, str | bytes | list | tuple):
        return len(value)
    return None


def _check_product(left: Any, right: Any) -> None:
    a, b = _size(left), _size(right)
    if a is None or b is None:
        return
    if isinstance(left, int) and isinstance(right, int):
        big = a + b > MAX_OPERATOR_RESULT
    else:
        count = right if isinstance(right, int) else left
        length = b if isinstance(right, int) else a
        big = isinstance(count, int) and count > 0 and length * count > MAX_OPERATOR_RESULT
    if big:
        raise SecurityError(f"'*' would build a value larger than {MAX_OPERATOR_RESULT:,}")


def _check_power(left: Any, right: Any) -> None:
    if not (isinstance(left, int) and isinstance(right, int)) or right <= 1:
        return  # float powers overflow (an error), they do not grow without bound
    if abs(left) > 1 and max(1, abs(left).bit_length() - 1) * right > MAX_OPERATOR_RESULT * 3:
        raise SecurityError(f"'**' would build a number larger than {MAX_OPERATOR_RESULT:,} digits")


_ENV = _BoundedSandbox(
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
    except RecursionError:
        raise SuiteError(
            "template nested too deeply to parse",
            path=where,
            fix="flatten the nested brackets or blocks of the template",
        ) from None


def check_syntax(text: str) -> str | None:
    """The syntax error of a template as text, or ``None`` when it compiles."""
    try:
        _variables(text)
    except jinja2.TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    except RecursionError:
        return "nested too deeply to parse"
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
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise SuiteError(
            f"template failed while rendering: {type(exc).__name__}: {exc}",
            path=where,
            case=case,
            fix="check the filters and the types of the case's vars",
        ) from None
    except RecursionError:
        raise SuiteError(
            "template recursed too deeply while rendering (a macro calling itself?)",
            path=where,
            case=case,
            fix="remove the recursion from the template",
        ) from None
    except SyntaxError as exc:  # Python's own limits on the compiled template (100 indents)
        raise SuiteError(
            f"template nested too deeply to compile ({exc.msg})",
            path=where,
            case=case,
            fix="flatten the nested blocks of the template",
        ) from None
