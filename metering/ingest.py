"""CloudEvents parsing and validation for the ingest hot path: by hand, no serializers.

`parse_body(body, content_type)` returns the events as store tuples or raises ValidationFailed
listing every bad field as `events[3].subject` (batch) or `subject` (single event).

Numbers keep their exact value: a JSON number with more than 15 significant digits (the most
a float carries exactly) is parsed as Decimal and written back digit for digit; shorter ones
go through float, whose shortest repr is the same decimal value.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.errors import ValidationFailed
from metering.store import EventTuple

CE_FIELDS = frozenset(
    {"id", "source", "specversion", "type", "subject", "time", "data", "datacontenttype", "dataschema"}
)
MAX_ATTR_LEN = 255
_FRACTION = re.compile(r"(\.\d{6})\d+")


def _parse_float(text: str) -> float | Decimal:
    mantissa = text.lower().split("e", 1)[0]
    digits = mantissa.replace("-", "").replace(".", "").lstrip("0")
    if len(digits) <= 15:
        value = float(text)
        if value not in (float("inf"), float("-inf")) and (value != 0.0 or not digits):
            return value
    return Decimal(text)


def _parse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(raw: bytes | str) -> Any:
    return json.loads(raw, parse_float=_parse_float, parse_constant=_parse_constant)


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


def parse_body(body: bytes, content_type: str) -> list[Any]:
    """The JSON payload as a list of raw event objects (object or array accepted)."""
    if b"\\u0000" in body:
        raise ValidationFailed(
            "The body contains a NUL character (\\u0000), which cannot be stored.", field="body"
        )
    try:
        payload = loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"The body is not valid JSON: {exc}.", field="body") from None
    return payload


def validate_events(
    payload: Any, *, received_at: datetime, strict: bool = False, prefix: str = "events"
) -> list[EventTuple]:
    """Validate one event (dict) or a batch (list). Any bad event rejects the whole batch."""
    if isinstance(payload, dict):
        items, batch = [payload], False
    elif isinstance(payload, list):
        items, batch = payload, True
        if not items:
            raise ValidationFailed("The batch is empty.", field="body")
    else:
        raise ValidationFailed("The body must be a CloudEvent object or an array of them.", field="body")
    out: list[EventTuple] = []
    errors: list[dict[str, str]] = []
    for index, item in enumerate(items):
        where = f"{prefix}[{index}]." if batch else ""
        if not isinstance(item, dict):
            errors.append(
                {"name": f"{prefix}[{index}]" if batch else "body", "reason": "must be a JSON object"}
            )
            continue
        row = _validate_one(item, where, errors, received_at, strict)
        if row is not None:
            out.append(row)
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValidationFailed(
            f"{first['name']}: {first['reason']}{more}. No event of this request was stored.", errors=errors
        )
    return out


def _validate_one(
    ev: dict, where: str, errors: list[dict[str, str]], received_at: datetime, strict: bool
) -> EventTuple | None:
    bad = len(errors)
    values: list[str] = []
    for name in ("id", "source", "type", "subject"):
        v = ev.get(name)
        if not isinstance(v, str) or not v:
            errors.append({"name": where + name, "reason": "required, a non-empty string"})
        elif len(v) > MAX_ATTR_LEN:
            errors.append({"name": where + name, "reason": f"at most {MAX_ATTR_LEN} characters"})
        values.append(v)  # type: ignore[arg-type]
    spec = ev.get("specversion")
    if spec != "1.0":
        errors.append({"name": where + "specversion", "reason": 'required, must be "1.0"'})
    t = ev.get("time")
    when = received_at
    if t is not None:
        try:
            when = parse_time(t)
        except ValueError as exc:
            errors.append({"name": where + "time", "reason": str(exc)})
    data = ev.get("data")
    data_json: str | None = None
    if isinstance(data, str):
        try:
            data = loads(data)
        except ValueError:
            errors.append({"name": where + "data", "reason": "a string must hold a JSON object"})
            data = None
        else:
            if not isinstance(data, dict):
                errors.append({"name": where + "data", "reason": "a string must hold a JSON object"})
    if data is not None:
        if isinstance(data, dict):
            data_json = dumps(data)
        elif len(errors) == bad:
            errors.append({"name": where + "data", "reason": "must be a JSON object"})
    if strict:
        for key in ev:
            if key not in CE_FIELDS:
                errors.append(
                    {"name": where + key, "reason": "unknown property (additionalProperties: false)"}
                )
    if len(errors) > bad:
        return None
    return (values[1], values[0], values[2], values[3], when, data_json)
