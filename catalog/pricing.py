"""The pricing engine: pure functions, Decimal in, Decimal out. No database, no Django models.

Three layers:

1. **Price types** (frozen dataclasses): `FlatPrice`, `UnitPrice`, `TieredPrice` (graduated or volume),
   `PackagePrice`, `DynamicPrice`, `PercentagePrice`, plus `Discounts` and `Commitments`.
2. **Parsing** (`parse_price`, `parse_discounts`, `parse_commitments`) from the OpenMeter-shaped JSON
   (amounts are decimal strings; floats are rejected) with every problem reported under its full path,
   e.g. `price.tiers[2].upToAmount`. `price_to_json` is the inverse (canonical strings).
3. **Rating**: one function per price type (`rate_flat`, `rate_unit`, `rate_graduated`, `rate_volume`,
   `rate_package`, `rate_dynamic`, `rate_percentage`), each returning a `Rating` (the unrounded amount
   and the detail lines that explain it), and `rate(...)`, which picks the function, applies the usage
   discount (first N units free) before it and the percentage discount, minimum top-up and maximum cap
   after it. `price_total(rating, currency)` rounds once, half up, via `core.money.quantize`.

Semantics (see docs/catalog.md):
- `upToAmount` is inclusive: tier i covers (previous upToAmount, upToAmount]. The last tier is open-ended.
- A tier is *reached* when the quantity is greater than the previous tier's bound (tier 0: quantity > 0).
  Graduated: every reached tier's flat price is charged once, and each tier's unit price applies to the
  units inside it. Volume: all units are priced at the unit price of the tier the total falls in, plus
  that tier's flat price. Quantity 0 reaches no tier and costs 0 (before a minimum commitment).
- Package: ceil(quantity / quantityPerPackage) packages (partial packages round up).
- Dynamic: quantity is a money amount (e.g. provider cost); amount = quantity x multiplier.
- Percentage: quantity is a transaction volume; amount = volume x percentage / 100 plus
  fixedAmountPerEvent x event count.
- Order of adjustments: usage discount (quantity) -> price -> percentage discount -> minimum top-up ->
  maximum cap. Commitments compare against the discounted amount (what the customer pays).
- The lines of a rating always sum exactly to its amount.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Context, Decimal, InvalidOperation, localcontext
from typing import Any

from core.money import quantize

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


@dataclass(frozen=True)
class UnitPrice:
    amount: Decimal
    minimum_amount: Decimal | None = None
    maximum_amount: Decimal | None = None
    type: str = field(default="unit", init=False)


@dataclass(frozen=True)
class Tier:
    up_to: Decimal | None  # inclusive; None = open-ended (last tier only)
    unit_price: Decimal | None = None
    flat_price: Decimal | None = None


@dataclass(frozen=True)
class TieredPrice:
    mode: str
    tiers: tuple[Tier, ...]
    minimum_amount: Decimal | None = None
    maximum_amount: Decimal | None = None
    type: str = field(default="tiered", init=False)


@dataclass(frozen=True)
class PackagePrice:
    amount: Decimal
    quantity_per_package: Decimal
    minimum_amount: Decimal | None = None
    maximum_amount: Decimal | None = None
    type: str = field(default="package", init=False)


@dataclass(frozen=True)
class DynamicPrice:
    multiplier: Decimal = Decimal(1)
    minimum_amount: Decimal | None = None
    maximum_amount: Decimal | None = None
    type: str = field(default="dynamic", init=False)


@dataclass(frozen=True)
class PercentagePrice:
    percentage: Decimal
    fixed_amount_per_event: Decimal | None = None
    minimum_amount: Decimal | None = None
    maximum_amount: Decimal | None = None
    type: str = field(default="percentage", init=False)


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


# --- parsing --------------------------------------------------------------------------------------
class PriceInvalid(ValueError):
    """Raised by the parsers; `errors` is [{"name": path, "reason": ...}] (core.errors' shape)."""

    def __init__(self, errors: list[dict[str, str]]):
        super().__init__("; ".join(f"{e['name']}: {e['reason']}" for e in errors))
        self.errors = errors


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, name: str, reason: str) -> None:
        self.items.append({"name": name, "reason": reason})

    def raise_if_any(self) -> None:
        if self.items:
            raise PriceInvalid(self.items)


