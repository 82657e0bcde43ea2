"""Rating: one function per price type, `rate` (discounts and commitments around them), the one
rounding (`price_total`), a rating line's JSON (`line_to_json`) and the preview the API and the editor
show."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, localcontext
from typing import Any

from catalog.pricing.models import (
    ENGINE_CONTEXT,
    HUNDRED,
    ZERO,
    Commitments,
    Discounts,
    DynamicPrice,
    FlatPrice,
    Line,
    PackagePrice,
    PercentagePrice,
    Price,
    Rating,
    Tier,
    TieredPrice,
    UnitPrice,
    dec_str,
)
from catalog.pricing.parse import (
    ErrorList,
    PriceInvalid,
    parse_commitments,
    parse_decimal,
    parse_discounts_into,
    parse_price_into,
)
from core.money import is_currency, quantize


# --- rating: one function per price type ---------------------------------------------------------
def _check_quantity(quantity: Decimal) -> None:
    if isinstance(quantity, float) or not isinstance(quantity, Decimal):
        raise TypeError("quantity must be a Decimal")
    if quantity < 0 or not quantity.is_finite():
        raise ValueError("quantity must be a finite, non-negative Decimal")


def rate_flat(price: FlatPrice) -> Rating:
    """A flat fee: the amount, whatever the usage."""
    term = "in advance" if price.payment_term == "in_advance" else "in arrears"
    return Rating(price.amount, (Line("flat", f"Flat fee ({term})", price.amount, Decimal(1), price.amount),))


def _one_line(kind: str, description: str, quantity: Decimal, rate: Decimal) -> Rating:
    """A rating of a single line: quantity x rate."""
    with localcontext(ENGINE_CONTEXT):
        amount = quantity * rate
    return Rating(amount, (Line(kind, description, amount, quantity, rate),))


def rate_unit(price: UnitPrice, quantity: Decimal) -> Rating:
    """quantity x unit amount."""
    _check_quantity(quantity)
    return _one_line("unit", f"{dec_str(quantity)} units x {dec_str(price.amount)}", quantity, price.amount)


def _tier_label(tiers: tuple[Tier, ...], index: int) -> str:
    lower = ZERO if index == 0 else tiers[index - 1].up_to
    upper = tiers[index].up_to
    assert lower is not None
    if upper is None:
        return f"Tier {index + 1} (above {dec_str(lower)})"
    return f"Tier {index + 1} ({dec_str(lower)} < q <= {dec_str(upper)})"


def _tier_lines(tiers: tuple[Tier, ...], index: int, units: Decimal, units_text: str) -> list[Line]:
    """A reached tier's lines: its flat price once, and `units` (described as `units_text`) at its unit
    price. Call it inside the engine's context."""
    tier = tiers[index]
    label = _tier_label(tiers, index)
    lines: list[Line] = []
    if tier.flat_price is not None:
        lines.append(
            Line("tier_flat", f"{label}: flat", tier.flat_price, Decimal(1), tier.flat_price, index + 1)
        )
    if tier.unit_price is not None:
        description = f"{label}: {units_text} x {dec_str(tier.unit_price)}"
        lines.append(
            Line("tier_unit", description, units * tier.unit_price, units, tier.unit_price, index + 1)
        )
    return lines


def _rating_of(lines: list[Line]) -> Rating:
    """The rating whose amount is its lines' sum (inside the engine's context)."""
    return Rating(sum((line.amount for line in lines), ZERO), tuple(lines))


def rate_graduated(price: TieredPrice, quantity: Decimal) -> Rating:
    """Each tier's unit price applies to the units inside it; every reached tier's flat price once."""
    _check_quantity(quantity)
    lines: list[Line] = []
    lower = ZERO
    with localcontext(ENGINE_CONTEXT):
        for index, tier in enumerate(price.tiers):
            if quantity <= lower:
                break  # not reached (tier 0 is reached only by a positive quantity)
            upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
            in_tier = upper - lower
            lines += _tier_lines(price.tiers, index, in_tier, dec_str(in_tier))
            if tier.up_to is None:
                break
            lower = tier.up_to
        return _rating_of(lines)


