"""Composing invoices: the one place that decides which items, which periods, which amounts and which
credits an invoice holds. Every path goes through `InvoiceBuilder` — the period run (one customer or a
batch of hundreds), on-demand invoices, the upcoming-invoice preview and the rebuild at issue — so they
cannot disagree.

The builder reads in bulk for a set of customers (items, the ledger of billed lines, tax rates), then
builds their invoices one by one in `sources.due_order`. Each built invoice is booked into the
in-memory ledger, so a run that builds two moments of one customer in one transaction (a back-fill)
bills nothing twice, exactly as two separate transactions would. Usage is read in two passes: the first
records which (customer, feature, span) windows the lines need, one grouped metering query per window
answers them all, the second computes the lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import Q, Sum

from billing.models import Customer
from core.models import Organization
from core.money import quantize
from invoicing import lines as L
from invoicing import sources
from invoicing.models import CreditApplication, CustomerCredit, InvoiceLine, InvoiceStatus, TaxRate
from invoicing.sources import UsageRequest

S = InvoiceStatus
BILLED_STATUSES = (S.DRAFT, S.ISSUED, S.PAID, S.PAYMENT_FAILED, S.OVERDUE, S.UNCOLLECTIBLE)
ZERO = Decimal(0)


@dataclass(frozen=True)
class Moment:
    """What to build: the invoice of `customer_id` in `currency` at `at`.

    `kind="start"` (a subscription's first invoice) bills in-advance fees only; usage waits for the period
    invoice and its collection delay. `progressive` also bills open periods' usage so far (on-demand and
    preview), read up to `usage_upto`."""

    customer_id: str
    currency: str
    at: datetime
    kind: str = "period"
    progressive: bool = False
    usage_upto: datetime | None = None
    exclude_invoice_id: str | None = None


@dataclass
class Build:
    lines: list[L.LineDraft]
    credits: list[tuple[L.LineDraft, CustomerCredit, Decimal]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.lines


def customers_lock(*, organization: Organization, customer_ids: list[str]) -> None:
    """Serialize billing per customer: the customers' rows are locked (ordered by id, so two runs never
    deadlock) before their ledger is read, so two invoices of one customer built at the same time (two
    batches, a batch and an on-demand invoice) never bill the same thing twice. Call inside the
    transaction that writes the invoices."""
    list(
        Customer.objects.select_for_update()
        .filter(organization=organization, id__in=sorted(set(customer_ids)))
        .order_by("id")
        .values_list("id", flat=True)
    )


def tax_specs(organization: Organization) -> tuple[L.TaxSpec | None, dict[str, L.TaxSpec]]:
    rates = {}
    default = None
    for r in TaxRate.objects.filter(organization=organization):
        rates[r.id] = L.TaxSpec(r.id, r.name, r.percentage, r.inclusive)
        if r.is_default and r.archived_at is None:
            default = rates[r.id]
    return default, rates


class InvoiceBuilder:
    def __init__(
        self,
        *,
        organization: Organization,
        customer_ids: list[str],
        moments: list[datetime],
        items: dict[str, list[sources.BillableItem]] | None = None,
    ) -> None:
        """`items`: the customers' `sources.billable_items` for these moments when the caller has read
        them already (the upcoming invoice reads them with its periods: `sources.customer_timeline`)."""
        self.organization = organization
        self.since = min(moments) - sources.LOOKBACK
        self.until = max(moments)
        if items is None:
            items = sources.billable_items(
                organization=organization, customer_ids=customer_ids, since=self.since, until=self.until
            )
        self.items = items
        rows = (
            InvoiceLine.objects.filter(
                organization=organization,
                invoice__customer_id__in=customer_ids,
                invoice__status__in=BILLED_STATUSES,
                billing_period_end__gte=self.since,
            )
            .exclude(key="")
            .values_list("invoice__customer_id", "invoice_id", "key", "amount", "quantity", "period_end")
        )
        self._rows: dict[str, list[tuple[str, str, Decimal, Decimal | None, datetime | None]]] = {
            c: [] for c in customer_ids
        }
        for cid, inv, key, amount, qty, until in rows:
            self._rows[cid].append((inv, key, amount, qty, until))
        self._booked: dict[str, list[L.LineDraft]] = {c: [] for c in customer_ids}
        self._credit_used: dict[str, Decimal] = {}
        self._customer_ids = customer_ids
        self._with_credit: set[tuple[str, str]] | None = None  # read on the first credit question
        self.default_tax, self.rates = tax_specs(organization)
        self._usage: dict[UsageRequest, Decimal] = {}
        self._values: dict[UsageRequest, tuple[Decimal, ...]] = {}  # prices rated per transaction

    # --- usage -------------------------------------------------------------------------------------
    def prefetch(self, moments: list[Moment]) -> None:
        """Read the usage every one of `moments` will need, in a few grouped queries."""
        wanted: list[UsageRequest] = []
        for m in moments:
            self._lines(m, record=wanted)
        missing = [r for r in dict.fromkeys(wanted) if r not in self._usage and r not in self._values]
        per_event = [r for r in missing if r.measure == "events"]
        if per_event:
            self._values.update(sources.event_values(organization=self.organization, requests=per_event))
        missing = [r for r in missing if r.measure != "events"]
        if missing:
            self._usage.update(sources.usage_bulk(organization=self.organization, requests=missing))

    def _values_reader(
        self, customer_id: str, record: list[UsageRequest] | None
    ) -> Callable[[str, datetime, datetime], tuple[Decimal, ...]]:
        def read(feature_key: str, start: datetime, end: datetime) -> tuple[Decimal, ...]:
            req = UsageRequest(customer_id, feature_key, start, end, "events")
            if record is not None:
                record.append(req)
                return ()
            if req not in self._values:
                self._values.update(sources.event_values(organization=self.organization, requests=[req]))
            return self._values[req]

        return read

    def _reader(
        self, customer_id: str, measure: str, record: list[UsageRequest] | None
    ) -> Callable[[str, datetime, datetime], Decimal]:
        def read(feature_key: str, start: datetime, end: datetime) -> Decimal:
            req = UsageRequest(customer_id, feature_key, start, end, measure)
            if record is not None:
                record.append(req)
                return ZERO
            if req not in self._usage:
                self._usage[req] = sources.usage_of(organization=self.organization, request=req)
            return self._usage[req]

        return read

    # --- lines -------------------------------------------------------------------------------------
    def ledger(self, customer_id: str, exclude_invoice_id: str | None = None) -> L.Ledger:
        ledger = L.Ledger(
            (key, amount, qty, until)
            for inv, key, amount, qty, until in self._rows.get(customer_id, [])
            if inv != exclude_invoice_id
        )
        ledger.add(self._booked.get(customer_id, []))
        return ledger

    def _lines(self, m: Moment, record: list[UsageRequest] | None = None) -> list[L.LineDraft]:
        ledger = self.ledger(m.customer_id, m.exclude_invoice_id)
        usage = self._reader(m.customer_id, "value", record)
        events = self._reader(m.customer_id, "count", record)

        def count(feature_key: str, start: datetime, end: datetime) -> int:
            return int(events(feature_key, start, end))

        out: list[L.LineDraft] = []
        for item in self.items.get(m.customer_id, []):
            if item.currency != m.currency:
                continue
            if m.kind == "start" and (not item.price or item.price.get("type") != "flat"):
                continue
            out.extend(
                L.item_lines(
                    item,
                    at=m.at,
                    since=m.at - sources.LOOKBACK,
                    usage_upto=m.usage_upto or m.at,
                    progressive=m.progressive,
                    currency=m.currency,
                    usage=usage,
                    count=count,
                    ledger=ledger,
                    values=self._values_reader(m.customer_id, record),
                )
            )
        return out

    def build(
        self,
        m: Moment,
        *,
        manual: list[InvoiceLine] | None = None,
        apply_credits: bool = True,
        book: bool = True,
    ) -> Build:
        """The lines of one invoice: items' lines, taxes (manual lines count), then credits that cover what
        is due (valid at the moment, locked, used once). With `book`, the lines enter the in-memory ledger
        so later builds of this customer see them."""
        drafts = self._lines(m)
        taxable = drafts + [_manual_as_draft(x) for x in manual or []]
        taxes = L.tax_lines(taxable, currency=m.currency, default=self.default_tax, rates=self.rates)
        credits: list[tuple[L.LineDraft, CustomerCredit, Decimal]] = []
        if apply_credits and (drafts or manual):
            due = L.totals(taxable + taxes).total
            credits = self._credit_lines(m, due)
        if book:
            self._booked.setdefault(m.customer_id, []).extend(drafts)
        return Build(drafts + taxes + [c[0] for c in credits], credits)

    def _credit_lines(self, m: Moment, due: Decimal) -> list[tuple[L.LineDraft, CustomerCredit, Decimal]]:
        """Customer credits valid at the moment, by priority, then nearest expiry, then oldest; the rows
        are locked (`SELECT … FOR UPDATE`, ordered) so two invoices never spend the same balance."""
        if due <= 0:
            return []
        if self._with_credit is None:
            self._with_credit = set(
                CustomerCredit.objects.filter(
                    organization=self.organization, customer_id__in=self._customer_ids
                )
                .filter(voided_at__isnull=True)
                .values_list("customer_id", "currency")
            )
        if (m.customer_id, m.currency) not in self._with_credit:
            return []
        credits = list(
            CustomerCredit.objects.select_for_update()
            .filter(organization=self.organization, customer_id=m.customer_id, currency=m.currency)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=m.at))
            .filter(voided_at__isnull=True)
            .order_by("priority", "expires_at", "created_at", "id")
        )
        if not credits:
            return []
        used = dict(
            CreditApplication.objects.filter(credit__in=credits)
            .exclude(line__invoice__status__in=(S.VOIDED, S.GATHERING))
            .exclude(line__invoice_id=m.exclude_invoice_id or "")
            .values_list("credit_id")
            .annotate(s=Sum("amount"))
            .values_list("credit_id", "s")
        )
        out = []
        for credit in credits:
            spent = (used.get(credit.id) or ZERO) + self._credit_used.get(credit.id, ZERO)
            left = quantize(credit.amount - spent, m.currency)
            take = min(left, due)
            if take <= 0:
                continue
            line = L.LineDraft(
                "credit",
                credit.description,
                -take,
                taxable=False,
                detail=[{"type": "credit", "creditId": credit.id, "remainingBefore": str(left)}],
            )
            out.append((line, credit, take))
            self._credit_used[credit.id] = self._credit_used.get(credit.id, ZERO) + take
            due -= take
            if due <= 0:
                break
        return out


def _manual_as_draft(line: InvoiceLine) -> L.LineDraft:
    return L.LineDraft(
        line.type, line.description, line.amount, taxable=line.taxable, tax_rate_id=line.tax_rate_id
    )
