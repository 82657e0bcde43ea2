"""Display helpers for portal and dashboard templates (formatting only, no logic)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

from core.money import quantize

register = template.Library()


@register.filter
def money(value, currency: str = "USD") -> str:
    """A Decimal amount rounded to the currency's exponent, with thousands separators: 1,234.50."""
    if value is None or value == "":
        return ""
    try:
        amount = quantize(Decimal(str(value)), currency or "USD")
    except (InvalidOperation, ValueError):
        return str(value)
    return f"{amount:,}"


ADDRESS_ORDER = ("line1", "line2", "postalCode", "city", "state", "country")


@register.filter
def address_lines(address) -> list[str]:
    """A billing address document ({line1, line2, postalCode, city, state, country}) as display lines:
    street lines, then "postal code city", then state and country; empty parts left out."""
    if not isinstance(address, dict):
        return []
    get = lambda key: str(address.get(key) or "").strip()  # noqa: E731
    town = " ".join(p for p in (get("postalCode"), get("city")) if p)
    return [p for p in (get("line1"), get("line2"), town, get("state"), get("country")) if p]


@register.filter
def tax_id(value) -> str:
    """A tax id as stored ({"type": "eu_vat", "value": "DE123"} or a bare string): "DE123 (eu_vat)"."""
    if isinstance(value, dict):
        number = str(value.get("value") or "")
        kind = str(value.get("type") or "")
        return f"{number} ({kind})" if kind and number else number or kind
    return str(value)
