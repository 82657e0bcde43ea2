"""An invoice after it is built: issue with gapless numbers and snapshots, status changes, on-demand
invoices (built and issued at once), void (with a credit note), payments recorded by hand, invoices
billed elsewhere, and the sweeps that advance them."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import Customer
from core.audit import Actor, audit_object
from core.enqueue import enqueue, enqueue_on_commit
from core.errors import Conflict, NotFound, ValidationFailed
from core.models import Organization
from core.money import quantize, to_decimal
from invoicing import sources
from invoicing.builder import Moment, customers_lock
from invoicing.credit_notes import credit_note_issue
from invoicing.models import (
    Invoice,
    InvoicePayment,
    InvoicingSettings,
    StripeSettings,
    natural_key,
)
from invoicing.numbering import invoice_number_assign
from invoicing.services import state
from invoicing.services.build import (
    build_one,
    invoice_draft_for_period,
    invoice_draft_write,
    invoice_event_record,
    invoice_gathering_get,
    invoice_moment,
    invoice_payload,
    write_lines,
)
from invoicing.services.settings import invoicing_settings_get
from invoicing.services.state import WEBHOOK_ON, S
from invoicing.webhooks import webhook_event_emit


# --- lifecycle --------------------------------------------------------------------------------------
def supplier_snapshot(organization: Organization) -> dict[str, Any]:
    cfg = invoicing_settings_get(organization=organization)
    return {
        "name": cfg.supplier_name or organization.name,
        "address": cfg.supplier_address,
        "taxId": cfg.supplier_tax_id,
        "email": cfg.supplier_email,
        "paymentInstructions": cfg.payment_instructions,
    }


def customer_snapshot(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "key": customer.key,
        "name": customer.name,
        "email": customer.primary_email,
        "billingAddress": customer.billing_address,
        "taxIds": customer.tax_ids,
    }


def invoice_issue(
    *,
    organization: Organization,
    invoice: Invoice,
    actor: Actor = None,
    now: datetime | None = None,
    rebuild: bool = False,
) -> Invoice:
    """draft → issued: (optionally) recompute the lines from raw usage, number it, snapshot the parties,
    then push to Stripe after commit."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = state.invoice_lock(invoice.id, organization)
        if locked.status != S.DRAFT:
            raise Conflict(
                f"Invoice {invoice.id} cannot be issued: it is {locked.status}.",
                field="status",
                extra={"invoiceStatus": locked.status},
            )
        if rebuild and locked.kind in ("period", "start"):
            build = build_one(
                organization=organization, invoice=locked, moment=invoice_moment(locked), apply_credits=True
            )
            write_lines(organization=organization, invoice=locked, build=build)
        cfg = invoicing_settings_get(organization=organization)
        number = invoice_number_assign(
            organization=organization, prefix=cfg.number_prefix or organization.slug.upper(), at=now
        )
        customer = Customer.objects.get(id=locked.customer_id, organization=organization)
        invoice = state.transition(
            locked,
            S.ISSUED,
            number=number,
            issued_at=now,
            due_at=now + timedelta(days=cfg.due_days),
            supplier_snapshot=supplier_snapshot(organization),
            customer_snapshot=customer_snapshot(customer),
        )
        invoice_event_record(organization=organization, invoice=invoice, action="invoice.issued", actor=actor)
        if StripeSettings.objects.filter(organization=organization, enabled=True).exists():
            enqueue_on_commit("invoicing.tasks.invoice_stripe_push", invoice.id)
    return invoice


def invoice_set_status(
    *,
    organization: Organization,
    invoice: Invoice,
    status: str,
    actor: Actor = None,
    now: datetime | None = None,
    reason: str = "",
) -> Invoice:
    """Move an issued invoice to paid / payment_failed / overdue / uncollectible / voided (409 if not allowed).
    Voiding keeps the number and, for a numbered invoice, issues its credit note in the same transaction
    (`invoicing/credit_notes.py`; `reason` goes on it)."""
    if status not in (S.PAID, S.PAYMENT_FAILED, S.OVERDUE, S.UNCOLLECTIBLE, S.VOIDED):
        raise ValidationFailed(f"Cannot set status {status!r}.", field="status")
    now = now or timezone.now()
    extra: dict[str, Any] = {}
    if status == S.PAID:
        extra["paid_at"] = now
    if status == S.VOIDED:
        extra["voided_at"] = now
    with transaction.atomic():
        before = invoice.status
        invoice = state.transition(invoice, status, **extra)
        if status == S.VOIDED and invoice.number:
            credit_note_issue(organization=organization, invoice=invoice, at=now, reason=reason, actor=actor)
        audit_object(invoice, f"invoice.{status}", actor, before={"status": before}, after={"status": status})
        if status in WEBHOOK_ON:
            webhook_event_emit(
                organization=organization,
                type=WEBHOOK_ON[status],  # type: ignore[index]
                payload=invoice_payload(invoice),
            )
    return invoice


