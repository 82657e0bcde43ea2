"""Prices as JSON, both ways: the parsers (amounts are decimal strings, floats refused, every problem
named by its full path such as `price.tiers[2].upToAmount`) and the canonical JSON of a parsed price."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from catalog.pricing.models import (
    HUNDRED,
    MAX_ABS,
    MAX_PRICE_DECIMALS,
    PAYMENT_TERMS,
    PRICE_TYPES,
    TIER_MODES,
    Commitments,
    Discounts,
    DynamicPrice,
    FlatPrice,
    PackagePrice,
    PercentagePrice,
    Price,
    Tier,
    TieredPrice,
    UnitPrice,
    dec_str,
)
from core.errors import ErrorList as CoreErrorList


# --- parsing --------------------------------------------------------------------------------------
class PriceInvalid(ValueError):
    """Raised by the parsers; `errors` is [{"name": path, "reason": ...}] (core.errors' shape)."""

    def __init__(self, errors: list[dict[str, str]]):
        super().__init__("; ".join(f"{e['name']}: {e['reason']}" for e in errors))
        self.errors = errors


class ErrorList(CoreErrorList):
    """core.errors.ErrorList refusing with PriceInvalid: the engine stays free of the API's errors."""

    def raise_if_any(self) -> None:
        if self.items:
            raise PriceInvalid(self.items)


def parse_decimal(
    value: Any,
    path: str,
    errors: ErrorList,
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


def _object(value: Any, path: str, errors: ErrorList) -> Mapping[str, Any] | None:
    if not isinstance(value, Mapping):
        errors.add(path, "Must be an object.")
        return None
    return value


def _unknown_keys(data: Mapping[str, Any], allowed: set[str], path: str, errors: ErrorList) -> None:
    for key in data:
        if key not in allowed:
            errors.add(f"{path}.{key}", "Unknown field.")


def _optional_object(data: Any, allowed: set[str], path: str, errors: ErrorList) -> Mapping[str, Any] | None:
    """An optional nested object: None when absent (or not an object: an error), its unknown keys reported."""
    if data is None:
        return None
    obj = _object(data, path, errors)
    if obj is not None:
        _unknown_keys(obj, allowed, path, errors)
    return obj


def _optional_decimal(
    data: Mapping[str, Any], key: str, path: str, errors: ErrorList, **kw: Any
) -> Decimal | None:
    if data.get(key) is None:
        return None
    return parse_decimal(data[key], f"{path}.{key}", errors, **kw)


def _commitment_fields(
    data: Mapping[str, Any], path: str, errors: ErrorList
) -> tuple[Decimal | None, Decimal | None]:
    minimum = _optional_decimal(data, "minimumAmount", path, errors)
    maximum = _optional_decimal(data, "maximumAmount", path, errors)
    if minimum is not None and maximum is not None and minimum > maximum:
        errors.add(f"{path}.maximumAmount", "Must be greater than or equal to minimumAmount.")
    return minimum, maximum


_COMMON = {"type", "minimumAmount", "maximumAmount"}
# percentage prices rated transaction by transaction: {JSON name: PercentagePrice field}
_PER_TRANSACTION = {
    "perTransactionMinimumAmount": "per_transaction_minimum",
    "perTransactionMaximumAmount": "per_transaction_maximum",
    "freeEvents": "free_events",
    "freeAmount": "free_amount",
}


def parse_price_into(data: Any, path: str, errors: ErrorList) -> Price | None:
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
        tiers = parse_tiers_into(obj.get("tiers"), f"{path}.tiers", errors)
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
        _unknown_keys(obj, _COMMON | {"percentage", "fixedAmountPerEvent", *_PER_TRANSACTION}, path, errors)
        pct = parse_decimal(obj.get("percentage"), f"{path}.percentage", errors)
        if pct is not None and pct > HUNDRED:
            errors.add(f"{path}.percentage", "Must be between 0 and 100.")
        fixed = _optional_decimal(obj, "fixedAmountPerEvent", path, errors)
        per_transaction: dict[str, Any] = {
            attr: _optional_decimal(obj, key, path, errors) for key, attr in _PER_TRANSACTION.items()
        }
        low, high = per_transaction["per_transaction_minimum"], per_transaction["per_transaction_maximum"]
        if low is not None and high is not None and low > high:
            errors.add(f"{path}.perTransactionMaximumAmount", "Must be greater than or equal to the minimum.")
        free_events = per_transaction["free_events"]
        if free_events is not None and free_events != free_events.to_integral_value():
            errors.add(f"{path}.freeEvents", "Must be a whole number.")
        if pct is not None:
            if free_events is not None:
                per_transaction["free_events"] = int(free_events)
            price = PercentagePrice(
                percentage=pct,
                fixed_amount_per_event=fixed,
                minimum_amount=minimum,
                maximum_amount=maximum,
                **per_transaction,
            )
    return price if len(errors.items) == before else None


def parse_tiers_into(data: Any, path: str, errors: ErrorList) -> tuple[Tier, ...] | None:
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


def _nested_amount(data: Any, kind: str, path: str, errors: ErrorList) -> Decimal | None:
    obj = _optional_object(data, {"type", "amount"}, path, errors)
    if obj is None:
        return None
    if obj.get("type", kind) != kind:
        errors.add(f"{path}.type", f'Must be "{kind}".')
    return parse_decimal(obj.get("amount"), f"{path}.amount", errors)


def parse_price(data: Any, path: str = "price") -> Price:
    """Validate an OpenMeter price document; raises PriceInvalid naming every bad path."""
    errors = ErrorList()
    price = parse_price_into(data, path, errors)
    errors.raise_if_any()
    assert price is not None
    return price


def parse_discounts_into(data: Any, path: str, errors: ErrorList) -> Discounts | None:
    obj = _optional_object(data, {"percentage", "usage"}, path, errors)
    if obj is None:
        return None
    pct = usage = None
    inner = _optional_object(
        obj.get("percentage"), {"percentage", "correlationId"}, f"{path}.percentage", errors
    )
    if inner is not None:
        pct = parse_decimal(inner.get("percentage"), f"{path}.percentage.percentage", errors, positive=True)
        if pct is not None and pct > HUNDRED:
            errors.add(f"{path}.percentage.percentage", "Must be between 0 and 100.")
    inner = _optional_object(obj.get("usage"), {"quantity", "correlationId"}, f"{path}.usage", errors)
    if inner is not None:
        usage = parse_decimal(inner.get("quantity"), f"{path}.usage.quantity", errors, positive=True)
    return Discounts(percentage=pct, usage_quantity=usage)


def parse_discounts(data: Any, path: str = "discounts") -> Discounts | None:
    errors = ErrorList()
    result = parse_discounts_into(data, path, errors)
    errors.raise_if_any()
    return result


def parse_commitments(data: Any, path: str = "commitments") -> Commitments | None:
    errors = ErrorList()
    obj = _optional_object(data, {"minimumAmount", "maximumAmount"}, path, errors)
    result = None
    if obj is not None:
        minimum, maximum = _commitment_fields(obj, path, errors)
        result = Commitments(minimum_amount=minimum, maximum_amount=maximum)
    errors.raise_if_any()
    return result


def parse_quantity(data: Any, path: str = "quantity") -> Decimal:
    """A usage quantity: a non-negative decimal string of any precision."""
    errors = ErrorList()
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
        for key, attr in _PER_TRANSACTION.items():
            value = getattr(price, attr)
            if value is not None:
                out[key] = dec_str(Decimal(value))
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


__all__ = [
    "ErrorList",
    "PriceInvalid",
    "discounts_to_json",
    "parse_commitments",
    "parse_decimal",
    "parse_discounts",
    "parse_discounts_into",
    "parse_price",
    "parse_price_into",
    "parse_quantity",
    "parse_tiers_into",
    "price_to_json",
]