def parse_decimal(
    value: Any,
    path: str,
    errors: _Errors,
    *,
    positive: bool = False,
    max_decimals: int | None = MAX_PRICE_DECIMALS,
) -> Decimal | None:
    """A non-negative decimal from a string (or an int); floats, bools and junk are errors."""
    if isinstance(value, (bool, float)):
        errors.add(path, 'Must be a decimal string such as "0.5", not a JSON number with a fraction.')
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        errors.add(path, "Must be a decimal string.")
        return None
    text = value.strip()
    try:
        result = Decimal(text)
    except InvalidOperation:
        errors.add(path, f"{value!r} is not a decimal number.")
        return None
    if not result.is_finite() or text.lower().lstrip("+-").startswith(("inf", "nan")) or "e" in text.lower():
        errors.add(path, f"{value!r} must be a plain decimal (no exponent, infinity or NaN).")
        return None
    if result < 0:
        errors.add(path, "Must not be negative.")
        return None
    if positive and result == 0:
        errors.add(path, "Must be greater than zero.")
        return None
    if abs(result) >= MAX_ABS:
        errors.add(path, "Must be less than 10^18.")
        return None
    exponent = result.as_tuple().exponent
    assert isinstance(exponent, int)
    if max_decimals is not None and -exponent > max_decimals:
        errors.add(path, f"At most {max_decimals} decimal places.")
        return None
    return result + 0  # drops a negative zero's sign


def _object(value: Any, path: str, errors: _Errors) -> Mapping[str, Any] | None:
    if not isinstance(value, Mapping):
        errors.add(path, "Must be an object.")
        return None
    return value


def _unknown_keys(data: Mapping[str, Any], allowed: set[str], path: str, errors: _Errors) -> None:
    for key in data:
        if key not in allowed:
            errors.add(f"{path}.{key}", "Unknown field.")


def _optional_decimal(
    data: Mapping[str, Any], key: str, path: str, errors: _Errors, **kw: Any
) -> Decimal | None:
    if data.get(key) is None:
        return None
    return parse_decimal(data[key], f"{path}.{key}", errors, **kw)


def _commitment_fields(
    data: Mapping[str, Any], path: str, errors: _Errors
) -> tuple[Decimal | None, Decimal | None]:
    minimum = _optional_decimal(data, "minimumAmount", path, errors)
    maximum = _optional_decimal(data, "maximumAmount", path, errors)
    if minimum is not None and maximum is not None and minimum > maximum:
        errors.add(f"{path}.maximumAmount", "Must be greater than or equal to minimumAmount.")
    return minimum, maximum


_COMMON = {"type", "minimumAmount", "maximumAmount"}


def _parse_price(data: Any, path: str, errors: _Errors) -> Price | None:
    obj = _object(data, path, errors)
    if obj is None:
        return None
    kind = obj.get("type")
    if kind not in PRICE_TYPES:
        errors.add(f"{path}.type", f"Must be one of: {', '.join(PRICE_TYPES)}.")
        return None
    before = len(errors.items)
    price: Price | None = None
    if kind == "flat":
        _unknown_keys(obj, {"type", "amount", "paymentTerm"}, path, errors)
        amount = parse_decimal(obj.get("amount"), f"{path}.amount", errors)
        term = obj.get("paymentTerm") or "in_advance"
        if term not in PAYMENT_TERMS:
            errors.add(f"{path}.paymentTerm", f"Must be one of: {', '.join(PAYMENT_TERMS)}.")
        if amount is not None and term in PAYMENT_TERMS:
            price = FlatPrice(amount=amount, payment_term=term)
        return price if len(errors.items) == before else None
    minimum, maximum = _commitment_fields(obj, path, errors)
    if kind == "unit":
        _unknown_keys(obj, _COMMON | {"amount"}, path, errors)
        amount = parse_decimal(obj.get("amount"), f"{path}.amount", errors)
        if amount is not None:
            price = UnitPrice(amount=amount, minimum_amount=minimum, maximum_amount=maximum)
    elif kind == "tiered":
        _unknown_keys(obj, _COMMON | {"mode", "tiers"}, path, errors)
        mode = obj.get("mode")
        if mode not in TIER_MODES:
            errors.add(f"{path}.mode", f"Must be one of: {', '.join(TIER_MODES)}.")
        tiers = _parse_tiers(obj.get("tiers"), f"{path}.tiers", errors)
        if tiers is not None and mode in TIER_MODES:
            price = TieredPrice(mode=mode, tiers=tiers, minimum_amount=minimum, maximum_amount=maximum)
    elif kind == "package":
        _unknown_keys(obj, _COMMON | {"amount", "quantityPerPackage"}, path, errors)
        amount = parse_decimal(obj.get("amount"), f"{path}.amount", errors)
        per = parse_decimal(
            obj.get("quantityPerPackage"), f"{path}.quantityPerPackage", errors, positive=True
        )
        if amount is not None and per is not None:
            price = PackagePrice(
                amount=amount, quantity_per_package=per, minimum_amount=minimum, maximum_amount=maximum
            )
    elif kind == "dynamic":
        _unknown_keys(obj, _COMMON | {"multiplier"}, path, errors)
        multiplier = Decimal(1)
        if obj.get("multiplier") is not None:
            multiplier = parse_decimal(obj["multiplier"], f"{path}.multiplier", errors) or Decimal(0)
        price = DynamicPrice(multiplier=multiplier, minimum_amount=minimum, maximum_amount=maximum)
    elif kind == "percentage":
        _unknown_keys(obj, _COMMON | {"percentage", "fixedAmountPerEvent"}, path, errors)
        pct = parse_decimal(obj.get("percentage"), f"{path}.percentage", errors)
        if pct is not None and pct > HUNDRED:
            errors.add(f"{path}.percentage", "Must be between 0 and 100.")
        fixed = _optional_decimal(obj, "fixedAmountPerEvent", path, errors)
        if pct is not None:
            price = PercentagePrice(
                percentage=pct, fixed_amount_per_event=fixed, minimum_amount=minimum, maximum_amount=maximum
            )
    return price if len(errors.items) == before else None


