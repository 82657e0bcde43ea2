"""Stripe: the ONLY module in the project that imports `stripe`.

Push on issue (`invoice_push`): ensure the Stripe customer, create the Stripe invoice (auto_advance=false,
metadata with our ids), add one invoice item per line in minor units (`core.money.to_minor_units`;
discounts and credits negative; inclusive taxes are already inside the lines), finalize. Every call
carries an idempotency key derived from our ids (`customer-<id>`, `invoice-create-<id>`, `ii-<line id>`,
`invoice-finalize-<id>`), and each Stripe id is persisted before the next step, so a retry after a crash
resumes where it stopped and never duplicates anything.

Webhooks in (`webhook_verify`): `stripe.Webhook.construct_event` on the raw body (tolerance 300 s).

Tests and the benchmark inject an `http_client` (`set_http_client`): the real `stripe` library runs,
only the transport is faked, so request shapes, amounts and idempotency keys are asserted for real.
"""

from __future__ import annotations

from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.models import Customer
from core.money import to_minor_units
from invoicing.models import Invoice, InvoiceLine, StripeSettings

WEBHOOK_TOLERANCE_SECONDS = 300
_HTTP_CLIENT: Any = None


class WebhookInvalid(Exception):
    pass


def set_http_client(client: Any) -> None:
    """Use this `stripe.HTTPClient` for every Stripe call (None: the library's default, real network)."""
    global _HTTP_CLIENT
    _HTTP_CLIENT = client


def client_for(config: StripeSettings) -> stripe.StripeClient:
    """A client with the organization's secret key (decrypted by its model field). STRIPE_API_BASE points
    it at another endpoint (stripe-mock, a proxy); STRIPE_TIMEOUT_SECONDS bounds each attempt, and the
    library retries connection errors, timeouts and 5xx with the same idempotency key."""
    return stripe.StripeClient(
        config.secret_key,
        stripe_version=config.api_version or None,
        http_client=_HTTP_CLIENT or stripe.new_default_http_client(timeout=settings.STRIPE_TIMEOUT_SECONDS),
        max_network_retries=2,
        base_addresses={"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None,
    )


def webhook_verify(*, payload: bytes, signature: str, secret: str) -> dict[str, Any]:
    """The verified event as a dict; raises WebhookInvalid when forged, stale or malformed."""
    try:
        event = stripe.Webhook.construct_event(
            payload, signature, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
        )
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise WebhookInvalid(str(exc)) from None
    return event.to_dict()


def _customer_id(client: stripe.StripeClient, invoice: Invoice) -> str:
    customer = Customer.objects.get(id=invoice.customer_id, organization_id=invoice.organization_id)
    if customer.stripe_customer_id:
        return customer.stripe_customer_id
    params: dict[str, Any] = {
        "name": customer.name,
        "metadata": {
            "meterline_customer_id": customer.id,
            "meterline_organization_id": invoice.organization_id,
        },
    }
    if customer.primary_email:
        params["email"] = customer.primary_email
    created = client.v1.customers.create(
        params=params,  # type: ignore[arg-type]  # built as a plain dict; Stripe validates it
        options={"idempotency_key": f"customer-{customer.id}"},
    )
    # Persist before going on: the next attempt reuses it.
    Customer.objects.filter(id=customer.id, stripe_customer_id="").update(stripe_customer_id=created.id)
    return created.id


def _pushable(line: InvoiceLine) -> bool:
    if line.amount == 0:
        return False
    return not (line.type == "tax" and line.detail and line.detail[0].get("inclusive"))


def invoice_push(*, invoice_id: str) -> Invoice:
    """Create and finalize the Stripe invoice of an issued invoice. Safe to call again at any point."""
    invoice = Invoice.objects.select_related("organization").get(id=invoice_id)
    config = StripeSettings.objects.filter(organization_id=invoice.organization_id, enabled=True).first()
    if config is None or invoice.status in ("gathering", "draft", "voided"):
        return invoice
    if invoice.stripe_status in ("open", "paid", "void", "uncollectible"):
        return invoice  # finalized already
    client = client_for(config)
    currency = invoice.currency.lower()
    customer_id = _customer_id(client, invoice)
    if not invoice.stripe_invoice_id:
        created = client.v1.invoices.create(
            params={
                "customer": customer_id,
                "currency": currency,
                "auto_advance": False,
                "collection_method": config.collection_method,
                **(
                    {"days_until_due": max((invoice.due_at - invoice.issued_at).days, 0)}
                    if config.collection_method == "send_invoice" and invoice.due_at and invoice.issued_at
                    else {}
                ),
                "pending_invoice_items_behavior": "exclude",
                "description": f"Invoice {invoice.number}",
                "metadata": {
                    "meterline_invoice_id": invoice.id,
                    "meterline_organization_id": invoice.organization_id,
                    "meterline_invoice_number": invoice.number,
                },
            },
            options={"idempotency_key": f"invoice-create-{invoice.id}"},
        )
        Invoice.objects.filter(id=invoice.id).update(
            stripe_invoice_id=created.id, stripe_status=created.status or "draft"
        )
        invoice.stripe_invoice_id = created.id
    for line in invoice.lines.filter(stripe_invoice_item_id="").order_by("position", "id"):
        if not _pushable(line):
            continue
        params: dict[str, Any] = {
            "customer": customer_id,
            "invoice": invoice.stripe_invoice_id,
            "amount": to_minor_units(line.amount, invoice.currency),
            "currency": currency,
            "description": line.description[:500],
            "metadata": {"meterline_invoice_id": invoice.id, "meterline_line_id": line.id, "type": line.type},
        }
        if line.period_start and line.period_end and line.period_end > line.period_start:
            params["period"] = {
                "start": int(line.period_start.timestamp()),
                "end": int(line.period_end.timestamp()),
            }
        item = client.v1.invoice_items.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": f"ii-{line.id}"},
        )
        InvoiceLine.objects.filter(id=line.id).update(stripe_invoice_item_id=item.id)
    finalized = client.v1.invoices.finalize_invoice(
        invoice.stripe_invoice_id,
        params={"auto_advance": False},
        options={"idempotency_key": f"invoice-finalize-{invoice.id}"},
    )
    with transaction.atomic():
        Invoice.objects.filter(id=invoice.id).update(
            stripe_status=finalized.status or "open",
            stripe_hosted_url=getattr(finalized, "hosted_invoice_url", None) or "",
            sync_error="",
            updated_at=timezone.now(),
        )
    invoice.refresh_from_db()
    return invoice


def invoice_void_remote(*, invoice_id: str) -> None:
    invoice = Invoice.objects.get(id=invoice_id)
    config = StripeSettings.objects.filter(organization_id=invoice.organization_id, enabled=True).first()
    if config is None or not invoice.stripe_invoice_id or invoice.stripe_status == "void":
        return
    result = client_for(config).v1.invoices.void_invoice(
        invoice.stripe_invoice_id, options={"idempotency_key": f"invoice-void-{invoice.id}"}
    )
    Invoice.objects.filter(id=invoice.id).update(stripe_status=result.status or "void")


def record_sync_error(*, invoice_id: str, error: Exception) -> None:
    message = str(error)
    if isinstance(error, stripe.StripeError):
        message = f"{type(error).__name__}: {error.user_message or error}"
    Invoice.objects.filter(id=invoice_id).update(sync_error=message[:2000])


def is_transient(error: Exception) -> bool:
    return isinstance(error, (stripe.APIConnectionError, stripe.RateLimitError)) or (
        isinstance(error, stripe.APIError) and not isinstance(error, stripe.InvalidRequestError)
    )
