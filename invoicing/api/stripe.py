"""The Stripe app: its settings (secrets write-only) and the webhook receiver (no API key: the Stripe
signature is the authentication)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.api_base import TenantAPIView
from core.errors import DomainError, domain_error_body
from invoicing import selectors, services
from invoicing.models import StripeSettings
from invoicing.stripe_events import organization_for_webhook, stripe_event_receive


class StripeAppOutput(serializers.Serializer):
    """Secrets are write-only: only whether they are set and their last 4 characters come back."""

    configured = serializers.BooleanField()
    enabled = serializers.BooleanField()
    secretKeySet = serializers.BooleanField()
    secretKeyLast4 = serializers.CharField()
    webhookSecretSet = serializers.BooleanField()
    webhookSecretLast4 = serializers.CharField()
    apiVersion = serializers.CharField()
    collectionMethod = serializers.CharField()
    webhookUrl = serializers.CharField()


def stripe_app_payload(organization: Any, request: Any = None) -> dict[str, Any]:
    cfg = selectors.stripe_settings_get(organization=organization)
    return {
        "configured": cfg is not None,
        "enabled": bool(cfg and cfg.enabled),
        "secretKeySet": bool(cfg and cfg.secret_key),
        "secretKeyLast4": selectors.secret_hint(cfg.secret_key) if cfg else "",
        "webhookSecretSet": bool(cfg and cfg.webhook_secret),
        "webhookSecretLast4": selectors.secret_hint(cfg.webhook_secret) if cfg else "",
        "apiVersion": cfg.api_version if cfg else StripeSettings._meta.get_field("api_version").default,
        "collectionMethod": cfg.collection_method if cfg else "send_invoice",
        "webhookUrl": selectors.stripe_webhook_url(organization=organization, request=request),
    }


class StripeAppView(TenantAPIView):
    required_scopes = {"GET": "read", "PUT": "admin"}

    class Input(serializers.Serializer):
        secretKey = serializers.CharField(required=False, trim_whitespace=True, max_length=255)
        webhookSecret = serializers.CharField(
            required=False, allow_blank=True, trim_whitespace=True, max_length=255
        )
        apiVersion = serializers.CharField(required=False, allow_blank=True, max_length=64)
        enabled = serializers.BooleanField(required=False)
        collectionMethod = serializers.CharField(required=False)

    @extend_schema(responses=StripeAppOutput, operation_id="getStripeApp")
    def get(self, request: Request) -> Response:
        return Response(stripe_app_payload(self.organization, request))

    @extend_schema(request=Input, responses=StripeAppOutput, operation_id="updateStripeApp")
    def put(self, request: Request) -> Response:
        v = self.validated(self.Input)
        services.stripe_settings_set(
            organization=self.organization,
            secret_key=v.get("secretKey"),
            webhook_secret=v.get("webhookSecret"),
            api_version=v.get("apiVersion"),
            enabled=v.get("enabled"),
            collection_method=v.get("collectionMethod"),
            actor=self.actor,
        )
        return Response(stripe_app_payload(self.organization, request))


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
