"""Celery tasks: take ids, call one service, safe to run twice. Beat entries live in config/schedule.py."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.utils import timezone

from core import rls
from invoicing import runs, services, stripe_events, stripe_gateway, webhooks
from invoicing.emails import (
    EmailNotSent,
    credit_note_email_send,
    credit_note_emails_due,
    invoice_email_send,
    invoice_emails_due,
)
from invoicing.models import CreditNote, Invoice, WebhookDelivery

logger = logging.getLogger(__name__)
QUEUE = "billing"


# Tasks on one invoice or delivery run in its organization's tenant scope (core/rls.py `scoped_task`).
def _invoice_organization(invoice_id: str) -> str | None:
    return Invoice.objects.filter(pk=invoice_id).values_list("organization_id", flat=True).first()


def _delivery_organization(delivery_id: str) -> str | None:
    return WebhookDelivery.objects.filter(pk=delivery_id).values_list("organization_id", flat=True).first()


@shared_task(name="invoicing.tasks.invoice_clock", acks_late=True, queue=QUEUE)
def invoice_clock() -> int:
    """Find due customer periods and fan out one task per batch of customers (runs.BATCH_SIZE)."""
    batches = runs.invoice_runs_schedule_batches()
    for batch in batches:
        invoice_run_batch.delay(batch)
    return sum(len(b) for b in batches)


@shared_task(
    name="invoicing.tasks.invoice_run_batch", acks_late=True, reject_on_worker_lost=True, queue=QUEUE
)
def invoice_run_batch(item_ids: list[str]) -> int:
    return runs.invoice_run_batch_process(item_ids=item_ids)


@shared_task(name="invoicing.tasks.invoice_run_item", acks_late=True, reject_on_worker_lost=True, queue=QUEUE)
def invoice_run_item(item_id: str) -> str | None:
    try:
        invoice = runs.invoice_run_item_process(item_id=item_id)
    except Exception:
        logger.exception("invoice run item %s failed (recorded on the Invoice runs page)", item_id)
        return None
    return invoice.id if invoice else None


@shared_task(name="invoicing.tasks.invoices_auto_advance", acks_late=True, queue=QUEUE)
def invoices_auto_advance() -> int:
    return services.invoices_auto_advance()


@shared_task(name="invoicing.tasks.invoices_mark_overdue", acks_late=True, queue=QUEUE)
def invoices_mark_overdue() -> int:
    """issued → overdue once the due date has passed (idempotent)."""
    return services.invoices_mark_overdue()


@shared_task(
    name="invoicing.tasks.invoice_stripe_push",
    bind=True,
    acks_late=True,
    queue=QUEUE,
    max_retries=8,
    rate_limit="20/s",
)
@rls.scoped_task(_invoice_organization)
def invoice_stripe_push(self, invoice_id: str) -> None:  # type: ignore[no-untyped-def]
    try:
        stripe_gateway.invoice_push(invoice_id=invoice_id)
    except Exception as exc:
        stripe_gateway.record_sync_error(invoice_id=invoice_id, error=exc)
        if stripe_gateway.is_transient(exc):
            countdown = min(30 * 2**self.request.retries, 3600) + random.randint(0, 10)
            raise self.retry(exc=exc, countdown=countdown) from exc
        logger.warning("Stripe push of %s failed: %s", invoice_id, exc)


@shared_task(name="invoicing.tasks.invoice_stripe_void", acks_late=True, queue=QUEUE)
@rls.scoped_task(_invoice_organization)
def invoice_stripe_void(invoice_id: str) -> None:
    try:
        stripe_gateway.invoice_void_remote(invoice_id=invoice_id)
    except Exception as exc:
        stripe_gateway.record_sync_error(invoice_id=invoice_id, error=exc)


@shared_task(name="invoicing.tasks.stripe_event_process", acks_late=True, queue=QUEUE)
def stripe_event_process_task(event_row_id: str) -> str:
    return stripe_events.stripe_event_process(event_row_id=event_row_id)


@shared_task(
    name="invoicing.tasks.webhook_deliver", bind=True, acks_late=True, queue="default", max_retries=8
)
@rls.scoped_task(_delivery_organization)
def webhook_deliver(self, delivery_id: str) -> bool:  # type: ignore[no-untyped-def]
    done = webhooks.webhook_delivery_attempt(delivery_id=delivery_id)
    if not done:
        raise self.retry(countdown=webhooks.backoff_seconds(self.request.retries + 1))
    return True


@shared_task(name="invoicing.tasks.webhook_deliveries_sweep", acks_late=True, queue="default")
def webhook_deliveries_sweep() -> int:
    """Requeue pending deliveries whose next attempt is due (retries lost with a broker restart)."""
    ids = list(
        WebhookDelivery.objects.filter(
            status="pending", next_attempt_at__lte=timezone.now() - timedelta(minutes=10)
        ).values_list("id", flat=True)[:500]
    )
    for delivery_id in ids:
        webhook_deliver.delay(delivery_id)
    return len(ids)


@shared_task(name="invoicing.tasks.billing_notifications_forward", acks_late=True, queue="default")
def billing_notifications_forward() -> int:
    return webhooks.billing_notifications_forward()


@shared_task(name="invoicing.tasks.invoice_emails_sweep", acks_late=True, queue="default")
def invoice_emails_sweep() -> int:
    """Queue the e-mail of every invoice and credit note issued lately and not mailed yet
    (invoicing/emails.py)."""
    ids = invoice_emails_due()
    for invoice_id in ids:
        invoice_email_send_task.delay(invoice_id)
    notes = credit_note_emails_due()
    for credit_note_id in notes:
        credit_note_email_send_task.delay(credit_note_id)
    return len(ids) + len(notes)


def _send_or_retry(task: Any, send: Callable[[], str]) -> str:
    """Run an e-mail send; when it fails, retry the task with backoff (1, 2, 4... minutes, at most an hour)."""
    try:
        return send()
    except EmailNotSent as exc:
        raise task.retry(exc=exc, countdown=min(60 * 2**task.request.retries, 3600)) from exc


@shared_task(
    name="invoicing.tasks.invoice_email_send", bind=True, acks_late=True, queue="default", max_retries=4
)
@rls.scoped_task(_invoice_organization)
def invoice_email_send_task(self, invoice_id: str) -> str:  # type: ignore[no-untyped-def]
    """E-mail one issued invoice with its PDF; retried with backoff when sending fails."""
    return _send_or_retry(self, lambda: invoice_email_send(invoice_id=invoice_id))


def _credit_note_organization(credit_note_id: str) -> str | None:
    return CreditNote.objects.filter(pk=credit_note_id).values_list("organization_id", flat=True).first()


@shared_task(
    name="invoicing.tasks.credit_note_email_send", bind=True, acks_late=True, queue="default", max_retries=4
)
@rls.scoped_task(_credit_note_organization)
def credit_note_email_send_task(self, credit_note_id: str) -> str:  # type: ignore[no-untyped-def]
    """E-mail one credit note with its PDF; retried with backoff when sending fails."""
    return _send_or_retry(self, lambda: credit_note_email_send(credit_note_id=credit_note_id))
