"""The wire format: JSON bodies checked against the domain dataclasses.

Bodies are decoded with the model's own ``*_from_json`` functions and encoded
with ``to_jsonable``, so the API, the ledger and the desk share one encoding.
Before decoding, :func:`check_shape` holds a body to the dataclass's field
types strictly (no ``123`` for a string, no unknown keys) and to text limits,
and the OpenAPI schemas are generated from the same dataclasses.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
import uuid
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from typing import Any, TypeVar

from consentdesk.domain.model import DomainError
from consentdesk.server import problems

T = TypeVar("T")

# Longest text accepted per field name; anything else is a short token (ids, names).
TEXT_LIMITS = {
    "text": 20_000,
    "note": 4_000,
    "reason": 2_000,
    "correction_reason": 2_000,
    # Review records: QA comments, and an incident's account and agent script.
    "comment": 2_000,
    "what_happened": 10_000,
    "script": 10_000,
    "summary": 10_000,
    "delay_reason": 10_000,
}
SHORT_TEXT = 200


class WireError(DomainError):
    """A body that does not fit the schema; ``errors`` lists each problem."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]))
        self.errors = errors


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise problems.Problem(400, "malformed-json", "Malformed JSON", str(exc)) from None


def decode(cls: type[Any], raw: bytes, decoder: Callable[[dict[str, Any]], T]) -> T:
    """Parse *raw*, check it against *cls* and build the object with *decoder*."""
    data = parse_json(raw)
    check_shape(cls, data)
    try:
        return decoder(data)
    except WireError:
        raise
    except DomainError as exc:
        raise WireError([{"field": "(body)", "message": str(exc)}]) from None


def decode_batch(raw: bytes, limit: int) -> list[Any]:
    """The records of a batch body, in order; a record that cannot be read
    stands as the WireError saying why (the others still count)."""
    from consentdesk.domain.model import (
        ConsentEvent,
        NewRequest,
        RequestChange,
        event_from_json,
        new_request_from_json,
        request_change_from_json,
    )

    kinds: dict[str, tuple[type[Any], Callable[[dict[str, Any]], Any]]] = {
        "consent": (ConsentEvent, event_from_json),
        "request": (NewRequest, new_request_from_json),
        "request-change": (RequestChange, request_change_from_json),
    }
    data = parse_json(raw)
    if (
        not isinstance(data, dict)
        or set(data) != {"records"}
        or not isinstance(data["records"], list)
    ):
        raise WireError([{"field": "(body)", "message": 'must be {"records": [...]}'}])
    items = data["records"]
    if len(items) > limit:
        raise WireError([{"field": "records", "message": f"at most {limit} records at once"}])
    out: list[Any] = []
    for i, item in enumerate(items):
        where = f"records[{i}]"
        if (
            not isinstance(item, dict)
            or set(item) != {"kind", "record"}
            or item["kind"] not in kinds
        ):
            out.append(
                WireError([{"field": where, "message": "must be {kind, record} of a known kind"}])
            )
            continue
        cls, decoder = kinds[item["kind"]]
        try:
            check_shape(cls, item["record"])
            out.append(decoder(item["record"]))
        except DomainError as exc:
            out.append(
                exc
                if isinstance(exc, WireError)
                else WireError([{"field": where, "message": str(exc)}])
            )
    return out


def check_shape(cls: type[Any], data: Any) -> None:
    errors: list[dict[str, str]] = []
    _check(cls, data, "", errors)
    if errors:
        raise WireError(errors)


@cache
def _fields(cls: type[Any]) -> tuple[dict[str, Any], frozenset[str]]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    # On the wire the sender supplies generated values too (event ids, times).
    required = frozenset(
        f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
    )
    return fields, required


def _check(tp: Any, value: Any, path: str, errors: list[dict[str, str]]) -> None:
    where = path or "(body)"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return
        inner = [a for a in args if a is not type(None)]
        _check(inner[0], value, path, errors)
        return
    if origin is tuple:
        if not isinstance(value, list):
            errors.append({"field": where, "message": "must be a list"})
            return
        item = typing.get_args(tp)[0]
        for i, v in enumerate(value):
            _check(item, v, f"{path}[{i}]", errors)
        return
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            errors.append({"field": where, "message": "must be an object"})
            return
        fields, required = _fields(tp)
        for key in value:
            if key not in fields:
                errors.append({"field": _join(path, key), "message": "unknown field"})
        for key in required - value.keys():
            errors.append({"field": _join(path, key), "message": "is required"})
        for key, ftype in fields.items():
            if key in value:
                _check(ftype, value[key], _join(path, key), errors)
        return
    if tp is bool:
        if not isinstance(value, bool):
            errors.append({"field": where, "message": "must be true or false"})
        return
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append({"field": where, "message": "must be a whole number"})
        return
    if tp in (str, uuid.UUID, datetime, date) or (
        isinstance(tp, type) and issubclass(tp, enum.Enum)
    ):
        _check_text(value, where, path, errors)
        return
    raise TypeError(f"no wire rule for {tp!r}")


def _check_text(value: Any, where: str, path: str, errors: list[dict[str, str]]) -> None:
    if not isinstance(value, str):
        errors.append({"field": where, "message": "must be text"})
        return
    name = path.rsplit(".", 1)[-1]
    limit = TEXT_LIMITS.get(name, SHORT_TEXT)
    if len(value) > limit:
        errors.append({"field": where, "message": f"is longer than {limit} characters"})
    elif "\x00" in value:
        errors.append({"field": where, "message": "must not contain NUL characters"})
    else:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            errors.append({"field": where, "message": "is not valid Unicode"})


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def check_text(value: str, name: str) -> None:
    """Hold one free-standing text (query or header value) to the same limits."""
    errors: list[dict[str, str]] = []
    _check_text(value, name, name, errors)
    if errors:
        raise WireError(errors)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of an already jsonable value."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- OpenAPI schemas generated from the dataclasses -----------------------------

REF = "#/components/schemas/{model}"


def json_schema(cls: type[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(schema, definitions)`` for *cls*, as :func:`check_shape` enforces it.

    Every object lists the fields a sender must supply and forbids unknown
    keys; responses always carry every field, so they fit the same schema.
    """
    from pydantic import TypeAdapter

    schema = TypeAdapter(cls).json_schema(ref_template=REF, mode="validation")
    defs: dict[str, Any] = schema.pop("$defs", {})
    for name, sub in [(cls.__name__, schema), *defs.items()]:
        target = _dataclass_named(cls, name)
        if target is not None and sub.get("type") == "object":
            _, required = _fields(target)
            sub["required"] = sorted(required)
            sub["additionalProperties"] = False
    return schema, defs


def _dataclass_named(root: type[Any], name: str) -> type[Any] | None:
    """The dataclass called *name* reachable from *root*'s fields."""
    seen: set[type[Any]] = set()
    stack: list[Any] = [root]
    while stack:
        tp = stack.pop()
        if dataclasses.is_dataclass(tp) and isinstance(tp, type) and tp not in seen:
            seen.add(tp)
            if tp.__name__ == name:
                return tp
            stack.extend(typing.get_type_hints(tp).values())
        else:
            stack.extend(typing.get_args(tp))
    return None
