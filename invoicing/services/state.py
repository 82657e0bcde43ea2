"""The invoice state machine: allowed transitions as conditional updates, the one place row locks on
invoices are taken (`invoice_lock`), and the webhooks each status emits."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from core.errors import Conflict
from core.models import Organization
from invoicing.builder import customers_lock
from invoicing.models import (
    Invoice,
    InvoiceStatus,
)

S = InvoiceStatus
TRANSITIONS: dict[str, tuple[str, ...]] = {
    S.DRAFT: (S.GATHERING,),
    S.ISSUED: (S.DRAFT,),
    S.PAID: (S.ISSUED, S.PAYMENT_FAILED, S.OVERDUE, S.UNCOLLECTIBLE),
    S.PAYMENT_FAILED: (S.ISSUED, S.OVERDUE, S.PAYMENT_FAILED),
    S.OVERDUE: (S.ISSUED, S.PAYMENT_FAILED),
    S.UNCOLLECTIBLE: (S.ISSUED, S.PAYMENT_FAILED, S.OVERDUE),
    S.VOIDED: (S.DRAFT, S.ISSUED, S.PAYMENT_FAILED, S.OVERDUE, S.UNCOLLECTIBLE),
}
WEBHOOK_ON = {
    S.ISSUED: "invoice.issued",
    S.PAID: "invoice.paid",
    S.PAYMENT_FAILED: "invoice.payment_failed",
    S.VOIDED: "invoice.voided",
}


class InvoiceNotEditable(Conflict):
    code = "invoice-not-editable"
    title = "Invoice not editable"


# --- state machine ------------------------------------------------------------------------------------
def transition(invoice: Invoice, to: str, **fields: Any) -> Invoice:
    allowed = TRANSITIONS[to]
    updated = Invoice.objects.filter(
        id=invoice.id, organization_id=invoice.organization_id, status__in=allowed
    ).update(status=to, updated_at=timezone.now(), **fields)
    if updated == 0:
        current = Invoice.objects.filter(id=invoice.id).values_list("status", flat=True).first()
        raise Conflict(
            f"Invoice {invoice.id} cannot move from {current} to {to}.",
            field="status",
            extra={"invoiceStatus": current, "allowedFrom": list(allowed)},
        )
    invoice.refresh_from_db()
    return invoice


def invoice_lock(invoice_id: str, organization: Organization, *, billing: bool = True) -> Invoice:
    """The one place an invoice row is locked (building and issuing are serialized per invoice, and
    billing per customer: the customer's row is locked first, see `builder.customers_lock`; a preview
    that bills nothing, `billing=False`, locks the invoice row only and never waits for a run)."""
    customer_id = Invoice.objects.filter(id=invoice_id).values_list("customer_id", flat=True).first()
    if billing and customer_id is not None:
        customers_lock(organization=organization, customer_ids=[customer_id])
    return Invoice.objects.select_for_update().get(id=invoice_id, organization=organization)
