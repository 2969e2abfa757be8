"""The hostile-input walker: parsed suite and case data that later steps could not handle.

Text that cannot be encoded, numbers that are not finite, mapping keys that cannot be sorted,
alias cycles, alias bombs and deep nesting are refused with an error naming the key, before
anything hashes, renders or scores them.
"""

from __future__ import annotations

import math
from typing import Any

from pytest_gpo.errors import SuiteError

#: Most values (strings, numbers, list items, mapping entries) a suite or case file may expand
#: to, counting every use of a YAML alias: ``&a [x, x, ...]`` nested a few levels is a "billion
#: laughs" that would otherwise exhaust memory when the cases are hashed or rendered.
MAX_VALUES = 5_000_000
#: Deepest nesting of lists and mappings accepted in suite and case files.
MAX_DEPTH = 200


#: Nesting up to which :func:`_plain` recurses before leaving the data to the careful walk.
_PLAIN_DEPTH = 40


def _plain(data: Any) -> bool:
    """The fast path of :func:`check_data`: True when the data cannot hold any of its problems.

    That is: ASCII text keys only (sortable, no surrogate), ASCII text values, no container
    reached twice (no YAML alias: no cycle, no expansion), shallow, fewer values than the
    limit. Ordinary suite and case files are all of this kind; anything else gets the careful
    walk, which finds the problem, if any, and names its key. About 3 x faster than the walk.
    """
    seen: set[int] = set()
    count = 0

    def plain(value: Any, depth: int) -> bool:
        nonlocal count
        count += 1
        if isinstance(value, str):
            return value.isascii()
        if isinstance(value, float):
            return math.isfinite(value)
        if isinstance(value, dict):
            children: Any = value.values()
            if not all(isinstance(k, str) and k.isascii() for k in value):
                return False
        elif isinstance(value, list | tuple):
            children = value
        else:
            return True
        if depth >= _PLAIN_DEPTH or id(value) in seen or count > MAX_VALUES:
            return False
        seen.add(id(value))
        return all(plain(child, depth + 1) for child in children)

    return plain(data, 0)


def non_finite_text(value: float) -> str:
    """How a user wrote a number that is not finite, in YAML's spelling: ``.nan``, ``-.inf``."""
    if math.isnan(value):
        return ".nan"
    return ".inf" if value > 0 else "-.inf"


def check_data(data: Any, *, where: str, key: str | None = None, source: str | None = None) -> None:
    """Refuse parsed suite or case data that later steps cannot handle; names the bad key.

    Checked: text that is not valid Unicode (a lone surrogate from a ``\\ud800`` escape: it
    cannot be encoded, hashed or sent), numbers that are not finite (YAML ``.inf``, ``.nan``,
    JSON ``NaN``, ``1e999``: a weight of ``.inf`` turns scores into NaN, and no strict JSON
    file can hold one), mapping keys that JSON cannot sort (``{1: a, b: c}``,
    a date as a key: cases and params are hashed as canonical JSON), self-referencing YAML
    aliases, nesting deeper than :data:`MAX_DEPTH` and more than :data:`MAX_VALUES` values once
    aliases are expanded.
    """
    if _plain(data):
        return
    prefix = f"{source}: " if source else ""
    # Depth-first, each container once: its size (values once aliases are expanded) and height
    # are memoized, so an alias bomb costs the size of the file, not of its expansion. Paths
    # are linked (parent, step) pairs, spelled out only for an error.
    Where = tuple[Any, Any] | None
    stack: list[tuple[Any, Where, int, bool]] = [(data, None, 0, False)]
    on_path: set[int] = set()
    done: dict[int, tuple[int, int]] = {}  # id -> (size, height)
    containers = (dict, list, tuple)

    def fail(message: str, at: Where, fix: str) -> SuiteError:
        steps: list[str] = []
        while at is not None:
            at, step = at
            steps.append(step)
        text = key or ""
        for step in reversed(steps):
            text += step if step.startswith("[") or not text else "." + step
        if len(text) > 80:
            text = text[:50] + "..." + text[-25:]
        return SuiteError(f"{prefix}{message}", path=where, key=text or key, fix=fix)

    def too_deep(at: Where) -> SuiteError:
        return fail(f"the data is nested more than {MAX_DEPTH} levels deep", at, "flatten the data")

    while stack:
        value, at, depth, leaving = stack.pop()
        if isinstance(value, str):
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise fail(
                        f"text holds an invalid character {value[exc.start]!r} (a lone "
                        "UTF-16 surrogate, from an escape like \\ud800)",
                        at,
                        "escape whole characters (\\U0001F600), not surrogate halves",
                    ) from None
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise fail(
                f"{non_finite_text(value)} is not a finite number; every number in a suite "
                "or case file must be one",
                at,
                "write a finite number, or quote the value ('.inf') if you mean the text",
            )
        if not isinstance(value, containers):
            continue
        ident = id(value)
        if leaving:
            on_path.discard(ident)
            size, height = 1, 1
            for child in (*value.keys(), *value.values()) if isinstance(value, dict) else value:
                if isinstance(child, containers):
                    sub = done[id(child)]
                    size += sub[0]
                    height = max(height, sub[1] + 1)
                else:
                    size += 1
            done[ident] = (size, height)
            if size > MAX_VALUES:
                raise fail(
                    f"the data expands to more than {MAX_VALUES:,} values (YAML "
                    "aliases repeated inside each other?)",
                    at,
                    "write the values out, or split the cases into several suites",
                )
            if depth + height > MAX_DEPTH:
                raise too_deep(at)
            continue
        if ident in done:
            if depth + done[ident][1] > MAX_DEPTH:
                raise too_deep(at)
            continue
        if ident in on_path:
            raise fail(
                "a YAML alias refers to a value that contains it (a cycle)",
                at,
                "remove the self-reference",
            )
        if depth >= MAX_DEPTH:
            raise too_deep(at)
        on_path.add(ident)
        stack.append((value, at, depth, True))
        if isinstance(value, dict):
            keys = list(value) if at is not None or key else []  # top level: see load.py
            try:
                if not all(k is None or isinstance(k, str | int | float) for k in keys):
                    raise TypeError
                sorted(keys)
            except TypeError:
                raise fail(
                    "a mapping mixes keys of different kinds (text, numbers, dates); "
                    f"keys: {', '.join(repr(k)[:20] for k in keys[:5])}",
                    at,
                    "quote the keys so that they are all text",
                ) from None
            for k, v in value.items():
                step = (at, k if isinstance(k, str) and k.isprintable() and k else repr(k)[:40])
                stack.append((k, step, depth + 1, False))
                stack.append((v, step, depth + 1, False))
        else:
            for i, v in enumerate(value):
                stack.append((v, (at, f"[{i}]"), depth + 1, False))
