"""Invoicing API: invoices (list, get, on-demand, advance/approve/void/retry, manual lines, PDF) and the
Stripe webhook receiver (no API key: the Stripe signature is the authentication)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api import page_params, paged
from billing.selectors import customer_get
from core.api import TenantAPIView
from core.errors import DomainError, ValidationFailed, domain_error_body
from invoicing import selectors, services
from invoicing.models import Invoice, InvoiceLine, InvoiceStatus
from invoicing.pdf import invoice_pdf


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
        return LineOutput(obj.lines.all(), many=True).data


class InvoiceListView(TenantAPIView):
    model = Invoice
    required_scope = "read"

    @extend_schema(responses=InvoiceOutput(many=True), operation_id="listInvoices")
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
        request=Input, responses=InvoiceWithLinesOutput(many=True), operation_id="invoicePendingLinesAction"
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


class InvoiceAdvanceView(_InvoiceAction):
    service = staticmethod(services.invoice_advance)


class InvoiceApproveView(_InvoiceAction):
    service = staticmethod(services.invoice_approve)


class InvoiceVoidView(_InvoiceAction):
    service = staticmethod(services.invoice_void)


class InvoiceRetryView(_InvoiceAction):
    service = staticmethod(services.invoice_retry_sync)


class InvoiceLineCreateView(TenantAPIView):
    required_scope = "admin"

    class Input(serializers.Serializer):
        description = serializers.CharField(max_length=500)
        quantity = serializers.DecimalField(max_digits=38, decimal_places=12, default="1")
        unitPrice = serializers.DecimalField(max_digits=38, decimal_places=12)
        taxRateId = serializers.CharField(required=False, allow_null=True, allow_blank=True)

    @extend_schema(request=Input, responses=LineOutput, operation_id="createInvoiceLine")
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
