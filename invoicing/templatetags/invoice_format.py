"""Template filters over invoicing/display.py (formatting only)."""

from __future__ import annotations

from typing import Any

from django import template

from invoicing import display

register = template.Library()


@register.filter
def inv_money(value: Any, currency: str = "USD") -> str:
    return display.money(value, currency)


@register.filter
def inv_price(value: Any, currency: str = "USD") -> str:
    return display.unit_price(value, currency)


@register.filter
def inv_qty(value: Any) -> str:
    return display.quantity(value)


@register.filter
def inv_detail(line: Any, currency: str = "USD") -> list[display.DetailRow]:
    return display.detail_rows(line, currency)