def volume_tier_index(tiers: tuple[Tier, ...], quantity: Decimal) -> int:
    """Index of the tier the total quantity falls in (upToAmount inclusive)."""
    for index, tier in enumerate(tiers):
        if tier.up_to is None or quantity <= tier.up_to:
            return index
    return len(tiers) - 1  # unreachable for validated prices (last tier open-ended)


def rate_volume(price: TieredPrice, quantity: Decimal) -> Rating:
    """All units at the unit price of the tier the total falls in, plus that tier's flat price."""
    _check_quantity(quantity)
    if quantity == 0:
        return Rating(ZERO, ())
    index = volume_tier_index(price.tiers, quantity)
    with localcontext(ENGINE_CONTEXT):
        return _rating_of(_tier_lines(price.tiers, index, quantity, f"all {dec_str(quantity)} units"))


def rate_package(price: PackagePrice, quantity: Decimal) -> Rating:
    """ceil(quantity / quantityPerPackage) packages at the package amount."""
    _check_quantity(quantity)
    with localcontext(ENGINE_CONTEXT):
        packages = (quantity / price.quantity_per_package).to_integral_value(rounding=ROUND_CEILING)
    description = (
        f"{dec_str(packages)} packages of {dec_str(price.quantity_per_package)} x {dec_str(price.amount)}"
    )
    return _one_line("package", description, packages, price.amount)


def rate_dynamic(price: DynamicPrice, quantity: Decimal) -> Rating:
    """The quantity is a money amount (e.g. the provider's cost); amount = quantity x multiplier."""
    _check_quantity(quantity)
    description = f"Cost {dec_str(quantity)} x {dec_str(price.multiplier)}"
    return _one_line("dynamic", description, quantity, price.multiplier)


def rate_percentage(price: PercentagePrice, quantity: Decimal, event_count: int = 0) -> Rating:
    """quantity (transaction volume) x percentage / 100, plus fixedAmountPerEvent x event_count."""
    _check_quantity(quantity)
    if isinstance(event_count, bool) or not isinstance(event_count, int) or event_count < 0:
        raise ValueError("event_count must be a non-negative int")
    lines: list[Line] = []
    with localcontext(ENGINE_CONTEXT):
        rate_ = price.percentage / HUNDRED
        amount = quantity * rate_
        lines.append(
            Line(
                "percentage", f"{dec_str(price.percentage)}% of {dec_str(quantity)}", amount, quantity, rate_
            )
        )
        if price.fixed_amount_per_event is not None:
            fixed = price.fixed_amount_per_event * event_count
            amount += fixed
            lines.append(
                Line(
                    "per_event",
                    f"{event_count} events x {dec_str(price.fixed_amount_per_event)}",
                    fixed,
                    Decimal(event_count),
                    price.fixed_amount_per_event,
                )
            )
    return Rating(amount, tuple(lines))


def rate_base(price: Price, quantity: Decimal, *, event_count: int = 0) -> Rating:
    """Dispatch to the price type's function, without discounts or commitments."""
    if isinstance(price, FlatPrice):
        return rate_flat(price)
    if isinstance(price, UnitPrice):
        return rate_unit(price, quantity)
    if isinstance(price, TieredPrice):
        return rate_graduated(price, quantity) if price.mode == "graduated" else rate_volume(price, quantity)
    if isinstance(price, PackagePrice):
        return rate_package(price, quantity)
    if isinstance(price, DynamicPrice):
        return rate_dynamic(price, quantity)
    if isinstance(price, PercentagePrice):
        return rate_percentage(price, quantity, event_count)
    raise TypeError(f"Unknown price {price!r}")


def effective_commitments(price: Price, commitments: Commitments | None = None) -> Commitments:
    """Commitments passed explicitly (rate card) win over the ones on the price."""
    if commitments is not None and (
        commitments.minimum_amount is not None or commitments.maximum_amount is not None
    ):
        return commitments
    if isinstance(price, FlatPrice):
        return Commitments()
    return Commitments(price.minimum_amount, price.maximum_amount)


