"""Jinja2 in a sandbox with strict undefined variables: the engine behind :mod:`.template`.

Templates are compiled once per distinct text (an optimization run renders each candidate over
many cases), and the set of variables a template uses is computed from its syntax tree, so a
case missing one is reported at load time and a rewrite that drops or invents one is caught
before it is scored. Use the functions of :mod:`.template`; this module is imported
by them when a template needs Jinja2.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.meta
import jinja2.sandbox
import jinja2.utils
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.lexer import TokenStream
from jinja2.runtime import Context, LoopContext
from jinja2.visitor import NodeTransformer

from pytest_gpo.errors import SuiteError
from pytest_gpo.templates import limits

#: Names the sandbox adds to every compiled template (never a template's own variables).
_LOOP = "__gpo_loop"
_CONCAT = "__gpo_concat"
_INTERNAL = frozenset({_LOOP, _CONCAT})

#: Filters and string methods whose result can grow past their input (see limits.predicted_size).
_GROWING = frozenset(
    {"indent", "center", "ljust", "rjust", "zfill", "expandtabs", "replace", "wordwrap"}
)


class _BoundedSandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every growth path checked against :mod:`.limits`.

    Arithmetic operators are intercepted (sizes checked before they run, which also stops
    Jinja2 from folding huge constants at compile time); ``{% for %}`` loops and ``~`` are
    rewritten at parse time to count against the render's budget; every filter and every call
    (string methods, ``range``, ``lipsum``) has its width and count arguments checked.
    """

    intercepted_binops = frozenset({"*", "**", "+", "-", "/", "//", "%"})

    def _tokenize(
        self,
        source: str,
        name: str | None,
        filename: str | None = None,
        state: str | None = None,
    ) -> TokenStream:
        # the parser reads tokens as it goes: counting them bounds the parse (and the compile)
        stream = super()._tokenize(source, name, filename, state)
        return TokenStream(limits.bounded_tokens(stream), name, filename)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            iterable: nodes.Expr = loop.iter  # type: ignore[assignment]
            loop.iter = _call(_LOOP, [iterable], loop.lineno)
        rewritten: nodes.Template = _Rewrite().visit(tree)
        return rewritten

    def getattr(self, obj: Any, attribute: str) -> Any:
        # str.format is wrapped by the sandbox itself; its widths are checked here, on access
        if isinstance(obj, str) and attribute in ("format", "format_map"):
            limits.check_format(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, str) and argument in ("format", "format_map"):
            limits.check_format(obj, str(argument))
        return super().getitem(obj, argument)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        limits.check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        limits.spend_call()
        name = getattr(__obj, "__name__", "call")
        if __obj is _LIPSUM:
            limits.check_lipsum(args, kwargs)
        elif name not in ("format", "format_map", _LOOP, _CONCAT, "range", "safe_range"):
            limits.check_call_args(name, args, kwargs)
        if isinstance(__obj, LoopContext) and args:  # a recursive loop's inner iterations
            args = (limits.bounded_loop(args[0]), *args[1:])
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            if name in _GROWING or name == "join":
                limits.check_length(limits.predicted_size(name, owner, args, kwargs), name)
            elif name in ("format", "format_map"):
                limits.check_format(owner, name)
        return super().call(__context, __obj, *args, **kwargs)


def _call(name: str, args: list[nodes.Expr], lineno: int) -> nodes.Call:
    return nodes.Call(nodes.Name(name, "load"), args, [], None, None, lineno=lineno)


class _Rewrite(NodeTransformer):
    """``a ~ b`` -> ``__gpo_concat(a, b)`` in one pass over the tree."""

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        parts: list[nodes.Expr] = list(node.nodes)
        return _call(_CONCAT, parts, node.lineno)


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose width/count arguments and growth are checked before it runs."""
    pass_arg = jinja2.utils._PassArg.from_obj(func)
    skip = 0 if pass_arg is None else 1

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        value, rest = (args[skip], args[skip + 1 :]) if len(args) > skip else (None, ())
        if name == "format":
            if isinstance(value, str):
                limits.check_format(value, "format")
        else:
            limits.check_call_args(name, tuple(rest), kwargs)
        if name in _GROWING:
            limits.check_length(limits.predicted_size(name, value, tuple(rest), kwargs), name)
        elif name == "join" and value is not None and not isinstance(value, str):
            sep = str(rest[0] if rest else kwargs.get("d", ""))
            items, size = [], 0
            for item in value:  # counted as it is drawn: a lazy map() is never built whole
                size += len(str(item)) + len(sep)
                limits.check_length(size, name)
                items.append(item)
            args = (*args[:skip], items, *args[skip + 1 :])
        elif name == "sum" and isinstance(
            kwargs.get("start", rest[1] if len(rest) > 1 else 0), list | tuple | str
        ):
            raise limits.RenderLimit("sum of sequences (use join or a loop)")
        return func(*args, **kwargs)

    return bounded


_ENV = _BoundedSandbox(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    finalize=limits.check_rendered,
)
_ENV.filters = {name: _bounded_filter(name, f) for name, f in _ENV.filters.items()}
_LIPSUM = _ENV.globals["lipsum"]
_ENV.globals[_LOOP] = limits.bounded_loop
_ENV.globals[_CONCAT] = limits.bounded_concat


@lru_cache(maxsize=512)
def _compile(text: str) -> jinja2.Template:
    return _ENV.from_string(text)


@lru_cache(maxsize=512)
def _variables(text: str) -> frozenset[str]:
    return frozenset(jinja2.meta.find_undeclared_variables(_ENV.parse(text))) - _INTERNAL


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
    except ValueError as exc:  # e.g. an integer literal past Python's digit limit
        raise SuiteError(
            f"template cannot be read: {exc}", path=where, fix="shorten the literal"
        ) from None
    except RecursionError:
        raise SuiteError(
            "template nested too deeply to parse",
            path=where,
            fix="flatten the nested brackets or blocks of the template",
        ) from None
    except limits.RenderLimit as exc:
        raise SuiteError(
            f"template stopped at a parse bound: {exc}",
            path=where,
            fix="templates parse bounded (docs/reliability.md); write a shorter template",
        ) from None


def check_syntax(text: str) -> str | None:
    """The syntax error of a template as text, or ``None`` when it compiles."""
    try:
        _variables(text)
    except jinja2.TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    except RecursionError:
        return "nested too deeply to parse"
    except limits.RenderLimit as exc:
        return str(exc)
    except ValueError as exc:
        return str(exc)
    return None


def _bounded_output(template: jinja2.Template, variables: Mapping[str, Any]) -> str:
    """Render chunk by chunk, stopping once the output passes :data:`limits.MAX_OUTPUT`."""
    parts: list[str] = []
    size = 0
    for chunk in template.generate(**variables):
        size += len(chunk)
        limits.check_length(size, "the rendered prompt")
        parts.append(chunk)
    return "".join(parts)


def render(
    text: str, variables: Mapping[str, Any], *, where: str | None = None, case: str | None = None
) -> str:
    """Render a template; undefined variables and sandbox escapes are :class:`SuiteError` s."""
    token = limits.start_render()
    try:
        return _bounded_output(_compile(text), variables)
    except limits.RenderLimit as exc:
        raise SuiteError(
            f"template stopped at a render bound: {exc}",
            path=where,
            case=case,
            fix="templates render bounded (docs/reliability.md); build less text in the prompt",
        ) from None
    except MemoryError:
        raise SuiteError(
            "template ran out of memory while rendering",
            path=where,
            case=case,
            fix="build less text in the prompt",
        ) from None
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
    finally:
        limits.end_render(token)
