"""The bounds of one template render: how much a template may build, loop and compute.

Suite files and optimizer candidates are data, and a Jinja2 template is a small program: one
operator, filter or loop can ask for gigabytes (``{{ 'a' * 10**9 }}``, ``indent(2e9)``), hours
(two nested loops over ``range(100000)``) or minutes of CPU on big integers
(``(2**3000000) // (3**1000000)``). The sandbox (:mod:`.sandbox`) checks every growth path
*before* it runs against the bounds below, so a render either finishes within them or stops
with :class:`RenderLimit`, which the caller reports as a suite error (or a rejected optimizer
candidate). No render allocates more than about :data:`MAX_OUTPUT` characters per value or runs
more than :data:`MAX_ITERATIONS` loop iterations.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from jinja2.exceptions import SecurityError

#: The longest string or list (characters, items) a render may build, and its whole output.
MAX_OUTPUT = 1_000_000
#: Loop iterations one render may run, over all its ``{% for %}`` loops together.
MAX_ITERATIONS = 1_000_000
#: The largest integer an operator may take or make, in bits (about 6,000 decimal digits).
MAX_INT_BITS = 20_000
#: The largest width, count or length argument a filter or string method may take.
MAX_WIDTH = 10_000
#: Wall-clock seconds one render may take, checked at every loop iteration and call.
MAX_SECONDS = 5.0
#: ``lipsum``: at most this many paragraphs, of at most this many words each.
MAX_LIPSUM = (100, 1_000)
#: Jinja2 tokens a template source may hold. Parsing and compiling grow with the tokens (not
#: the characters: plain text is one token), and a compile cannot be interrupted, so the
#: count is capped before the parser sees more; a hand-written prompt holds a few hundred.
MAX_TOKENS = 20_000


class RenderLimit(SecurityError):
    """A render would go past one of this module's bounds."""


def bounded_tokens(tokens: Iterable[Any]) -> Iterator[Any]:
    """Pass a template's tokens to the parser, stopping past :data:`MAX_TOKENS` tokens or
    :data:`MAX_SECONDS` of lexing and parsing (checked every 256 tokens)."""
    deadline = time.monotonic() + MAX_SECONDS
    for count, token in enumerate(tokens, 1):
        if count > MAX_TOKENS:
            raise RenderLimit(
                f"the template has more than {MAX_TOKENS:,} Jinja2 tokens (expressions, "
                "operators, tags)"
            )
        if count % 256 == 0 and time.monotonic() > deadline:
            raise RenderLimit(f"parsing the template took more than {MAX_SECONDS:g} s")
        yield token


class _Budget:
    def __init__(self) -> None:
        self.iterations = MAX_ITERATIONS
        self.deadline = time.monotonic() + MAX_SECONDS

    def spend(self) -> None:
        self.iterations -= 1
        if self.iterations < 0:
            raise RenderLimit(
                f"the template's loops and calls ran more than {MAX_ITERATIONS:,} times"
            )
        if self.iterations % 256 == 0 and time.monotonic() > self.deadline:
            raise RenderLimit(f"the render took more than {MAX_SECONDS:g} s")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("gpo_render_budget")


def start_render() -> contextvars.Token[_Budget | None]:
    """Give the render about to run its own loop budget (pair with :func:`end_render`)."""
    return _BUDGET.set(_Budget())


def end_render(token: contextvars.Token[_Budget | None]) -> None:
    """Forget the budget of a finished render."""
    _BUDGET.reset(token)


def bounded_loop(iterable: Iterable[Any]) -> Iterator[Any]:
    """Iterate for a ``{% for %}`` loop, counting against the render's iteration budget."""
    budget = _BUDGET.get(None)
    for item in iterable:
        if budget is not None:
            budget.spend()
        yield item


def spend_call() -> None:
    """Count one call (a macro, a recursive loop, a method) against the render's budget."""
    budget = _BUDGET.get(None)
    if budget is not None:
        budget.spend()


def check_rendered(value: Any) -> Any:
    """``finalize``: refuse a container whose text form would pass :data:`MAX_OUTPUT`."""
    if isinstance(value, list | tuple | dict | set | frozenset):
        size = 0
        stack: list[Any] = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
                size += 2 * len(item)
            elif isinstance(item, list | tuple | set | frozenset):
                stack.extend(item)
                size += 2 * len(item) + 2
            else:
                size += len(item) if isinstance(item, str) else 24
            if size > MAX_OUTPUT:
                raise RenderLimit(f"printing a value of more than {MAX_OUTPUT:,} characters")
    return value


def bounded_concat(*parts: Any) -> str:
    """``a ~ b ~ ...`` with the result's length checked first."""
    texts = [str(p) for p in parts]
    check_length(sum(len(t) for t in texts), "'~'")
    return "".join(texts)


