"""Lago's wire values, pure: its error shape (`LagoInvalid` → 422 `error_details`), timestamps, decimal
strings and `amount_cents`. Money crosses the border only through `core.money`: `amount_cents` integers
with `from_minor_units`/`to_minor_units`, decimal strings with `to_decimal` (a JSON float is refused).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from core.money import from_minor_units, to_decimal, to_minor_units

EVENT_SOURCE = "lago"  # the CloudEvents `source` of events sent through this API (dedup key: source + id)

# --- errors -----------------------------------------------------------------------------------------


class LagoInvalid(Exception):
    """A 422 in Lago's shape: `error_details` maps a field to a list of error codes."""

    def __init__(self, details: dict[str, list[str]]):
        super().__init__(details)
        self.details = details


class FieldErrors:
    def __init__(self) -> None:
        self.details: dict[str, list[str]] = {}

    def add(self, name: str, code: str) -> None:
        self.details.setdefault(name, [])
        if code not in self.details[name]:
            self.details[name].append(code)

    def raise_any(self) -> None:
        if self.details:
            raise LagoInvalid(self.details)


def error_body(status: int, code: str, *, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """Lago's error document: `{"status", "error", "code", "error_details"}`."""
    titles = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        409: "Conflict",
        413: "Payload Too Large",
        415: "Unsupported Media Type",
        422: "Unprocessable Entity",
        429: "Too Many Requests",
        503: "Service Unavailable",
    }
    body: dict[str, Any] = {"status": status, "error": titles.get(status, "Error"), "code": code}
    if details is not None:
        body["error_details"] = details
    return body


# --- scalars ----------------------------------------------------------------------------------------


def iso(dt: datetime | None) -> str | None:
    """Lago writes times as ISO 8601 in UTC with a Z."""
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decimal_string(value: Any) -> Decimal | None:
    """Lago's amounts are decimal strings ("0.05"); integers are accepted; floats and junk are not."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return None
    if not isinstance(value, (str, int)):
        return None
    try:
        number = to_decimal(value)
    except (ValueError, TypeError, InvalidOperation):
        return None
    if abs(number) >= Decimal(10) ** 18:
        return None
    return number


def plain(value: Decimal) -> str:
    """A Decimal as Lago writes it: no exponent, no trailing zeros after the point ("10", "0.5")."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def cents(amount: Decimal, currency: str) -> int:
    return to_minor_units(amount, currency)


def from_cents(value: Any, currency: str) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 10**18:
        return None
    return from_minor_units(value, currency)


def parse_timestamp(value: Any) -> datetime | None:
    """Lago's event `timestamp`: Unix seconds, an integer or with fractions, as a number or a string
    ("1700000000.123"); an ISO 8601 string is accepted too. None when unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds: Decimal | None = Decimal(str(value))
    elif isinstance(value, str):
        try:
            seconds = Decimal(value.strip())
        except InvalidOperation:
            seconds = None
        if seconds is None:
            try:
                parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                return None
            return parsed if parsed.tzinfo else None
    else:
        return None
    if seconds is None or not seconds.is_finite() or not 0 <= seconds < Decimal(4102444800):
        return None
    whole = int(seconds)
    micro = int(((seconds - whole) * 1_000_000).to_integral_value())
    return datetime.fromtimestamp(whole, tz=UTC).replace(microsecond=min(micro, 999_999))


def parse_datetime(value: Any) -> datetime | None:
    """An ISO 8601 date-time with an offset (Lago's `subscription_at`, `expiration_at`)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    if not datetime(1970, 1, 1, tzinfo=UTC) <= parsed < datetime(2100, 1, 1, tzinfo=UTC):
        return None
    return parsed
