"""Billing settings: the Stripe app (secrets write-only), tax rates, the organization's invoicing settings,
and notification endpoints (outgoing webhooks) with their deliveries."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api_base import TenantAPIView, paginate
from core.errors import ValidationFailed
from core.pagination import (
    cursor_page_schema,
    page_params,
    page_schema,
    paged,
)
from invoicing import selectors, services, webhooks
from invoicing.models import StripeSettings, TaxRate, WebhookDelivery, WebhookEndpoint


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


class TaxRateOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    percentage = serializers.DecimalField(max_digits=7, decimal_places=4, normalize_output=True)
    behavior = serializers.SerializerMethodField()
    inclusive = serializers.BooleanField()
    isDefault = serializers.BooleanField(source="is_default")
    archivedAt = serializers.DateTimeField(source="archived_at", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")

    def get_behavior(self, obj: TaxRate) -> str:
        return "inclusive" if obj.inclusive else "exclusive"


class _TaxRateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    percentage = serializers.CharField(max_length=20)  # a decimal string; parsed by the service
    behavior = serializers.ChoiceField(choices=["inclusive", "exclusive"], default="exclusive")
    isDefault = serializers.BooleanField(default=False)

    def validate_percentage(self, value: Any) -> Any:
        if not isinstance(self.initial_data.get("percentage"), str):
            raise serializers.ValidationError('Send the percentage as a decimal string, e.g. "19".')
        return value


class TaxRateListView(TenantAPIView):
    model = TaxRate
    required_scopes = {"GET": "read", "POST": "admin"}

    Input = _TaxRateInput

    @page_schema(TaxRateOutput, "listTaxRates", OpenApiParameter("includeArchived", bool))
    def get(self, request: Request) -> Response:
        include = request.query_params.get("includeArchived", "") in ("1", "true")
        qs = selectors.tax_rate_list(organization=self.organization, include_archived=include)
        page, size = page_params(request)
        return Response(paged(qs, page, size, lambda rows: TaxRateOutput(rows, many=True).data))

    @extend_schema(request=_TaxRateInput, responses={201: TaxRateOutput}, operation_id="createTaxRate")
    def post(self, request: Request) -> Response:
        v = self.validated(self.Input)
        rate = services.tax_rate_create(
            organization=self.organization,
            name=v["name"],
            percentage=v["percentage"],
            inclusive=v["behavior"] == "inclusive",
            is_default=v["isDefault"],
            actor=self.actor,
        )
        return Response(TaxRateOutput(rate).data, status=status.HTTP_201_CREATED)


class TaxRateDetailView(TenantAPIView):
    required_scopes = {"GET": "read", "PATCH": "admin", "DELETE": "admin"}

    class Input(_TaxRateInput):
        name = serializers.CharField(max_length=100, required=False)
        percentage = serializers.CharField(max_length=20, required=False)
        behavior = serializers.ChoiceField(choices=["inclusive", "exclusive"], required=False)
        isDefault = serializers.BooleanField(required=False)

    @extend_schema(responses=TaxRateOutput, operation_id="getTaxRate")
    def get(self, request: Request, tax_rate_id: str) -> Response:
        rate = selectors.tax_rate_get(organization=self.organization, tax_rate_id=tax_rate_id)
        return Response(TaxRateOutput(rate).data)

    @extend_schema(request=Input, responses=TaxRateOutput, operation_id="updateTaxRate")
    def patch(self, request: Request, tax_rate_id: str) -> Response:
        selectors.tax_rate_get(organization=self.organization, tax_rate_id=tax_rate_id)  # 404 first
        v = self.validated(self.Input, partial=True)
        rate = services.tax_rate_update(
            organization=self.organization,
            tax_rate_id=tax_rate_id,
            name=v.get("name"),
            percentage=v.get("percentage"),
            inclusive=(v["behavior"] == "inclusive") if "behavior" in v else None,
            is_default=v.get("isDefault"),
            actor=self.actor,
        )
        return Response(TaxRateOutput(rate).data)

    @extend_schema(request=None, responses={204: None, 200: TaxRateOutput}, operation_id="deleteTaxRate")
    def delete(self, request: Request, tax_rate_id: str) -> Response:
        rate = services.tax_rate_archive(
            organization=self.organization, tax_rate_id=tax_rate_id, actor=self.actor
        )
        if rate is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(TaxRateOutput(rate).data)  # used by invoices: archived, not deleted


class BillingSettingsOutput(serializers.Serializer):
    collectionDelaySeconds = serializers.IntegerField(source="collection_delay_seconds")
    autoAdvance = serializers.BooleanField(source="auto_advance")
    draftPeriodSeconds = serializers.IntegerField(source="draft_period_seconds")
    dueDays = serializers.IntegerField(source="due_days")
    numberPrefix = serializers.CharField(source="number_prefix")
    supplierName = serializers.CharField(source="supplier_name")
    supplierAddress = serializers.CharField(source="supplier_address")
    supplierTaxId = serializers.CharField(source="supplier_tax_id")
    supplierEmail = serializers.CharField(source="supplier_email")
    paymentInstructions = serializers.CharField(source="payment_instructions")


SETTINGS_API_FIELDS = {
    "collectionDelaySeconds": "collection_delay_seconds",
    "autoAdvance": "auto_advance",
    "draftPeriodSeconds": "draft_period_seconds",
    "dueDays": "due_days",
    "numberPrefix": "number_prefix",
    "supplierName": "supplier_name",
    "supplierAddress": "supplier_address",
    "supplierTaxId": "supplier_tax_id",
    "supplierEmail": "supplier_email",
    "paymentInstructions": "payment_instructions",
}


class BillingSettingsView(TenantAPIView):
    required_scopes = {"GET": "read", "PUT": "admin"}

    @extend_schema(responses=BillingSettingsOutput, operation_id="getBillingSettings")
    def get(self, request: Request) -> Response:
        cfg = services.invoicing_settings_get(organization=self.organization)
        return Response(BillingSettingsOutput(cfg).data)

    @extend_schema(
        request=BillingSettingsOutput, responses=BillingSettingsOutput, operation_id="updateBillingSettings"
    )
    def put(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise ValidationFailed("Send a JSON object.", field="body")
        unknown = sorted(set(request.data) - set(SETTINGS_API_FIELDS))
        if unknown:
            raise ValidationFailed(
                f"Unknown settings: {', '.join(unknown)}.",
                errors=[{"name": k, "reason": "Unknown setting."} for k in unknown],
            )
        fields = {SETTINGS_API_FIELDS[k]: v for k, v in request.data.items()}
        cfg = services.invoicing_settings_update(organization=self.organization, actor=self.actor, **fields)
        return Response(BillingSettingsOutput(cfg).data)


class EndpointOutput(serializers.Serializer):
    id = serializers.CharField()
    url = serializers.CharField()
    description = serializers.CharField()
    eventTypes = serializers.ListField(source="event_types", child=serializers.CharField())
    enabled = serializers.BooleanField()
    format = serializers.CharField(help_text="`standard` (Standard Webhooks) or `lago` (Lago's envelope).")
    createdAt = serializers.DateTimeField(source="created_at")


class EndpointCreatedOutput(EndpointOutput):
    """Only the create response carries the signing secret (shown once, like Svix/OpenMeter)."""

    secret = serializers.CharField()


class EndpointListView(TenantAPIView):
    model = WebhookEndpoint
    required_scopes = {"GET": "read", "POST": "admin"}

    class Input(serializers.Serializer):
        url = serializers.CharField(max_length=1000)
        description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        eventTypes = serializers.ListField(child=serializers.CharField(), required=False, default=list)
        format = serializers.CharField(max_length=32, required=False, default="standard")

    @cursor_page_schema(EndpointOutput, "listNotificationEndpoints")
    def get(self, request: Request) -> Response:
        return paginate(self, request, self.get_queryset(), EndpointOutput)

    @extend_schema(
        request=Input, responses={201: EndpointCreatedOutput}, operation_id="createNotificationEndpoint"
    )
    def post(self, request: Request) -> Response:
        v = self.validated(self.Input)
        endpoint = webhooks.webhook_endpoint_create(
            organization=self.organization,
            url=v["url"],
            event_types=v["eventTypes"],
            description=v["description"],
            format=v["format"],
            actor=self.actor,
        )
        return Response(EndpointCreatedOutput(endpoint).data, status=status.HTTP_201_CREATED)


class EndpointDetailView(TenantAPIView):
    required_scopes = {"GET": "read", "PATCH": "admin", "DELETE": "admin"}

    class Input(serializers.Serializer):
        url = serializers.CharField(max_length=1000, required=False)
        description = serializers.CharField(max_length=200, required=False, allow_blank=True)
        eventTypes = serializers.ListField(child=serializers.CharField(), required=False)
        enabled = serializers.BooleanField(required=False)
        format = serializers.CharField(max_length=32, required=False)

    @extend_schema(responses=EndpointOutput, operation_id="getNotificationEndpoint")
    def get(self, request: Request, endpoint_id: str) -> Response:
        endpoint = selectors.webhook_endpoint_get(organization=self.organization, endpoint_id=endpoint_id)
        return Response(EndpointOutput(endpoint).data)

    @extend_schema(request=Input, responses=EndpointOutput, operation_id="updateNotificationEndpoint")
    def patch(self, request: Request, endpoint_id: str) -> Response:
        selectors.webhook_endpoint_get(organization=self.organization, endpoint_id=endpoint_id)
        v = self.validated(self.Input, partial=True)
        endpoint = webhooks.webhook_endpoint_update(
            organization=self.organization,
            endpoint_id=endpoint_id,
            url=v.get("url"),
            event_types=v.get("eventTypes"),
            description=v.get("description"),
            enabled=v.get("enabled"),
            format=v.get("format"),
            actor=self.actor,
        )
        return Response(EndpointOutput(endpoint).data)

    @extend_schema(request=None, responses={204: None}, operation_id="deleteNotificationEndpoint")
    def delete(self, request: Request, endpoint_id: str) -> Response:
        webhooks.webhook_endpoint_delete(
            organization=self.organization, endpoint_id=endpoint_id, actor=self.actor
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeliveryOutput(serializers.Serializer):
    id = serializers.CharField()
    eventId = serializers.CharField(source="message_id")
    eventType = serializers.CharField(source="message.type")
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    lastStatusCode = serializers.IntegerField(source="last_status_code", allow_null=True)
    responseSnippet = serializers.CharField(source="response_snippet")
    lastError = serializers.CharField(source="last_error")
    lastAttemptAt = serializers.DateTimeField(source="last_attempt_at", allow_null=True)
    nextAttemptAt = serializers.DateTimeField(source="next_attempt_at", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")


class EndpointDeliveriesView(TenantAPIView):
    model = WebhookDelivery
    required_scope = "read"

    @cursor_page_schema(DeliveryOutput, "listNotificationEndpointDeliveries")
    def get(self, request: Request, endpoint_id: str) -> Response:
        endpoint = selectors.webhook_endpoint_get(organization=self.organization, endpoint_id=endpoint_id)
        qs = self.get_queryset().filter(endpoint_id=endpoint.id).select_related("message")
        return paginate(self, request, qs, DeliveryOutput)