def _parse_tiers(data: Any, path: str, errors: _Errors) -> tuple[Tier, ...] | None:
    if not isinstance(data, list) or not data:
        errors.add(path, "Must be a non-empty list of tiers.")
        return None
    before = len(errors.items)
    tiers: list[Tier] = []
    previous: Decimal | None = None
    for index, raw in enumerate(data):
        tier_path = f"{path}[{index}]"
        obj = _object(raw, tier_path, errors)
        if obj is None:
            continue
        _unknown_keys(obj, {"upToAmount", "unitPrice", "flatPrice"}, tier_path, errors)
        last = index == len(data) - 1
        up_to: Decimal | None = None
        if obj.get("upToAmount") is None:
            if not last:
                errors.add(f"{tier_path}.upToAmount", "Only the last tier may be open-ended.")
        else:
            up_to = parse_decimal(obj["upToAmount"], f"{tier_path}.upToAmount", errors, positive=True)
            if up_to is not None and previous is not None and up_to <= previous:
                errors.add(
                    f"{tier_path}.upToAmount",
                    f"Must be greater than the previous tier's upToAmount ({dec_str(previous)}).",
                )
            if up_to is not None and last:
                errors.add(f"{tier_path}.upToAmount", "The last tier must be open-ended (upToAmount null).")
        if up_to is not None:
            previous = up_to
        unit = _nested_amount(obj.get("unitPrice"), "unit", f"{tier_path}.unitPrice", errors)
        flat = _nested_amount(obj.get("flatPrice"), "flat", f"{tier_path}.flatPrice", errors)
        if obj.get("unitPrice") is None and obj.get("flatPrice") is None:
            errors.add(tier_path, "A tier needs a unitPrice, a flatPrice or both.")
        tiers.append(Tier(up_to=up_to, unit_price=unit, flat_price=flat))
    return tuple(tiers) if len(errors.items) == before else None


def _nested_amount(data: Any, kind: str, path: str, errors: _Errors) -> Decimal | None:
    if data is None:
        return None
    obj = _object(data, path, errors)
    if obj is None:
        return None
    _unknown_keys(obj, {"type", "amount"}, path, errors)
    if obj.get("type", kind) != kind:
        errors.add(f"{path}.type", f'Must be "{kind}".')
    return parse_decimal(obj.get("amount"), f"{path}.amount", errors)


def parse_price(data: Any, path: str = "price") -> Price:
    """Validate an OpenMeter price document; raises PriceInvalid naming every bad path."""
    errors = _Errors()
    price = _parse_price(data, path, errors)
    errors.raise_if_any()
    assert price is not None
    return price


