"""Webhooks in Lago's envelope for endpoints with `format="lago"` (registered in `LagoConfig.ready()`).

The body is Lago's: `{"webhook_type": "invoice.created", "object_type": "invoice", "invoice": {...}}`, the
object in the shape our Lago API answers it (`lago.selectors`), rendered when the delivery is sent, with the
status the object had when the event happened. It is signed as Lago signs (`lago.signing`): with
`signature_algo: hmac` (format `lago`, the default) or `jwt` (format `lago_jwt`), named in
`X-Lago-Signature-Algorithm`; `X-Lago-Unique-Key` is the event's id (the same on every retry). Delivery,
retries, address checks and the delivery log are `invoicing.webhooks`'.

Our events → Lago's webhook types (events without a counterpart are not sent to a Lago endpoint):

| ours                                        | Lago                              |
|---------------------------------------------|-----------------------------------|
| invoice.created (a draft)                   | invoice.drafted                   |
| invoice.issued                              | invoice.created                   |
| invoice.paid, invoice.payment_failed        | invoice.payment_status_updated    |
| invoice.voided                              | invoice.voided                    |
| subscription.created, started               | subscription.started              |
| subscription.changed, taking effect now     | subscription.started (the new one)|
| subscription.changed, scheduled             | subscription.updated              |
| subscription.canceled, taking effect now    | subscription.terminated           |
| subscription.canceled, scheduled            | subscription.updated              |
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from billing.models import Subscription
from invoicing.models import Invoice, WebhookEndpoint, WebhookMessage
from lago import invoice_selectors, selectors, signing
from lago.mapping import INVOICE_TYPES, SIGNATURE_ALGOS
from lago.models import SubscriptionExternalId

USER_AGENT = "Meterline-Webhooks/1.0 (Lago)"


def _effective_now(payload: dict[str, Any], at: datetime) -> bool:
    """Whether a subscription event takes effect by `at` (else it is scheduled)."""
    raw = payload.get("effectiveAt")
    try:
        effective = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        effective = None
    return effective is None or effective <= at


def lago_type(type_: str, payload: dict[str, Any], *, at: datetime) -> str | None:
    """Lago's webhook type for one of our events (None: no counterpart, not sent)."""
    if type_ in INVOICE_TYPES:
        return INVOICE_TYPES[type_]
    now = _effective_now(payload, at)
    if type_ == "subscription.created":
        return "subscription.started" if now else None  # Lago says nothing until a subscription starts
    if type_ == "subscription.changed":
        if payload.get("action") == "subscription.cancelation_unscheduled":
            return "subscription.updated"
        return "subscription.started" if now else "subscription.updated"
    if type_ == "subscription.canceled":
        return "subscription.terminated" if now else "subscription.updated"
    return None


def accepts(type_: str, payload: dict[str, Any]) -> bool:
    return lago_type(type_, payload, at=timezone.now()) is not None


# --- the objects -----------------------------------------------------------------------------------


def _invoice(message: WebhookMessage) -> dict[str, Any]:
    payload = message.payload
    invoice = (
        Invoice.objects.filter(organization_id=message.organization_id, id=payload.get("id"))
        .select_related("customer", "organization")
        .first()
    )
    if invoice is None:
        raise ValueError(f"Invoice {payload.get('id')} no longer exists.")
    # as it was when the event happened (a draft stays a draft in `invoice.drafted` sent later)
    invoice.status = payload.get("status") or invoice.status
    invoice.number = payload.get("number") or ""
    file_url = None
    base = getattr(settings, "PUBLIC_BASE_URL", "")
    if base and invoice.status != "draft":
        file_url = f"{base.rstrip('/')}/lago/files/invoices/{invoice_selectors.invoice_file_token(invoice)}"
    return invoice_selectors.invoice_json(
        invoice, organization=invoice.organization, file_url=file_url, with_fees=True
    )


def _subscription(message: WebhookMessage, *, previous: bool) -> dict[str, Any]:
    payload = message.payload
    sub_id = payload.get("previousSubscriptionId") if previous else payload.get("subscriptionId")
    sub = (
        Subscription.objects.filter(organization_id=message.organization_id, id=sub_id)
        .select_related("customer", "previous")
        .first()
    )
    if sub is None:
        raise ValueError(f"Subscription {sub_id} no longer exists.")
    row = SubscriptionExternalId.objects.filter(
        organization_id=message.organization_id, subscription=sub
    ).first()
    return selectors.subscription_json(sub, external_id=row.external_id if row else sub.id)


def envelope(message: WebhookMessage) -> dict[str, Any]:
    """Lago's body for one of our events."""
    type_ = lago_type(message.type, message.payload, at=message.created_at)
    if type_ is None:
        raise ValueError(f"{message.type} has no Lago webhook type.")
    if type_.startswith("invoice."):
        return {"webhook_type": type_, "object_type": "invoice", "invoice": _invoice(message)}
    # a scheduled plan change is news about the running subscription (its next_plan_code)
    previous = message.type == "subscription.changed" and type_ == "subscription.updated"
    previous = previous and bool(message.payload.get("previousSubscriptionId"))
    return {
        "webhook_type": type_,
        "object_type": "subscription",
        "subscription": _subscription(message, previous=previous),
    }


def render(endpoint: WebhookEndpoint, message: WebhookMessage, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery to a Lago-format endpoint (either signature)."""
    body = json.dumps(envelope(message), cls=DjangoJSONEncoder, separators=(",", ":")).encode()
    algo = SIGNATURE_ALGOS[endpoint.format]
    if algo == "jwt":
        signature = signing.jwt_signature(body, organization_id=endpoint.organization_id)
    else:
        signature = signing.hmac_signature(body, endpoint.secret)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "X-Lago-Signature": signature,
        "X-Lago-Signature-Algorithm": algo,
        "X-Lago-Unique-Key": str(message.id),
    }
    return body, headers
