"""Typed records to JSON-able data and back: the one converter used at every boundary.

Records cross process and file boundaries in three places: xdist workers send their suite
records home, optimization checkpoints are written and resumed, and the JSON report is written.
Each record is a dataclass with type hints; :func:`to_data` and :func:`from_data` convert any
of them by those hints, so no record carries a hand-written ``to_dict``/``from_dict`` pair.

Chosen over cattrs or msgspec: the records are plain dataclasses of a handful of shapes
(primitives, enums, optionals, lists, tuples, string-keyed dicts, nested dataclasses), which
this covers in a few dozen lines with no dependency, and their JSON must stay byte-for-byte
what earlier versions wrote (field names in declaration order, enums as their values).

Reading is lenient where files may be older or newer: a missing field takes its default, an
unknown key is ignored. A value of the wrong shape raises :class:`DataError`.

A record whose data is a format of its own (the optimizer's settings, whose form is also their
fingerprint) says so by defining ``to_dict`` and a ``from_dict`` classmethod; the converter then
uses them for that record, and only for it.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, Union

T = TypeVar("T")


class DataError(ValueError):
    """Data does not have the shape of the record it is read into."""


def to_data(value: Any) -> Any:
    """``value`` as JSON-able data: dataclasses become dicts (fields in order), enums values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        own = getattr(value, "to_dict", None)
        if callable(own):
            return own()
        return {f.name: to_data(getattr(value, f.name)) for f in _fields(type(value))}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_data(v) for v in value]
    return value


def from_data(kind: type[T], data: Any, *, names: Mapping[str, Any] | None = None) -> T:
    """Read ``data`` (as written by :func:`to_data`) into a ``kind`` record.

    ``names`` resolves annotations that ``kind``'s module imports only for type checking.
    """
    if names:
        _NAMES.setdefault(kind, dict(names))
    result: T = _read(kind, data, kind.__name__)
    return result


_NAMES: dict[type, dict[str, Any]] = {}


@functools.cache
def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return tuple(f for f in dataclasses.fields(cls) if f.init)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, localns=_NAMES.get(cls))


def _read(tp: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return data
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if data is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _read(option, data, where)
            except DataError as exc:
                errors.append(str(exc))
        raise DataError("; ".join(errors) or f"{where}: no type fits {data!r}")
    if origin is typing.Literal:
        if data not in typing.get_args(tp):
            raise DataError(f"{where}: {data!r} is not one of {typing.get_args(tp)}")
        return data
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, Mapping):
            raise DataError(f"{where}: expected a mapping, got {type(data).__name__}")
        own = getattr(tp, "from_dict", None)
        if callable(own):
            try:
                return own(data)
            except (KeyError, TypeError, ValueError) as exc:
                raise DataError(f"{where}: {exc}") from None
        hints = _hints(tp)
        kwargs = {
            f.name: _read(hints[f.name], data[f.name], f"{where}.{f.name}")
            for f in _fields(tp)
            if f.name in data
        }
        try:
            return tp(**kwargs)
        except TypeError as exc:
            raise DataError(f"{where}: {exc}") from None
    if isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields"):
        # a NamedTuple is written as a list of its fields, in order
        items = _sequence(data, where)
        hints = _hints(tp)
        if len(items) != len(tp._fields):
            raise DataError(f"{where}: expected {len(tp._fields)} items, got {len(items)}")
        return tp(
            *(_read(hints[n], v, f"{where}.{n}") for n, v in zip(tp._fields, items, strict=True))
        )
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(data)
        except ValueError:
            raise DataError(f"{where}: {data!r} is not a {tp.__name__}") from None
    if origin in (list, Sequence) or tp in (list, Sequence):
        items = _sequence(data, where)
        (item,) = typing.get_args(tp) or (Any,)
        return [_read(item, v, f"{where}[{i}]") for i, v in enumerate(items)]
    if origin is tuple or tp is tuple:
        items = _sequence(data, where)
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_read(args[0], v, f"{where}[{i}]") for i, v in enumerate(items))
        if args and len(args) != len(items):
            raise DataError(f"{where}: expected {len(args)} items, got {len(items)}")
        return tuple(
            _read(args[i] if args else Any, v, f"{where}[{i}]") for i, v in enumerate(items)
        )
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(data, Mapping):
            raise DataError(f"{where}: expected a mapping, got {type(data).__name__}")
        args = typing.get_args(tp)
        value_tp = args[1] if len(args) == 2 else Any
        return {str(k): _read(value_tp, v, f"{where}[{k!r}]") for k, v in data.items()}
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise DataError(f"{where}: expected a number, got {data!r}")
        return float(data)
    if tp in (int, str, bool):
        if not isinstance(data, tp) or (tp is int and isinstance(data, bool)):
            raise DataError(f"{where}: expected {tp.__name__}, got {data!r}")
        return data
    if tp is type(None):
        if data is not None:
            raise DataError(f"{where}: expected null, got {data!r}")
        return None
    raise DataError(f"{where}: cannot read type {tp!r}")


def _sequence(data: Any, where: str) -> Sequence[Any]:
    if isinstance(data, str | bytes) or not isinstance(data, list | tuple):
        raise DataError(f"{where}: expected a list, got {type(data).__name__}")
    return data
