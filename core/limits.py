"""The limits every input is held to, in one place (docs/architecture.md "Limits").

Whatever the API accepts must stay storable, countable and billable later: a value that passes here never
makes a background job, a page or an invoice fail. Each check returns a reason (or raises
`ValidationFailed` naming the field), so callers turn it into a 400 problem+json before writing anything.

- **Times**: events between `EVENT_TIME_MIN` (1970) and now + `INGEST_MAX_FUTURE_SECONDS`; schedules
  (subscription start and change timing, billing anchors, grant effective dates, meter `eventFrom`) and
  query bounds in [`TIME_MIN`, `TIME_MAX`) = [1970-01-01, 2100-01-01). UTC offsets are at most ±15:59.
- **Numbers**: finite; in event data |x| < `EVENT_NUMBER_MAX` (10^20); amounts and prices in API inputs
  |x| < `AMOUNT_MAX` (10^18) with at most `AMOUNT_PLACES` (12) decimal places (catalog/pricing/models.py holds
  prices to the same bound), well inside the 26 digits before the point of the money columns
  (`NUMERIC(38,12)`); anywhere else in a JSON body |x| < 10^26.
- **JSON**: at most `MAX_JSON_DEPTH` (32) levels of nesting; no NUL character in any string or key; an
  API body other than ingest at most `MAX_BODY_BYTES` (1 MiB), its strings at most `MAX_STRING` characters.
- **Text**: no NUL character; paths and query values at most `MAX_QUERY_VALUE` characters, at most
  `MAX_QUERY_PARAMS` query parameters.
- **Durations and counts**: ISO 8601 durations at most `MAX_DURATION_DAYS` (100 years); counts at most
  `MAX_COUNT`.
- **Time zones**: IANA names known to `zoneinfo`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings

from core.errors import ValidationFailed

EVENT_TIME_MIN = datetime(1970, 1, 1, tzinfo=UTC)
TIME_MIN = datetime(1970, 1, 1, tzinfo=UTC)
TIME_MAX = datetime(2100, 1, 1, tzinfo=UTC)
MAX_OFFSET = timedelta(hours=16)  # PostgreSQL refuses a displacement of ±16:00 or more

EVENT_NUMBER_MAX = Decimal(10) ** 20
AMOUNT_MAX = Decimal(10) ** 18
AMOUNT_PLACES = 12
AMOUNT_DIGITS = 30  # a DecimalField with 12 decimal places and 18 before the point: |x| < AMOUNT_MAX
BODY_NUMBER_MAX = Decimal(10) ** 26  # NUMERIC(38,12) holds 26 digits before the point

MAX_JSON_DEPTH = 32
MAX_BODY_BYTES = 1024 * 1024  # an API body other than ingest (plans, customers, ...): 1 MiB
MAX_STRING = 65_536  # characters of one string in such a body
MAX_QUERY_PARAMS = 1000
MAX_QUERY_VALUE = 2048
MAX_PATH = 2048
MAX_DURATION_DAYS = 36_525  # 100 years
MAX_COUNT = 1_000_000


# --- times ---------------------------------------------------------------------------------------


def _offset_problem(value: datetime) -> str | None:
    offset = value.utcoffset()
    if offset is None:
        return "must carry a time zone offset or Z, e.g. 2025-01-01T12:00:00Z"
    if not -MAX_OFFSET < offset < MAX_OFFSET:
        return "the UTC offset must be within ±15:59"
    return None


def _utc(value: datetime) -> datetime | None:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+15:00 is before year 1 in UTC
        return None


def event_time_max(now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) + timedelta(seconds=settings.INGEST_MAX_FUTURE_SECONDS)


def event_time_problem(value: datetime, *, latest: datetime) -> str | None:
    """Why an event time cannot be accepted (None when it can): 1970 up to `latest` (now + skew)."""
    problem = _offset_problem(value)
    if problem:
        return problem
    utc = _utc(value)
    if (utc is None and value.year < 1970) or (utc is not None and utc < EVENT_TIME_MIN):
        return "must not be before 1970-01-01T00:00:00Z"
    if utc is None or utc > latest:
        return (
            f"must not be more than {settings.INGEST_MAX_FUTURE_SECONDS} s in the future "
            "(INGEST_MAX_FUTURE_SECONDS)"
        )
    return None


def time_problem(value: datetime) -> str | None:
    """Why a schedule or query time is out of range (None when it is fine): [1970-01-01, 2100-01-01)."""
    problem = _offset_problem(value)
    if problem:
        return problem
    utc = _utc(value)
    if utc is None or not TIME_MIN <= utc < TIME_MAX:
        return "must be between 1970-01-01T00:00:00Z and 2099-12-31T23:59:59Z"
    return None


def check_time(value: datetime | None, *, field: str) -> datetime | None:
    """`value` when in the schedule range; ValidationFailed naming `field` otherwise."""
    if value is None:
        return None
    problem = time_problem(value)
    if problem:
        raise ValidationFailed(f"{field} {problem}.", field=field)
    return value


# --- numbers -------------------------------------------------------------------------------------


def number_problem(
    value: Any, *, max_abs: Decimal = AMOUNT_MAX, places: int | None = AMOUNT_PLACES
) -> str | None:
    """Why a number is refused (None when fine): not finite, |x| >= max_abs, or too many decimal places."""
    if isinstance(value, bool):
        return "must be a number"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "must be a finite number"
        value = Decimal(repr(value))
    elif isinstance(value, int):
        value = Decimal(value)
    elif isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            return "must be a number"
    if not isinstance(value, Decimal):
        return "must be a number"
    if not value.is_finite():
        return "must be a finite number"
    if value.copy_abs() >= max_abs:
        return f"must be less than {max_abs:.0E} in absolute value".replace("E+", "e")
    exponent = value.as_tuple().exponent
    if (
        places is not None
        and isinstance(exponent, int)
        and exponent < -places
        and value != value.quantize(Decimal(1).scaleb(-places))
    ):
        return f"at most {places} decimal places"
    return None


def check_amount(value: Any, *, field: str, max_abs: Decimal = AMOUNT_MAX) -> None:
    if value is None:
        return
    problem = number_problem(value, max_abs=max_abs)
    if problem:
        raise ValidationFailed(f"{field} {problem}.", field=field)


def check_count(value: Any, *, field: str, maximum: int = MAX_COUNT) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ValidationFailed(f"{field} must be a whole number from 0 to {maximum}.", field=field)


# --- JSON ----------------------------------------------------------------------------------------

_KEEP_STRUCTURE = bytes(c for c in range(256) if c not in b'[]{}"')
_STRING = re.compile(rb'"[^"]*"')
_INNERMOST = re.compile(rb"\{\}|\[\]")


def without_escapes(body: bytes) -> bytes:
    """A JSON text with its escaped backslashes and quotes dropped (in that order), so that every quote
    left opens or closes a string."""
    if b"\\" not in body:
        return body
    return body.replace(b"\\\\", b"").replace(b'\\"', b"")


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when a JSON text nests arrays/objects more than `limit` levels deep, judged on the bytes
    (before any parser recurses). C-speed steps only: escaped quotes and backslashes are dropped, every
    byte but quotes and brackets is deleted, strings (now `""` or brackets between quotes) are removed,
    and then each pass deletes the innermost `{}`/`[]` pairs: the passes needed are the depth.
    Malformed text is left to the parser (False)."""
    skeleton = without_escapes(body).translate(None, _KEEP_STRUCTURE)
    if skeleton.count(b"[") + skeleton.count(b"{") <= limit:  # cannot nest deeper than its brackets
        return False
    skeleton = skeleton.replace(b'""', b"")
    if b'"' in skeleton:
        skeleton = _STRING.sub(b"", skeleton)
    if len(skeleton) <= 2 * limit:
        return False
    for _ in range(limit):
        shorter = _INNERMOST.sub(b"", skeleton)
        if not shorter or shorter == skeleton:
            return False
        skeleton = shorter
    return True


