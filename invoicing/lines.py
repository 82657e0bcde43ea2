"""The line engine: what a customer owes at a billing moment, minus what earlier invoices billed. Pure: no
database; the caller passes the subscription items, the ledger of billed lines and a usage reader.

Rules (docs/invoicing.md states them with worked examples):

- **Service periods.** Each item is billed on its own cadence (`billing_cadence`: monthly, yearly, …;
  empty = one-time), anchored on its subscription's billing anchor, in its billing time zone. A period the
  item covers only in part (started or ended inside it) is its *span*.
- **What is due at moment T.** A flat fee in advance is due when its span starts (`span_start <= T`), in
  arrears when its span ends (`span_end <= T`); a one-time fee is due when the item starts. An end after
  T (a change or cancelation taking effect later) does not shorten the span yet: the unused time is
  credited by the invoice at or after that end. Usage of a span
  is due when the span has ended (`span_end <= T`). `progressive=True` (on-demand invoices, the upcoming
  invoice preview) also bills the usage of open spans so far, without commitments.
- **Amounts.** A flat fee is `amount * quantity * covered share of the period` (exact seconds). Usage is
  rated by `catalog.pricing.rate` on the span's cumulative usage (a percentage price rated per
  transaction: by `invoicing.transactions.rate_transactions` on the span's events). Minimum and maximum
  commitments are prorated by the same share and applied once the span has ended.
- **Rounding once per line.** The usage line is the rounded base amount, the discount line the rounded
  percentage discount; a commitment top-up (or cap) is the rounded prorated commitment minus those two
  rounded lines, so the item's lines add up exactly to the commitment.
- **The ledger.** Every line carries a key `<item>:<service period start>:<kind>`. A line bills the amount
  due under its key minus what the ledger says was billed under it: progressive billing, credits for
  unused in-advance time after a change or a cancelation (negative lines), and late usage of a period that
  was already invoiced (an `adjustment` line for that period) all follow from that one rule, and nothing
  is billed twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from billing.periods import Cadence, InvalidCadence, periods_between
from billing.proration import proration_fraction
from catalog.pricing import (
    Commitments,
    FlatPrice,
    PercentagePrice,
    dec_str,
    line_to_json,
    parse_commitments,
    parse_discounts,
    parse_price,
    rate,
)
from core.money import quantize
from invoicing.transactions import rate_transactions

ZERO = Decimal(0)
HUNDRED = Decimal(100)
TINY = timedelta(microseconds=1)


@dataclass(frozen=True)
class BillableItem:
    """One rate card on a subscription over its whole life [active_from, active_to)."""

    item_id: str
    subscription_id: str
    key: str
    name: str
    feature_key: str
    price: dict[str, Any] | None
    discounts: dict[str, Any] | None
    commitments: dict[str, Any] | None
    payment_term: str
    billing_cadence: str  # "" = one-time
    quantity: Decimal
    currency: str
    active_from: datetime
    active_to: datetime | None
    anchor: datetime
    timezone: str
    plan_cadence: str = "P1M"


@dataclass(frozen=True)
class ServicePeriod:
    """A period of the item's cadence ([start, end); a one-time item has start == end) and the part of it
    the item covers ([span_start, span_end))."""

    start: datetime
    end: datetime
    span_start: datetime
    span_end: datetime

    @property
    def one_time(self) -> bool:
        return self.start == self.end

    @property
    def share(self) -> Fraction:
        if self.one_time:
            return Fraction(1)
        return proration_fraction(
            span_start=self.span_start, span_end=self.span_end, period_start=self.start, period_end=self.end
        )


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

    def plus(self, amount: Decimal, quantity: Decimal | None, until: datetime | None) -> Billed:
        latest = max(until, self.until) if until and self.until else (until or self.until)
        return Billed(self.amount + amount, self.quantity + (quantity or ZERO), latest)


class Ledger:
    """Billed amounts by line key, for one customer. `add` books the lines of an invoice being built, so a
    run that builds several invoices of a customer in one go sees its own earlier invoices."""

    def __init__(self, rows: Iterable[tuple[str, Decimal, Decimal | None, datetime | None]] = ()) -> None:
        self.book: dict[str, Billed] = {}
        for key, amount, quantity, until in rows:
            self._add(key, amount, quantity, until)

    def _add(self, key: str, amount: Decimal, quantity: Decimal | None, until: datetime | None) -> None:
        if key:
            self.book[key] = self.book.get(key, Billed()).plus(amount, quantity, until)

    def add(self, lines: Iterable[LineDraft]) -> None:
        for line in lines:
            self._add(line.key, line.amount, line.quantity, line.period_end)

    def get(self, key: str) -> Billed | None:
        return self.book.get(key)


UsageFn = Callable[[str, datetime, datetime], Decimal]  # (feature_key, start, end) -> quantity
CountFn = Callable[[str, datetime, datetime], int]  # (feature_key, start, end) -> number of events
# (feature_key, start, end) -> each event's value in event-time order (prices rated per transaction)
ValuesFn = Callable[[str, datetime, datetime], Sequence[Decimal]]


def _cadence(item: BillableItem) -> str:
    if item.billing_cadence:
        return item.billing_cadence
    if item.price and item.price.get("type") != "flat":
        return item.plan_cadence or "P1M"  # usage is always periodic
    return ""


def service_periods(item: BillableItem, *, at: datetime, since: datetime) -> list[ServicePeriod]:
    """The item's service periods that start at or before `at` and end at or after `since`."""
    cadence = _cadence(item)
    if not cadence:
        if since <= item.active_from <= at:
            return [ServicePeriod(item.active_from, item.active_from, item.active_from, item.active_from)]
        return []
    try:
        cad = Cadence.parse(cadence)
    except InvalidCadence:
        return []
    lo = max(item.active_from, since)
    hi = min(item.active_to, at + TINY) if item.active_to else at + TINY
    if hi <= lo:
        return []
    out = []
    for p in periods_between(item.anchor, cad, lo, hi, item.timezone):
        span_start = max(p.start, item.active_from)
        span_end = min(p.end, item.active_to) if item.active_to else p.end
        if span_end > span_start and span_start <= at and p.end >= since:
            out.append(ServicePeriod(p.start, p.end, span_start, span_end))
    return out


