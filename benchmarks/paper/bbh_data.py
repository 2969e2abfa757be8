"""BIG-Bench Hard tasks from the real BIG-Bench archive: fetch, extract, format, split.

The data is the ``bigbench`` 1.0.0 source archive from PyPI (Apache-2.0), which carries every
BIG-Bench task as ``bigbench/benchmark_tasks/<task>/task.json``. It is fetched once with
``pip download --no-deps bigbench==1.0.0`` (or taken from ``--bigbench-archive PATH``), and
only the ``task.json`` members of the tasks a run needs are read from it (streaming) into a
cache directory, beside a ``provenance.json`` naming the archive, its sha256 and the members.

Each example is rendered the way BIG-Bench Hard (Suzgun et al., 2022) words the task, and its
answer is the text BBH expects (``Yes``/``No``, an option letter, a number, the sorted words).
The splits are the reference's sizes (48 train / 48 eval / 144 test a task), drawn once with
a fixed seed from the task's examples.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VERSION = "1.0.0"
ARCHIVE_NAME = f"bigbench-{VERSION}.tar.gz"
MEMBER = "bigbench-{version}/bigbench/benchmark_tasks/{task}/task.json"
#: The small extract committed for the ``--quick`` smoke test (see its PROVENANCE.md).
BUNDLED = Path(__file__).resolve().parent / "data" / f"bigbench-{VERSION}-extract"
DEFAULT_CACHE = Path("~/.cache/pytest-gpo/bigbench").expanduser()

#: The reference's split sizes per BBH task.
PAPER_SIZES = (48, 48, 144)
SPLITS = ("train", "eval", "test")


class DataError(Exception):
    """The benchmark data cannot be had: the message says why and what to do."""


@dataclass(frozen=True)
class TaskSpec:
    """One BBH task: how its BIG-Bench examples are worded and scored."""

    name: str
    answer: str  # "yes/no", "letter", "number", "words": for the docs and the table
    render: Callable[[Mapping[str, Any], random.Random], tuple[str, str]]
    scorers: tuple[Mapping[str, Any], ...]


def _correct(example: Mapping[str, Any]) -> str:
    scores: Mapping[str, Any] = example["target_scores"]
    return max(scores, key=lambda k: float(scores[k]))


def _navigate(ex: Mapping[str, Any], rng: random.Random) -> tuple[str, str]:
    question = (
        "If you follow these instructions, do you return to the starting point? "
        f"{ex['input']}\nOptions:\n- Yes\n- No"
    )
    return question, "Yes" if _correct(ex) == "True" else "No"


def _movie(ex: Mapping[str, Any], rng: random.Random) -> tuple[str, str]:
    # BIG-Bench lists the right movie first; BBH shows the options in another order
    options = list(ex["target_scores"])
    rng.shuffle(options)
    letters = "ABCDEFGH"
    lines = [f"({letters[i]}) {o}" for i, o in enumerate(options)]
    question = f"Find a movie similar to {ex['input']}\nOptions:\n" + "\n".join(lines)
    return question, letters[options.index(_correct(ex))]


def _counting(ex: Mapping[str, Any], rng: random.Random) -> tuple[str, str]:
    targets = ex["target"] if isinstance(ex["target"], list) else [ex["target"]]
    digits = [t for t in targets if str(t).strip().isdigit()]
    return str(ex["input"]), str(digits[0] if digits else targets[0])


def _sorting(ex: Mapping[str, Any], rng: random.Random) -> tuple[str, str]:
    return f"Sort the following words alphabetically: List: {ex['input']}", str(ex["target"])


def _sports(ex: Mapping[str, Any], rng: random.Random) -> tuple[str, str]:
    statement = str(ex["input"]).rstrip(".")
    return f'Is the following sentence plausible? "{statement}."', (
        "yes" if _correct(ex) == "plausible" else "no"
    )


def _causal(ex: Mapping[str, Any], rng: random.Random) -> tuple[str, str]:
    question = (
        "How would a typical person answer each of the following questions about causation?\n"
        f"{ex['input']}\nOptions:\n- Yes\n- No"
    )
    return question, _correct(ex)


_YES_NO = ({"type": "choice", "labels": ["Yes", "No"]},)
TASKS: Mapping[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec("navigate", "Yes/No", _navigate, _YES_NO),
        TaskSpec(
            "movie_recommendation",
            "option letter",
            _movie,
            ({"type": "choice", "letters": "ABCD"},),
        ),
        TaskSpec("object_counting", "number", _counting, ({"type": "number"},)),
        TaskSpec(
            "word_sorting",
            "sorted words",
            _sorting,
            ({"type": "python", "function": "answers.py:sorted_words"},),
        ),
        TaskSpec(
            "sports_understanding",
            "yes/no",
            _sports,
            ({"type": "choice", "labels": ["yes", "no"]},),
        ),
        TaskSpec("causal_judgment", "Yes/No", _causal, _YES_NO),
    )
}
#: The paper's lite-BBH tasks (Tables 2-3).
LITE = ("navigate", "movie_recommendation", "object_counting", "word_sorting")


def sha256_of(path: Path) -> str:
    """The file's sha256, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_archive(cache: Path, archive: Path | None = None) -> Path:
    """The archive's path: ``archive`` when given, else the cached one, else ``pip download``."""
    if archive is not None:
        if not archive.is_file():
            raise DataError(f"--bigbench-archive {archive}: no such file")
        return archive
    target = cache / "sdist" / ARCHIVE_NAME
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"[paper] fetching {ARCHIVE_NAME} (358 MB) with pip download into {target.parent}")
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"),
            *(f"bigbench=={VERSION}", "-d", str(target.parent)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if not target.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        raise DataError(
            f"pip download bigbench=={VERSION} failed:\n{tail}\n"
            "pip 26 and later refuse this archive after downloading it (its metadata declares "
            "a direct URL dependency); download it with an older pip "
            f"(`pip<26 download --no-deps --no-binary :all: bigbench=={VERSION}`) and pass "
            "--bigbench-archive PATH"
        )
    return target


def extract_tasks(archive: Path, tasks: Sequence[str], out: Path) -> dict[str, Any]:
    """Copy the tasks' ``task.json`` from the archive (one streaming pass) into ``out``."""
    wanted = {MEMBER.format(version=VERSION, task=t): t for t in tasks}
    found: dict[str, str] = {}
    with tarfile.open(archive, "r|gz") as tar:
        for member in tar:
            task = wanted.get(member.name)
            if task is None or not member.isfile():
                continue
            data = tar.extractfile(member)
            if data is None:
                continue
            (out / task).mkdir(parents=True, exist_ok=True)
            (out / task / "task.json").write_bytes(data.read())
            found[task] = member.name
            if len(found) == len(wanted):
                break
    missing = sorted(set(tasks) - set(found))
    if missing:
        raise DataError(f"{archive}: no task.json for {', '.join(missing)}")
    return found


def load_task_data(
    tasks: Sequence[str], *, cache: Path, archive: Path | None, quick: bool
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Every task's BIG-Bench examples and the data's provenance (archive, sha256, members).

    ``quick`` reads the committed extract instead (no download).
    """
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise DataError(f"unknown task(s) {', '.join(unknown)}; tasks: {', '.join(TASKS)}")
    if quick:
        root = BUNDLED
        provenance = json.loads((root / "provenance.json").read_text(encoding="utf-8"))
        provenance["extract"] = "committed extract (benchmarks/paper/data), --quick"
    else:
        root = cache / "tasks"
        record = cache / "provenance.json"
        provenance = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
        members: dict[str, str] = dict(provenance.get("members", {}))
        need = [t for t in tasks if not (root / t / "task.json").is_file() or t not in members]
        if need:
            path = fetch_archive(cache, archive)
            members.update(extract_tasks(path, need, root))
            provenance = {
                "source": f"PyPI bigbench=={VERSION} source archive (Apache-2.0)",
                "archive": path.name,
                "sha256": sha256_of(path),
                "version": VERSION,
                "members": members,
            }
            record.write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    data: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        raw = json.loads((root / task / "task.json").read_text(encoding="utf-8"))
        data[task] = list(raw["examples"])
    return data, provenance


def make_cases(
    task: str, examples: Sequence[Mapping[str, Any]], sizes: Sequence[int], seed: int
) -> list[dict[str, Any]]:
    """``sum(sizes)`` examples drawn with ``seed``, rendered, each with its ``split``.

    The case id is ``<task>-<index in task.json>``, so a case names its source example.
    """
    need = sum(sizes)
    if len(examples) < need:
        raise DataError(f"{task}: {len(examples)} examples, the splits need {need}")
    rng = random.Random(f"{task}:{seed}")
    picked = rng.sample(range(len(examples)), need)
    cases: list[dict[str, Any]] = []
    bounds = [sum(sizes[:i]) for i in range(4)]
    for pos, index in enumerate(picked):
        split = next(SPLITS[i] for i in range(3) if bounds[i] <= pos < bounds[i + 1])
        question, answer = TASKS[task].render(examples[index], random.Random(f"{task}:{index}"))
        cases.append(
            {
                "id": f"{task}-{index}",
                "vars": {"input": question},
                "expected": answer,
                "split": split,
            }
        )
    return cases
