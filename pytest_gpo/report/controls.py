"""Control characters from answers, reasons and prompts, made visible instead of obeyed.

A model answer may hold ANSI escape sequences (``\\x1b[2J`` clears the screen, ``\\x1b]8;;``
forges a link), carriage returns that overwrite a line, bidirectional overrides that reorder
what a reviewer reads, or NUL bytes that truncate a file in some viewers. The terminal summary,
the failure texts and the markdown report show each such character as its Python escape
(``\\x1b``, ``\\r``, ``\\x00``, ``\\u202e``); newlines and tabs are kept. The JSON report keeps
the exact text (JSON escapes it), and pytest escapes what goes into JUnit XML.
"""

from __future__ import annotations

import re

from pytest_gpo.invisible import invisible

#: C0 controls but tab and newline, DEL, C1 controls, bidi embeddings/overrides/isolates,
#: line and paragraph separators, and lone surrogates (which no terminal can encode).
_CONTROLS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff]"
)


def _escape(match: re.Match[str]) -> str:
    ch = match.group(0)
    if ch == "\r":
        return "\\r"
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every control character (see the module doc) shown as its escape."""
    return _CONTROLS.sub(_escape, text)


def reveal(text: str) -> str:
    """``text`` with control characters *and* every invisible one (zero-width, variation
    selectors, blanks: :mod:`pytest_gpo.invisible`) shown as escapes: for candidate prompts,
    whose hidden characters a reviewer must see (answers keep an emoji's joiners)."""
    shown = visible(text)
    return "".join(
        (f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}") if invisible(ch) else ch
        for ch in shown
    )