def invoice_advance(*, organization: Organization, invoice: Invoice, actor: Actor = None) -> Invoice:
    """The next step of the lifecycle: a gathering invoice is drafted now (bills its period so far... only
    once the period is over), a draft is issued."""
    if invoice.status == S.DRAFT:
        return invoice_issue(organization=organization, invoice=invoice, actor=actor, rebuild=True)
    if invoice.status == S.GATHERING:
        if invoice.period_end > timezone.now():
            raise Conflict(
                "The period is not over yet; use on-demand invoicing to bill it early.", field="status"
            )
        drafted = invoice_draft_for_period(
            organization=organization, due=sources.DuePeriod(**natural_key(invoice)), actor=actor
        )
        if drafted is None:
            raise Conflict("Nothing is due on this invoice; it was removed.", field="status")
        return drafted
    raise Conflict(
        f"Invoice {invoice.id} cannot be advanced: it is {invoice.status}.",
        field="status",
        extra={"invoiceStatus": invoice.status},
    )


def invoice_approve(*, organization: Organization, invoice: Invoice, actor: Actor = None) -> Invoice:
    if invoice.status != S.DRAFT:
        raise Conflict(
            f"Only drafts can be approved; this invoice is {invoice.status}.",
            field="status",
            extra={"invoiceStatus": invoice.status},
        )
    return invoice_issue(organization=organization, invoice=invoice, actor=actor, rebuild=True)


def invoice_void(
    *, organization: Organization, invoice: Invoice, actor: Actor = None, reason: str = ""
) -> Invoice:
    """Void a draft or an unpaid issued invoice; an issued one gets its credit note (`credit_notes`)."""
    invoice = invoice_set_status(
        organization=organization, invoice=invoice, status=S.VOIDED, actor=actor, reason=reason
    )
    if (
        invoice.stripe_invoice_id
        and StripeSettings.objects.filter(organization=organization, enabled=True).exists()
    ):
        enqueue_on_commit("invoicing.tasks.invoice_stripe_void", invoice.id)
    return invoice


def invoice_retry_sync(*, organization: Organization, invoice: Invoice, actor: Actor = None) -> Invoice:
    """Push an issued invoice to Stripe again (idempotent: the keys come from our ids)."""
    if invoice.status in (S.GATHERING, S.DRAFT, S.VOIDED):
        raise Conflict(
            f"Only issued invoices are synced; this one is {invoice.status}.",
            field="status",
            extra={"invoiceStatus": invoice.status},
        )
    if not StripeSettings.objects.filter(organization=organization, enabled=True).exists():
        raise Conflict("Stripe is not configured for this organization.", field="stripe")
    audit_object(
        invoice,
        "invoice.sync_retried",
        actor,
    )
    enqueue("invoicing.tasks.invoice_stripe_push", invoice.id)
    return invoice


def invoices_auto_advance(*, now: datetime | None = None) -> int:
    """Issue drafts whose draft period is over (organizations with auto-advance). Returns how many."""
    now = now or timezone.now()
    count = 0
    auto_orgs = InvoicingSettings.objects.filter(auto_advance=True).values_list("organization_id", flat=True)
    drafts = (
        Invoice.objects.filter(status=S.DRAFT, draft_until__lte=now)
        .filter(
            Q(organization_id__in=auto_orgs)
            | ~Q(organization_id__in=InvoicingSettings.objects.values("organization_id"))
        )
        .select_related("organization")
    )
    for invoice in drafts[:1000]:
        try:
            invoice_issue(
                organization=invoice.organization,
                invoice=invoice,
                now=now,
                rebuild=True,
                actor="auto_advance",
            )
            count += 1
        except Conflict:
            continue
    return count


def invoices_mark_overdue(*, now: datetime | None = None, limit: int = 1000) -> int:
    """issued → overdue for invoices whose due date has passed (beat). Idempotent: a conditional update
    per invoice (`_transition`), so an invoice paid meanwhile, or already overdue, is skipped."""
    now = now or timezone.now()
    due = (
        Invoice.objects.filter(status=S.ISSUED, due_at__lte=now)
        .select_related("organization")
        .order_by("due_at", "id")
    )
    count = 0
    for invoice in due[:limit]:
        try:
            invoice_set_status(
                organization=invoice.organization,
                invoice=invoice,
                status=S.OVERDUE,
                actor="overdue_sweep",
                now=now,
            )
            count += 1
        except Conflict:
            continue
    return count


def invoice_get_for_update(*, organization: Organization, invoice_id: str) -> Invoice:
    invoice = Invoice.objects.filter(organization=organization, id=invoice_id).first()
    if invoice is None:
        raise NotFound(f"No such invoice: {invoice_id!r}.")
    return invoice