def check_length(n: int, what: str) -> None:
    """Refuse a value of ``n`` characters or items."""
    if n > MAX_OUTPUT:
        raise RenderLimit(f"{what} would build a value of {n:,} (the bound is {MAX_OUTPUT:,})")


def _check_int(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise RenderLimit(f"{what} on an integer of more than {MAX_INT_BITS:,} bits")


def _length(value: Any) -> int | None:
    if isinstance(value, str | bytes | list | tuple):
        return len(value)
    return None


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an arithmetic operation whose operands or result would be too big."""
    _check_int(left, repr(operator))
    _check_int(right, repr(operator))
    both_ints = all(isinstance(x, int) and not isinstance(x, bool) for x in (left, right))
    if operator == "**" and both_ints and right > 1 and abs(left) > 1:
        if abs(left).bit_length() * right > MAX_INT_BITS:
            raise RenderLimit(f"'**' would make an integer of more than {MAX_INT_BITS:,} bits")
    elif operator == "*":
        if both_ints:
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise RenderLimit(f"'*' would make an integer of more than {MAX_INT_BITS:,} bits")
            return
        for seq, count in ((left, right), (right, left)):
            n = _length(seq)
            if n is not None and isinstance(count, int) and not isinstance(count, bool):
                check_length(n * max(count, 0), "'*'")
    elif operator == "+":
        a, b = _length(left), _length(right)
        if a is not None and b is not None:
            check_length(a + b, "'+'")
    elif operator == "%" and isinstance(left, str):
        check_format(left, "'%'")


_WIDTHS = re.compile(r"(\d+)")
#: ``%*d``, ``%.*f`` (a width taken from the arguments) and ``{:>{}}`` (a nested field)
_INDIRECT = re.compile(r"%[-#0 +]*\d*\.?\*|\{[^{}]*:[^{}]*\{")


def check_format(spec: str, what: str) -> None:
    """Refuse a ``%`` or ``{}`` format string with a width or precision above the bound."""
    check_length(len(spec), what)
    if _INDIRECT.search(spec):
        raise RenderLimit(f"{what} with a width taken from its arguments")
    for match in _WIDTHS.finditer(spec):
        digits = match.group(1)
        if len(digits) > 6 or int(digits) > MAX_WIDTH:
            raise RenderLimit(f"{what} with a width of {digits[:12]} (the bound is {MAX_WIDTH:,})")


def _ints(args: Iterable[Any]) -> Iterator[int]:
    for a in args:
        if isinstance(a, int) and not isinstance(a, bool):
            yield a


def check_call_args(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse a width/count argument above :data:`MAX_WIDTH` (and huge integers anywhere)."""
    for value in (*args, *kwargs.values()):
        _check_int(value, name)
    for value in _ints((*args, *kwargs.values())):
        if value > MAX_WIDTH:
            raise RenderLimit(f"{name} with {value:,} (the bound is {MAX_WIDTH:,})")


def predicted_size(name: str, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    """How long a growing filter or string method's result would be (0: it does not grow)."""
    text = value if isinstance(value, str) else None
    ints = list(_ints((*args, *kwargs.values())))
    width = max(ints, default=0)
    if text is None:
        return 0
    if name == "indent":
        first = args[0] if args else kwargs.get("width", 4)
        pad = len(first) if isinstance(first, str) else width
        return len(text) + pad * (text.count("\n") + 2)
    if name == "wordwrap":
        wrap = args[2] if len(args) > 2 else kwargs.get("wrapstring", "\n")
        step = max(args[0] if args and isinstance(args[0], int) else 79, 1)
        return len(text) + (len(text) // step + 1) * len(str(wrap or "\n"))
    if name in ("center", "ljust", "rjust", "zfill"):
        return max(len(text), width)
    if name == "expandtabs":
        return len(text) + text.count("\t") * max(width, 8)
    if name == "replace":
        old = args[0] if args else kwargs.get("old", "")
        new = args[1] if len(args) > 1 else kwargs.get("new", "")
        if isinstance(old, str) and isinstance(new, str):
            hits = len(text) + 1 if old == "" else text.count(old)
            return len(text) + hits * max(len(new) - len(old), 0)
    items = args[0] if name == "join" and args else None
    if isinstance(items, list | tuple):
        return len(items) * len(text) + sum(len(str(i)) for i in items)
    return 0


def check_lipsum(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """``lipsum(n, html, min, max)`` within :data:`MAX_LIPSUM`."""
    n = args[0] if args else kwargs.get("n", 5)
    longest = args[3] if len(args) > 3 else kwargs.get("max", 100)
    paragraphs, words = MAX_LIPSUM
    if not isinstance(n, int) or not isinstance(longest, int) or n > paragraphs or longest > words:
        raise RenderLimit(f"lipsum beyond {paragraphs} paragraphs of {words} words")