def json_problems(
    value: Any,
    *,
    path: str = "",
    max_abs: Decimal = BODY_NUMBER_MAX,
    max_string: int | None = None,
    depth: int = 0,
) -> Iterator[tuple[str, str]]:
    """(field path, reason) for every NUL character, string longer than `max_string`, non-finite or
    too-large number and nesting beyond MAX_JSON_DEPTH in a decoded JSON value (paths look like
    `metadata.a` or `events[3].data.tokens`)."""
    if depth > MAX_JSON_DEPTH:
        yield path or "body", f"nested more than {MAX_JSON_DEPTH} levels deep"
        return
    if isinstance(value, str):
        if "\x00" in value:
            yield path or "body", "must not contain a NUL character (\\u0000)"
        elif max_string is not None and len(value) > max_string:
            yield path or "body", f"at most {max_string} characters"
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                yield path or "body", "keys must not contain a NUL character (\\u0000)"
                continue
            yield from json_problems(item, path=name, max_abs=max_abs, max_string=max_string, depth=depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from json_problems(
                item, path=f"{path}[{index}]", max_abs=max_abs, max_string=max_string, depth=depth + 1
            )
    elif isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        problem = number_problem(value, max_abs=max_abs, places=None)
        if problem:
            yield path or "body", problem


def check_json(
    value: Any, *, path: str = "", max_abs: Decimal = BODY_NUMBER_MAX, max_string: int | None = MAX_STRING
) -> None:
    errors = [
        {"name": name, "reason": reason}
        for name, reason in json_problems(value, path=path, max_abs=max_abs, max_string=max_string)
    ]
    if errors:
        first = errors[0]
        raise ValidationFailed(f"{first['name']}: {first['reason']}.", errors=errors[:50])


# --- text, time zones, durations -------------------------------------------------------------------


def text_problem(value: str, *, max_length: int = MAX_QUERY_VALUE) -> str | None:
    if "\x00" in value:
        return "must not contain a NUL character"
    if len(value) > max_length:
        return f"at most {max_length} characters"
    return None


def check_timezone(name: Any, *, field: str) -> str:
    """An IANA time zone name known to zoneinfo, else ValidationFailed naming `field`."""
    if not isinstance(name, str) or not name or len(name) > 64 or "\x00" in name:
        raise ValidationFailed(f"{field} must be an IANA time zone name such as Europe/Berlin.", field=field)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(f"Unknown time zone {name!r}.", field=field) from None
    return name


def duration_days_problem(days: float) -> str | None:
    if days > MAX_DURATION_DAYS:
        return f"must not be longer than {MAX_DURATION_DAYS} days (100 years)"
    return None
