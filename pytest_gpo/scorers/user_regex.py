"""Regular expressions written by users, run by RE2 so a match always takes linear time.

Python's ``re`` backtracks: ``^(a+)+$`` against 37 ``a`` and a ``!`` runs for minutes. RE2
(the ``google-re2`` package) matches in time linear in the text, and bounds each compiled
pattern's memory (8 MiB). It lacks what needs backtracking (backreferences, lookaround,
possessive and atomic groups, ``(?x)``); such a pattern is refused with the reason, so it is a
suite error, not a hang. Python's behaviour is kept where the two differ in spelling: the
``ignore_case``/``multiline``/``dotall`` flags, ``fullmatch``, ``\\Z`` (RE2's ``\\z``) and
``\\uXXXX``.
``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII in RE2 (Unicode in Python): use ``\\p{L}``,
``\\p{N}`` and friends for other scripts.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

#: What RE2 lacks, said once in every refusal.
UNSUPPORTED = (
    "pytest-gpo runs user regexes with RE2 (linear time), which has no backreferences "
    "(\\1, (?P=name)), lookaround ((?=...), (?!...), (?<=...), (?<!...)), possessive or "
    "atomic groups (a++, (?>...)), conditionals or (?x)"
)


class RegexError(ValueError):
    """A pattern RE2 cannot run; the message says why and whether Python's ``re`` accepts it."""


@dataclass(frozen=True)
class RegexMatch:
    """The part of the text a pattern matched."""

    text: str
    start: int
    end: int

    def group(self, index: int = 0) -> str:
        """The matched text (only group 0 is kept)."""
        if index != 0:
            raise IndexError("only the whole match (group 0) is kept")
        return self.text


@dataclass(frozen=True)
class UserRegex:
    """A compiled user pattern: :meth:`search` and :meth:`fullmatch`, in linear time."""

    pattern: str
    flags: int
    _compiled: Any

    def search(self, text: str) -> RegexMatch | None:
        """The first match anywhere in ``text``, or ``None``."""
        return self._wrap(self._compiled.search(_encodable(text)))

    def fullmatch(self, text: str) -> RegexMatch | None:
        """A match of the whole ``text``, or ``None``."""
        return self._wrap(self._compiled.fullmatch(_encodable(text)))

    @staticmethod
    def _wrap(match: Any) -> RegexMatch | None:
        if match is None:
            return None
        return RegexMatch(str(match.group(0)), int(match.start()), int(match.end()))


def _encodable(text: str) -> str:
    """``text`` with lone surrogates (half an emoji cut by ``max_tokens``) as U+FFFD: RE2
    reads UTF-8, which cannot hold them. Every other character keeps its place."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


_HEX = frozenset("0123456789abcdefABCDEF")


def _translate(pattern: str) -> str:
    """Python spellings RE2 writes otherwise: ``\\Z`` (end of text) is RE2's ``\\z``, and
    ``\\u00e9`` / ``\\U0001f600`` are RE2's ``\\x{00e9}`` / ``\\x{0001f600}``."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            width = {"u": 4, "U": 8}.get(nxt, 0)
            digits = pattern[i + 2 : i + 2 + width]
            if width and len(digits) == width and set(digits) <= _HEX:
                out.append("\\x{" + digits + "}")
                i += 2 + width
                continue
            out.append("\\z" if nxt == "Z" else ch + nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _inline_flags(flags: int) -> str:
    letters = ""
    if flags & re.IGNORECASE:
        letters += "i"
    if flags & re.MULTILINE:
        letters += "m"
    if flags & re.DOTALL:
        letters += "s"
    return f"(?{letters})" if letters else ""


def _reason(exc: BaseException) -> str:
    raw = exc.args[0] if exc.args else exc
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


@functools.lru_cache(maxsize=256)
def compile_user_regex(pattern: str, flags: int = 0) -> UserRegex:
    """Compile ``pattern`` (with ``re.IGNORECASE``/``MULTILINE``/``DOTALL`` in ``flags``).

    Raises :class:`RegexError` naming the reason: a syntax error, or a feature RE2 lacks.
    """
    import re2  # type: ignore[import-untyped]  # no stubs; loaded when a regex is compiled

    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    try:
        compiled = re2.compile(_inline_flags(flags) + _translate(_encodable(pattern)), options)
    except re2.error as exc:
        reason = _reason(exc)
        try:
            re.compile(pattern, flags)
        except (re.error, OverflowError, RecursionError) as py_exc:
            raise RegexError(f"invalid regular expression: {py_exc}") from None
        if "repetition size" in reason or "too large" in reason or "too big" in reason:
            why = "RE2 bounds repetition counts to 1,000 and a compiled pattern to 8 MiB"
        else:
            why = UNSUPPORTED
        message = f"Python's re accepts it but RE2 cannot run it ({reason}); {why}"
        raise RegexError(message) from None
    return UserRegex(pattern, flags, compiled)
