"""Invoices: list, get, invoice now (on demand), advance/approve/void/retry, manual lines, the PDFs of an
invoice and of its credit note, and a customer's upcoming invoice (nothing stored)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing.selectors import customer_get
from core.api_base import TenantAPIView
from core.errors import NotFound
from core.pagination import page_params, page_schema, paged
from invoicing import selectors, services
from invoicing.api.params import status_filter
from invoicing.credit_notes import credit_note_of
from invoicing.models import Invoice, InvoiceLine, InvoiceStatus
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

    class Query(serializers.Serializer):
        customerId = serializers.CharField(required=False, default="")
        periodFrom = serializers.DateTimeField(required=False)
        periodTo = serializers.DateTimeField(required=False)
        runId = serializers.CharField(required=False, default="")
        expand = serializers.CharField(required=False, default="")

    @page_schema(
        InvoiceListItemOutput,
        "listInvoices",
        OpenApiParameter("statuses", str, many=True, description="Comma-separated or repeated."),
        OpenApiParameter("status", str, many=True, description="An alias of `statuses`."),
        OpenApiParameter("customerId", str),
        OpenApiParameter("periodFrom", OpenApiTypes.DATETIME),
        OpenApiParameter("periodTo", OpenApiTypes.DATETIME),
        OpenApiParameter("runId", str, description="Only the invoices this invoice run issued."),
        OpenApiParameter("expand", str, description="`lines` adds each invoice's lines."),
        description="Invoices, newest first; `lines` only with `expand=lines`.",
    )
    def get(self, request: Request) -> Response:
        query = self.Query(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        qs = selectors.invoice_list(
            organization=self.organization,
            statuses=status_filter(request, InvoiceStatus.values, names=("statuses", "status")),
            customer_id=q["customerId"],
            period_from=q.get("periodFrom"),
            period_to=q.get("periodTo"),
            run_id=q["runId"],
        )
        page, size = page_params(request)
        expand = "lines" in q["expand"]
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
        v = self.validated(self.Input)
        customer = customer_get(organization=self.organization, id_or_key=v["customerId"])
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


class InvoiceActionView(TenantAPIView):
    """POST /{id}/<action>: one step of the invoice's lifecycle; answers the invoice after it."""

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


def invoice_action_view(name: str, service: Any, operation_id: str) -> type[InvoiceActionView]:
    view = type(name, (InvoiceActionView,), {"service": staticmethod(service), "__module__": __name__})
    return extend_schema_view(post=extend_schema(operation_id=operation_id))(view)


InvoiceAdvanceView = invoice_action_view("InvoiceAdvanceView", services.invoice_advance, "advanceInvoice")
InvoiceApproveView = invoice_action_view("InvoiceApproveView", services.invoice_approve, "approveInvoice")
InvoiceVoidView = invoice_action_view("InvoiceVoidView", services.invoice_void, "voidInvoice")
InvoiceRetryView = invoice_action_view("InvoiceRetryView", services.invoice_retry_sync, "retryInvoiceSync")


class InvoiceLineCreateView(TenantAPIView):
    required_scope = "admin"

    class Input(serializers.Serializer):
        description = serializers.CharField(max_length=500)
        quantity = serializers.DecimalField(max_digits=38, decimal_places=12, default=Decimal("1"))
        unitPrice = serializers.DecimalField(max_digits=38, decimal_places=12)
        taxRateId = serializers.CharField(required=False, allow_null=True, allow_blank=True)

    @extend_schema(request=Input, responses={201: LineOutput}, operation_id="createInvoiceLine")
    def post(self, request: Request, invoice_id: str) -> Response:
        v = self.validated(self.Input)
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

    @page_schema(UpcomingInvoiceOutput, "getUpcomingInvoice")
    def get(self, request: Request, customer: str) -> Response:
        cust = customer_get(organization=self.organization, id_or_key=customer)
        upcoming = services.invoice_upcoming(organization=self.organization, customer=cust)
        page, size = page_params(request)
        return Response(paged(upcoming, page, size, lambda rows: UpcomingInvoiceOutput(rows, many=True).data))
