"""Small coercions of the values found in a Kong log: lenient where a field is descriptive, exact where
it is counted. Text we copy has NUL replaced by U+FFFD (jsonb cannot hold it)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

DESCRIPTIVE_MAX = 10**18  # sizes, latencies, statuses beyond this are unusable (None)
EXCERPT_MAX_CHARS = 1024  # strings kept of a rejected entry for the event log


def clean_text(text: str) -> str:
    """Text safe to store: NUL (which PostgreSQL's jsonb cannot hold) and a literal `\\u0000`
    (which ingest's NUL guard would read as one) become U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if "\\u0000" in text:
        text = text.replace("\\u0000", "\ufffdu0000")
    return text


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return clean_text(value)
    return None


def exact_int(value: Any) -> int | None:
    """int for ints, integral floats/Decimals of sane size and digit strings; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, Decimal):
        if not value.is_finite() or value.adjusted() > 30:
            return None
        return int(value) if value == value.to_integral_value() else None
    if isinstance(value, str):
        text = value.strip()
        return int(text) if text.isascii() and text.lstrip("-").isdigit() and len(text) < 30 else None
    return None


def descriptive_number(value: Any) -> int | float | Decimal | None:
    """Descriptive numbers: exact int when integral, the number itself when not, else None."""
    number = exact_int(value)
    if number is not None:
        return number if abs(number) < DESCRIPTIVE_MAX else None
    if isinstance(value, float) and math.isfinite(value) and abs(value) < DESCRIPTIVE_MAX:
        return value
    if isinstance(value, Decimal) and value.is_finite() and -30 <= value.adjusted() < 18:
        return value
    return None


def clean_tree(value: Any, depth: int = 0) -> Any:
    """JSON-safe copy for the event log: strings cleaned and shortened; a number that is not a plain int
    or float is kept exactly as text."""
    if depth > 8:
        return None
    if isinstance(value, Mapping):
        return {clean_text(str(k))[:EXCERPT_MAX_CHARS]: clean_tree(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_tree(v, depth + 1) for v in value[:100]]
    if isinstance(value, str):
        return clean_text(value)[:EXCERPT_MAX_CHARS]
    if isinstance(value, bool) or value is None:
        return value
    number = descriptive_number(value) if isinstance(value, int | float | Decimal) else None
    if isinstance(number, int | float):
        return number
    if isinstance(value, int | float | Decimal):
        return str(value)[:EXCERPT_MAX_CHARS]  # exact, as text (a JSON column holds no Decimal)
    return None


def header_value(headers: Mapping[str, Any], name: str) -> str | None:
    """The first usable value of header `name` (any case; Kong logs a repeated header as a list)."""
    wanted = name.strip().lower()
    for key, value in headers.items():
        if str(key).lower() != wanted:
            continue
        values = value if isinstance(value, list) else [value]  # repeated headers arrive as a list
        for item in values:
            text = as_text(item)
            if text and text.strip() and text != "REDACTED":
                return text
    return None
