"""Case files: the cases of a suite read from a .jsonl, .json, .yaml/.yml or .csv file."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import yaml

from pytest_gpo.errors import SuiteError
from pytest_gpo.suites.checks import check_data
from pytest_gpo.suites.describe import kind_of
from pytest_gpo.suites.paths import MAX_CASES_BYTES, Confinement, display, read_confined
from pytest_gpo.suites.yaml_parse import parse_yaml, yaml_error


def read_case_file(
    path: Path, *, where: str, confinement: Confinement | None = None
) -> list[tuple[Any, str]]:
    """Read cases from .jsonl / .json / .yaml / .yml / .csv: (raw case, source) pairs."""
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".json", ".yaml", ".yml", ".csv"):
        raise SuiteError(
            f"unsupported cases file type '{suffix or path.name}'",
            path=where,
            key="cases",
            fix="use a .jsonl, .json, .yaml or .csv file",
        )
    try:
        raw = read_confined(
            path, confinement or Confinement(), where=where, key="cases", limit=MAX_CASES_BYTES
        )
        text = raw.decode("utf-8-sig")
    except FileNotFoundError:
        raise SuiteError(
            f"cases file not found: {display(path)}",
            path=where,
            key="cases",
            fix="create the file or correct the path (relative to the suite file)",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(
            f"cannot read cases file {path}: {exc}",
            path=where,
            key="cases",
            fix="save it as UTF-8 text",
        ) from None
    name = path.name
    if suffix == ".jsonl":
        out: list[tuple[Any, str]] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append((json.loads(line), f"{name}:{lineno}"))
            except (ValueError, RecursionError) as exc:
                raise SuiteError(
                    f"bad JSON on line {lineno} of {name}: {exc}",
                    path=where,
                    key="cases",
                    fix=f"fix line {lineno} of {path}",
                ) from None
        check_data([item for item, _ in out], where=where, key="cases", source=name)
        return out
    if suffix == ".csv":
        return _read_csv(text, path, where)
    kind = "JSON" if suffix == ".json" else "YAML"
    try:
        data = json.loads(text) if suffix == ".json" else parse_yaml(text)
    except yaml.YAMLError as exc:
        err = yaml_error(exc, str(path))
        raise SuiteError(err.message, path=where, key="cases", fix=f"fix {path}") from None
    except (ValueError, RecursionError) as exc:
        detail = str(exc) or f"{kind} nested too deeply"
        raise SuiteError(
            f"bad {kind} in {name}: {detail}", path=where, key="cases", fix=f"fix {path}"
        ) from None
    check_data(data, where=where, key="cases", source=name)
    if isinstance(data, dict) and "cases" in data:
        data = data["cases"]
    if not isinstance(data, list):
        raise SuiteError(
            f"{name} must hold a list of cases, not {kind_of(data)}",
            path=where,
            key="cases",
            fix="write a list of {id, vars, expected}",
        )
    return [(item, f"{name}[{i}]") for i, item in enumerate(data)]


def _read_csv(text: str, path: Path, where: str) -> list[tuple[Any, str]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise SuiteError(
            f"bad CSV in {path.name}: {exc}", path=where, key="cases", fix=f"fix {path}"
        ) from None
    if not rows:
        return []
    header = [h.strip() for h in rows[0]]
    if not header or any(not h for h in header) or len(set(header)) != len(header):
        raise SuiteError(
            f"{path.name}: the header row needs unique, non-empty column names",
            path=where,
            key="cases",
            fix="write e.g. 'id,ticket,expected'",
        )
    out: list[tuple[Any, str]] = []
    for lineno, row in enumerate(rows[1:], 2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise SuiteError(
                f"bad CSV row on line {lineno} of {path.name}: {len(row)} fields, the header has "
                f"{len(header)}",
                path=where,
                key="cases",
                fix="quote fields that contain commas, and give every row all columns",
            )
        record = dict(zip(header, row, strict=True))
        case: dict[str, Any] = {
            "vars": {k: v for k, v in record.items() if k not in ("id", "expected", "split")}
        }
        if "id" in record and record["id"].strip():
            case["id"] = record["id"]
        if "expected" in record:
            case["expected"] = record["expected"]
        if record.get("split", "").strip():
            case["split"] = record["split"].strip()
        out.append((case, f"{path.name}:{lineno}"))
    return out