# --- on-demand invoices: built and issued at once ---------------------------------------------------
def invoice_on_demand_create(
    *, organization: Organization, customer: Customer, now: datetime | None = None, actor: Actor = None
) -> list[Invoice]:
    """Bill now what is due and not billed yet, with the usage of open periods so far (progressive
    billing: the period-end invoice bills only the remainder). One invoice per currency."""
    now = now or timezone.now()
    starts: dict[str, datetime] = {}  # the current billing period's start per currency, shown on the invoice
    for cp in sources.current_periods(organization=organization, customer_id=customer.id, at=now):
        starts[cp.currency] = min(cp.period_start, starts.get(cp.currency, cp.period_start))
    currencies = sorted(set(starts) | ({customer.currency} if customer.currency else set()))
    out = []
    for currency in currencies:
        with transaction.atomic():
            customers_lock(organization=organization, customer_ids=[customer.id])
            try:
                with transaction.atomic():
                    invoice = Invoice.objects.create(
                        organization=organization,
                        customer=customer,
                        currency=currency,
                        period_start=starts.get(currency, now),
                        period_end=now,
                        kind="on_demand",
                        status=S.GATHERING,
                    )
            except IntegrityError:
                raise Conflict(
                    "An invoice for exactly this span exists already.", field="customerId"
                ) from None
            build = build_one(
                organization=organization, invoice=invoice, moment=invoice_moment(invoice), apply_credits=True
            )
            if build.empty:
                invoice.delete()
                continue
            invoice = invoice_draft_write(
                organization=organization, invoice=invoice, build=build, now=now, draft_until=now, actor=actor
            )
        out.append(invoice_issue(organization=organization, invoice=invoice, actor=actor, now=now))
    if not out:
        raise Conflict("Nothing to invoice yet.", field="customerId")
    return out


# --- payments recorded by hand ------------------------------------------------------------------------
def invoice_mark_paid(
    *,
    organization: Organization,
    invoice: Invoice,
    amount: Decimal,
    paid_at: datetime,
    reference: str = "",
    actor: Actor = None,
) -> Invoice:
    """An issued (or failed, overdue, uncollectible) invoice settled outside Stripe: record the payment
    (amount, date received, reference) and move the invoice to paid at that date, in one transaction.
    The amount must be the invoice total (partial payments are not tracked); the date may not be in the
    future."""
    amount = to_decimal(amount)
    total = quantize(invoice.total, invoice.currency)
    if quantize(amount, invoice.currency) != total:
        raise ValidationFailed(
            f"The payment must settle the invoice total of {total} {invoice.currency}.", field="amount"
        )
    if paid_at > timezone.now():
        raise ValidationFailed("The payment date cannot be in the future.", field="paidAt")
    with transaction.atomic():
        paid = invoice_set_status(
            organization=organization, invoice=invoice, status=S.PAID, actor=actor, now=paid_at
        )
        payment = InvoicePayment.objects.create(
            organization=organization,
            invoice=paid,
            amount=total,
            currency=paid.currency,
            paid_at=paid_at,
            reference=reference.strip(),
        )
        audit_object(
            paid,
            "invoice.payment_recorded",
            actor,
            after={
                "paymentId": payment.id,
                "amount": str(total),
                "currency": paid.currency,
                "paidAt": paid_at.isoformat(),
                "reference": payment.reference,
            },
        )
    return paid


def invoice_record_billed_elsewhere(
    *,
    organization: Organization,
    customer: Customer,
    at: datetime,
    reference: str,
    actor: Actor = None,
) -> list[Invoice]:
    """Record the fees another billing system already invoiced at `at` (a migration: the in-advance fees of
    the current period, billed by the old system at its start) as settled invoices of kind `external`, one
    per currency: no number, never pushed to Stripe nor sent, and the ledger counts their lines as billed,
    so no run bills those fees again. Returns the invoices recorded (none when nothing was due at `at`)."""
    out = []
    currencies = {
        i.currency
        for i in sources.billable_items(
            organization=organization, customer_ids=[customer.id], since=at, until=at
        )[customer.id]
    }
    for currency in sorted(currencies):
        with transaction.atomic():
            customers_lock(organization=organization, customer_ids=[customer.id])
            due = sources.DuePeriod(
                customer_id=customer.id, currency=currency, period_start=at, period_end=at, kind="external"
            )
            invoice = invoice_gathering_get(organization=organization, due=due)
            if invoice.status != S.GATHERING:  # recorded before
                out.append(invoice)
                continue
            moment = Moment(customer.id, currency, at, "start", exclude_invoice_id=invoice.id)
            build = build_one(organization=organization, invoice=invoice, moment=moment, apply_credits=False)
            if build.empty:
                invoice.delete()
                continue
            write_lines(organization=organization, invoice=invoice, build=build)
            Invoice.objects.filter(id=invoice.id).update(
                status=S.PAID,
                paid_at=timezone.now(),
                customer_snapshot={**customer_snapshot(customer), "billedBy": reference[:200]},
            )
            invoice.refresh_from_db()
            audit_object(
                invoice,
                "invoice.recorded_external",
                actor,
                after={**invoice_payload(invoice), "billedBy": reference[:200]},
            )
            out.append(invoice)
    return out
