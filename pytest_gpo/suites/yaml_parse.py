"""``parse_yaml``: libyaml where that is provably safe, else the pure-Python loader.

Both give the same data and the same errors; :func:`yaml_error` turns a YAML error into the
:class:`~pytest_gpo.errors.SuiteError` users see.
"""

from __future__ import annotations

from typing import Any

import yaml

from pytest_gpo.errors import SuiteError

#: libyaml's loader (``yaml.CSafeLoader``), when PyYAML was built with it: 5-7 x faster than the
#: pure-Python ``safe_load``, which is most of the time ``pytest --collect-only`` spends per suite.
_C_LOADER: Any = getattr(yaml, "CSafeLoader", None)
#: libyaml composes nested nodes by recursion in C: about 25,000 nested ``[`` (or 100,000
#: nested ``- ``) overflow the C stack and kill the process, where the pure-Python loader raises
#: a RecursionError that becomes a clear error. The C loader only gets text whose nesting depth
#: is provably below this.
_C_DEPTH_LIMIT = 5000


def _nesting_bound(text: str) -> int:
    """An upper bound on the nesting depth of a YAML text, cheap to compute.

    Flow collections need a ``[`` or ``{`` per level; a nested block collection starts further
    right than its parent or after a ``- ``/``? `` on the same line, so it needs a column (at
    most two levels per column, a sequence may sit at its mapping's indentation).
    """
    longest = max(map(len, text.split("\n")))
    return text.count("[") + text.count("{") + 2 * longest + 2


def parse_yaml(text: str) -> Any:
    """``yaml.safe_load``, on libyaml where that is safe; the same errors as ``safe_load``.

    Only the outcome of a successful parse is taken from libyaml: on any error the text is
    parsed again by the pure-Python loader, whose error (line, column, problem) is the one
    users see and the hostile-input tests pin.
    """
    if _C_LOADER is not None and _nesting_bound(text) <= _C_DEPTH_LIMIT:
        try:
            return yaml.load(text, Loader=_C_LOADER)
        except Exception:
            pass  # parsed again below: the pure-Python loader's error is the one shown
    return yaml.safe_load(text)


def yaml_error(exc: yaml.YAMLError, where: str) -> SuiteError:
    """A YAML error as a SuiteError: ``malformed YAML on line L, column C: problem``."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    line = f" on line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return SuiteError(
        f"malformed YAML{line}: {problem}",
        path=where,
        fix="fix the YAML syntax (indentation, quotes, ':' after keys)",
    )
