"""The committed baseline file (``.gpo/baseline.json``): load it, look up a suite, update it.

The file records, per suite, what the scores were measured with (prompt sha256, model, scorer
configuration hash) and the per-case outcomes by stable case id. Users commit it; CI compares
every run against it (:mod:`pytest_gpo.gate.verdict`).

Writing happens only on request (``--gpo-update-baseline``) and is safe to do from several
processes at once (xdist workers, parallel CI jobs): under a file lock the current file is read
again, this session's suites are merged into it (suites not run are kept), and the result
replaces the file atomically (temp file, fsync, ``os.replace``). The text is deterministic
(sorted keys, one case per line, rounded scores) so its git diff shows exactly which cases moved.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import filelock

from pytest_gpo.errors import GpoError
from pytest_gpo.fsutil import atomic_write_text

if TYPE_CHECKING:
    from pytest_gpo.results import CaseResult, SuiteRun
    from pytest_gpo.suites.model import Suite

#: The format version this module writes and the newest it reads.
FORMAT_VERSION = 1

#: Scores are stored rounded so float noise never shows up as a diff.
SCORE_DIGITS = 6
#: Two stored scores at most one step of the last stored digit apart are the same score: noise
#: below that (float sums, a similarity model's last bits) can move a score across one rounding
#: boundary, never two.
SCORE_TIE = 1.5 * 10.0**-SCORE_DIGITS

#: How a user records or accepts scores as the new baseline (named in every hint to do so).
UPDATE_COMMAND = "pytest --gpo-update-baseline"


class BaselineError(GpoError):
    """The baseline file cannot be read, parsed or written."""


def stored_score(value: float) -> float:
    """A score as the baseline stores it and the gate compares it: rounded to 6 decimals.

    The one definition of a stored score: a baseline entry is made with it, and the gate puts
    the current run through it before comparing, so both sides of a comparison are the same
    kind of number and an unchanged score compares equal. Rounding is idempotent, so a value
    read back from the file stores as itself. A score that is not finite stays so: the gate
    calls such a run an error and the baseline writer refuses it.
    """
    return round(float(value), SCORE_DIGITS)


def case_score(case: CaseResult) -> float:
    """A case's stored score: the mean over its runs, in any order, then :func:`stored_score`.

    ``math.fsum`` is exact, so the order the runs arrived in cannot change the last bit of the
    mean and push it across a rounding boundary.
    """
    return stored_score(mean(r.score for r in case.runs))


def mean(values: Iterable[float]) -> float:
    """The mean of ``values`` independent of their order (``math.fsum``); 0 when empty.

    NaN when a value is not finite (or the sum overflows): such a mean is no score.
    """
    items = [float(v) for v in values]
    if not items:
        return 0.0
    if not all(math.isfinite(v) for v in items):
        return math.nan
    try:
        return math.fsum(items) / len(items)
    except OverflowError:
        return math.nan


@dataclass(frozen=True)
class BaselineCase:
    """One case's recorded outcome: mean score, k-of-N verdict, pass rate over ``runs``."""

    score: float
    passed: bool
    pass_rate: float = 1.0
    runs: int = 1

    @classmethod
    def from_result(cls, case: CaseResult) -> BaselineCase:
        """The recorded form of a case result."""
        return cls(
            score=case_score(case),
            passed=case.passed,
            pass_rate=stored_score(case.pass_rate),
            runs=len(case.runs),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form; ``pass_rate`` and ``runs`` only when the case was repeated.

        Raises ``ValueError`` when a score is not a finite number: none may reach a baseline.
        """
        for name, value in (("score", self.score), ("pass_rate", self.pass_rate)):
            if not _finite(value):
                raise ValueError(f"its {name} is not a finite number ({value!r})")
        data: dict[str, Any] = {"score": stored_score(self.score), "passed": self.passed}
        if self.runs != 1:
            data["pass_rate"] = stored_score(self.pass_rate)
            data["runs"] = self.runs
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BaselineCase:
        """Inverse of :meth:`to_dict`; raises ``ValueError``/``TypeError``/``KeyError``."""
        score = data["score"]
        passed = data["passed"]
        if not _finite(score) or not 0.0 <= score <= 1.0:
            raise TypeError(f"'score' must be a number from 0 to 1, got {score!r}")
        if not isinstance(passed, bool):
            raise TypeError(f"'passed' must be true or false, got {passed!r}")
        runs = data.get("runs", 1)
        if not isinstance(runs, int) or isinstance(runs, bool) or runs < 0:
            raise TypeError(f"'runs' must be a non-negative integer, got {runs!r}")
        pass_rate = data.get("pass_rate", 1.0 if passed else 0.0)
        if not _finite(pass_rate) or not 0.0 <= pass_rate <= 1.0:
            raise TypeError(f"'pass_rate' must be a number from 0 to 1, got {pass_rate!r}")
        return cls(
            score=stored_score(score), passed=passed, pass_rate=stored_score(pass_rate), runs=runs
        )


def _case_dict(case_id: str, case: BaselineCase) -> dict[str, Any]:
    try:
        return case.to_dict()
    except ValueError as exc:
        raise ValueError(f"case '{case_id}': {exc}") from None


@dataclass(frozen=True)
class BaselineEntry:
    """One suite's baseline: what it was measured with and its per-case outcomes."""

    prompt_sha256: str
    model: str
    scorer_config_hash: str
    cases: Mapping[str, BaselineCase]
    #: keys this version does not know, kept so an older plugin never drops a newer one's data
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """Mean case score."""
        return mean(c.score for c in self.cases.values())

    @property
    def pass_rate(self) -> float:
        """Fraction of cases that passed."""
        return mean(1.0 if c.passed else 0.0 for c in self.cases.values())

    @classmethod
    def from_run(
        cls, suite: Suite, run: SuiteRun, *, prompt_sha256: str | None = None
    ) -> BaselineEntry:
        """The baseline of ``run`` of ``suite``.

        ``prompt_sha256`` defaults to the suite's prompt file; pass it when the run used other
        prompt bytes than the file's (the plugin never does for a plain gate run).
        """
        return cls(
            prompt_sha256=prompt_sha256 or suite.prompt_sha256,
            model=run.model,
            scorer_config_hash=suite.scorer_config_hash(),
            cases={c.case_id: BaselineCase.from_result(c) for c in run.cases},
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form (summary scores included for people reading the diff)."""
        runs = max((c.runs for c in self.cases.values()), default=1)
        data: dict[str, Any] = dict(self.extra)
        data.update(
            {
                "prompt_sha256": self.prompt_sha256,
                "model": self.model,
                "scorer_config_hash": self.scorer_config_hash,
                "score": stored_score(self.score),
                "pass_rate": stored_score(self.pass_rate),
                "runs_per_case": runs,
                "cases": {cid: _case_dict(cid, c) for cid, c in sorted(self.cases.items())},
            }
        )
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BaselineEntry:
        """Inverse of :meth:`to_dict`; raises ``ValueError``/``TypeError``/``KeyError``."""
        for key in ("prompt_sha256", "model", "scorer_config_hash"):
            if not isinstance(data.get(key), str):
                raise TypeError(f"'{key}' must be a string, got {data.get(key)!r}")
        raw_cases = data.get("cases")
        if not isinstance(raw_cases, Mapping):
            raise TypeError(f"'cases' must be an object, got {type(raw_cases).__name__}")
        cases: dict[str, BaselineCase] = {}
        for cid, raw in raw_cases.items():
            if not isinstance(raw, Mapping):
                raise TypeError(f"case '{cid}' must be an object")
            try:
                cases[str(cid)] = BaselineCase.from_dict(raw)
            except (KeyError, TypeError, ValueError) as exc:
                raise type(exc)(f"case '{cid}': {exc}") from exc
        known = {
            "prompt_sha256",
            "model",
            "scorer_config_hash",
            "cases",
            "score",
            "pass_rate",
            "runs_per_case",
        }
        return cls(
            prompt_sha256=data["prompt_sha256"],
            model=data["model"],
            scorer_config_hash=data["scorer_config_hash"],
            cases=cases,
            extra={k: v for k, v in data.items() if k not in known},
        )


@dataclass
class Baseline:
    """The whole baseline file: suite key (the suite name) to its entry."""

    suites: dict[str, BaselineEntry] = field(default_factory=dict)
    version: int = FORMAT_VERSION

    def get(self, suite: str) -> BaselineEntry | None:
        """The entry of ``suite``, or ``None``."""
        return self.suites.get(suite)

    def to_text(self) -> str:
        """Deterministic text: sorted keys, two-space indent, one case per line.

        Strict JSON: a suite holding a number that is not finite is a :class:`BaselineError`
        naming it, and nothing is written.
        """
        lines = ["{", '  "format": "pytest-gpo baseline",', '  "suites": {']
        names = sorted(self.suites)
        for i, name in enumerate(names):
            try:
                lines += _entry_lines(name, self.suites[name].to_dict())
            except ValueError as exc:
                raise BaselineError(
                    f"suite '{name}' cannot be recorded: {exc}; the baseline was not written",
                    key=f"suites.{name}",
                    fix="a scorer gave a score that is not a number: check the suite's scorers "
                    "(a custom scorer must return a score in 0..1)",
                ) from None
            lines.append("    }" + ("," if i < len(names) - 1 else ""))
        lines.append("  },")
        lines.append(f'  "version": {FORMAT_VERSION}')
        lines.append("}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str, *, path: Path | str | None = None) -> Baseline:
        """Parse the file's text; every problem is a :class:`BaselineError` naming the file."""
        fix = (
            f"restore it from version control (git checkout -- {path or 'the file'}), or "
            f"delete it and record a new one with `{UPDATE_COMMAND}`"
        )
        try:
            data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
        except ValueError as exc:
            if not isinstance(exc, json.JSONDecodeError):
                raise BaselineError(
                    f"the baseline file holds a number that is not finite ({exc}); pytest-gpo "
                    "never writes one, so the file was edited or written by another tool",
                    path=path,
                    fix=fix,
                ) from exc
            raise BaselineError(
                f"the baseline file is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                f"{exc.msg}); a merge conflict or a truncated write leaves it like this",
                path=path,
                fix=fix,
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get("suites"), dict):
            raise BaselineError(
                "the baseline file has no 'suites' object: it was not written by pytest-gpo",
                path=path,
                fix=fix,
            )
        version = data.get("version", FORMAT_VERSION)
        if not isinstance(version, int) or isinstance(version, bool):
            raise BaselineError(
                f"'version' must be an integer, got {version!r}", path=path, fix=fix
            )
        if version > FORMAT_VERSION:
            raise BaselineError(
                f"the baseline file has format version {version}; this pytest-gpo reads up to "
                f"version {FORMAT_VERSION}",
                path=path,
                fix="upgrade pytest-gpo to the version that wrote the file",
            )
        suites: dict[str, BaselineEntry] = {}
        for name, raw in data["suites"].items():
            if not isinstance(raw, dict):
                raise BaselineError(
                    f"suite '{name}' must be an object", path=path, key=f"suites.{name}", fix=fix
                )
            try:
                suites[str(name)] = BaselineEntry.from_dict(raw)
            except (KeyError, TypeError, ValueError) as exc:
                detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
                raise BaselineError(
                    f"suite '{name}' is malformed: {detail}",
                    path=path,
                    key=f"suites.{name}",
                    fix=fix,
                ) from exc
        return cls(suites=suites, version=version)


def _entry_lines(name: str, entry: Mapping[str, Any]) -> list[str]:
    """One suite of the file, up to its closing brace: one key a line, one case a line."""
    lines = [f"    {_j(name)}: {{"]
    keys = sorted(entry)
    for j, key in enumerate(keys):
        comma = "," if j < len(keys) - 1 else ""
        value = entry[key]
        if key == "cases" and isinstance(value, dict) and value:
            lines.append('      "cases": {')
            items = list(value.items())
            for n, (cid, case) in enumerate(items):
                case_comma = "," if n < len(items) - 1 else ""
                lines.append(f"        {_j(cid)}: {_j(case)}{case_comma}")
            lines.append(f"      }}{comma}")
        else:
            lines.append(f"      {_j(key)}: {_j(value)}{comma}")
    return lines


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is too large for a number")
    return number


def _j(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)


class BaselineStore:
    """Reads and updates one baseline file.

    :meth:`load` reads the file once and caches it; :meth:`entry` looks a suite up in it.
    :meth:`update` re-reads the file under the lock, merges and writes atomically.
    """

    def __init__(self, path: str | Path, *, lock_timeout: float = 120.0) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout = lock_timeout
        self._loaded: Baseline | None = None

    def exists(self) -> bool:
        """Whether the baseline file exists."""
        return self.path.is_file()

    def _read(self) -> Baseline:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Baseline()
        except (OSError, UnicodeDecodeError) as exc:
            raise BaselineError(
                f"cannot read the baseline file: {exc}",
                path=self.path,
                fix="check the file's permissions and encoding (UTF-8), or restore it from git",
            ) from exc
        return Baseline.from_text(text, path=self.path)

    def load(self, *, refresh: bool = False) -> Baseline:
        """The baseline (empty when the file does not exist). Raises :class:`BaselineError`."""
        if self._loaded is None or refresh:
            self._loaded = self._read()
        return self._loaded

    def entry(self, suite: str) -> BaselineEntry | None:
        """The baseline of ``suite``, or ``None`` when it has none."""
        return self.load().get(suite)

    def _lock(self) -> filelock.BaseFileLock:
        return filelock.FileLock(str(self.lock_path), timeout=self.lock_timeout)

    def update(
        self, entries: Mapping[str, BaselineEntry], *, remove: Iterable[str] = ()
    ) -> Baseline:
        """Merge ``entries`` into the file (replacing those suites whole) and write it.

        Suites not in ``entries`` are kept, except those named in ``remove``. Concurrent
        callers serialize on ``<file>.lock`` and each re-reads the file under it, so no
        writer loses another's suites. Returns the baseline as written; the file is not
        rewritten when its text would not change.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock():
                current = self._read()
                merged = dict(current.suites)
                for name in remove:
                    merged.pop(name, None)
                merged.update(entries)
                baseline = Baseline(suites=merged)
                text = baseline.to_text()
                if not self._same_bytes(text):
                    try:
                        atomic_write_text(self.path, text)
                    except OSError as exc:
                        raise BaselineError(
                            f"cannot write the baseline file: {exc}; the previous file is "
                            "unchanged",
                            path=self.path,
                            fix="check that the directory is writable and the disk not full",
                        ) from exc
        except filelock.Timeout as exc:
            raise BaselineError(
                f"timed out after {self.lock_timeout:g}s waiting for the lock {self.lock_path}",
                path=self.path,
                fix="another process is updating the baseline; if none is, delete the lock file",
            ) from exc
        except OSError as exc:  # the folder or the lock file cannot be created
            raise BaselineError(
                f"cannot write the baseline file: {exc}; the previous file is unchanged",
                path=self.path,
                fix="make the baseline's folder writable, or point gpo_baseline elsewhere",
            ) from exc
        self._loaded = baseline
        return baseline

    def _same_bytes(self, text: str) -> bool:
        try:
            return self.path.read_bytes() == text.encode("utf-8")
        except OSError:
            return False
