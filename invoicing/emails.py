"""Issued invoices and credit notes e-mailed to the customer with the PDF attached.

Django's e-mail backend sends (SMTP when `EMAIL_HOST` is set, the console backend otherwise: the demo
prints the message in the worker's log). A beat task (`invoicing.tasks.invoice_emails_sweep`, every
minute) finds invoices issued in the last day that have no `InvoiceEmail` row yet and queues one task per
invoice (`invoice_email_send_task`), which calls `invoice_email_send`:

- the row is created once per invoice (unique), then **claimed** by a conditional update
  (`pending|failed → sending`), so two workers never send the same invoice twice;
- no billing e-mail on the customer → `skipped` (nothing to retry);
- a failure to send → `failed` with the reason and the attempt count, and the task retries with backoff
  (at most `MAX_ATTEMPTS`); a worker that died while sending leaves `sending`, which the sweep hands back
  after `STALE_SENDING`;
- every outcome is logged (`invoicing.emails`).

Only invoices issued within `SWEEP_WINDOW` are considered, so switching the feature on does not mail old
invoices. Credit notes (`invoicing/credit_notes.py`) go the same way, one `CreditNoteEmail` row each
(`credit_note_emails_due`, `credit_note_email_send`), queued by the same sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone

from invoicing.models import CreditNote, CreditNoteEmail, Invoice, InvoiceEmail
from invoicing.pdf import credit_note_pdf, invoice_pdf

logger = logging.getLogger(__name__)

SENT_STATUSES = ("issued", "paid", "payment_failed", "overdue", "uncollectible")
SWEEP_WINDOW = timedelta(days=1)
STALE_SENDING = timedelta(minutes=10)
MAX_ATTEMPTS = 5


class EmailNotSent(Exception):
    """Sending failed in a way worth retrying (the reason is stored on the row)."""


def _due(
    documents: QuerySet[Any], emails: QuerySet[Any], document_id: str, *, now: datetime, limit: int
) -> list[str]:
    """Ids of `documents` issued within SWEEP_WINDOW without an e-mail row, plus those whose row in `emails`
    failed or was left `sending` by a dead worker more than STALE_SENDING ago (attempts left). Two
    queries."""
    fresh = list(
        documents.filter(issued_at__gte=now - SWEEP_WINDOW, email__isnull=True)
        .order_by("issued_at")
        .values_list("id", flat=True)[:limit]
    )
    again = list(
        emails.filter(attempts__lt=MAX_ATTEMPTS, updated_at__lt=now - STALE_SENDING)
        .filter(status__in=("failed", "sending"))
        .values_list(document_id, flat=True)[:limit]
    )
    return [*fresh, *again]


def invoice_emails_due(*, now: datetime | None = None, limit: int = 500) -> list[str]:
    """Ids of invoices to e-mail: issued within SWEEP_WINDOW without an e-mail row, plus rows that failed
    or were left `sending` by a dead worker more than STALE_SENDING ago (attempts left; a failed send is
    first retried by its own task). Two queries."""
    invoices = Invoice.objects.filter(status__in=SENT_STATUSES)
    return _due(invoices, InvoiceEmail.objects.all(), "invoice_id", now=now or timezone.now(), limit=limit)


def credit_note_emails_due(*, now: datetime | None = None, limit: int = 500) -> list[str]:
    """Ids of credit notes to e-mail, as `invoice_emails_due` (two queries)."""
    notes, emails = CreditNote.objects.all(), CreditNoteEmail.objects.all()
    return _due(notes, emails, "credit_note_id", now=now or timezone.now(), limit=limit)


def invoice_email_send(*, invoice_id: str, now: datetime | None = None) -> str:
    """Send the invoice's e-mail once; returns the row's status. Raises EmailNotSent to be retried."""
    invoice = (
        Invoice.objects.select_related("customer", "organization")
        .filter(id=invoice_id, status__in=SENT_STATUSES)
        .first()
    )
    if invoice is None:
        return "missing"
    return _send_once(
        InvoiceEmail,
        owner={"invoice": invoice},
        to=_recipient(invoice),
        message=lambda to: _message(invoice, to),
        label=f"invoice {invoice.number}",
        now=now or timezone.now(),
    )


def credit_note_email_send(*, credit_note_id: str, now: datetime | None = None) -> str:
    """Send the credit note's e-mail once; returns the row's status. Raises EmailNotSent to be retried."""
    note = (
        CreditNote.objects.select_related("invoice__customer", "invoice__organization")
        .filter(id=credit_note_id)
        .first()
    )
    if note is None:
        return "missing"
    return _send_once(
        CreditNoteEmail,
        owner={"credit_note": note},
        to=_recipient(note.invoice),
        message=lambda to: _credit_note_message(note, to),
        label=f"credit note {note.number}",
        now=now or timezone.now(),
    )


def _recipient(invoice: Invoice) -> str:
    return (invoice.customer_snapshot or {}).get("email") or invoice.customer.primary_email or ""


def _send_once(
    row_model: type[InvoiceEmail] | type[CreditNoteEmail],
    *,
    owner: dict[str, Invoice | CreditNote],
    to: str,
    message: Callable[[str], EmailMessage],
    label: str,
    now: datetime,
) -> str:
    """The claim-and-send of one document's e-mail row (see the module docstring)."""
    (document,) = owner.values()
    try:
        with transaction.atomic():
            row, _ = row_model.objects.get_or_create(
                **owner, defaults={"organization_id": document.organization_id, "to": to}
            )
    except IntegrityError:  # created by a concurrent task
        row = row_model.objects.get(**owner)
    if not to:
        row_model.objects.filter(id=row.id, status="pending").update(
            status="skipped", error="no billing e-mail"
        )
        logger.info("%s not e-mailed: the customer has no billing e-mail", label)
        return "skipped"
    stale = now - STALE_SENDING
    claimed = (
        row_model.objects.filter(id=row.id, attempts__lt=MAX_ATTEMPTS)
        .filter(Q(status__in=("pending", "failed")) | Q(status="sending", updated_at__lt=stale))
        .update(status="sending", attempts=F("attempts") + 1, to=to, updated_at=now)
    )
    if not claimed:
        return row_model.objects.get(id=row.id).status
    try:
        message(to).send(fail_silently=False)
    except Exception as exc:  # SMTP and network errors: recorded, then retried by the task
        reason = f"{type(exc).__name__}: {exc}"[:500]
        row_model.objects.filter(id=row.id).update(status="failed", error=reason)
        logger.warning("%s e-mail to %s failed: %s", label, to, reason)
        raise EmailNotSent(reason) from exc
    row_model.objects.filter(id=row.id).update(status="sent", sent_at=timezone.now(), error="")
    logger.info("%s e-mailed to %s", label, to)
    return "sent"