def _key(item: BillableItem, sp: ServicePeriod, kind: str) -> str:
    return f"{item.item_id}:{sp.start.isoformat()}:{kind}"


def _base(item: BillableItem, sp: ServicePeriod) -> dict[str, Any]:
    return {
        "subscription_id": item.subscription_id,
        "subscription_item_id": item.item_id,
        "rate_card_key": item.key,
        "feature_key": item.feature_key,
        "billing_period_start": sp.start,
        "billing_period_end": sp.end,
    }


def _pct(share: Fraction) -> str:
    return dec_str((Decimal(share.numerator * 100) / Decimal(share.denominator)).quantize(Decimal("0.01")))


@dataclass
class _Due:
    """One amount due under a line key (rounded once), with what the line shows."""

    kind: str
    type: str
    description: str
    amount: Decimal
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    detail: list[dict[str, Any]] = field(default_factory=list)
    until: datetime | None = None


def _flat_due(item: BillableItem, price: FlatPrice, sp: ServicePeriod, currency: str) -> list[_Due]:
    share = sp.share
    exact = price.amount * item.quantity * Decimal(share.numerator) / Decimal(share.denominator)
    desc = item.name + (f" × {dec_str(item.quantity)}" if item.quantity != 1 else "")
    if share != 1:
        desc += f" (prorated {_pct(share)}%)"
    term = "one-time" if sp.one_time else item.payment_term
    out = [
        _Due(
            "flat",
            "flat_fee",
            desc,
            quantize(exact, currency),
            quantity=item.quantity,
            unit_price=price.amount,
            detail=[
                {
                    "type": "flat",
                    "description": f"Flat fee ({term})",
                    "amount": dec_str(price.amount),
                    "quantity": dec_str(item.quantity),
                    "proration": f"{share.numerator}/{share.denominator}",
                }
            ],
            until=sp.span_end,
        )
    ]
    discounts = parse_discounts(item.discounts) if item.discounts else None
    if discounts is not None and discounts.percentage:
        out.append(
            _Due(
                "flat_discount",
                "discount",
                f"{item.name}: discount {dec_str(discounts.percentage)}%",
                quantize(-(exact * discounts.percentage / HUNDRED), currency),
                until=sp.span_end,
            )
        )
    return out


def _usage_due(
    item: BillableItem,
    price: Any,
    sp: ServicePeriod,
    *,
    upto: datetime,
    closed: bool,
    currency: str,
    usage: UsageFn,
    count: CountFn,
    values: ValuesFn | None,
) -> list[_Due]:
    end = sp.span_end if closed else min(sp.span_end, upto)
    quantity = usage(item.feature_key, sp.span_start, end)
    discounts = parse_discounts(item.discounts) if item.discounts else None
    bare = dataclasses.replace(price, minimum_amount=None, maximum_amount=None)
    if isinstance(bare, PercentagePrice) and bare.per_transaction and values is not None:
        rating = rate_transactions(bare, values(item.feature_key, sp.span_start, end), discounts=discounts)
    else:  # without a reader of event values (the pricing simulation), on the period's volume
        events = 0
        if isinstance(price, PercentagePrice) and price.fixed_amount_per_event is not None:
            events = int(count(item.feature_key, sp.span_start, end))
        rating = rate(bare, quantity, event_count=events, discounts=discounts)
    base = sum((x.amount for x in rating.lines if x.kind != "percentage_discount"), ZERO)
    off = sum((x.amount for x in rating.lines if x.kind == "percentage_discount"), ZERO)
    usage_r, off_r = quantize(base, currency), quantize(off, currency)
    detail = [line_to_json(x) for x in rating.lines if x.kind != "percentage_discount"]
    if not closed:
        detail.append({"type": "open", "description": f"Usage so far (until {end.isoformat()})"})
    unit = getattr(price, "amount", None) if price.type == "unit" else None
    out = [
        _Due("usage", "usage", item.name, usage_r, quantity, unit, detail, until=end),
        _Due(
            "discount",
            "discount",
            f"{item.name}: discount",
            off_r,
            until=end,
        ),
    ]
    commit = _commitments(item, price)
    if closed and (commit.minimum_amount is not None or commit.maximum_amount is not None):
        share = sp.share
        ratio = Decimal(share.numerator) / Decimal(share.denominator)
        paid = usage_r + off_r
        adjust = ZERO
        label = ""
        if commit.minimum_amount is not None:
            minimum = quantize(commit.minimum_amount * ratio, currency)
            if paid < minimum:
                adjust, label = minimum - paid, f"minimum commitment top-up (minimum {dec_str(minimum)})"
        if commit.maximum_amount is not None:
            maximum = quantize(commit.maximum_amount * ratio, currency)
            if paid > maximum:
                adjust, label = maximum - paid, f"maximum commitment cap (maximum {dec_str(maximum)})"
        if share != 1 and label:
            label += f", prorated {_pct(share)}%"
        out.append(_Due("commitment", "commitment", f"{item.name}: {label}", adjust, until=end))
    return out


