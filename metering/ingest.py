"""CloudEvents parsing and validation for the ingest hot path.

- `validate_body(body)` is what the API calls: it returns the inbox form of the request (a JSON array of
  events) and the number of events, or raises ValidationFailed listing every bad field as
  `events[3].subject` (batch) or `subject` (single event). Any bad event rejects the whole request.
  Fast path: msgspec decodes the body straight into typed structs (required strings, `specversion`,
  RFC 3339 `time`, `data` an object), about 1 µs per event. Any problem sends the body to the
  slow path, which parses it generically and checks every event by hand to name every bad field.
- `parse_body(body)` parses JSON generically, numbers exact: floats become Decimal, and
  numbers PostgreSQL's `numeric` cannot hold are refused.

Validation is what makes the drain's SQL casts safe and every accepted event countable (`core.limits`):
ids, source, type and subject are non-empty strings of at most 255 characters; `time` is RFC 3339 with
seconds and an offset within PostgreSQL's range (±15:59), from 1970 up to now + INGEST_MAX_FUTURE_SECONDS;
`data` is an object, or a string holding one, nested at most MAX_JSON_DEPTH levels, its numbers below
EVENT_NUMBER_MAX in absolute value. PostgreSQL parses the stored body (its `numeric` keeps every digit), so
the values Python saw here are used for checking only.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

import msgspec

from core import limits
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


def _exact_number(text: str) -> Decimal:
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


_generic = msgspec.json.Decoder(float_hook=_exact_number)


def loads(raw: bytes | str) -> Any:
    """JSON → Python, exactly (floats as Decimal, big integers as int); ValueError when invalid."""
    try:
        return _generic.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(str(exc).replace("JSON is malformed: ", "")) from None


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


def _event_time_error(value: Any, latest: datetime) -> str | None:
    if type(value) is not str:
        return "must be an RFC 3339 date-time string"
    if _RFC3339.match(value) is None:
        return "must be an RFC 3339 date-time with seconds and an offset, e.g. 2025-01-01T12:00:00Z"
    try:
        parsed = parse_time(value)  # calendar and clock ranges
    except ValueError as exc:
        return str(exc)
    return limits.event_time_problem(parsed, latest=latest)


def _refuse_deep(body: bytes) -> None:
    if limits.json_depth_exceeds(body):
        raise ValidationFailed(
            f"The body nests more than {limits.MAX_JSON_DEPTH} levels deep; nothing was stored.", field="body"
        )


def _refuse_nul(body: bytes) -> None:
    if b"\\u0000" in body:
        raise ValidationFailed(
            "The body contains a NUL character (\\u0000), which cannot be stored.", field="body"
        )


def _refuse_invalid_utf8(body: bytes) -> None:
    """JSON is UTF-8, and PostgreSQL refuses any other byte sequence when it parses the stored batch. The
    fast path's decoder checks the strings it builds, not the values it only steps over (unknown fields,
    `data`), so the whole body is checked here (an ASCII body, the usual one, in one C-speed pass)."""
    if body.isascii():
        return
    try:
        body.decode()
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            f"The body is not valid UTF-8 (byte {exc.start}); nothing was stored.", field="body"
        ) from None


def _refuse_unstorable(body: bytes) -> None:
    """What no event of a body may carry, judged on its bytes before any parse: ValidationFailed naming
    `body`."""
    _refuse_invalid_utf8(body)
    _refuse_nul(body)
    _refuse_deep(body)


def _decode(body: bytes) -> Any:
    try:
        return loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"The body is not valid JSON: {exc}.", field="body") from None


def parse_body(body: bytes) -> Any:
    """The JSON payload (object or array), or ValidationFailed naming `body`."""
    _refuse_unstorable(body)
    return _decode(body)


# --- fast path ---------------------------------------------------------------------------------

_Attr = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ATTR_LEN)]
_Time = Annotated[datetime, msgspec.Meta(tz=True)]
_MAX_OFFSET = timedelta(hours=16)  # PostgreSQL: "time zone displacement out of range" from ±16:00
# A number that may reach EVENT_NUMBER_MAX (10^20: 21 digits, or an exponent of 10 or more), or a tiny one
# (1e-20000) a double rounds to 0: such bodies are judged exactly on the slow path.
# Judged on the text's "number shape" (the events' `data` when they carry no extension attribute, else the
# whole body: `_fast_events`; digits -> 0, e/E -> e, + and - kept, the rest blank: one C-speed
# translate, then substring searches; a regex took 7 ms per 1000 events). Only numbers count, not digits
# inside strings: a UUID such as "…-4e12-…" has the shape of an exponent, and would otherwise send most
# batches of UUID-keyed events to the slow path (three times the fast path's time).
_NUMBER_SHAPE = bytes(
    ord("0") if chr(c).isdigit() and c < 128 else ord("e") if c in b"eE" else c if c in b"+-" else ord(" ")
    for c in range(256)
)
_BIG_SHAPES = (b"0" * 20, b"0e00", b"0e+00", b"0e-")
_QUOTE = ord('"')


def _maybe_big_number(body: bytes) -> bool:
    """Whether a number of `body`, outside its strings, has one of the `_BIG_SHAPES`. Each occurrence of a
    shape is placed by counting the quotes before it (escaped quotes dropped first: every quote left opens
    or closes a string), from the previous one on, so the cost stays one pass per shape however many
    occurrences strings hold. Malformed JSON may be misjudged: the fast path's decoder then refuses it."""
    body = limits.without_escapes(body)
    shape = body.translate(_NUMBER_SHAPE)
    exponents = b"0e" in shape
    for pattern in _BIG_SHAPES if exponents else _BIG_SHAPES[:1]:
        quotes, counted = 0, 0
        at = shape.find(pattern)
        while at != -1:
            quotes += body.count(_QUOTE, counted, at)
            if not quotes & 1:
                return True
            counted = body.find(_QUOTE, at)  # the string's closing quote: nothing before it is a number
            if counted == -1:
                return False  # an unclosed string: malformed
            at = shape.find(pattern, counted)
    return False


