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
