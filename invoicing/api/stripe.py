"""The Stripe app: its settings (secrets write-only) and the webhook receiver (no API key: the Stripe
signature is the authentication)."""

from __future__ import annotations

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
    """The organization's Stripe connection (the defaults when none is configured). Secrets are write-only:
    only whether they are set and their last 4 characters come back."""

    configured = serializers.SerializerMethodField()
    enabled = serializers.SerializerMethodField()
    secretKeySet = serializers.SerializerMethodField()
    secretKeyLast4 = serializers.SerializerMethodField()
    webhookSecretSet = serializers.SerializerMethodField()
    webhookSecretLast4 = serializers.SerializerMethodField()
    apiVersion = serializers.CharField(source="api_version")
    collectionMethod = serializers.CharField(source="collection_method")
    webhookUrl = serializers.SerializerMethodField(help_text="What to paste into Stripe's webhook settings.")

    def get_configured(self, cfg: StripeSettings) -> bool:
        return not cfg._state.adding  # an unsaved row: the defaults, nothing configured

    def get_enabled(self, cfg: StripeSettings) -> bool:
        return self.get_configured(cfg) and cfg.enabled

    def get_secretKeySet(self, cfg: StripeSettings) -> bool:
        return bool(cfg.secret_key)

    def get_secretKeyLast4(self, cfg: StripeSettings) -> str:
        return selectors.secret_hint(cfg.secret_key or "")

    def get_webhookSecretSet(self, cfg: StripeSettings) -> bool:
        return bool(cfg.webhook_secret)

    def get_webhookSecretLast4(self, cfg: StripeSettings) -> str:
        return selectors.secret_hint(cfg.webhook_secret or "")

    def get_webhookUrl(self, cfg: StripeSettings) -> str:
        return selectors.stripe_webhook_url(
            organization=cfg.organization, request=self.context.get("request")
        )


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

    def _out(self, request: Request) -> Response:
        cfg = selectors.stripe_settings_get(organization=self.organization)
        cfg = cfg or StripeSettings(organization=self.organization)
        return Response(StripeAppOutput(cfg, context={"request": request}).data)

    @extend_schema(responses=StripeAppOutput, operation_id="getStripeApp")
    def get(self, request: Request) -> Response:
        return self._out(request)

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
        return self._out(request)


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
