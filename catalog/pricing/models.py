"""Price types (frozen dataclasses), the engine's constants and the canonical decimal string."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Context, Decimal

# Enough digits that no realistic quantity x price ever rounds inside the engine (NUMERIC(38,12)
# squared fits); the only rounding happens in `price_total`.
ENGINE_CONTEXT = Context(prec=100)
MAX_PRICE_DECIMALS = 12  # NUMERIC(38,12): what billing stores
# core.limits.AMOUNT_MAX: prices, tier bounds and commitments below 10^18, so a price times any countable
# quantity still fits the money columns (NUMERIC(38,12))
MAX_ABS = Decimal(10) ** 18

ZERO = Decimal(0)
HUNDRED = Decimal(100)

PAYMENT_TERMS = ("in_advance", "in_arrears")
TIER_MODES = ("graduated", "volume")
PRICE_TYPES = ("flat", "unit", "tiered", "package", "dynamic", "percentage")
USAGE_PRICE_TYPES = ("unit", "tiered", "package", "dynamic", "percentage")


# --- types ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FlatPrice:
    amount: Decimal
    payment_term: str = "in_advance"
    type: str = field(default="flat", init=False)


@dataclass(frozen=True, kw_only=True)
class _Bounded:
    """What every usage price may carry (keyword-only): a minimum spend topped up to, a maximum capped at
    (`rate` applies them as `Commitments` unless the rate card gives its own)."""

    minimum_amount: Decimal | None = None
    maximum_amount: Decimal | None = None


@dataclass(frozen=True)
class UnitPrice(_Bounded):
    amount: Decimal
    type: str = field(default="unit", init=False)


@dataclass(frozen=True)
class Tier:
    up_to: Decimal | None  # inclusive; None = open-ended (last tier only)
    unit_price: Decimal | None = None
    flat_price: Decimal | None = None


@dataclass(frozen=True)
class TieredPrice(_Bounded):
    mode: str
    tiers: tuple[Tier, ...]
    type: str = field(default="tiered", init=False)


@dataclass(frozen=True)
class PackagePrice(_Bounded):
    amount: Decimal
    quantity_per_package: Decimal
    type: str = field(default="package", init=False)


@dataclass(frozen=True)
class DynamicPrice(_Bounded):
    multiplier: Decimal = Decimal(1)
    type: str = field(default="dynamic", init=False)


@dataclass(frozen=True)
class PercentagePrice(_Bounded):
    percentage: Decimal
    fixed_amount_per_event: Decimal | None = None
    type: str = field(default="percentage", init=False)
    # rated transaction by transaction (invoicing.transactions): bounds on each event's fee, and the
    # first events / first amount that are free
    per_transaction_minimum: Decimal | None = None
    per_transaction_maximum: Decimal | None = None
    free_events: int | None = None
    free_amount: Decimal | None = None

    @property
    def per_transaction(self) -> bool:
        """Whether an invoice rates this price event by event (not on the period's volume)."""
        return any(
            x is not None
            for x in (
                self.per_transaction_minimum,
                self.per_transaction_maximum,
                self.free_events,
                self.free_amount,
            )
        )


Price = FlatPrice | UnitPrice | TieredPrice | PackagePrice | DynamicPrice | PercentagePrice


@dataclass(frozen=True)
class Discounts:
    percentage: Decimal | None = None  # 0 < p <= 100, off the priced amount
    usage_quantity: Decimal | None = None  # first N units free


@dataclass(frozen=True)
class Commitments:
    minimum_amount: Decimal | None = None
    maximum_amount: Decimal | None = None


@dataclass(frozen=True)
class Line:
    """One explanatory line. `amount` is unrounded; the lines of a Rating sum to its amount."""

    kind: str
    description: str
    amount: Decimal
    quantity: Decimal | None = None
    unit_amount: Decimal | None = None
    tier: int | None = None  # 1-based tier number for tier lines


@dataclass(frozen=True)
class Rating:
    amount: Decimal
    lines: tuple[Line, ...]


# --- formatting -----------------------------------------------------------------------------------
def dec_str(value: Decimal) -> str:
    """Canonical decimal string: no exponent, no trailing zeros ("1000", "0.0000025", "0")."""
    if value == 0:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


__all__ = [
    "ENGINE_CONTEXT",
    "HUNDRED",
    "MAX_ABS",
    "MAX_PRICE_DECIMALS",
    "PAYMENT_TERMS",
    "PRICE_TYPES",
    "TIER_MODES",
    "USAGE_PRICE_TYPES",
    "ZERO",
    "Commitments",
    "Discounts",
    "DynamicPrice",
    "FlatPrice",
    "Line",
    "PackagePrice",
    "PercentagePrice",
    "Price",
    "Rating",
    "Tier",
    "TieredPrice",
    "UnitPrice",
    "dec_str",
]
