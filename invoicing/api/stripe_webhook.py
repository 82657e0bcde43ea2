"""The Stripe webhook receiver (no API key: the Stripe signature is the authentication)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from core.errors import DomainError, domain_error_body
from invoicing.stripe_events import organization_for_webhook, stripe_event_receive


@method_decorator(csrf_exempt, name="dispatch")
class StripeWebhookView(View):
    """POST /api/v1/apps/stripe/webhook/{org}: no API key; the Stripe-Signature header authenticates."""

    def post(self, request: HttpRequest, org: str) -> HttpResponse:
        try:
            organization = organization_for_webhook(org=org)
            row, created = stripe_event_receive(
                organization=organization,
                payload=request.body,
                signature=request.headers.get("Stripe-Signature", ""),
            )
        except DomainError as exc:
            body = domain_error_body(exc)
            return JsonResponse(body, status=body["status"], content_type="application/problem+json")
        return JsonResponse({"received": True, "id": row.stripe_event_id, "duplicate": not created})
