"""Money: Decimal amounts, rounded once to the currency's exponent; minor units only at the edge.

`quantize` rounds a Decimal to the currency's number of decimals (from babel/CLDR: USD 2,
JPY 0, KWD 3) with ROUND_HALF_UP. `to_minor_units` / `from_minor_units` are the only place
amounts become integers (Stripe, and nothing else, speaks minor units).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import format_currency, get_currency_precision, list_currencies

ROUNDING = ROUND_HALF_UP
_KNOWN = frozenset(list_currencies())


class UnknownCurrency(ValueError):
    pass


def currency_exponent(currency: str) -> int:
    code = currency.upper()
    if code not in _KNOWN:
        raise UnknownCurrency(f"Unknown currency code {currency!r}.")
    return int(get_currency_precision(code))


def is_currency(code: str) -> bool:
    return code.upper() in _KNOWN


def to_decimal(value: object) -> Decimal:
    """Parse a decimal string or int (never a float) into a Decimal."""
    if isinstance(value, float):
        raise TypeError("Money and quantities must be Decimal strings, not floats.")
    if isinstance(value, Decimal):
        return value
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number.") from None
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite decimal number.")
    return result


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round once to the currency's exponent (half up)."""
    exponent = currency_exponent(currency)
    return amount.quantize(Decimal(1).scaleb(-exponent), rounding=ROUNDING)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Decimal amount → integer minor units (cents). The amount is rounded first."""
    exponent = currency_exponent(currency)
    return int(quantize(amount, currency).scaleb(exponent))


def from_minor_units(minor: int, currency: str) -> Decimal:
    exponent = currency_exponent(currency)
    return quantize(Decimal(minor).scaleb(-exponent), currency)


def format_money(amount: Decimal, currency: str) -> str:
    return format_currency(quantize(amount, currency), currency.upper(), locale="en_US")
