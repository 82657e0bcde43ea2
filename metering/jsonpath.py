"""The small JSONPath subset meters use: `$.a.b`, `$.a[0]`, `$['a b']`, `$["x"].y`.

A path compiles to a list of keys, passed to PostgreSQL as a text[] for `data #>> path`
(array indexes are written as digits, which `#>>` treats as array positions). The same list
drives the Python-side extraction used to explain uncounted events.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_TOKEN = re.compile(
    r"""\.([A-Za-z_$@][\w$@-]*)|\[(\d+)\]|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[\s*"((?:[^"\\]|\\.)*)"\s*\]"""
)
# A countable number (core.limits.EVENT_NUMBER_MAX): below 10^20 in absolute value, so any sum the money code
# forms stays in range. At most 20 digits before the point (a negative exponent only shrinks it), or one digit
# and an exponent up to +19. jsonb prints numbers without exponents, so a stored 1e30 fails the first form.
# Values that fail (only rows stored before the limit) are not counted, as missing values are not.
NUMERIC_SQL_RE = r"^-?(?:[0-9]{1,20}(?:\.[0-9]+)?(?:[eE]-[0-9]+)?|[0-9](?:\.[0-9]+)?[eE]\+?1?[0-9])$"
NUMERIC_RE = re.compile(NUMERIC_SQL_RE)  # the same test in Python and in SQL
_COUNTABLE_MAX = Decimal(10) ** 20


class JsonPathError(ValueError):
    pass


def compile_path(path: str) -> list[str]:
    """`$.a.b[0]` -> ["a", "b", "0"]. Raises JsonPathError with a human reason."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise JsonPathError("must be a JSONPath starting with $, e.g. $.tokens")
    rest = path[1:]
    keys: list[str] = []
    pos = 0
    while pos < len(rest):
        m = _TOKEN.match(rest, pos)
        if not m:
            raise JsonPathError(
                f"unsupported JSONPath syntax at {rest[pos:]!r} (use $.a.b, $.a[0] or $['a b'])"
            )
        key = next(g for g in m.groups() if g is not None)
        keys.append(key)
        pos = m.end()
    if not keys:
        raise JsonPathError("must select a property, e.g. $.tokens")
    return keys


def extract(data: Any, keys: list[str]) -> Any:
    """The value at keys in data, or None when missing (mirrors PostgreSQL's `#>`)."""
    cur = data
    for key in keys:
        if isinstance(cur, dict):
            if key not in cur:
                return None
            cur = cur[key]
        elif isinstance(cur, list) and key.isdigit():
            idx = int(key)
            if idx >= len(cur):
                return None
            cur = cur[idx]
        else:
            return None
    return cur


def as_number(value: Any) -> Decimal | None:
    """The numeric reading of a value for SUM/AVG/MIN/MAX/LATEST: JSON numbers and numeric strings."""
    if value is None or isinstance(value, bool):
        return None
    number: Decimal | None = None
    if isinstance(value, (int, Decimal)):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str) and NUMERIC_RE.match(value):
        try:
            number = Decimal(value)
        except InvalidOperation:  # pragma: no cover - the regex admits only valid numbers
            return None
    if number is None or not number.is_finite() or number.copy_abs() >= _COUNTABLE_MAX:
        return None
    return number


def value_path_problem(path: Any) -> str | None:
    """Why a meter's value or group-by path cannot be used, or None. Paths are relative to the event's
    `data`, so `$.data.tokens` (which would look for data.data.tokens) is refused with the fix."""
    try:
        keys = compile_path(path)
    except JsonPathError as exc:
        return str(exc)
    if keys[0] == "data" and len(keys) > 1:
        fixed = "$." + ".".join(keys[1:])
        return f"paths are read inside the event's data: write {fixed}, not {path}"
    return None