_NO_DATA = msgspec.Raw(b"null")
_OPEN_BRACE = ord("{")


class _Event(msgspec.Struct, gc=False):
    """Only what is checked is built: `data` stays the raw text the decoder stepped over (checked to be
    JSON; an object or null is told by its first byte, anything else goes to the slow path, as does a
    string holding an object), so a batch makes no dictionaries, and the structs hold nothing the cycle
    collector must track (a batch of 1,000 events used to make it run a few times per request)."""

    id: _Attr
    source: _Attr
    specversion: Literal["1.0"]
    type: _Attr
    subject: _Attr
    time: _Time | None = None
    data: msgspec.Raw = _NO_DATA
    datacontenttype: str | None = None
    dataschema: str | None = None


class _StrictEvent(_Event, forbid_unknown_fields=True):
    pass


_FAST: dict[bool, msgspec.json.Decoder[Any]] = {
    False: msgspec.json.Decoder(list[_Event] | _Event),
    True: msgspec.json.Decoder(list[_StrictEvent] | _StrictEvent),
}


def _fast_events(body: bytes, strict: bool) -> list[_Event] | None:
    """The events when the whole body is valid by the fast path's rules, else None (slow path decides).

    Numbers can only be in `data` when the events carry no extension attribute (the strict struct decodes
    them), so only the text of their `data` is searched for a big or tiny number; a body with extension
    attributes (refused by the strict struct) is searched whole before the lenient decode."""
    try:
        decoded = _FAST[True].decode(body)
        numbers_in_data_only = True
    except (msgspec.DecodeError, msgspec.ValidationError):
        if strict or _maybe_big_number(body):
            return None
        try:
            decoded = _FAST[False].decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        numbers_in_data_only = False
    events = decoded if isinstance(decoded, list) else [decoded]
    if not events:
        return None
    if numbers_in_data_only and _maybe_big_number(b"".join(ev.data for ev in events)):
        return None
    latest = limits.event_time_max()
    earliest = limits.EVENT_TIME_MIN
    for ev in events:
        t = ev.time
        if memoryview(ev.data)[0] != _OPEN_BRACE and ev.data != _NO_DATA:
            return None
        if t is not None and (
            not -_MAX_OFFSET < t.utcoffset() < _MAX_OFFSET  # type: ignore[operator]
            or not earliest <= t <= latest
        ):
            return None
    return events


def validate_body(body: bytes, *, strict: bool = False, prefix: str = "events") -> tuple[bytes, int]:
    """(the inbox form of the request: a JSON array of its events, how many), or ValidationFailed."""
    _refuse_unstorable(body)
    events = _fast_events(body, strict)
    if events is None:  # name every problem (raises), or accept what only the fast path's rules refused
        payload = _decode(body)
        count = check_events(payload, strict=strict, prefix=prefix)
        is_batch = isinstance(payload, list)
    else:
        count = len(events)
        is_batch = body.lstrip()[:1] == b"["
    return (body if is_batch else b"[" + body + b"]"), count


# --- slow path: every problem, by name ---------------------------------------------------------------


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
    latest = limits.event_time_max()
    for index, item in enumerate(items):
        if type(item) is not dict:
            errors.append(
                {"name": f"{prefix}[{index}]" if batch else "body", "reason": "must be a JSON object"}
            )
            continue
        _check_one(item, f"{prefix}[{index}]." if batch else "", errors, strict, latest)
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValidationFailed(
            f"{first['name']}: {first['reason']}{more}. No event of this request was stored.", errors=errors
        )
    return len(items)


def _check_one(ev: dict, where: str, errors: list[dict[str, str]], strict: bool, latest: datetime) -> None:
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
        problem = _event_time_error(t, latest)
        if problem is not None:
            errors.append({"name": where + "time", "reason": problem})
    data = ev.get("data")
    if data is not None and type(data) is not dict:
        if type(data) is str:
            inner = None
            if not limits.json_depth_exceeds(data.encode(errors="replace")):
                with contextlib.suppress(ValueError):
                    inner = loads(data)
            if type(inner) is not dict:
                errors.append({"name": where + "data", "reason": "a string must hold a JSON object"})
            data = inner
        else:
            errors.append({"name": where + "data", "reason": "must be a JSON object"})
    if type(data) is dict and data:
        for name, reason in limits.json_problems(
            data, path=where + "data", max_abs=limits.EVENT_NUMBER_MAX, depth=1
        ):
            errors.append({"name": name, "reason": reason})
    if strict and not ev.keys() <= CE_FIELDS:
        for key in ev:
            if key not in CE_FIELDS:
                errors.append(
                    {"name": where + key, "reason": "unknown property (additionalProperties: false)"}
                )
