"""Proration of in-advance (flat) charges: pure, no database.

Rule (documented in docs/billing.md): a flat fee billed for part of a period is
`amount * seconds(span) / seconds(period)`, where span and period are half-open [start, end) and the
seconds are exact elapsed seconds (so a DST-short month has fewer seconds, and the same span is worth a
little more of it). The fraction is kept exact (`fractions.Fraction`) and the money amount is rounded
exactly once, per line, with `core.money.quantize` (ROUND_HALF_UP to the currency exponent).
Usage charges are never prorated: usage is split by event time at the change instant.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from core.money import quantize


def proration_fraction(
    *, span_start: datetime, span_end: datetime, period_start: datetime, period_end: datetime
) -> Fraction:
    """Exact share of [period_start, period_end) covered by [span_start, span_end) (clipped)."""
    total = (period_end - period_start).total_seconds()
    if total <= 0:
        raise ValueError("A period must have a positive length.")
    s = max(span_start, period_start)
    e = min(span_end, period_end)
    covered = max((e - s).total_seconds(), 0.0)
    # timedelta seconds are exact to the microsecond; keep them as integer microseconds.
    return Fraction(round(covered * 1_000_000), round(total * 1_000_000))


def fraction_decimal(fraction: Fraction, places: int = 12) -> Decimal:
    """A Fraction as a Decimal with `places` decimals (for display/storage; not for rounding money)."""
    q = Decimal(fraction.numerator) / Decimal(fraction.denominator)
    return q.quantize(Decimal(1).scaleb(-places))


def prorate(*, amount: Decimal, fraction: Fraction, currency: str) -> Decimal:
    """`amount * fraction`, rounded once to the currency's exponent."""
    if fraction == 1:
        return quantize(amount, currency)
    exact = amount * Decimal(fraction.numerator) / Decimal(fraction.denominator)
    return quantize(exact, currency)
