"""Building invoices: lines for a billing moment (gathering → draft), the upcoming preview and manual
lines; every amount comes from `invoicing.builder`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from billing.models import Customer
from core.audit import Actor, audit_object
from core.errors import NotFound, ValidationFailed
from core.models import Organization
from core.money import quantize, to_decimal
from invoicing import lines as L
from invoicing import sources
from invoicing.builder import Build, InvoiceBuilder, Moment, tax_specs
from invoicing.models import (
    CreditApplication,
    Invoice,
    InvoiceLine,
    LineType,
    TaxRate,
    natural_key,
)
from invoicing.services import state
from invoicing.services.settings import invoicing_settings_get
from invoicing.services.state import InvoiceNotEditable, S
from invoicing.webhooks import webhook_event_emit


# --- line building ------------------------------------------------------------------------------------
def invoice_moment(invoice: Invoice, *, now: datetime | None = None) -> Moment:
    """What an invoice bills: a period invoice everything due at its end; a start invoice the in-advance
    fees due at its start; an on-demand invoice everything due by its end plus the usage so far."""
    if invoice.kind == "start":
        return Moment(
            invoice.customer_id,
            invoice.currency,
            invoice.period_start,
            "start",
            exclude_invoice_id=invoice.id,
        )
    if invoice.kind == "on_demand":
        return Moment(
            invoice.customer_id,
            invoice.currency,
            invoice.period_end,
            progressive=True,
            exclude_invoice_id=invoice.id,
        )
    return Moment(invoice.customer_id, invoice.currency, invoice.period_end, exclude_invoice_id=invoice.id)


def build_one(*, organization: Organization, invoice: Invoice, moment: Moment, apply_credits: bool) -> Build:
    builder = InvoiceBuilder(
        organization=organization, customer_ids=[invoice.customer_id], moments=[moment.at]
    )
    manual = list(invoice.lines.filter(type=LineType.MANUAL)) if invoice.pk else []
    builder.prefetch([moment])
    return builder.build(moment, manual=manual, apply_credits=apply_credits)


def line_rows(
    *, organization: Organization, invoice: Invoice, drafts: list[L.LineDraft], start: int
) -> list[InvoiceLine]:
    """Unsaved rows for the computed lines of one invoice: positions from `start`, tax lines from 9000."""
    return [
        InvoiceLine(
            organization=organization,
            invoice=invoice,
            type=d.type,
            position=start + i if d.type != "tax" else 9000 + i,
            description=d.description[:500],
            quantity=d.quantity,
            unit_price=d.unit_price,
            amount=d.amount,
            period_start=d.period_start,
            period_end=d.period_end,
            detail=d.detail,
            key=d.key,
            subscription_id=d.subscription_id,
            subscription_item_id=d.subscription_item_id,
            rate_card_key=d.rate_card_key,
            feature_key=d.feature_key,
            billing_period_start=d.billing_period_start,
            billing_period_end=d.billing_period_end,
            taxable=d.taxable,
            tax_rate_id=d.tax_rate_id,
        )
        for i, d in enumerate(drafts)
    ]


def write_lines(*, organization: Organization, invoice: Invoice, build: Build) -> None:
    """Replace the computed lines (manual lines stay), apply credits, store the totals."""
    invoice.lines.exclude(type=LineType.MANUAL).delete()
    start = (invoice.lines.count() and 1000) or 0
    rows = line_rows(organization=organization, invoice=invoice, drafts=build.lines, start=start)
    created = InvoiceLine.objects.bulk_create(rows)
    by_draft = {id(d): row for d, row in zip(build.lines, created, strict=True)}
    CreditApplication.objects.bulk_create(
        [
            CreditApplication(organization=organization, credit=credit, line=by_draft[id(draft)], amount=take)
            for draft, credit, take in build.credits
        ]
    )
    Invoice.objects.filter(id=invoice.id).update(
        **L.totals(invoice.lines.all()).fields(), updated_at=timezone.now()
    )
    invoice.refresh_from_db()


def invoice_payload(invoice: Invoice) -> dict[str, Any]:
    """The invoice as JSON-safe data (audit rows and webhook payloads)."""
    return json.loads(json.dumps(_payload(invoice), cls=DjangoJSONEncoder))


def _payload(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "number": invoice.number or None,
        "status": invoice.status,
        "customerId": invoice.customer_id,
        "currency": invoice.currency,
        "periodStart": invoice.period_start,
        "periodEnd": invoice.period_end,
        "issuedAt": invoice.issued_at,
        "dueAt": invoice.due_at,
        "totals": {
            "amount": str(invoice.amount),
            "discountsTotal": str(invoice.discounts_total),
            "creditsTotal": str(invoice.credits_total),
            "taxesTotal": str(invoice.taxes_total),
            "total": str(invoice.total),
        },
    }


# --- building from subscriptions ----------------------------------------------------------------------
def invoice_gathering_get(*, organization: Organization, due: sources.DuePeriod) -> Invoice:
    """The invoice with this natural key, created in `gathering` when missing (an upsert)."""
    invoice, _ = Invoice.objects.get_or_create(
        organization=organization, **natural_key(due), defaults={"status": S.GATHERING}
    )
    return invoice


def invoice_upcoming_build(
    *,
    organization: Organization,
    customer_id: str,
    period: sources.CurrentPeriod,
    now: datetime,
    timeline: sources.CustomerTimeline | None = None,
) -> Build:
    """What the invoice at the end of the customer's current `period` would hold if usage stopped now (the
    upcoming invoice): everything due at its end, with the open periods' usage so far and no commitments
    yet, before credits. Writes nothing. `timeline` (`sources.customer_timeline`) spares the items read."""
    end = period.period_end
    moment = Moment(customer_id, period.currency, end, progressive=True, usage_upto=min(now, end))
    builder = InvoiceBuilder(
        organization=organization,
        customer_ids=[customer_id],
        moments=[end],
        items=timeline.items_for(end) if timeline is not None else None,
    )
    builder.prefetch([moment])
    return builder.build(moment, apply_credits=False)


@dataclass(frozen=True)
class Upcoming:
    currency: str
    period_start: datetime
    period_end: datetime
    lines: list[L.LineDraft]
    totals: L.Totals


def invoice_upcoming(
    *, organization: Organization, customer: Customer, now: datetime | None = None
) -> list[Upcoming]:
    """The customer's next invoice per currency as it stands now (nothing stored): what is due at the end
    of the current billing period, with the open periods' usage so far, before credits. The periods and
    the items come from one read (`sources.customer_timeline`)."""
    now = now or timezone.now()
    timeline = sources.customer_timeline(organization=organization, customer_id=customer.id, at=now)
    return _upcoming(organization=organization, timeline=timeline, now=now)


def customer_invoice_upcoming(
    *, organization: Organization, customer_id: str, now: datetime | None = None
) -> list[Upcoming]:
    """`invoice_upcoming` of a live customer known by id (the console's customer page): the read of its
    items also tells whether it exists, so the customer row is read only when it has none. Raises
    NotFound for another organization's, a deleted or an unknown customer."""
    now = now or timezone.now()
    timeline = sources.customer_timeline(organization=organization, customer_id=customer_id, at=now)
    live = timeline.customer_live
    if live is None:
        live = Customer.objects.filter(
            organization=organization, id=customer_id, deleted_at__isnull=True
        ).exists()
    if not live:
        raise NotFound("Customer not found.", field="customer")
    return _upcoming(organization=organization, timeline=timeline, now=now)


def _upcoming(
    *, organization: Organization, timeline: sources.CustomerTimeline, now: datetime
) -> list[Upcoming]:
    out = []
    for cp in timeline.periods:
        build = invoice_upcoming_build(
            organization=organization, customer_id=timeline.customer_id, period=cp, now=now, timeline=timeline
        )
        out.append(Upcoming(cp.currency, cp.period_start, cp.period_end, build.lines, L.totals(build.lines)))
    return out


def invoice_gathering_refresh(
    *, organization: Organization, customer: Customer, now: datetime | None = None
) -> list[Invoice]:
    """The customer's gathering invoice(s) of the current period: the upcoming invoice as of `now`
    (`invoice_upcoming_build`), stored so the portal and the console can show it."""
    now = now or timezone.now()
    out = []
    for cp in sources.current_periods(organization=organization, customer_id=customer.id, at=now):
        with transaction.atomic():
            due = sources.DuePeriod(
                customer_id=customer.id,
                currency=cp.currency,
                period_start=cp.period_start,
                period_end=cp.period_end,
            )
            invoice = invoice_gathering_get(organization=organization, due=due)
            invoice = state.invoice_lock(invoice.id, organization, billing=False)
            if invoice.status == S.GATHERING:
                build = invoice_upcoming_build(
                    organization=organization, customer_id=customer.id, period=cp, now=now
                )
                write_lines(organization=organization, invoice=invoice, build=build)
            out.append(invoice)
    return out


def invoice_draft_for_period(
    *,
    organization: Organization,
    due: sources.DuePeriod,
    now: datetime | None = None,
    actor: Actor = "invoice_run",
) -> Invoice | None:
    """Idempotent: the invoice of this billing moment (`due`, its natural key) as a draft with its final
    lines, or None when nothing is due at that moment (no invoice is created).

    The natural key makes a second run (or a rerun after a crash) find the same row; anything past
    `gathering` is returned unchanged. The whole build is one transaction, so a crash leaves nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        invoice = invoice_gathering_get(organization=organization, due=due)
        invoice = state.invoice_lock(invoice.id, organization)
        if invoice.status != S.GATHERING:
            return invoice
        build = build_one(
            organization=organization, invoice=invoice, moment=invoice_moment(invoice), apply_credits=True
        )
        if build.empty and not invoice.lines.filter(type=LineType.MANUAL).exists():
            invoice.delete()
            return None
        cfg = invoicing_settings_get(organization=organization)
        invoice = invoice_draft_write(
            organization=organization,
            invoice=invoice,
            build=build,
            now=now,
            draft_until=now + timedelta(seconds=cfg.draft_period_seconds),
            actor=actor,
        )
    return invoice


def invoice_draft_write(
    *,
    organization: Organization,
    invoice: Invoice,
    build: Build,
    now: datetime,
    draft_until: datetime,
    actor: Actor,
) -> Invoice:
    """A gathering invoice's built lines written, the invoice a draft until `draft_until`
    (`invoice.created` recorded)."""
    write_lines(organization=organization, invoice=invoice, build=build)
    invoice = state.transition(invoice, S.DRAFT, drafted_at=now, draft_until=draft_until)
    invoice_event_record(organization=organization, invoice=invoice, action="invoice.created", actor=actor)
    return invoice


def invoice_event_record(*, organization: Organization, invoice: Invoice, action: str, actor: Actor) -> None:
    """Audit the invoice as it is now under `action` and send the webhook event of the same name."""
    audit_object(invoice, action, actor, object_type="invoice", after=invoice_payload(invoice))
    webhook_event_emit(organization=organization, type=action, payload=invoice_payload(invoice))


# --- manual lines -----------------------------------------------------------------------------------
def invoice_line_add_manual(
    *,
    organization: Organization,
    invoice: Invoice,
    description: str,
    quantity: Decimal | str,
    unit_price: Decimal | str,
    tax_rate_id: str | None = None,
    actor: Actor = None,
) -> InvoiceLine:
    qty, unit = to_decimal(quantity), to_decimal(unit_price)
    if not description.strip():
        raise ValidationFailed("A description is required.", field="description")
    with transaction.atomic():
        invoice = state.invoice_lock(invoice.id, organization)
        if invoice.status not in (S.DRAFT, S.GATHERING):
            raise InvoiceNotEditable(
                f"Only draft invoices can be edited; this one is {invoice.status}.", field="status"
            )
        if (
            tax_rate_id
            and not TaxRate.objects.filter(
                organization=organization, id=tax_rate_id, archived_at=None
            ).exists()
        ):
            raise ValidationFailed("No such tax rate.", field="taxRateId")
        line = InvoiceLine.objects.create(
            organization=organization,
            invoice=invoice,
            type=LineType.MANUAL,
            position=500 + invoice.lines.count(),
            description=description.strip()[:500],
            quantity=qty,
            unit_price=unit,
            amount=quantize(qty * unit, invoice.currency),
            tax_rate_id=tax_rate_id,
        )
        _retax(organization=organization, invoice=invoice)
        audit_object(
            invoice,
            "invoice.line_added",
            actor,
            after={"lineId": line.id, "amount": str(line.amount)},
        )
    return line


def _retax(*, organization: Organization, invoice: Invoice) -> None:
    """Recompute the tax lines and totals of a draft after a manual edit (credits are kept)."""
    invoice.lines.filter(type=LineType.TAX).delete()
    default_tax, rates = tax_specs(organization)
    current = list(invoice.lines.all())
    drafts = [
        L.LineDraft(x.type, x.description, x.amount, taxable=x.taxable, tax_rate_id=x.tax_rate_id)
        for x in current
    ]
    taxes = L.tax_lines(drafts, currency=invoice.currency, default=default_tax, rates=rates)
    InvoiceLine.objects.bulk_create(
        line_rows(organization=organization, invoice=invoice, drafts=taxes, start=0)
    )
    Invoice.objects.filter(id=invoice.id).update(**L.totals(invoice.lines.all()).fields())