def _supplier(invoice: Invoice) -> tuple[dict[str, Any], str]:
    supplier = invoice.supplier_snapshot or {}
    return supplier, supplier.get("name") or invoice.organization.name


def _email(subject: str, body: str, to: str, supplier: dict[str, Any]) -> EmailMessage:
    return EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        reply_to=[supplier["email"]] if supplier.get("email") else None,
    )


def _document_message(
    invoice: Invoice,
    to: str,
    *,
    subject: Callable[[str], str],
    template: str,
    context: dict[str, Any],
    attachment: tuple[str, bytes],
) -> EmailMessage:
    """The e-mail of a document of `invoice` (itself or its credit note) with its PDF attached; `subject`
    is given the supplier's name."""
    supplier, name = _supplier(invoice)
    context = {**context, "invoice": invoice, "supplier_name": name}
    message = _email(subject(name), render_to_string(template, context), to, supplier)
    message.attach(*attachment, "application/pdf")
    return message


def _message(invoice: Invoice, to: str) -> EmailMessage:
    return _document_message(
        invoice,
        to,
        subject=lambda name: f"Invoice {invoice.number} from {name}",
        template="emails/invoice_issued.txt",
        context={},
        attachment=(f"{invoice.number or invoice.id}.pdf", invoice_pdf(invoice)),
    )


def _credit_note_message(note: CreditNote, to: str) -> EmailMessage:
    return _document_message(
        note.invoice,
        to,
        subject=lambda name: f"Credit note {note.number} for invoice {note.invoice.number} from {name}",
        template="emails/credit_note_issued.txt",
        context={"note": note},
        attachment=(f"{note.number}.pdf", credit_note_pdf(note)),
    )
