"""Stripe webhooks in: verified (by `stripe_gateway.webhook_verify`), stored once, processed once.

`stripe_event_receive` stores the event (unique per organization + Stripe event id) and queues its
processing after commit; a duplicate delivery finds the row and does nothing. `stripe_event_process`
marks the row processed with a conditional update, so two workers never apply it twice, and moves our
invoice with the ordinary state machine (an out-of-order event that is no longer allowed is recorded
as ignored, never an error Stripe would retry forever).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import Conflict, NotFound, ValidationFailed
from core.models import Organization
from invoicing import stripe_gateway
from invoicing.models import Invoice, InvoiceStatus, StripeEvent, StripeSettings

EVENT_STATUS = {
    "invoice.paid": InvoiceStatus.PAID,
    "invoice.payment_succeeded": InvoiceStatus.PAID,
    "invoice.payment_failed": InvoiceStatus.PAYMENT_FAILED,
    "invoice.voided": InvoiceStatus.VOIDED,
    "invoice.marked_uncollectible": InvoiceStatus.UNCOLLECTIBLE,
}


def organization_for_webhook(*, org: str) -> Organization:
    found = Organization.objects.filter(Q(id=org) | Q(slug=org)).first()
    if found is None:
        raise NotFound("No such organization.")
    return found


def stripe_event_receive(
    *, organization: Organization, payload: bytes, signature: str
) -> tuple[StripeEvent, bool]:
    """Verify and store the event. Returns (row, created). Raises ValidationFailed (400) when forged/stale."""
    config = StripeSettings.objects.filter(organization=organization).first()
    if config is None or not config.webhook_secret:
        raise ValidationFailed(
            "Stripe webhooks are not configured for this organization.", field="Stripe-Signature"
        )
    try:
        event = stripe_gateway.webhook_verify(
            payload=payload, signature=signature, secret=config.webhook_secret
        )
    except stripe_gateway.WebhookInvalid as exc:
        raise ValidationFailed(f"Invalid Stripe signature: {exc}", field="Stripe-Signature") from None
    try:
        with transaction.atomic():
            row = StripeEvent.objects.create(
                organization=organization,
                stripe_event_id=event["id"],
                type=event.get("type", ""),
                payload=event,
            )
            from invoicing.tasks import stripe_event_process_task

            row_id = row.id
            transaction.on_commit(lambda: stripe_event_process_task.delay(row_id))
            return row, True
    except IntegrityError:
        return StripeEvent.objects.get(organization=organization, stripe_event_id=event["id"]), False


def _find_invoice(organization_id: str, obj: dict[str, Any]) -> Invoice | None:
    ours = (obj.get("metadata") or {}).get("meterline_invoice_id")
    qs = Invoice.objects.filter(organization_id=organization_id)
    if ours:
        found = qs.filter(id=ours).first()
        if found is not None:
            return found
    return qs.filter(stripe_invoice_id=obj.get("id") or "-").first() if obj.get("id") else None


def stripe_event_process(*, event_row_id: str) -> str:
    """Apply one stored event exactly once. Returns what happened (also stored on the row)."""
    from invoicing.services import invoice_set_status

    now = timezone.now()
    with transaction.atomic():
        claimed = StripeEvent.objects.filter(id=event_row_id, processed_at__isnull=True).update(
            processed_at=now
        )
        if not claimed:
            return "already processed"
        row = StripeEvent.objects.select_related("organization").get(id=event_row_id)
        obj = (row.payload.get("data") or {}).get("object") or {}
        target = EVENT_STATUS.get(row.type)
        if target is None:
            result = "ignored: unhandled type"
        else:
            invoice = _find_invoice(row.organization_id, obj)
            if invoice is None:
                result = "ignored: unknown invoice"
            elif invoice.status == target:
                result = f"no change: already {target}"
            else:
                try:
                    with transaction.atomic():
                        invoice_set_status(
                            organization=row.organization,
                            invoice=invoice,
                            status=target,
                            actor="stripe",
                            now=now,
                        )
                    Invoice.objects.filter(id=invoice.id).update(stripe_status=obj.get("status") or "")
                    result = f"{invoice.id} → {target}"
                except Conflict as exc:
                    result = f"ignored: {exc.detail}"
        StripeEvent.objects.filter(id=row.id).update(result=result[:200])
    return result
