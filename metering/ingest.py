"""CloudEvents parsing and validation for the ingest hot path: by hand, no serializers.

- `parse_body(body)` parses JSON with orjson. Bodies orjson refuses only because a number does not
  fit a double (e.g. `1e400`) are parsed again by the standard library, exactly, refusing numbers
  PostgreSQL's `numeric` cannot hold.
- `check_events(payload)` validates one event (object) or a batch (array) and returns the number of
  events, or raises ValidationFailed listing every bad field as `events[3].subject` (batch) or
  `subject` (single event). Any bad event rejects the whole request.
- `inbox_body(body, payload)` is what the inbox stores: the request body itself, as a JSON array.

Validation is what makes the drain's SQL casts safe: ids, source, type and subject are non-empty
strings of at most 255 characters; `time` is RFC 3339 with seconds and an offset within PostgreSQL's
range (±15:59); `data` is an object, or a string holding one. PostgreSQL parses the stored body (its
`numeric` keeps every digit), so the values Python saw here are used for checking only.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from core.errors import ValidationFailed

CE_FIELDS = frozenset(
    {"id", "source", "specversion", "type", "subject", "time", "data", "datacontenttype", "dataschema"}
)
REQUIRED_STRINGS = ("id", "source", "type", "subject")
MAX_ATTR_LEN = 255
_FRACTION = re.compile(r"(\.\d{6})\d+")
# RFC 3339 date-time, as PostgreSQL's timestamptz input also reads it (offsets up to ±15:59).
_RFC3339 = re.compile(
    r"\s*\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:[Zz]|[+-](?:0\d|1[0-5]):[0-5]\d)\s*\Z"
)
# PostgreSQL numeric: up to 131072 digits before the decimal point and 16383 after it.
_PG_MAX_ADJUSTED = 131071
_PG_MIN_EXPONENT = -16383


def _exact_number(text: str) -> Decimal | int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text[:32]} is not a number") from None
    exponent = value.as_tuple().exponent
    if (
        not value.is_finite()
        or value.adjusted() > _PG_MAX_ADJUSTED
        or (isinstance(exponent, int) and exponent < _PG_MIN_EXPONENT and value != 0)
    ):
        raise ValueError(f"the number {text[:32]} is out of range")
    return value


def _parse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "when parsed as double" not in str(exc):
            raise ValueError(str(exc)) from None
    return json.loads(raw, parse_float=_exact_number, parse_int=_exact_number, parse_constant=_parse_constant)


def _dump_exact(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(
                json.dumps(str(k), ensure_ascii=False) + ":" + _dump_exact(v) for k, v in value.items()
            )
            + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(_dump_exact(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def dumps(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except TypeError:  # contains Decimal: rare, exact slow path
        return _dump_exact(value)


def parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", text))
        except ValueError:
            raise ValueError("must be an RFC 3339 date-time, e.g. 2025-01-01T12:00:00Z") from None
    if parsed.tzinfo is None:
        raise ValueError("must carry a time zone offset or Z, e.g. 2025-01-01T12:00:00Z")
    return parsed


def _event_time_error(value: Any) -> str | None:
    if type(value) is not str:
        return "must be an RFC 3339 date-time string"
    if _RFC3339.match(value) is None:
        return "must be an RFC 3339 date-time with seconds and an offset, e.g. 2025-01-01T12:00:00Z"
    try:
        parse_time(value)  # calendar and clock ranges
    except ValueError as exc:
        return str(exc)
    return None


def parse_body(body: bytes) -> Any:
    """The JSON payload (object or array), or ValidationFailed naming `body`."""
    if b"\\u0000" in body:
        raise ValidationFailed(
            "The body contains a NUL character (\\u0000), which cannot be stored.", field="body"
        )
    try:
        return loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"The body is not valid JSON: {exc}.", field="body") from None


def inbox_body(body: bytes, payload: Any) -> bytes:
    """The stored form of an accepted request: its body, wrapped in `[...]` when it is one event."""
    return body if isinstance(payload, list) else b"[" + body + b"]"


def check_events(payload: Any, *, strict: bool = False, prefix: str = "events") -> int:
    """Validate one event (dict) or a batch (list); return the number of events."""
    if isinstance(payload, dict):
        items, batch = [payload], False
    elif isinstance(payload, list):
        items, batch = payload, True
        if not items:
            raise ValidationFailed("The batch is empty.", field="body")
    else:
        raise ValidationFailed("The body must be a CloudEvent object or an array of them.", field="body")
    errors: list[dict[str, str]] = []
    for index, item in enumerate(items):
        if type(item) is not dict:
            errors.append(
                {"name": f"{prefix}[{index}]" if batch else "body", "reason": "must be a JSON object"}
            )
            continue
        _check_one(item, f"{prefix}[{index}]." if batch else "", errors, strict)
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValidationFailed(
            f"{first['name']}: {first['reason']}{more}. No event of this request was stored.", errors=errors
        )
    return len(items)


def _check_one(ev: dict, where: str, errors: list[dict[str, str]], strict: bool) -> None:
    """Append this event's problems to `errors`. Fast when the event is fine: no strings are built."""
    for name in REQUIRED_STRINGS:
        v = ev.get(name)
        if type(v) is not str or not v:
            errors.append({"name": where + name, "reason": "required, a non-empty string"})
        elif len(v) > MAX_ATTR_LEN:
            errors.append({"name": where + name, "reason": f"at most {MAX_ATTR_LEN} characters"})
    if ev.get("specversion") != "1.0":
        errors.append({"name": where + "specversion", "reason": 'required, must be "1.0"'})
    t = ev.get("time")
    if t is not None:
        problem = _event_time_error(t)
        if problem is not None:
            errors.append({"name": where + "time", "reason": problem})
    data = ev.get("data")
    if data is not None and type(data) is not dict:
        if type(data) is str:
            try:
                inner = loads(data)
            except ValueError:
                inner = None
            if type(inner) is not dict:
                errors.append({"name": where + "data", "reason": "a string must hold a JSON object"})
        else:
            errors.append({"name": where + "data", "reason": "must be a JSON object"})
    if strict and not ev.keys() <= CE_FIELDS:
        for key in ev:
            if key not in CE_FIELDS:
                errors.append(
                    {"name": where + key, "reason": "unknown property (additionalProperties: false)"}
                )
