"""Invoice line computation: subscription items + usage → rounded lines, then taxes and credits.

Rules (docs/invoicing.md):
- Each line is rounded once with `core.money.quantize`; totals are sums of rounded lines.
- Usage is priced by the catalog engine (`catalog.pricing.rate`) on the **cumulative** usage of the item
  over [span_start, to) of its billing period; a line bills that cumulative rounded amount minus what
  earlier invoices already billed under the same line key (`<item>:<period start>:<kind>`). That is
  progressive billing: an on-demand invoice mid-period, then the period-end invoice, bill the whole
  period exactly once, and graduated tiers stay correct across the split.
- Minimum commitments apply only on the final invoice of a period (`final=True`).
- Flat fees are prorated by the item's share of the period; in-advance fees are billed by the first
  invoice that touches the period, in-arrears fees by the final one.
- Late usage of a period that was already invoiced becomes an `adjustment` line on the next invoice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.money import quantize
from invoicing.sources import BillableItem

ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclass
class LineDraft:
    type: str
    description: str
    amount: Decimal
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    detail: list[dict[str, Any]] = field(default_factory=list)
    key: str = ""
    subscription_id: str = ""
    subscription_item_id: str = ""
    rate_card_key: str = ""
    feature_key: str = ""
    billing_period_start: datetime | None = None
    billing_period_end: datetime | None = None
    taxable: bool = True
    tax_rate_id: str | None = None


@dataclass(frozen=True)
class Billed:
    """What earlier invoices billed under one line key."""

    amount: Decimal = ZERO
    quantity: Decimal = ZERO
    until: datetime | None = None


UsageFn = Callable[[str, datetime, datetime], Decimal]  # (feature_key, start, end) -> quantity

_DISCOUNT_KINDS = {"percentage_discount", "maximum_cap"}
_COMMITMENT_KINDS = {"minimum_topup"}


def _key(item: BillableItem, kind: str) -> str:
    return f"{item.item_id}:{item.period_start.isoformat()}:{kind}"


def _dec(value: Decimal) -> str:
    from catalog.pricing import dec_str

    return dec_str(value)


def _base(item: BillableItem, **kw: Any) -> dict[str, Any]:
    return {
        "subscription_id": item.subscription_id,
        "subscription_item_id": item.item_id,
        "rate_card_key": item.key,
        "feature_key": item.feature_key,
        "billing_period_start": item.period_start,
        "billing_period_end": item.period_end,
        **kw,
    }


def _flat_lines(
    item: BillableItem, price: Any, discounts: Any, *, final: bool, currency: str, billed: dict[str, Billed]
) -> list[LineDraft]:
    term = getattr(price, "payment_term", item.payment_term) or item.payment_term
    if term == "in_arrears" and not final:
        return []
    key = _key(item, "flat")
    if key in billed:
        return []
    fraction = item.proration
    exact = price.amount * item.quantity * Decimal(fraction.numerator) / Decimal(fraction.denominator)
    prorated = fraction != 1
    desc = item.name + (f" × {_dec(item.quantity)}" if item.quantity != 1 else "")
    if prorated:
        desc += f" (prorated {_dec(Decimal(fraction.numerator * 100) / Decimal(fraction.denominator))[:6]}%)"
    detail = [
        {
            "type": "flat",
            "description": f"Flat fee ({term})",
            "amount": _dec(price.amount),
            "quantity": _dec(item.quantity),
            "proration": f"{fraction.numerator}/{fraction.denominator}",
        }
    ]
    lines = [
        LineDraft(
            "flat_fee",
            desc,
            quantize(exact, currency),
            quantity=item.quantity,
            unit_price=price.amount,
            period_start=item.span_start,
            period_end=item.span_end,
            detail=detail,
            key=key,
            **_base(item),
        )
    ]
    if discounts is not None and discounts.percentage:
        dkey = _key(item, "flat_discount")
        off = -(exact * discounts.percentage / HUNDRED)
        lines.append(
            LineDraft(
                "discount",
                f"{item.name}: discount {_dec(discounts.percentage)}%",
                quantize(off, currency),
                period_start=item.span_start,
                period_end=item.span_end,
                key=dkey,
                **_base(item),
            )
        )
    return lines


def item_lines(
    item: BillableItem,
    *,
    upto: datetime,
    final: bool,
    currency: str,
    usage: UsageFn,
    billed: dict[str, Billed],
) -> list[LineDraft]:
    """The lines one item adds to an invoice that bills its period up to `upto`."""
    from catalog.pricing import FlatPrice, line_to_json, parse_discounts, parse_price, rate

    if not item.price:
        return []
    to = min(item.span_end, upto)
    if to <= item.span_start:
        return []
    price = parse_price(item.price)
    discounts = parse_discounts(item.discounts) if item.discounts else None
    if isinstance(price, FlatPrice):
        return _flat_lines(item, price, discounts, final=final, currency=currency, billed=billed)
    if not final and getattr(price, "minimum_amount", None) is not None:
        price = dataclasses.replace(price, minimum_amount=None)  # commitments close the period, not before
    quantity = usage(item.feature_key, item.span_start, to)
    rating = rate(price, quantity, discounts=discounts)
    groups: dict[str, Decimal] = {"usage": ZERO, "discount": ZERO, "commitment": ZERO}
    for line in rating.lines:
        kind = (
            "discount"
            if line.kind in _DISCOUNT_KINDS
            else "commitment"
            if line.kind in _COMMITMENT_KINDS
            else "usage"
        )
        groups[kind] += line.amount
    detail = [line_to_json(x) for x in rating.lines if x.kind not in _DISCOUNT_KINDS | _COMMITMENT_KINDS]
    out: list[LineDraft] = []
    for kind, exact in groups.items():
        key = _key(item, kind)
        before = billed.get(key, Billed())
        amount = quantize(exact, currency) - before.amount
        if kind == "usage":
            qty = quantity - before.quantity
            if amount == 0 and qty == 0 and key in billed:
                continue
            unit = getattr(price, "amount", None) if price.type == "unit" else None
            out.append(
                LineDraft(
                    "usage",
                    item.name,
                    amount,
                    quantity=qty,
                    unit_price=unit,
                    period_start=before.until or item.span_start,
                    period_end=to,
                    detail=[
                        *detail,
                        {
                            "type": "cumulative",
                            "quantity": _dec(quantity),
                            "description": "Usage in the billing period so far",
                        },
                    ]
                    if key in billed
                    else detail,
                    key=key,
                    **_base(item),
                )
            )
        elif amount != 0:
            label = "discount" if kind == "discount" else "minimum commitment top-up"
            out.append(
                LineDraft(
                    kind,
                    f"{item.name}: {label}",
                    amount,
                    period_start=item.span_start,
                    period_end=to,
                    key=key,
                    **_base(item),
                )
            )
    return out


def adjustment_lines(
    items: Iterable[BillableItem], *, currency: str, usage: UsageFn, billed: dict[str, Billed]
) -> list[LineDraft]:
    """Late usage of an already invoiced period: the difference, as adjustment lines."""
    out = []
    for item in items:
        if not item.price or item.price.get("type") == "flat" or _key(item, "usage") not in billed:
            continue
        for line in item_lines(
            item, upto=item.period_end, final=True, currency=currency, usage=usage, billed=billed
        ):
            if line.amount == 0 and not line.quantity:
                continue
            line.type = "adjustment"
            line.description = (
                f"Late usage adjustment: {line.description} "
                f"({item.period_start:%Y-%m-%d} – {item.period_end:%Y-%m-%d})"
            )
            out.append(line)
    return out


@dataclass(frozen=True)
class TaxSpec:
    id: str
    name: str
    percentage: Decimal
    inclusive: bool


def tax_lines(
    lines: list[LineDraft], *, currency: str, default: TaxSpec | None, rates: dict[str, TaxSpec]
) -> list[LineDraft]:
    """One tax line per rate, on the sum of the rounded taxable lines (tax per invoice)."""
    bases: dict[str, Decimal] = {}
    for line in lines:
        if not line.taxable or line.type in ("tax", "credit"):
            continue
        spec = rates.get(line.tax_rate_id or "") or default
        if spec is None:
            continue
        bases[spec.id] = bases.get(spec.id, ZERO) + line.amount
    out = []
    for rate_id, base in bases.items():
        spec = rates.get(rate_id) or default
        assert spec is not None
        if spec.inclusive:
            tax = base - base / (1 + spec.percentage / HUNDRED)
        else:
            tax = base * spec.percentage / HUNDRED
        kind = "included" if spec.inclusive else "added"
        out.append(
            LineDraft(
                "tax",
                f"{spec.name} {_dec(spec.percentage)}% ({kind})",
                quantize(tax, currency),
                quantity=base,
                unit_price=spec.percentage,
                taxable=False,
                tax_rate_id=spec.id,
                detail=[
                    {
                        "type": "tax",
                        "base": str(base),
                        "percentage": _dec(spec.percentage),
                        "inclusive": spec.inclusive,
                    }
                ],
            )
        )
    return out


@dataclass(frozen=True)
class Totals:
    amount: Decimal
    discounts_total: Decimal
    credits_total: Decimal
    taxes_total: Decimal
    taxes_inclusive_total: Decimal
    total: Decimal

    def fields(self) -> dict[str, Decimal]:
        """The Invoice fields these totals set, by name (for `update(**…)` or setattr)."""
        return dataclasses.asdict(self)


def totals(lines: Iterable[Any]) -> Totals:
    """Sums of rounded lines. Works on LineDraft and InvoiceLine alike (needs type/amount/detail)."""
    amount = discounts = credits = taxes = inclusive = ZERO
    for line in lines:
        if line.type == "discount":
            discounts -= line.amount
        elif line.type == "credit":
            credits -= line.amount
        elif line.type == "tax":
            taxes += line.amount
            if line.detail and line.detail[0].get("inclusive"):
                inclusive += line.amount
        else:
            amount += line.amount
    total = amount - discounts + (taxes - inclusive) - credits
    return Totals(amount, discounts, credits, taxes, inclusive, total)
