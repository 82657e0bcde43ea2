"""Stripe webhooks in: verified (by `stripe_gateway.webhook_verify`), stored once, processed once.

`stripe_event_receive` stores the event (unique per organization + Stripe event id) and queues its
processing after commit; a duplicate delivery finds the row and does nothing. `stripe_event_process`
marks the row processed with a conditional update, so two workers never apply it twice, and moves our
invoice with the ordinary state machine (an out-of-order event that is no longer allowed is recorded
as ignored, never an error Stripe would retry forever).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core import jobs, limits
from core.enqueue import enqueue, enqueue_on_commit
from core.errors import Conflict, NotFound, ValidationFailed
from core.models import Organization
from invoicing import stripe_gateway
from invoicing.models import Invoice, InvoiceStatus, StripeEvent, StripeSettings
from invoicing.services.lifecycle import invoice_set_status

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


PROCESS_TASK = "invoicing.tasks.stripe_event_process"  # queued through core.enqueue: tasks import this module
MAX_EVENT_ID = 255
MAX_EVENT_TYPE = 100


def _signature_time_check(signature: str, *, now: float) -> None:
    """Refuse a `Stripe-Signature` whose timestamp lies beyond the tolerance in the future (Stripe's own
    check only bounds the past), so a signed request cannot be stored up for later replay."""
    stamps = [part[2:] for part in signature.split(",") if part.strip().startswith("t=")]
    for stamp in stamps:
        try:
            at = int(stamp.strip())
        except ValueError:
            raise ValidationFailed(
                "The signature timestamp is not a number.", field="Stripe-Signature"
            ) from None
        if at > now + stripe_gateway.WEBHOOK_TOLERANCE_SECONDS:
            raise ValidationFailed(
                "The signature timestamp is in the future (beyond the "
                f"{stripe_gateway.WEBHOOK_TOLERANCE_SECONDS} s tolerance).",
                field="Stripe-Signature",
            )


def _payload_check(payload: bytes) -> None:
    """A Stripe event is a JSON object with a string `id` (at most 255 characters) and `type`; anything
    else is refused with 400 before the Stripe library or the database sees it (core.limits)."""
    if b"\x00" in payload or b"\\u0000" in payload:
        raise ValidationFailed("The payload contains a NUL character.", field="body")
    if limits.json_depth_exceeds(payload):
        raise ValidationFailed(f"The payload nests more than {limits.MAX_JSON_DEPTH} levels.", field="body")
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):
        raise ValidationFailed("The payload is not JSON.", field="body") from None
    if not isinstance(event, dict):
        raise ValidationFailed("A Stripe event must be a JSON object.", field="body")
    event_id = event.get("id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_ID:
        raise ValidationFailed(f"id must be a string of 1 to {MAX_EVENT_ID} characters.", field="id")
    event_type = event.get("type", "")
    if not isinstance(event_type, str) or len(event_type) > MAX_EVENT_TYPE:
        raise ValidationFailed(f"type must be a string of at most {MAX_EVENT_TYPE} characters.", field="type")
    data = event.get("data")
    if data is not None and (not isinstance(data, dict) or not isinstance(data.get("object", {}), dict)):
        raise ValidationFailed("data.object must be a JSON object.", field="data.object")


def stripe_event_receive(
    *, organization: Organization, payload: bytes, signature: str, now: float | None = None
) -> tuple[StripeEvent, bool]:
    """Verify and store the event. Returns (row, created). Raises ValidationFailed (400) when forged, stale,
    signed for the future, or not a Stripe event object."""
    config = StripeSettings.objects.filter(organization=organization).first()
    if config is None or not config.webhook_secret:
        raise ValidationFailed(
            "Stripe webhooks are not configured for this organization.", field="Stripe-Signature"
        )
    _signature_time_check(signature, now=time.time() if now is None else now)
    _payload_check(payload)
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
            enqueue_on_commit(PROCESS_TASK, row.id)
            return row, True
    except IntegrityError:
        return StripeEvent.objects.get(organization=organization, stripe_event_id=event["id"]), False


def _find_invoice(organization_id: str, obj: dict[str, Any]) -> Invoice | None:
    metadata = obj.get("metadata")
    ours = metadata.get("meterline_invoice_id") if isinstance(metadata, dict) else None
    qs = Invoice.objects.filter(organization_id=organization_id)
    if isinstance(ours, str) and 0 < len(ours) <= 64:
        found = qs.filter(id=ours).first()
        if found is not None:
            return found
    stripe_id = obj.get("id")
    if isinstance(stripe_id, str) and 0 < len(stripe_id) <= 255:
        return qs.filter(stripe_invoice_id=stripe_id).first()
    return None


def _event_object(payload: Any) -> dict[str, Any]:
    """`data.object` of a stored event, or {} when the payload has no such object."""
    data = payload.get("data") if isinstance(payload, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    return obj if isinstance(obj, dict) else {}


PROCESS_JOB = "stripe_event_process"
logger = logging.getLogger(__name__)


def stripe_event_process(*, event_row_id: str) -> str:
    """Apply one stored event exactly once. Returns what happened (also stored on the row). Never raises:
    a failure is recorded (core.jobs, shown on /healthz and the console) and the row stays unprocessed,
    so it is applied when retried after the cause is fixed."""
    try:
        return _process(event_row_id)
    except Exception as exc:
        logger.exception("Stripe event %s could not be processed; recorded", event_row_id)
        row = StripeEvent.objects.filter(id=event_row_id).only("organization_id").first()
        jobs.job_failure_record(
            job=PROCESS_JOB,
            organization_id=row.organization_id if row else None,
            object_type="stripe_event",
            object_id=event_row_id,
            error=f"{type(exc).__name__}: {exc}",
        )
        return f"failed: {type(exc).__name__}"


def stripe_events_requeue(event_row_ids: list[str]) -> None:
    """Queue the processing of stored events again (the retry hook of PROCESS_JOB, core.jobs)."""
    for row_id in event_row_ids:
        enqueue(PROCESS_TASK, row_id)


def _process(event_row_id: str) -> str:
    now = timezone.now()
    with transaction.atomic():
        claimed = StripeEvent.objects.filter(id=event_row_id, processed_at__isnull=True).update(
            processed_at=now
        )
        if not claimed:
            return "already processed"
        row = StripeEvent.objects.select_related("organization").get(id=event_row_id)
        obj = _event_object(row.payload)
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
