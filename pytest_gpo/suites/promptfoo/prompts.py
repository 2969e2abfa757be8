"""promptfoo ``prompts:``: inline templates and ``file://`` prompt files, with their labels."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_gpo.errors import SuiteError
from pytest_gpo.suites.describe import kind_of
from pytest_gpo.suites.paths import MAX_PROMPT_BYTES, display, looks_like_text_file, read_confined
from pytest_gpo.suites.promptfoo.files import FileReader

#: Prompt files that are not a single text template.
_NOT_TEXT = (".json", ".jsonl", ".yaml", ".yml", ".py", ".js", ".ts", ".mjs", ".cjs", ".csv")
#: A line of three dashes separates several prompts in one promptfoo prompt file.
_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class Prompt:
    """One prompt: its label, the file it lives in (the config for an inline one), its text."""

    label: str
    ref: str
    path: Path
    text: str
    raw: bytes
    inline: bool


def _file_prompt(ref: str, label: str | None, key: str, reader: FileReader) -> Prompt:
    path = reader.path(ref[len("file://") :], key)
    if path.suffix.lower() in _NOT_TEXT:
        raise SuiteError(
            f"prompt file {display(path)}: {path.suffix} prompts (chat message lists, prompt "
            "functions) are not supported",
            path=reader.where,
            key=key,
            fix="use a text template file (.txt, .md, .j2, .prompt)",
        )
    try:
        raw = read_confined(
            path, reader.confinement, where=reader.where, key=key, limit=MAX_PROMPT_BYTES
        )
    except FileNotFoundError:
        raise SuiteError(
            f"prompt file not found: {display(path)}",
            path=reader.where,
            key=key,
            fix="create the file or correct the path (relative to the config file)",
        ) from None
    encoding = "utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "utf-8"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise SuiteError(
            f"prompt file {display(path)} is not UTF-8 ({exc.reason} at byte {exc.start})",
            path=reader.where,
            key=key,
            fix="save the prompt file as UTF-8",
        ) from None
    if _SEPARATOR.search(text):
        raise SuiteError(
            f"prompt file {display(path)} holds several prompts separated by '---': not supported",
            path=reader.where,
            key=key,
            fix="put each prompt in its own file and list them under prompts:",
        )
    if not text.strip():
        raise SuiteError(
            f"prompt file {display(path)} is empty",
            path=reader.where,
            key=key,
            fix="write the prompt template into the file",
        )
    return Prompt(label or ref[len("file://") :], ref, path, text, raw, inline=False)


def _one(item: Any, index: int, reader: FileReader, config_raw: bytes) -> Prompt:
    key = f"prompts[{index}]"
    label: str | None = None
    if isinstance(item, dict):
        extra = sorted(set(item) - {"id", "raw", "label"})
        if extra:
            raise SuiteError(
                f"unsupported prompt key '{extra[0]}'",
                path=reader.where,
                key=f"{key}.{extra[0]}",
                fix="a prompt is {id: file://..., label: ...} or {raw: '...', label: ...}",
            )
        label = item.get("label")
        if label is not None and (not isinstance(label, str) or not label.strip()):
            raise SuiteError(
                f"a prompt's 'label' must be text, not {kind_of(label)}",
                path=reader.where,
                key=f"{key}.label",
                fix="write label: concise",
            )
        item = item.get("raw", item.get("id"))
    if not isinstance(item, str) or not item.strip():
        raise SuiteError(
            f"a prompt must be text or 'file://path', not {kind_of(item)}",
            path=reader.where,
            key=key,
            fix="write '- file://prompts/main.txt' or '- \"Answer: {{question}}\"'",
        )
    if item.strip().startswith("file://"):
        return _file_prompt(item.strip(), label, key, reader)
    if looks_like_text_file(item):
        # promptfoo reads a bare path such as 'prompts/main.txt' as a file, not as the text
        # 'prompts/main.txt' (a missing file is an error naming it, never a literal prompt)
        return _file_prompt("file://" + item.strip(), label, key, reader)
    # An inline prompt lives in the config file: write-back refuses that file by its type.
    return Prompt(label or f"prompt{index + 1}", item, reader.config, item, config_raw, True)


def read_prompts(value: Any, reader: FileReader, config_raw: bytes) -> list[Prompt]:
    """``prompts:`` as a list of :class:`Prompt` s with distinct labels."""
    if value is None:
        raise SuiteError(
            "missing required key 'prompts'",
            path=reader.where,
            key="prompts",
            fix="add e.g. 'prompts: [file://prompt.txt]'",
        )
    if isinstance(value, str):
        items: list[Any] = [value]
    elif isinstance(value, dict):  # {file://a.txt: label}
        items = [{"id": k, "label": v} for k, v in value.items()]
    else:
        items = value
    if not isinstance(items, list) or not items:
        raise SuiteError(
            "'prompts' must be a non-empty list",
            path=reader.where,
            key="prompts",
            fix="write 'prompts: [file://prompt.txt]'",
        )
    prompts = [_one(item, i, reader, config_raw) for i, item in enumerate(items)]
    seen: set[str] = set()
    for i, p in enumerate(prompts):
        if p.label in seen:
            raise SuiteError(
                f"two prompts share the label '{p.label}'",
                path=reader.where,
                key=f"prompts[{i}]",
                fix="give each a distinct 'label' (suite names and baseline keys use it)",
            )
        seen.add(p.label)
    return prompts