def _parse_discounts(data: Any, path: str, errors: _Errors) -> Discounts | None:
    if data is None:
        return None
    obj = _object(data, path, errors)
    if obj is None:
        return None
    _unknown_keys(obj, {"percentage", "usage"}, path, errors)
    pct = usage = None
    if obj.get("percentage") is not None:
        inner = _object(obj["percentage"], f"{path}.percentage", errors)
        if inner is not None:
            _unknown_keys(inner, {"percentage", "correlationId"}, f"{path}.percentage", errors)
            pct = parse_decimal(
                inner.get("percentage"), f"{path}.percentage.percentage", errors, positive=True
            )
            if pct is not None and pct > HUNDRED:
                errors.add(f"{path}.percentage.percentage", "Must be between 0 and 100.")
    if obj.get("usage") is not None:
        inner = _object(obj["usage"], f"{path}.usage", errors)
        if inner is not None:
            _unknown_keys(inner, {"quantity", "correlationId"}, f"{path}.usage", errors)
            usage = parse_decimal(inner.get("quantity"), f"{path}.usage.quantity", errors, positive=True)
    return Discounts(percentage=pct, usage_quantity=usage)


def parse_discounts(data: Any, path: str = "discounts") -> Discounts | None:
    errors = _Errors()
    result = _parse_discounts(data, path, errors)
    errors.raise_if_any()
    return result


def parse_commitments(data: Any, path: str = "commitments") -> Commitments | None:
    errors = _Errors()
    if data is None:
        return None
    obj = _object(data, path, errors)
    result = None
    if obj is not None:
        _unknown_keys(obj, {"minimumAmount", "maximumAmount"}, path, errors)
        minimum, maximum = _commitment_fields(obj, path, errors)
        result = Commitments(minimum_amount=minimum, maximum_amount=maximum)
    errors.raise_if_any()
    return result


def parse_quantity(data: Any, path: str = "quantity") -> Decimal:
    """A usage quantity: a non-negative decimal string of any precision."""
    errors = _Errors()
    result = parse_decimal(data, path, errors, max_decimals=None)
    errors.raise_if_any()
    assert result is not None
    return result


def price_to_json(price: Price) -> dict[str, Any]:
    """The canonical OpenMeter JSON for a parsed price (decimal strings, no nulls)."""
    out: dict[str, Any] = {"type": price.type}
    if isinstance(price, FlatPrice):
        out.update(amount=dec_str(price.amount), paymentTerm=price.payment_term)
        return out
    if isinstance(price, UnitPrice):
        out["amount"] = dec_str(price.amount)
    elif isinstance(price, TieredPrice):
        out["mode"] = price.mode
        out["tiers"] = [
            {
                "upToAmount": None if t.up_to is None else dec_str(t.up_to),
                "unitPrice": None
                if t.unit_price is None
                else {"type": "unit", "amount": dec_str(t.unit_price)},
                "flatPrice": None
                if t.flat_price is None
                else {"type": "flat", "amount": dec_str(t.flat_price)},
            }
            for t in price.tiers
        ]
    elif isinstance(price, PackagePrice):
        out.update(amount=dec_str(price.amount), quantityPerPackage=dec_str(price.quantity_per_package))
    elif isinstance(price, DynamicPrice):
        out["multiplier"] = dec_str(price.multiplier)
    elif isinstance(price, PercentagePrice):
        out["percentage"] = dec_str(price.percentage)
        if price.fixed_amount_per_event is not None:
            out["fixedAmountPerEvent"] = dec_str(price.fixed_amount_per_event)
    if price.minimum_amount is not None:
        out["minimumAmount"] = dec_str(price.minimum_amount)
    if price.maximum_amount is not None:
        out["maximumAmount"] = dec_str(price.maximum_amount)
    return out


def discounts_to_json(discounts: Discounts | None) -> dict[str, Any] | None:
    if discounts is None or (discounts.percentage is None and discounts.usage_quantity is None):
        return None
    out: dict[str, Any] = {}
    if discounts.percentage is not None:
        out["percentage"] = {"percentage": dec_str(discounts.percentage)}
    if discounts.usage_quantity is not None:
        out["usage"] = {"quantity": dec_str(discounts.usage_quantity)}
    return out


def line_to_json(line: Line) -> dict[str, Any]:
    return {
        "type": line.kind,
        "description": line.description,
        "quantity": None if line.quantity is None else dec_str(line.quantity),
        "unitAmount": None if line.unit_amount is None else dec_str(line.unit_amount),
        "amount": dec_str(line.amount),
        "tier": line.tier,
    }


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


def rate_unit(price: UnitPrice, quantity: Decimal) -> Rating:
    """quantity x unit amount."""
    _check_quantity(quantity)
    with localcontext(ENGINE_CONTEXT):
        amount = quantity * price.amount
    return Rating(
        amount,
        (
            Line(
                "unit", f"{dec_str(quantity)} units x {dec_str(price.amount)}", amount, quantity, price.amount
            ),
        ),
    )