def rate(
    price: Price,
    quantity: Decimal,
    *,
    event_count: int = 0,
    discounts: Discounts | None = None,
    commitments: Commitments | None = None,
) -> Rating:
    """The full rating of one rate card for one period: discounts, then commitments.

    1. usage discount: the first N units are free (usage prices only); the rest is priced from 0.
    2. the price type's function on the billable quantity.
    3. percentage discount off that amount.
    4. minimum commitment: a top-up line when the amount is below it.
    5. maximum commitment: a negative cap line when the amount is above it.
    """
    _check_quantity(quantity)
    lines: list[Line] = []
    billable = quantity
    is_usage = not isinstance(price, FlatPrice)
    with localcontext(ENGINE_CONTEXT):
        if discounts and discounts.usage_quantity and is_usage:
            free = min(quantity, discounts.usage_quantity)
            billable = quantity - free
            lines.append(
                Line(
                    "usage_discount",
                    f"Usage discount: first {dec_str(discounts.usage_quantity)} units free ({dec_str(free)} applied)",
                    ZERO,
                    free,
                )
            )
        base = rate_base(price, billable, event_count=event_count)
        lines.extend(base.lines)
        amount = base.amount
        if discounts and discounts.percentage and amount > 0:
            off = -(amount * discounts.percentage / HUNDRED)
            amount += off
            lines.append(Line("percentage_discount", f"Discount {dec_str(discounts.percentage)}%", off))
        commit = effective_commitments(price, commitments)
        if commit.minimum_amount is not None and amount < commit.minimum_amount:
            top_up = commit.minimum_amount - amount
            amount += top_up
            lines.append(
                Line("minimum_topup", f"Minimum spend {dec_str(commit.minimum_amount)}: top-up", top_up)
            )
        if commit.maximum_amount is not None and amount > commit.maximum_amount:
            cap = commit.maximum_amount - amount
            amount += cap
            lines.append(Line("maximum_cap", f"Maximum spend {dec_str(commit.maximum_amount)}: capped", cap))
    return Rating(amount, tuple(lines))


def price_total(rating: Rating, currency: str) -> Decimal:
    """The one rounding: the rating's amount to the currency's exponent, half up."""
    return quantize(rating.amount, currency)


def line_to_json(line: Line) -> dict[str, Any]:
    """One explanatory line as the API and the invoice lines' detail show it (decimal strings)."""
    return {
        "type": line.kind,
        "description": line.description,
        "quantity": None if line.quantity is None else dec_str(line.quantity),
        "unitAmount": None if line.unit_amount is None else dec_str(line.unit_amount),
        "amount": dec_str(line.amount),
        "tier": line.tier,
    }


# --- preview (the API endpoint and the editor call this) -----------------------------------------
@dataclass(frozen=True)
class Preview:
    amount: Decimal  # rounded once to the currency
    unrounded: Decimal
    currency: str
    rating: Rating  # answered by catalog.api.serializers.PricePreviewOutput


def price_preview(
    *,
    price: Any,
    quantity: Any,
    currency: str,
    discounts: Any = None,
    commitments: Any = None,
    event_count: Any = 0,
) -> Preview:
    """Parse everything (collecting every error under its path), rate, round once."""
    errors = ErrorList()
    parsed = parse_price_into(price, "price", errors)
    qty = parse_decimal(quantity, "quantity", errors, max_decimals=None)
    parsed_discounts = parse_discounts_into(discounts, "discounts", errors)
    parsed_commitments = None
    try:
        parsed_commitments = parse_commitments(commitments)
    except PriceInvalid as exc:
        errors.items.extend(exc.errors)
    if not isinstance(currency, str) or not is_currency(currency):
        errors.add("currency", f"Unknown currency code {currency!r}.")
    if isinstance(event_count, bool) or not isinstance(event_count, int) or event_count < 0:
        errors.add("eventCount", "Must be a non-negative integer.")
    errors.raise_if_any()
    assert parsed is not None and qty is not None
    rating = rate(
        parsed, qty, event_count=event_count, discounts=parsed_discounts, commitments=parsed_commitments
    )
    code = currency.upper()
    return Preview(amount=price_total(rating, code), unrounded=rating.amount, currency=code, rating=rating)


__all__ = [
    "Preview",
    "effective_commitments",
    "line_to_json",
    "price_preview",
    "price_total",
    "rate",
    "rate_base",
    "rate_dynamic",
    "rate_flat",
    "rate_graduated",
    "rate_package",
    "rate_percentage",
    "rate_unit",
    "rate_volume",
    "volume_tier_index",
]
