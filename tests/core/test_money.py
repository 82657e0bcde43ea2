from decimal import Decimal

import pytest

from core.money import (
    UnknownCurrency,
    currency_exponent,
    from_minor_units,
    quantize,
    to_decimal,
    to_minor_units,
)


@pytest.mark.parametrize(
    ("currency", "exponent"), [("USD", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3), ("usd", 2)]
)
def test_exponents(currency, exponent):
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize(
    ("amount", "currency", "rounded", "minor"),
    [
        ("10.005", "USD", "10.01", 1001),  # half up, not banker's
        ("10.004", "USD", "10.00", 1000),
        ("0.125", "USD", "0.13", 13),
        ("-1.005", "USD", "-1.01", -101),
        ("1234.5", "JPY", "1235", 1235),
        ("1234.4", "JPY", "1234", 1234),
        ("1.2345", "KWD", "1.235", 1235),
        ("0.0004", "KWD", "0.000", 0),
        ("12345678901234.999", "USD", "12345678901235.00", 1234567890123500),
    ],
)
def test_quantize_and_minor_units(amount, currency, rounded, minor):
    assert quantize(Decimal(amount), currency) == Decimal(rounded)
    assert str(quantize(Decimal(amount), currency)) == rounded
    assert to_minor_units(Decimal(amount), currency) == minor


@pytest.mark.parametrize(
    ("minor", "currency", "amount"), [(1001, "USD", "10.01"), (1235, "JPY", "1235"), (1235, "KWD", "1.235")]
)
def test_from_minor_units_round_trips(minor, currency, amount):
    assert str(from_minor_units(minor, currency)) == amount
    assert to_minor_units(from_minor_units(minor, currency), currency) == minor


def test_floats_are_refused_and_strings_parsed():
    with pytest.raises(TypeError):
        to_decimal(0.1)
    assert to_decimal("0.1") + to_decimal("0.2") == Decimal("0.3")
    with pytest.raises(ValueError, match="not a decimal"):
        to_decimal("ten")
    with pytest.raises(ValueError, match="finite"):
        to_decimal("NaN")


def test_unknown_currency():
    with pytest.raises(UnknownCurrency):
        quantize(Decimal(1), "XYZ")
