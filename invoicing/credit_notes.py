"""Credit notes: voiding an issued invoice issues a credit note that cancels it.

The rule (as Stripe and Lago behave): an invoice that was issued (it has a number, was sent and may be in
the customer's books) is never deleted or renumbered. Voiding it keeps its number and issues a credit note
in the same transaction: a document of its own with a gapless number from the organization's credit-note
series (`<PREFIX>-CN-<YYYY>-NNNNNN`), the invoice's total credited in full, the reason given, a link to the
invoice, a PDF (`invoicing.pdf.credit_note_pdf`) and an e-mail to the customer like invoices
(`invoicing/emails.py`). A draft has no number and was never sent: voiding it issues no credit note. A paid
invoice cannot be voided (refunds are Stripe's). Credits applied to the voided invoice become available
again (applications on voided invoices do not count, `invoicing.credits`). One credit note per invoice;
the void, the credit note and their audit rows commit together or not at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.audit import Actor, audit_object
from core.models import Organization
from invoicing.models import CreditNote, Invoice, InvoicingSettings
from invoicing.numbering import CREDIT_NOTE_SERIES, invoice_number_assign, number_prefix


def credit_note_issue(
    *, organization: Organization, invoice: Invoice, at: datetime, reason: str = "", actor: Actor = None
) -> CreditNote:
    """The credit note of a voided, numbered invoice. Call inside the transaction that voids it (the
    number sequence stays locked until it commits)."""
    settings = InvoicingSettings.objects.filter(organization=organization).first()
    prefix = f"{number_prefix(organization, settings)}-{CREDIT_NOTE_SERIES}"
    note = CreditNote.objects.create(
        organization=organization,
        invoice=invoice,
        number=invoice_number_assign(organization=organization, prefix=prefix, at=at),
        currency=invoice.currency,
        total=invoice.total,
        reason=reason[:500],
        issued_at=at,
    )
    audit_object(
        note,
        "credit_note.issued",
        actor,
        after=credit_note_payload(note),
    )
    return note


def credit_note_of(invoice: Invoice) -> CreditNote | None:
    """The invoice's credit note, or None (read with `select_related("credit_note")`: no query)."""
    try:
        return invoice.credit_note
    except CreditNote.DoesNotExist:
        return None


def credit_note_payload(note: CreditNote) -> dict[str, Any]:
    """The credit note as JSON-safe data (audit rows, the API)."""
    return {
        "id": note.id,
        "number": note.number,
        "invoiceId": note.invoice_id,
        "invoiceNumber": note.invoice.number,
        "currency": note.currency,
        "total": str(note.total),
        "reason": note.reason,
        "issuedAt": note.issued_at.isoformat(),
    }
