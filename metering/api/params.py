"""Small readers of query parameters and bodies shared by the metering API modules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from core import limits
from core.errors import ValidationFailed
from metering.ingest import parse_time

TIME_PARAMS = [
    OpenApiParameter("from", OpenApiTypes.DATETIME, description="RFC 3339, inclusive."),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="RFC 3339, exclusive."),
]


def body_object(data: Any) -> dict[str, Any]:
    """A request body that must be a JSON object (else a 400 naming `body`)."""
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", field="body")
    return data


def body_time(d: dict[str, Any], name: str) -> datetime | None:
    """An RFC 3339 time in a body (absent, null or empty: None), within the accepted range."""
    if d.get(name) in (None, ""):
        return None
    try:
        parsed = parse_time(d[name])
    except ValueError as exc:
        raise ValidationFailed(f"{name} {exc}.", field=name) from None
    return limits.check_time(parsed, field=name)


def param_time(q, name: str) -> datetime | None:
    value = q.get(name)
    if value in (None, ""):
        return None
    try:
        parsed = parse_time(value)
    except ValueError as exc:
        raise ValidationFailed(f"{name} {exc}.", field=name) from None
    return limits.check_time(parsed, field=name)


def body_strings(d: dict[str, Any], name: str) -> list[str] | None:
    """A query body's `subject`, `filterCustomerId` or `groupBy`: a string or a list of strings."""
    value = d.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationFailed(f"{name} must be a string or an array of strings.", field=name)
    return value


def body_string(d: dict[str, Any], name: str) -> str | None:
    value = d.get(name)
    if value is not None and not isinstance(value, str):
        raise ValidationFailed(f"{name} must be a string.", field=name)
    return value or None
