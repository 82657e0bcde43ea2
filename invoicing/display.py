"""How invoice numbers read on the console pages and the PDF (formatting only, no database).

- Amounts (line totals, taxes, totals) are rounded to the currency's exponent: "1,234.50".
- Unit prices keep the precision they have: a price of 0.0000025 reads "0.0000025", never "0.0000";
  a price with no more decimals than the currency reads like an amount ("0.10").
- Quantities read without trailing zeros and with thousands separators: "12,500", "4.00004".
- A usage line's detail (the tiers or packages that explain it) reads as sub-lines with formatted
  quantity, unit price and amount; sub-lines worth 0.00 and running totals are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from core.money import currency_exponent, quantize


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _grouped(number: Decimal) -> str:
    """Thousands separators, no exponent, the digits the number has."""
    text = format(number, "f")
    sign = "-" if text.startswith("-") else ""
    whole, _, frac = text.lstrip("-").partition(".")
    return f"{sign}{int(whole):,}" + (f".{frac}" if frac else "")


def money(value: Any, currency: str) -> str:
    number = _decimal(value)
    if number is None:
        return ""
    return _grouped(quantize(number, currency or "USD"))


def unit_price(value: Any, currency: str) -> str:
    number = _decimal(value)
    if number is None:
        return ""
    exponent = currency_exponent(currency or "USD")
    plain = number.normalize()
    if -plain.as_tuple().exponent <= exponent:  # type: ignore[operator]
        return money(number, currency)
    return _grouped(plain)


def quantity(value: Any) -> str:
    number = _decimal(value)
    if number is None:
        return ""
    if number == 0:
        return "0"
    plain = number.normalize()
    if plain == plain.to_integral_value():
        plain = plain.quantize(Decimal(1))
    return _grouped(plain)


@dataclass(frozen=True)
class DetailRow:
    description: str
    quantity: str
    unit_price: str
    amount: str


def detail_rows(line: Any, currency: str) -> list[DetailRow]:
    """The sub-lines that explain a usage or adjustment line, formatted; 0.00 and running totals out."""
    if getattr(line, "type", "") not in ("usage", "adjustment"):
        return []
    rows = []
    for d in getattr(line, "detail", None) or []:
        if not isinstance(d, dict) or d.get("type") == "cumulative" or not d.get("description"):
            continue
        amount = _decimal(d.get("amount"))
        if amount is not None and quantize(amount, currency) == 0:
            continue
        rows.append(
            DetailRow(
                description=str(d["description"]),
                quantity=quantity(d.get("quantity")),
                unit_price=unit_price(d.get("unitAmount") or d.get("unit_amount"), currency),
                amount=money(amount, currency) if amount is not None else "",
            )
        )
    return rows
