"""Invoicing API: invoices (list, get, on-demand, advance/approve/void/retry, manual lines, PDF), customer
credits, invoice runs (started now, progress), settings, and the Stripe webhook receiver (no API key: the
Stripe signature is the authentication)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing.selectors import customer_get
from core.api_base import TenantAPIView, paginate
from core.enqueue import enqueue_on_commit
from core.errors import DomainError, NotFound, ValidationFailed, domain_error_body
from core.pagination import (
    CURSOR_PARAMETERS,
    PAGE_PARAMETERS,
    cursor_page_of,
    page_of,
    page_params,
    paged,
)
from invoicing import credits, runs, selectors, services, webhooks
from invoicing.credit_notes import credit_note_of
from invoicing.models import (
    CustomerCredit,
    Invoice,
    InvoiceLine,
    InvoiceRun,
    InvoiceRunItem,
    InvoiceStatus,
    StripeSettings,
    TaxRate,
    WebhookDelivery,
    WebhookEndpoint,
)
from invoicing.pdf import credit_note_pdf, invoice_pdf


class LineOutput(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField()
    description = serializers.CharField()
    quantity = serializers.DecimalField(
        max_digits=38, decimal_places=12, allow_null=True, coerce_to_string=True, normalize_output=True
    )
    unitPrice = serializers.DecimalField(
        source="unit_price", max_digits=38, decimal_places=12, allow_null=True, normalize_output=True
    )
    amount = serializers.DecimalField(max_digits=38, decimal_places=12, normalize_output=True)
    periodStart = serializers.DateTimeField(source="period_start", allow_null=True)
    periodEnd = serializers.DateTimeField(source="period_end", allow_null=True)
    subscriptionId = serializers.CharField(source="subscription_id")
    subscriptionItemId = serializers.CharField(source="subscription_item_id")
    rateCardKey = serializers.CharField(source="rate_card_key")
    featureKey = serializers.CharField(source="feature_key")
    detailedLines = serializers.JSONField(source="detail")


class CreditNoteOutput(serializers.Serializer):
    """The credit note that cancelled a voided invoice (docs/invoicing.md, "Voiding and credit notes")."""

    id = serializers.CharField()
    number = serializers.CharField()
    currency = serializers.CharField()
    total = serializers.DecimalField(
        max_digits=38, decimal_places=12, coerce_to_string=True, normalize_output=True
    )
    reason = serializers.CharField()
    issuedAt = serializers.DateTimeField(source="issued_at")


class InvoiceOutput(serializers.Serializer):
    id = serializers.CharField()
    number = serializers.CharField()
    status = serializers.CharField()
    kind = serializers.CharField()
    customerId = serializers.CharField(source="customer_id")
    currency = serializers.CharField()
    periodStart = serializers.DateTimeField(source="period_start")
    periodEnd = serializers.DateTimeField(source="period_end")
    issuedAt = serializers.DateTimeField(source="issued_at", allow_null=True)
    dueAt = serializers.DateTimeField(source="due_at", allow_null=True)
    draftUntil = serializers.DateTimeField(source="draft_until", allow_null=True)
    totals = serializers.SerializerMethodField()
    supplier = serializers.JSONField(source="supplier_snapshot")
    customer = serializers.JSONField(source="customer_snapshot")
    stripe = serializers.SerializerMethodField()
    creditNote = CreditNoteOutput(source="credit_note", allow_null=True, read_only=True)
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    def get_totals(self, obj: Invoice) -> dict[str, str]:
        def s(v: Any) -> str:
            return format(v.normalize() if v else v, "f") if v else "0"

        return {
            "amount": s(obj.amount),
            "discountsTotal": s(obj.discounts_total),
            "creditsTotal": s(obj.credits_total),
            "taxesTotal": s(obj.taxes_total),
            "taxesInclusiveTotal": s(obj.taxes_inclusive_total),
            "total": s(obj.total),
        }

    def get_stripe(self, obj: Invoice) -> dict[str, str]:
        return {
            "invoiceId": obj.stripe_invoice_id,
            "status": obj.stripe_status,
            "hostedUrl": obj.stripe_hosted_url,
            "syncError": obj.sync_error,
        }


class InvoiceWithLinesOutput(InvoiceOutput):
    lines = serializers.SerializerMethodField()

    def get_lines(self, obj: Invoice) -> list[dict]:
        return list(LineOutput(obj.lines.all(), many=True).data)


class InvoiceListItemOutput(InvoiceOutput):
    """An invoice in a list (the schema of both renderings): `lines` only with `expand=lines`."""

    lines = LineOutput(many=True, required=False)


class InvoiceListView(TenantAPIView):
    model = Invoice
    required_scope = "read"

    @extend_schema(
        responses=page_of(InvoiceListItemOutput),
        parameters=[
            OpenApiParameter("statuses", str, many=True, description="Comma-separated or repeated."),
            OpenApiParameter("status", str, many=True, description="An alias of `statuses`."),
            OpenApiParameter("customerId", str),
            OpenApiParameter("periodFrom", OpenApiTypes.DATETIME),
            OpenApiParameter("periodTo", OpenApiTypes.DATETIME),
            OpenApiParameter("expand", str, description="`lines` adds each invoice's lines."),
            *PAGE_PARAMETERS,
        ],
        description="Invoices, newest first; `lines` only with `expand=lines`.",
        operation_id="listInvoices",
    )
    def get(self, request: Request) -> Response:
        qp = request.query_params
        statuses = [s for raw in qp.getlist("statuses") + qp.getlist("status") for s in raw.split(",") if s]
        bad = sorted(set(statuses) - set(InvoiceStatus.values))
        if bad:
            raise ValidationFailed(f"Unknown status: {', '.join(bad)}.", field="statuses")
        period_from = (
            serializers.DateTimeField().to_internal_value(qp["periodFrom"]) if qp.get("periodFrom") else None
        )
        period_to = (
            serializers.DateTimeField().to_internal_value(qp["periodTo"]) if qp.get("periodTo") else None
        )
        qs = selectors.invoice_list(
            organization=self.organization,
            statuses=statuses,
            customer_id=qp.get("customerId", ""),
            period_from=period_from,
            period_to=period_to,
        )
        page, size = page_params(request)
        expand = "lines" in qp.get("expand", "")
        if expand:
            qs = qs.prefetch_related("lines")
        out = InvoiceWithLinesOutput if expand else InvoiceOutput
        return Response(paged(qs, page, size, lambda items: out(items, many=True).data))


class InvoiceOnDemandView(TenantAPIView):
    required_scope = "admin"

    class Input(serializers.Serializer):
        customerId = serializers.CharField()

    @extend_schema(
        request=Input,
        responses={201: InvoiceWithLinesOutput(many=True)},
        operation_id="invoicePendingLinesAction",
        description="Invoices a customer's pending lines now (fees due so far and usage to date), one "
        "invoice per currency; 409 when nothing is pending.",
        examples=[OpenApiExample("Invoice a customer now", request_only=True, value={"customerId": "acme"})],
    )
    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customer_get(organization=self.organization, id_or_key=data.validated_data["customerId"])
        invoices = services.invoice_on_demand_create(
            organization=self.organization, customer=customer, actor=self.actor
        )
        return Response(InvoiceWithLinesOutput(invoices, many=True).data, status=status.HTTP_201_CREATED)


class InvoiceDetailView(TenantAPIView):
    required_scope = "read"

    @extend_schema(responses=InvoiceWithLinesOutput, operation_id="getInvoice")
    def get(self, request: Request, invoice_id: str) -> Response:
        invoice = selectors.invoice_get(organization=self.organization, invoice_id=invoice_id)
        return Response(InvoiceWithLinesOutput(invoice).data)


class _InvoiceAction(TenantAPIView):
    """POST /{id}/<action>: one lifecycle service, chosen by the subclass."""

    required_scope = "admin"
    abstract = True
    service: Any = None

    @extend_schema(request=None, responses=InvoiceWithLinesOutput)
    def post(self, request: Request, invoice_id: str) -> Response:
        invoice = selectors.invoice_get(organization=self.organization, invoice_id=invoice_id)
        invoice = type(self).service(organization=self.organization, invoice=invoice, actor=self.actor)
        return Response(
            InvoiceWithLinesOutput(
                selectors.invoice_get(organization=self.organization, invoice_id=invoice.id)
            ).data
        )


@extend_schema_view(post=extend_schema(operation_id="advanceInvoice"))
class InvoiceAdvanceView(_InvoiceAction):
    service = staticmethod(services.invoice_advance)


@extend_schema_view(post=extend_schema(operation_id="approveInvoice"))
class InvoiceApproveView(_InvoiceAction):
    service = staticmethod(services.invoice_approve)


@extend_schema_view(post=extend_schema(operation_id="voidInvoice"))
class InvoiceVoidView(_InvoiceAction):
    service = staticmethod(services.invoice_void)


@extend_schema_view(post=extend_schema(operation_id="retryInvoiceSync"))
class InvoiceRetryView(_InvoiceAction):
    service = staticmethod(services.invoice_retry_sync)


class InvoiceLineCreateView(TenantAPIView):
    required_scope = "admin"

    class Input(serializers.Serializer):
        description = serializers.CharField(max_length=500)
        quantity = serializers.DecimalField(max_digits=38, decimal_places=12, default=Decimal("1"))
        unitPrice = serializers.DecimalField(max_digits=38, decimal_places=12)
        taxRateId = serializers.CharField(required=False, allow_null=True, allow_blank=True)

    @extend_schema(request=Input, responses={201: LineOutput}, operation_id="createInvoiceLine")
    def post(self, request: Request, invoice_id: str) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        invoice = selectors.invoice_get(organization=self.organization, invoice_id=invoice_id)
        line: InvoiceLine = services.invoice_line_add_manual(
            organization=self.organization,
            invoice=invoice,
            description=v["description"],
            quantity=v["quantity"],
            unit_price=v["unitPrice"],
            tax_rate_id=v.get("taxRateId") or None,
            actor=self.actor,
        )
        return Response(LineOutput(line).data, status=status.HTTP_201_CREATED)


class InvoicePdfView(TenantAPIView):
    required_scope = "read"

    @extend_schema(responses={(200, "application/pdf"): bytes}, operation_id="getInvoicePdf")
    def get(self, request: Request, invoice_id: str) -> HttpResponse:
        invoice = selectors.invoice_get(organization=self.organization, invoice_id=invoice_id)
        response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{invoice.number or invoice.id}.pdf"'
        return response


class CreditNotePdfView(TenantAPIView):
    required_scope = "read"

    @extend_schema(responses={(200, "application/pdf"): bytes}, operation_id="getCreditNotePdf")
    def get(self, request: Request, invoice_id: str) -> HttpResponse:
        invoice = selectors.invoice_get(organization=self.organization, invoice_id=invoice_id)
        note = credit_note_of(invoice)
        if note is None:
            raise NotFound(
                f"Invoice {invoice_id!r} has no credit note (only a voided issued invoice has one)."
            )
        response = HttpResponse(credit_note_pdf(note), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{note.number}.pdf"'
        return response


@method_decorator(csrf_exempt, name="dispatch")
class StripeWebhookView(View):
    """POST /api/v1/apps/stripe/webhook/{org}: no API key; the Stripe-Signature header authenticates."""

    def post(self, request: HttpRequest, org: str) -> HttpResponse:
        from invoicing.stripe_events import organization_for_webhook, stripe_event_receive

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


# --- settings: Stripe app, tax rates, billing settings, notification endpoints ----------------------
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
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
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

    @extend_schema(
        responses=page_of(TaxRateOutput),
        parameters=[OpenApiParameter("includeArchived", bool), *PAGE_PARAMETERS],
        operation_id="listTaxRates",
    )
    def get(self, request: Request) -> Response:
        include = request.query_params.get("includeArchived", "") in ("1", "true")
        qs = selectors.tax_rate_list(organization=self.organization, include_archived=include)
        page, size = page_params(request)
        return Response(paged(qs, page, size, lambda rows: TaxRateOutput(rows, many=True).data))

    @extend_schema(request=_TaxRateInput, responses={201: TaxRateOutput}, operation_id="createTaxRate")
    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
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
        data = self.Input(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        v = data.validated_data
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

    @extend_schema(
        responses=cursor_page_of(EndpointOutput),
        parameters=CURSOR_PARAMETERS,
        operation_id="listNotificationEndpoints",
    )
    def get(self, request: Request) -> Response:
        return paginate(self, request, self.get_queryset(), EndpointOutput)

    @extend_schema(
        request=Input, responses={201: EndpointCreatedOutput}, operation_id="createNotificationEndpoint"
    )
    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
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
        data = self.Input(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        v = data.validated_data
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

    @extend_schema(
        responses=cursor_page_of(DeliveryOutput),
        parameters=CURSOR_PARAMETERS,
        operation_id="listNotificationEndpointDeliveries",
    )
    def get(self, request: Request, endpoint_id: str) -> Response:
        endpoint = selectors.webhook_endpoint_get(organization=self.organization, endpoint_id=endpoint_id)
        qs = self.get_queryset().filter(endpoint_id=endpoint.id).select_related("message")
        return paginate(self, request, qs, DeliveryOutput)


# --- customer credits -------------------------------------------------------------------------------
def _money(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=38, decimal_places=12, normalize_output=True, **kwargs)


class CreditOutput(serializers.Serializer):
    """A credit with what is left of it (`remaining` = amount - applications on invoices not voided or
    gathering) and its status (active, expired, voided, used) now."""

    id = serializers.CharField()
    customerId = serializers.CharField(source="customer_id")
    currency = serializers.CharField()
    amount = _money()
    applied = _money()
    remaining = _money()
    status = serializers.ChoiceField(choices=["active", "expired", "voided", "used"])
    description = serializers.CharField()
    priority = serializers.IntegerField()
    expiresAt = serializers.DateTimeField(source="expires_at", allow_null=True)
    voidedAt = serializers.DateTimeField(source="voided_at", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")


class CreditApplicationOutput(serializers.Serializer):
    id = serializers.CharField()
    invoiceId = serializers.CharField(source="line.invoice_id")
    invoiceNumber = serializers.CharField(source="line.invoice.number")
    invoiceStatus = serializers.CharField(source="line.invoice.status")
    lineId = serializers.CharField(source="line_id")
    amount = _money()
    at = serializers.DateTimeField()


class CreditDetailOutput(CreditOutput):
    applications = CreditApplicationOutput(many=True, source="application_rows")


class CreditListView(TenantAPIView):
    """GET (page-paginated, burn order) and POST /api/v1/customers/{customerIdOrKey}/credits."""

    model = CustomerCredit
    required_scopes = {"GET": "read", "POST": "admin"}

    class Input(serializers.Serializer):
        amount = serializers.CharField(max_length=60)  # a decimal string; parsed by the service
        currency = serializers.CharField(max_length=3, required=False, allow_blank=True)
        description = serializers.CharField(max_length=200, required=False, default="Credit")
        priority = serializers.IntegerField(
            required=False, default=1, min_value=0, max_value=credits.MAX_PRIORITY
        )
        expiresAt = serializers.DateTimeField(required=False, allow_null=True)

        def validate_amount(self, value: Any) -> Any:
            if not isinstance(self.initial_data.get("amount"), str):
                raise serializers.ValidationError('Send the amount as a decimal string, e.g. "25.00".')
            return value

    @extend_schema(
        responses=page_of(CreditOutput),
        parameters=[OpenApiParameter("status", str, many=True), *PAGE_PARAMETERS],
        operation_id="listCustomerCredits",
    )
    def get(self, request: Request, customer: str) -> Response:
        cust = customer_get(organization=self.organization, id_or_key=customer)
        statuses = [s for raw in request.query_params.getlist("status") for s in raw.split(",") if s]
        bad = sorted(set(statuses) - set(credits.CREDIT_STATUSES))
        if bad:
            raise ValidationFailed(f"Unknown status: {', '.join(bad)}.", field="status")
        qs = credits.customer_credit_list(
            organization=self.organization, customer_id=cust.id, statuses=statuses
        )
        page, size = page_params(request)
        return Response(paged(qs, page, size, lambda items: CreditOutput(items, many=True).data))

    @extend_schema(request=Input, responses={201: CreditOutput}, operation_id="createCustomerCredit")
    def post(self, request: Request, customer: str) -> Response:
        cust = customer_get(organization=self.organization, id_or_key=customer)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        credit = credits.customer_credit_create(
            organization=self.organization,
            customer=cust,
            amount=v["amount"],
            currency=v.get("currency") or None,
            description=v["description"],
            priority=v["priority"],
            expires_at=v.get("expiresAt"),
            actor=self.actor,
        )
        out = credits.customer_credit_get(
            organization=self.organization, customer_id=cust.id, credit_id=credit.id
        )
        return Response(CreditOutput(out).data, status=status.HTTP_201_CREATED)


def _credit_detail(organization: Any, credit: CustomerCredit) -> dict[str, Any]:
    credit.application_rows = list(  # type: ignore[attr-defined]
        credits.credit_application_list(organization=organization, credit=credit)
    )
    return dict(CreditDetailOutput(credit).data)


class CreditDetailView(TenantAPIView):
    """GET /api/v1/customers/{customerIdOrKey}/credits/{creditId}: the credit and where it was applied."""

    required_scope = "read"

    @extend_schema(responses=CreditDetailOutput, operation_id="getCustomerCredit")
    def get(self, request: Request, customer: str, credit_id: str) -> Response:
        cust = customer_get(organization=self.organization, id_or_key=customer)
        credit = credits.customer_credit_get(
            organization=self.organization, customer_id=cust.id, credit_id=credit_id
        )
        return Response(_credit_detail(self.organization, credit))


class CreditVoidView(TenantAPIView):
    """POST .../credits/{creditId}/void: never applied again; what it paid stays paid (409 when voided)."""

    required_scope = "admin"

    @extend_schema(request=None, responses=CreditDetailOutput, operation_id="voidCustomerCredit")
    def post(self, request: Request, customer: str, credit_id: str) -> Response:
        cust = customer_get(organization=self.organization, id_or_key=customer)
        credit = credits.customer_credit_get(
            organization=self.organization, customer_id=cust.id, credit_id=credit_id
        )
        voided = credits.customer_credit_void(organization=self.organization, credit=credit, actor=self.actor)
        return Response(_credit_detail(self.organization, voided))


# --- invoice runs -----------------------------------------------------------------------------------
class RunOutput(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.CharField()
    startedAt = serializers.DateTimeField(source="started_at")
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()


class RunItemOutput(serializers.Serializer):
    id = serializers.CharField()
    customerId = serializers.CharField(source="customer_id")
    customerKey = serializers.CharField(source="customer.key", allow_null=True)
    customerName = serializers.CharField(source="customer.name")
    currency = serializers.CharField()
    kind = serializers.CharField()  # the billing moment: "start" (in-advance fees) or "period" (its end)
    periodStart = serializers.DateTimeField(source="period_start")
    periodEnd = serializers.DateTimeField(source="period_end")
    status = serializers.CharField()
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    invoiceId = serializers.CharField(source="invoice_id", allow_null=True)


class RunItemsPage(serializers.Serializer):
    totalCount = serializers.IntegerField()
    page = serializers.IntegerField()
    pageSize = serializers.IntegerField()
    items = RunItemOutput(many=True)


class RunDetailOutput(RunOutput):
    items = RunItemsPage()


class RunsStartedOutput(serializers.Serializer):
    items = RunOutput(many=True)
    message = serializers.CharField()


def invoice_runs_start(*, organization: Any, customer_id: str | None) -> tuple[list[InvoiceRun], int]:
    """Schedule the due invoices of the organization (or of one customer) now, through the clock's own
    scheduler, and queue one batch task per batch after commit. Returns the new runs and the number of
    billing moments scheduled (0: nothing due)."""
    batches = runs.invoice_runs_schedule_batches(
        now=timezone.now(), organization=organization, customer_id=customer_id
    )
    item_ids = [i for batch in batches for i in batch]
    run_ids = set(
        InvoiceRunItem.objects.filter(organization=organization, id__in=item_ids).values_list(
            "run_id", flat=True
        )
    )
    for batch in batches:
        enqueue_on_commit("invoicing.tasks.invoice_run_batch", batch)
    return list(InvoiceRun.objects.filter(organization=organization, id__in=run_ids)), len(item_ids)


class InvoiceRunListView(TenantAPIView):
    """GET /api/v1/billing/invoice-runs (newest first, page-paginated); POST starts a run now."""

    model = InvoiceRun
    required_scopes = {"GET": "read", "POST": "admin"}

    class Input(serializers.Serializer):
        customerId = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(responses=page_of(RunOutput), parameters=PAGE_PARAMETERS, operation_id="listInvoiceRuns")
    def get(self, request: Request) -> Response:
        page, size = page_params(request)
        qs = selectors.invoice_run_list(organization=self.organization)
        return Response(paged(qs, page, size, lambda items: RunOutput(items, many=True).data))

    @extend_schema(
        request=Input,
        responses={202: RunsStartedOutput, 200: RunsStartedOutput},
        operation_id="startInvoiceRun",
    )
    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        ref = data.validated_data.get("customerId") or ""
        customer = customer_get(organization=self.organization, id_or_key=ref) if ref else None
        started, count = invoice_runs_start(
            organization=self.organization, customer_id=customer.id if customer else None
        )
        if not started:
            who = f"customer {customer.key or customer.id}" if customer else "the organization"
            message = f"Nothing is due for {who}: every closed billing period is invoiced or in a run."
            return Response({"items": [], "message": message}, status=status.HTTP_200_OK)
        message = f"{count} due billing moment(s) scheduled in {len(started)} run(s)."
        body = {"items": RunOutput(started, many=True).data, "message": message}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class InvoiceRunDetailView(TenantAPIView):
    """GET /api/v1/billing/invoice-runs/{id}: progress and the items (page-paginated, `?status=`)."""

    required_scope = "read"

    @extend_schema(
        responses=RunDetailOutput,
        parameters=[OpenApiParameter("status", str, many=True), *PAGE_PARAMETERS],
        operation_id="getInvoiceRun",
    )
    def get(self, request: Request, run_id: str) -> Response:
        run = selectors.invoice_run_list(organization=self.organization).filter(id=run_id).first()
        if run is None:
            raise NotFound(f"No such invoice run: {run_id!r}.")
        items = selectors.invoice_run_items(organization=self.organization, run_id=run.id).order_by("id")
        wanted = [s for raw in request.query_params.getlist("status") for s in raw.split(",") if s]
        bad = sorted(set(wanted) - {"pending", "done", "failed"})
        if bad:
            raise ValidationFailed(f"Unknown status: {', '.join(bad)}.", field="status")
        if wanted:
            items = items.filter(status__in=wanted)
        page, size = page_params(request)
        body = dict(RunOutput(run).data)
        body["items"] = paged(items, page, size, lambda rows: RunItemOutput(rows, many=True).data)
        return Response(body)


class UpcomingLineOutput(serializers.Serializer):
    type = serializers.CharField()
    description = serializers.CharField()
    quantity = serializers.DecimalField(
        max_digits=38, decimal_places=12, allow_null=True, normalize_output=True
    )
    unitPrice = serializers.DecimalField(
        source="unit_price", max_digits=38, decimal_places=12, allow_null=True, normalize_output=True
    )
    amount = serializers.DecimalField(max_digits=38, decimal_places=12, normalize_output=True)
    periodStart = serializers.DateTimeField(source="period_start", allow_null=True)
    periodEnd = serializers.DateTimeField(source="period_end", allow_null=True)
    billingPeriodStart = serializers.DateTimeField(source="billing_period_start", allow_null=True)
    billingPeriodEnd = serializers.DateTimeField(source="billing_period_end", allow_null=True)
    subscriptionId = serializers.CharField(source="subscription_id")
    rateCardKey = serializers.CharField(source="rate_card_key")
    featureKey = serializers.CharField(source="feature_key")


class UpcomingInvoiceOutput(serializers.Serializer):
    currency = serializers.CharField()
    periodStart = serializers.DateTimeField(source="period_start")
    periodEnd = serializers.DateTimeField(source="period_end")
    lines = UpcomingLineOutput(many=True)
    totals = serializers.SerializerMethodField()

    def get_totals(self, obj: Any) -> dict[str, str]:
        t = obj.totals
        return {
            "amount": str(t.amount),
            "discountsTotal": str(t.discounts_total),
            "taxesTotal": str(t.taxes_total),
            "total": str(t.total),
        }


class UpcomingInvoiceView(TenantAPIView):
    """GET /api/v1/customers/{customerIdOrKey}/upcoming-invoice: the next invoice per currency as it
    stands now (what is due at the end of the current period, usage so far, before credits). Nothing is
    stored."""

    required_scope = "read"

    @extend_schema(
        responses=page_of(UpcomingInvoiceOutput),
        parameters=PAGE_PARAMETERS,
        operation_id="getUpcomingInvoice",
    )
    def get(self, request: Request, customer: str) -> Response:
        cust = customer_get(organization=self.organization, id_or_key=customer)
        upcoming = services.invoice_upcoming(organization=self.organization, customer=cust)
        page, size = page_params(request)
        return Response(paged(upcoming, page, size, lambda rows: UpcomingInvoiceOutput(rows, many=True).data))
