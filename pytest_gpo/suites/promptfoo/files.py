"""``file://`` references of a promptfoo config: test files, var files and assertion values.

Every path is resolved against the config's folder and read through the suite loader's
confinement and size caps; YAML goes through the same safe parser as suite files.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_gpo.errors import SuiteError
from pytest_gpo.suites.checks import check_data
from pytest_gpo.suites.paths import (
    MAX_CASES_BYTES,
    MAX_PROMPT_BYTES,
    Confinement,
    display,
    read_confined,
    resolve_path,
)
from pytest_gpo.suites.yaml_parse import parse_yaml, yaml_error

#: Files a ``file://`` var may name: read as text, or parsed (``.json``/``.yaml``/``.yml``).
CODE_SUFFIXES = (".py", ".js", ".cjs", ".mjs", ".ts", ".sh", ".exe", ".go", ".rb")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".pdf", ".mp3", ".wav")
#: The test-file types ``tests: file://...`` may name.
TEST_SUFFIXES = (".csv", ".json", ".jsonl", ".yaml", ".yml")


@dataclass(frozen=True)
class FileReader:
    """Reads the files a config names: relative to its folder, inside the confinement."""

    config: Path
    where: str
    confinement: Confinement

    def path(self, text: str, key: str) -> Path:
        """The file a ``file://`` reference names (a glob or ``:function`` is an error)."""
        text = text.strip()
        if any(c in text for c in "*?[") or ":" in Path(text).name:
            raise SuiteError(
                f"file reference '{text}' is a glob or names a function: not supported",
                path=self.where,
                key=key,
                fix="name one data file (file://tests.csv); code files are never run",
            )
        return resolve_path(self.config.parent, text, where=self.where, key=key)

    def read_text(self, path: Path, key: str, *, limit: int = MAX_PROMPT_BYTES) -> str:
        """A UTF-8 text file inside the confinement (a BOM is dropped)."""
        try:
            raw = read_confined(path, self.confinement, where=self.where, key=key, limit=limit)
        except FileNotFoundError:
            raise SuiteError(
                f"file not found: {display(path)}",
                path=self.where,
                key=key,
                fix="create the file or correct the path (relative to the config file)",
            ) from None
        except OSError as exc:
            raise SuiteError(
                f"cannot read {display(path)}: {exc}",
                path=self.where,
                key=key,
                fix="check the path and permissions",
            ) from None
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SuiteError(
                f"{display(path)} is not UTF-8 text ({exc.reason} at byte {exc.start})",
                path=self.where,
                key=key,
                fix="save it as UTF-8",
            ) from None

    def parse(self, path: Path, key: str, *, limit: int = MAX_PROMPT_BYTES) -> Any:
        """A ``.json`` / ``.jsonl`` / ``.yaml`` / ``.yml`` file's data, checked like suite data."""
        text = self.read_text(path, key, limit=limit)
        suffix = path.suffix.lower()
        try:
            if suffix == ".jsonl":
                data: Any = [json.loads(line) for line in text.splitlines() if line.strip()]
            elif suffix == ".json":
                data = json.loads(text)
            else:
                data = parse_yaml(text)
        except yaml.YAMLError as exc:
            err = yaml_error(exc, display(path))
            raise SuiteError(
                err.message, path=self.where, key=key, fix=f"fix {display(path)}"
            ) from None
        except (ValueError, RecursionError) as exc:
            raise SuiteError(
                f"bad data in {display(path)}: {exc or 'nested too deeply'}",
                path=self.where,
                key=key,
                fix=f"fix {display(path)}",
            ) from None
        check_data(data, where=self.where, key=key, source=path.name)
        return data

    def var_value(self, text: str, key: str) -> Any:
        """A ``file://`` var: a text file's content, or a JSON/YAML file's data."""
        path = self.path(text, key)
        suffix = path.suffix.lower()
        if suffix in CODE_SUFFIXES or suffix in IMAGE_SUFFIXES:
            kind = "code" if suffix in CODE_SUFFIXES else "image/media"
            raise SuiteError(
                f"var file {display(path)} is a {kind} file: not supported",
                path=self.where,
                key=key,
                fix="use a text, .json or .yaml file (pytest-gpo never runs code from a config)",
            )
        if suffix in (".json", ".yaml", ".yml"):
            return self.parse(path, key)
        return self.read_text(path, key)

    def tests(self, text: str, key: str) -> list[tuple[Any, str]]:
        """The tests of a ``file://`` test file: (raw test, source) pairs."""
        path = self.path(text, key)
        suffix = path.suffix.lower()
        if suffix not in TEST_SUFFIXES:
            raise SuiteError(
                f"unsupported test file type '{suffix or path.name}'",
                path=self.where,
                key=key,
                fix="use a .csv, .json, .jsonl, .yaml or .yml file (script and sheet sources "
                "are not supported)",
            )
        if suffix == ".csv":
            rows = self._csv(path, key)
            return [(row, f"{path.name}:{line}") for line, row in rows]
        data = self.parse(path, key, limit=MAX_CASES_BYTES)
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list):
            raise SuiteError(
                f"{display(path)} must hold a list of tests",
                path=self.where,
                key=key,
                fix="write a list of {vars: ..., assert: [...]}",
            )
        return [(item, f"{path.name}[{i}]") for i, item in enumerate(data)]

    def _csv(self, path: Path, key: str) -> list[tuple[int, dict[str, str]]]:
        text = self.read_text(path, key, limit=MAX_CASES_BYTES)
        try:
            rows = list(csv.reader(io.StringIO(text, newline="")))
        except csv.Error as exc:
            raise SuiteError(
                f"bad CSV in {path.name}: {exc}", path=self.where, key=key, fix=f"fix {path}"
            ) from None
        if not rows:
            return []
        header = [h.strip() for h in rows[0]]
        if any(not h for h in header) or len(set(header)) != len(header):
            raise SuiteError(
                f"{path.name}: the header row needs unique, non-empty column names",
                path=self.where,
                key=key,
                fix="write e.g. 'question,__expected'",
            )
        out: list[tuple[int, dict[str, str]]] = []
        for line, row in enumerate(rows[1:], 2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise SuiteError(
                    f"bad CSV row on line {line} of {path.name}: {len(row)} fields, the header "
                    f"has {len(header)}",
                    path=self.where,
                    key=key,
                    fix="quote fields that contain commas, and give every row all columns",
                )
            out.append((line, dict(zip(header, row, strict=True))))
        return out
