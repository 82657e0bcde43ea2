"""Percentage prices rated transaction by transaction. Pure: Decimal values in, a `catalog.pricing.Rating` out.

A percentage price with any of `perTransactionMinimumAmount`, `perTransactionMaximumAmount`, `freeEvents`,
`freeAmount` (`PercentagePrice.per_transaction`) is not rated on the period's volume but on each event of
the period, in event-time order (the values come from `invoicing.sources.event_values`):

- **Free transactions.** While the free allowance lasts, a transaction costs nothing: the allowance is
  the first `freeEvents` transactions and the first `freeAmount` of volume, and it ends as soon as either
  runs out. A transaction that crosses the end of `freeAmount` pays the percentage on the part above it
  and the fixed fee (it is not free); one that exactly uses up what is left is not free either.
- **Each paid transaction** costs `value * percentage / 100 + fixedAmountPerEvent`, raised to
  `perTransactionMinimumAmount` and lowered to `perTransactionMaximumAmount` (free transactions are
  never raised to the minimum).
- The period's amount is the sum, rounded once by the caller; a percentage discount comes off it, and a
  price's `minimumAmount`/`maximumAmount` (commitments) apply to it as to any usage price.

The lines of the rating say what happened: the free transactions, the percentage on the paid volume,
the fixed fees, and one adjustment line for the per-transaction bounds, so they add up to the amount.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

from catalog.pricing import ENGINE_CONTEXT, Discounts, Line, PercentagePrice, Rating, dec_str

ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclass
class _Tally:
    free_events: int = 0
    free_volume: Decimal = ZERO
    paid_events: int = 0
    paid_volume: Decimal = ZERO
    raised: int = 0
    lowered: int = 0
    adjustment: Decimal = ZERO


def _bounded(price: PercentagePrice, fee: Decimal, tally: _Tally) -> Decimal:
    low, high = price.per_transaction_minimum, price.per_transaction_maximum
    if low is not None and fee < low:
        tally.raised += 1
        tally.adjustment += low - fee
        return low
    if high is not None and fee > high:
        tally.lowered += 1
        tally.adjustment += high - fee
        return high
    return fee


def _tally(price: PercentagePrice, values: Sequence[Decimal]) -> _Tally:
    tally = _Tally()
    events_left = price.free_events or None  # None: no limit of this kind (0 means none free)
    amount_left = price.free_amount or None
    free = events_left is not None or amount_left is not None
    fixed = price.fixed_amount_per_event or ZERO
    for value in values:
        paid = value
        if free:
            if events_left is not None:
                events_left -= 1
            if amount_left is None or value < amount_left:
                tally.free_events += 1
                tally.free_volume += value
                if amount_left is not None:
                    amount_left -= value
                free = (events_left is None or events_left > 0) and (amount_left is None or amount_left > 0)
                continue
            paid = value - amount_left  # crosses the end of the free amount: the rest is paid
            tally.free_volume += amount_left
            free = False
        tally.paid_events += 1
        tally.paid_volume += paid
        _bounded(price, paid * price.percentage / HUNDRED + fixed, tally)
    return tally


def rate_transactions(
    price: PercentagePrice, values: Sequence[Decimal], *, discounts: Discounts | None = None
) -> Rating:
    """The unrounded rating of one period's transactions (`values` in event-time order), with the price's
    percentage discount. Commitments are the caller's (as for `catalog.pricing.rate` without them)."""
    with localcontext(ENGINE_CONTEXT):
        tally = _tally(price, values)
        rate_ = price.percentage / HUNDRED
        lines: list[Line] = []
        if tally.free_events or tally.free_volume:
            lines.append(
                Line(
                    "free_transactions",
                    f"{tally.free_events} free transactions, {dec_str(tally.free_volume)} of volume free",
                    ZERO,
                    Decimal(tally.free_events),
                )
            )
        lines.append(
            Line(
                "percentage",
                f"{dec_str(price.percentage)}% of {dec_str(tally.paid_volume)}",
                tally.paid_volume * rate_,
                tally.paid_volume,
                rate_,
            )
        )
        if price.fixed_amount_per_event:
            lines.append(
                Line(
                    "per_event",
                    f"{tally.paid_events} events x {dec_str(price.fixed_amount_per_event)}",
                    price.fixed_amount_per_event * tally.paid_events,
                    Decimal(tally.paid_events),
                    price.fixed_amount_per_event,
                )
            )
        if tally.raised or tally.lowered:
            lines.append(
                Line(
                    "per_transaction_bounds",
                    f"Per-transaction bounds: {tally.raised} raised to the minimum, "
                    f"{tally.lowered} lowered to the maximum",
                    tally.adjustment,
                    Decimal(tally.raised + tally.lowered),
                )
            )
        amount = sum((x.amount for x in lines), ZERO)
        if discounts and discounts.percentage and amount > 0:
            off = -(amount * discounts.percentage / HUNDRED)
            lines.append(Line("percentage_discount", f"Discount {dec_str(discounts.percentage)}%", off))
            amount += off
    return Rating(amount, tuple(lines))
