"""Usage billed as it arrives: an invoice, issued at once, for the usage so far of some of a customer's
rate cards (a Lago charge paid in advance). It is an on-demand invoice restricted to those cards: each
line bills what is due under its key less what the ledger says was billed, so it holds the increment the
new events add to the period's running total, a second call for the same events bills nothing, and the
period invoice bills only what no such invoice has billed."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing.models import Customer
from core.audit import Actor
from core.models import Organization
from invoicing import sources
from invoicing.builder import InvoiceBuilder, Moment, customers_lock
from invoicing.models import Invoice
from invoicing.services.build import invoice_draft_write
from invoicing.services.lifecycle import invoice_issue
from invoicing.services.state import S


def invoice_usage_in_advance(
    *,
    organization: Organization,
    customer: Customer,
    cards: set[tuple[str, str]],
    now: datetime | None = None,
    actor: Actor = None,
) -> list[Invoice]:
    """Issue, per currency, an invoice of the usage so far of these rate cards ((subscription id, rate
    card key)) not billed yet; none when nothing is due (an amount of 0 is not invoiced)."""
    now = now or timezone.now()
    out = []
    with transaction.atomic():
        customers_lock(organization=organization, customer_ids=[customer.id])
        items = [
            i
            for i in sources.billable_items(
                organization=organization, customer_ids=[customer.id], since=now - sources.LOOKBACK, until=now
            ).get(customer.id, [])
            if (i.subscription_id, i.key) in cards
        ]
        for currency in sorted({i.currency for i in items}):
            starts = [
                cp.period_start
                for cp in sources.current_periods(organization=organization, customer_id=customer.id, at=now)
                if cp.currency == currency
            ]
            invoice = Invoice.objects.create(
                organization=organization,
                customer=customer,
                currency=currency,
                period_start=min(starts, default=now),
                period_end=now,
                kind="on_demand",
                status=S.GATHERING,
            )
            builder = InvoiceBuilder(
                organization=organization,
                customer_ids=[customer.id],
                moments=[now],
                items={customer.id: [i for i in items if i.currency == currency]},
            )
            moment = Moment(
                customer.id, currency, now, progressive=True, usage_upto=now, exclude_invoice_id=invoice.id
            )
            builder.prefetch([moment])
            build = builder.build(moment, apply_credits=True)
            if not any(x.amount for x in build.lines if x.type != "credit"):
                invoice.delete()
                continue
            invoice = invoice_draft_write(
                organization=organization, invoice=invoice, build=build, now=now, draft_until=now, actor=actor
            )
            out.append(invoice)
    return [invoice_issue(organization=organization, invoice=i, actor=actor, now=now) for i in out]