def _tier_label(tiers: tuple[Tier, ...], index: int) -> str:
    lower = ZERO if index == 0 else tiers[index - 1].up_to
    upper = tiers[index].up_to
    assert lower is not None
    if upper is None:
        return f"Tier {index + 1} (above {dec_str(lower)})"
    return f"Tier {index + 1} ({dec_str(lower)} < q <= {dec_str(upper)})"


def rate_graduated(price: TieredPrice, quantity: Decimal) -> Rating:
    """Each tier's unit price applies to the units inside it; every reached tier's flat price once."""
    _check_quantity(quantity)
    lines: list[Line] = []
    total = ZERO
    lower = ZERO
    with localcontext(ENGINE_CONTEXT):
        for index, tier in enumerate(price.tiers):
            if quantity <= lower:
                break  # not reached (tier 0 is reached only by a positive quantity)
            upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
            in_tier = upper - lower
            label = _tier_label(price.tiers, index)
            if tier.flat_price is not None:
                total += tier.flat_price
                lines.append(
                    Line(
                        "tier_flat", f"{label}: flat", tier.flat_price, Decimal(1), tier.flat_price, index + 1
                    )
                )
            if tier.unit_price is not None:
                amount = in_tier * tier.unit_price
                total += amount
                lines.append(
                    Line(
                        "tier_unit",
                        f"{label}: {dec_str(in_tier)} x {dec_str(tier.unit_price)}",
                        amount,
                        in_tier,
                        tier.unit_price,
                        index + 1,
                    )
                )
            if tier.up_to is None:
                break
            lower = tier.up_to
    return Rating(total, tuple(lines))


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
    tier = price.tiers[index]
    label = _tier_label(price.tiers, index)
    lines: list[Line] = []
    total = ZERO
    with localcontext(ENGINE_CONTEXT):
        if tier.flat_price is not None:
            total += tier.flat_price
            lines.append(
                Line("tier_flat", f"{label}: flat", tier.flat_price, Decimal(1), tier.flat_price, index + 1)
            )
        if tier.unit_price is not None:
            amount = quantity * tier.unit_price
            total += amount
            lines.append(
                Line(
                    "tier_unit",
                    f"{label}: all {dec_str(quantity)} units x {dec_str(tier.unit_price)}",
                    amount,
                    quantity,
                    tier.unit_price,
                    index + 1,
                )
            )
    return Rating(total, tuple(lines))


def rate_package(price: PackagePrice, quantity: Decimal) -> Rating:
    """ceil(quantity / quantityPerPackage) packages at the package amount."""
    _check_quantity(quantity)
    with localcontext(ENGINE_CONTEXT):
        packages = (quantity / price.quantity_per_package).to_integral_value(rounding=ROUND_CEILING)
        amount = packages * price.amount
    description = (
        f"{dec_str(packages)} packages of {dec_str(price.quantity_per_package)} x {dec_str(price.amount)}"
    )
    return Rating(amount, (Line("package", description, amount, packages, price.amount),))


def rate_dynamic(price: DynamicPrice, quantity: Decimal) -> Rating:
    """The quantity is a money amount (e.g. the provider's cost); amount = quantity x multiplier."""
    _check_quantity(quantity)
    with localcontext(ENGINE_CONTEXT):
        amount = quantity * price.multiplier
    return Rating(
        amount,
        (
            Line(
                "dynamic",
                f"Cost {dec_str(quantity)} x {dec_str(price.multiplier)}",
                amount,
                quantity,
                price.multiplier,
            ),
        ),
    )


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


# --- preview (the API endpoint and the editor call this) -----------------------------------------
@dataclass(frozen=True)
class Preview:
    amount: Decimal  # rounded once to the currency
    unrounded: Decimal
    currency: str
    rating: Rating

    def to_json(self) -> dict[str, Any]:
        return {
            "amount": str(self.amount),
            "unroundedAmount": dec_str(self.unrounded),
            "currency": self.currency,
            "lines": [line_to_json(line) for line in self.rating.lines],
        }


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
    from core.money import is_currency

    errors = _Errors()
    parsed = _parse_price(price, "price", errors)
    qty = parse_decimal(quantity, "quantity", errors, max_decimals=None)
    parsed_discounts = _parse_discounts(discounts, "discounts", errors)
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
