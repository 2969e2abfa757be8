"""Characters a reader does not see, for the candidate check and the secret scrubbing.

Format characters (zero-width spaces and joiners, bidi overrides), controls (ANSI escapes;
tab, line feed and carriage return are layout), private use, surrogates and unassigned code
points, every Default_Ignorable_Code_Point (variation selectors, the combining grapheme joiner,
Hangul fillers) and blanks that are not whitespace (U+2800 BRAILLE PATTERN BLANK). Each can
join words into one, hide text from a reviewer, or carry bytes.
"""

from __future__ import annotations

import unicodedata

_CATEGORIES = frozenset({"Cf", "Cc", "Co", "Cs", "Cn"})
_LAYOUT = frozenset("\t\n\r")
#: Unicode's Default_Ignorable_Code_Point ranges, whatever their category, and U+2800.
_RANGES = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


def invisible(ch: str) -> bool:
    """Whether ``ch`` (one character) is one a reader does not see (tab and line breaks are
    layout, not invisible)."""
    if ch in _LAYOUT:
        return False
    if unicodedata.category(ch) in _CATEGORIES:
        return True
    code = ord(ch)
    return any(low <= code <= high for low, high in _RANGES)


def without_invisible(text: str) -> str:
    """``text`` with its invisible characters removed."""
    return "".join(ch for ch in text if not invisible(ch))
