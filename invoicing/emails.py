"""Issued invoices e-mailed to the customer with the PDF attached.

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
invoices.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from invoicing.models import Invoice, InvoiceEmail

logger = logging.getLogger(__name__)

SENT_STATUSES = ("issued", "paid", "payment_failed", "overdue", "uncollectible")
SWEEP_WINDOW = timedelta(days=1)
STALE_SENDING = timedelta(minutes=10)
MAX_ATTEMPTS = 5


class EmailNotSent(Exception):
    """Sending failed in a way worth retrying (the reason is stored on the row)."""


def invoice_emails_due(*, now: datetime | None = None, limit: int = 500) -> list[str]:
    """Ids of invoices to e-mail: issued within SWEEP_WINDOW without an e-mail row, plus rows that failed
    or were left `sending` by a dead worker more than STALE_SENDING ago (attempts left; a failed send is
    first retried by its own task). Two queries."""
    now = now or timezone.now()
    fresh = list(
        Invoice.objects.filter(
            status__in=SENT_STATUSES, issued_at__gte=now - SWEEP_WINDOW, email__isnull=True
        )
        .order_by("issued_at")
        .values_list("id", flat=True)[:limit]
    )
    again = list(
        InvoiceEmail.objects.filter(attempts__lt=MAX_ATTEMPTS, updated_at__lt=now - STALE_SENDING)
        .filter(status__in=("failed", "sending"))
        .values_list("invoice_id", flat=True)[:limit]
    )
    return [*fresh, *again]


def invoice_email_send(*, invoice_id: str, now: datetime | None = None) -> str:
    """Send the invoice's e-mail once; returns the row's status. Raises EmailNotSent to be retried."""
    now = now or timezone.now()
    invoice = (
        Invoice.objects.select_related("customer", "organization")
        .filter(id=invoice_id, status__in=SENT_STATUSES)
        .first()
    )
    if invoice is None:
        return "missing"
    to = (invoice.customer_snapshot or {}).get("email") or invoice.customer.primary_email
    try:
        with transaction.atomic():
            row, _ = InvoiceEmail.objects.get_or_create(
                invoice=invoice, defaults={"organization_id": invoice.organization_id, "to": to or ""}
            )
    except IntegrityError:  # created by a concurrent task
        row = InvoiceEmail.objects.get(invoice=invoice)
    if not to:
        InvoiceEmail.objects.filter(id=row.id, status="pending").update(
            status="skipped", error="no billing e-mail"
        )
        logger.info("invoice %s not e-mailed: the customer has no billing e-mail", invoice.id)
        return "skipped"
    stale = now - STALE_SENDING
    claimed = (
        InvoiceEmail.objects.filter(id=row.id, attempts__lt=MAX_ATTEMPTS)
        .filter(Q(status__in=("pending", "failed")) | Q(status="sending", updated_at__lt=stale))
        .update(status="sending", attempts=F("attempts") + 1, to=to, updated_at=now)
    )
    if not claimed:
        return InvoiceEmail.objects.get(id=row.id).status
    try:
        _message(invoice, to).send(fail_silently=False)
    except Exception as exc:  # SMTP and network errors: recorded, then retried by the task
        reason = f"{type(exc).__name__}: {exc}"[:500]
        InvoiceEmail.objects.filter(id=row.id).update(status="failed", error=reason)
        logger.warning("invoice %s e-mail to %s failed: %s", invoice.id, to, reason)
        raise EmailNotSent(reason) from exc
    InvoiceEmail.objects.filter(id=row.id).update(status="sent", sent_at=timezone.now(), error="")
    logger.info("invoice %s e-mailed to %s", invoice.number, to)
    return "sent"


def _message(invoice: Invoice, to: str) -> EmailMessage:
    from invoicing.pdf import invoice_pdf

    supplier = invoice.supplier_snapshot or {}
    context = {"invoice": invoice, "supplier_name": supplier.get("name") or invoice.organization.name}
    message = EmailMessage(
        subject=f"Invoice {invoice.number} from {context['supplier_name']}",
        body=render_to_string("emails/invoice_issued.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        reply_to=[supplier["email"]] if supplier.get("email") else None,
    )
    message.attach(f"{invoice.number or invoice.id}.pdf", invoice_pdf(invoice), "application/pdf")
    return message
