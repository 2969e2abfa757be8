"""The ``python`` scorer: a function of the user's own scores the output.

Calling convention: the function is called with **keyword arguments**, only those it declares,
among ``output`` (str), ``expected`` (the case's expected value, ``None`` when it has none),
``vars`` (the case's variables), ``case`` (the :class:`~pytest_gpo.suites.model.Case`) and
``prompt`` (the rendered user message); ``**kwargs`` receives them all. It may be ``async``.
It returns a bool, a number in 0..1 (passed at ``min``), a ``(score, reason)`` pair, a mapping with
``score`` (and ``reason``, ``passed``), or a :class:`~pytest_gpo.scorers.base.ScoreResult`.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import math
import re
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from pytest_gpo.errors import ScorerError
from pytest_gpo.scorers.base import ScoreContext, ScoreResult
from pytest_gpo.scorers.common import OptionScorer, clamp, result, versus
from pytest_gpo.suites.model import Case

#: The keyword arguments a scoring function may declare.
ARGUMENTS: tuple[str, ...] = ("output", "expected", "vars", "case", "prompt")

_FILE_MODULES: dict[Path, ModuleType] = {}
_FILE_LOCK = threading.Lock()


def _short_repr(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _where_dir(where: str) -> Path | None:
    """The folder of the suite file a ``where`` string starts with, if it names one."""
    if not where:
        return None
    # The suite loader passes "<suite path> (scorers[0])".
    bare = re.sub(r"\s*\([^()]*\)\s*$", "", where)
    heads = [bare, where, *(where.split(sep, 1)[0] for sep in (" ", ":", ",", "["))]
    for head in heads:
        path = Path(head)
        if path.is_file():
            return path.parent
    return None


def _load_file(path: Path) -> ModuleType:
    with _FILE_LOCK:
        module = _FILE_MODULES.get(path)
        if module is not None:
            return module
        digest = hashlib.sha256(str(path).encode("utf-8")).hexdigest()[:12]
        name = f"_gpo_scorer_{path.stem}_{digest}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        _FILE_MODULES[path] = module
        return module


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


class PythonScorer(OptionScorer):
    """Calls ``function: "module:function"`` or ``"path/to/file.py:function"``.

    A module is imported from ``sys.path``; a file path is relative to the suite file's folder.
    ``min`` (default 0.5) is the pass mark for numeric returns. The function's exceptions
    become a failing result with the exception text, never a crash.
    """

    type_name: ClassVar[str] = "python"
    needs_expected: ClassVar[bool] = False
    option_keys: ClassVar[tuple[str, ...]] = ("function", "min")

    def __init__(self, options: Mapping[str, Any], *, where: str = "") -> None:
        super().__init__(options, where=where)
        if "function" not in self.options:
            raise self.fail(
                "the python scorer needs a 'function'",
                key="function",
                fix='add function: "my_module:my_function" or "scorers.py:my_function"',
            )
        spec = self.opt_str("function", None)
        assert spec is not None
        target, sep, name = spec.strip().rpartition(":")
        if not sep or not target or not name.isidentifier():
            raise self.fail(
                f"function {spec!r} is not 'module:function' or 'path/file.py:function'",
                key="function",
                fix='write it as function: "my_package.checks:is_polite" or "checks.py:is_polite"',
            )
        self.spec = spec.strip()
        self.target = target
        self.function_name = name
        self.is_file = target.endswith(".py") or "/" in target or "\\" in target
        self.min = self.opt_float("min", 0.5, lo=0.0, hi=1.0)
        self._fn: Callable[..., Any] | None = None
        self._params: tuple[str, ...] = ()
        base = _where_dir(where)
        if not self.is_file or Path(target).expanduser().is_absolute() or base is not None:
            self._bind(base or Path.cwd())

    def _import(self, suite_dir: Path) -> ModuleType:
        if not self.is_file:
            try:
                return importlib.import_module(self.target)
            except ModuleNotFoundError as exc:
                raise self.fail(
                    f"cannot import module {self.target!r}: {exc}",
                    key="function",
                    fix=f"make {self.target!r} importable (install it, or add its folder to "
                    "'pythonpath' in your pytest config), or give a file relative to the "
                    'suite: function: "path/to/file.py:' + self.function_name + '"',
                ) from exc
            except Exception as exc:
                raise self._import_error(exc) from exc
        path = (suite_dir / Path(self.target).expanduser()).resolve()
        if not path.is_file():
            raise self.fail(
                f"no such file {path} for the python scorer",
                key="function",
                fix="give the file path relative to the suite file's folder, or a module "
                'name: function: "my_module:' + self.function_name + '"',
            )
        try:
            return _load_file(path)
        except Exception as exc:
            raise self._import_error(exc) from exc

    def _import_error(self, exc: BaseException) -> ScorerError:
        return self.fail(
            f"importing {self.target!r} raised {type(exc).__name__}: {exc}",
            key="function",
            fix=f"fix the error in {self.target!r} (it runs when the suite is collected)",
        )

    def _bind(self, suite_dir: Path) -> Callable[..., Any]:
        """Import the module, find the function and check its parameters (once)."""
        if self._fn is not None:
            return self._fn
        module = self._import(suite_dir)
        fn = getattr(module, self.function_name, None)
        if fn is None:
            names = [
                n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))
            ]
            close = difflib.get_close_matches(self.function_name, names, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise self.fail(
                f"{self.target!r} has no function {self.function_name!r}",
                key="function",
                fix=hint + "functions there: " + (", ".join(sorted(names)[:20]) or "(none)"),
            )
        if not callable(fn):
            raise self.fail(
                f"{self.spec!r} is a {type(fn).__name__}, not a function", key="function"
            )
        function: Callable[..., Any] = fn
        self._params = self._check_signature(function)
        self._fn = function
        return function

    def _check_signature(self, fn: Callable[..., Any]) -> tuple[str, ...]:
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            return ARGUMENTS
        params = signature.parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            return ARGUMENTS
        wanted: list[str] = []
        for p in params:
            if p.name in ARGUMENTS and p.kind is not inspect.Parameter.POSITIONAL_ONLY:
                wanted.append(p.name)
            elif p.default is inspect.Parameter.empty and p.kind not in (
                inspect.Parameter.VAR_POSITIONAL,
            ):
                raise self.fail(
                    f"{self.spec!r} has a parameter {p.name!r} the scorer cannot fill",
                    key="function",
                    fix="scoring functions take keyword arguments named from: "
                    + ", ".join(ARGUMENTS)
                    + " (or **kwargs); give other parameters a default",
                )
        return tuple(wanted)

    def _interpret(self, value: Any) -> ScoreResult:
        name = self.function_name
        if isinstance(value, ScoreResult):
            if not _finite(value.score):
                return ScoreResult(value.score, False, f"{name} returned {value.score!r}")
            return result(value.score, value.passed, value.reason)
        reason = ""
        passed: bool | None = None
        if isinstance(value, Mapping) and "score" in value:
            reason = str(value.get("reason", ""))
            raw_passed = value.get("passed")
            passed = bool(raw_passed) if raw_passed is not None else None
            value = value["score"]
        elif isinstance(value, tuple | list) and len(value) == 2 and isinstance(value[1], str):
            value, reason = value
        if isinstance(value, bool):
            score = 1.0 if value else 0.0
            ok = value if passed is None else passed
            return result(score, ok, reason or f"{name} returned {value}")
        if isinstance(value, int | float):
            if not _finite(value):
                # handed on unclamped: the run makes the case an error, never a 0 or a 1
                return ScoreResult(float(value), False, f"{name} returned {value!r}")
            score = clamp(float(value))
            ok = score >= self.min if passed is None else passed
            return result(score, ok, reason or f"{name} returned {versus(score, self.min)}")
        return result(
            0.0,
            False,
            f"python scorer {name} returned {type(value).__name__} {_short_repr(value)}; "
            "expected a bool, a number in 0..1, (score, reason) or {score, reason}",
        )

    async def score(self, output: str, case: Case, ctx: ScoreContext) -> ScoreResult:
        """Call the function and read its answer; its exceptions become a failing result."""
        fn = self._bind(ctx.suite_dir)
        available = {
            "output": output,
            "expected": case.expected if case.has_expected else None,
            "vars": dict(case.vars),
            "case": case,
            "prompt": ctx.prompt,
        }
        kwargs = {k: available[k] for k in self._params}
        try:
            value = fn(**kwargs)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            message = f"python scorer raised {type(exc).__name__}: {exc}"
            return result(0.0, False, message[:500])
        return self._interpret(value)