def _commitments(item: BillableItem, price: Any) -> Commitments:
    card = parse_commitments(item.commitments) if item.commitments else None
    if card is not None and (card.minimum_amount is not None or card.maximum_amount is not None):
        return card
    return Commitments(getattr(price, "minimum_amount", None), getattr(price, "maximum_amount", None))


def item_lines(
    item: BillableItem,
    *,
    at: datetime,
    since: datetime,
    usage_upto: datetime,
    progressive: bool,
    currency: str,
    usage: UsageFn,
    count: CountFn,
    ledger: Ledger,
    values: ValuesFn | None = None,
) -> list[LineDraft]:
    """The lines one item adds to an invoice at moment `at`: every amount due under its keys minus what
    the ledger says was billed. Usage is read up to `usage_upto` (`at`, or now for a preview)."""
    if not item.price:
        return []
    price = parse_price(item.price)
    out: list[LineDraft] = []
    for sp in service_periods(item, at=at, since=since):
        if isinstance(price, FlatPrice):
            term = "in_advance" if sp.one_time else (item.payment_term or "in_advance")
            if (sp.span_start if term == "in_advance" else sp.span_end) > at:
                continue
            if sp.span_end > at:  # as known at the moment: an end after it is not billed (credited) yet
                sp = dataclasses.replace(sp, span_end=sp.end)
            dues = _flat_due(item, price, sp, currency)
        else:
            closed = sp.span_end <= usage_upto
            if not closed and (not progressive or sp.span_start >= usage_upto):
                continue
            dues = _usage_due(
                item,
                price,
                sp,
                upto=usage_upto,
                closed=closed,
                currency=currency,
                usage=usage,
                count=count,
                values=values,
            )
        for due in dues:
            out.extend(_line_for(item, sp, due, ledger))
    return out


def _line_for(item: BillableItem, sp: ServicePeriod, due: _Due, ledger: Ledger) -> list[LineDraft]:
    key = _key(item, sp, due.kind)
    before = ledger.get(key)
    amount = due.amount - (before.amount if before else ZERO)
    cumulative = due.kind == "usage"
    if cumulative and due.quantity is not None:
        qty: Decimal | None = due.quantity - (before.quantity if before else ZERO)
    else:
        qty = due.quantity if before is None else None
    if before is not None and amount == 0 and not (cumulative and qty):
        return []
    if before is None and amount == 0 and due.type != "usage":
        return []
    line_type, description, period_start = due.type, due.description, sp.span_start
    label = f"{sp.start:%Y-%m-%d}" if sp.one_time else f"{sp.start:%Y-%m-%d} – {sp.end:%Y-%m-%d}"
    if before is not None and due.kind in ("flat", "flat_discount"):
        # the span changed after the fee was billed (a plan change or a cancelation): the difference
        what = "unused time after" if amount < 0 else "added time until"
        description = f"{due.description}: {what} {sp.span_end:%Y-%m-%d} ({label})"
    elif before is not None and before.until is not None and before.until >= sp.span_end:
        line_type = "adjustment"  # the span was billed in full already: late usage
        description = f"Late usage adjustment: {due.description} ({label})"
    elif before is not None and before.until is not None and cumulative:
        period_start = before.until  # progressive: the rest of the span
    return [
        LineDraft(
            line_type,
            description,
            amount,
            quantity=qty,
            unit_price=due.unit_price,
            period_start=period_start,
            period_end=due.until or sp.span_end,
            detail=due.detail,
            key=key,
            **_base(item, sp),
        )
    ]


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
                f"{spec.name} {dec_str(spec.percentage)}% ({kind})",
                quantize(tax, currency),
                quantity=base,
                unit_price=spec.percentage,
                taxable=False,
                tax_rate_id=spec.id,
                detail=[
                    {
                        "type": "tax",
                        "base": str(base),
                        "percentage": dec_str(spec.percentage),
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
