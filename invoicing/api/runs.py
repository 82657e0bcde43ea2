"""Invoice runs: start one now (202 with the run), list them, follow one's progress and items."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing.selectors import customer_get
from core.api_base import TenantAPIView
from core.enqueue import enqueue_on_commit
from core.errors import NotFound
from core.models import Organization
from core.pagination import PAGE_PARAMETERS, page_of, page_params, page_schema, paged
from invoicing import runs, selectors
from invoicing.api.params import status_filter
from invoicing.models import InvoiceRun, InvoiceRunItem


class RunLinksOutput(serializers.Serializer):
    self = serializers.SerializerMethodField(help_text="This run: its progress and items.")
    invoices = serializers.SerializerMethodField(help_text="The invoices this run has issued so far.")

    def get_self(self, run: InvoiceRun) -> str:
        return reverse("invoicing_run_detail", args=[run.id])

    def get_invoices(self, run: InvoiceRun) -> str:
        return reverse("invoicing_invoice_list") + f"?runId={run.id}"


class RunOutput(serializers.Serializer):
    """An invoice run: one per start (the clock's or `POST /invoice-runs`), one item per due billing
    moment of a customer; `total` = `done` + `failed` + the items still pending."""

    id = serializers.CharField()
    status = serializers.CharField(help_text="running, done or failed (some items failed).")
    startedAt = serializers.DateTimeField(source="started_at")
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    links = RunLinksOutput(source="*")


class RunItemOutput(serializers.Serializer):
    id = serializers.CharField()
    customerId = serializers.CharField(source="customer_id")
    customerKey = serializers.CharField(source="customer.key", allow_null=True)
    customerName = serializers.CharField(source="customer.name")
    currency = serializers.CharField()
    kind = serializers.CharField(
        help_text='The billing moment: "start" (in-advance fees) or "period" (its end).'
    )
    periodStart = serializers.DateTimeField(source="period_start")
    periodEnd = serializers.DateTimeField(source="period_end")
    status = serializers.CharField()
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    invoiceId = serializers.CharField(source="invoice_id", allow_null=True)


class RunDetailOutput(RunOutput):
    items = page_of(RunItemOutput)(source="item_page", help_text="The run's items, one page.")


def invoice_run_start(*, organization: Organization, customer_id: str | None) -> InvoiceRun | None:
    """Schedule the due invoices of the organization (or of one customer) now, through the clock's own
    scheduler, and queue one batch task per batch after commit. Returns the new run (one per organization),
    or None when nothing is due."""
    batches = runs.invoice_runs_schedule_batches(
        now=timezone.now(), organization=organization, customer_id=customer_id
    )
    if not batches:
        return None
    for batch in batches:
        enqueue_on_commit("invoicing.tasks.invoice_run_batch", batch)
    item = InvoiceRunItem.objects.filter(organization=organization, id=batches[0][0]).only("run_id").get()
    return InvoiceRun.objects.get(organization=organization, id=item.run_id)


class InvoiceRunListView(TenantAPIView):
    """GET /api/v1/billing/invoice-runs (newest first, page-paginated); POST starts a run now."""

    model = InvoiceRun
    required_scopes = {"GET": "read", "POST": "admin"}

    class Input(serializers.Serializer):
        customerId = serializers.CharField(
            required=False, allow_blank=True, help_text="A customer id or key: only its due moments."
        )

    @page_schema(RunOutput, "listInvoiceRuns")
    def get(self, request: Request) -> Response:
        page, size = page_params(request)
        qs = selectors.invoice_run_list(organization=self.organization)
        return Response(paged(qs, page, size, lambda items: RunOutput(items, many=True).data))

    @extend_schema(
        request=Input,
        responses={
            202: OpenApiResponse(
                RunOutput,
                description="A run started: the due billing moments are queued; follow `links.self` (also "
                "the Location header) until `status` is done or failed.",
            ),
            204: OpenApiResponse(
                description="Nothing is due: every closed billing period is invoiced or in a run."
            ),
        },
        operation_id="startInvoiceRun",
        examples=[
            OpenApiExample("Invoice one customer now", request_only=True, value={"customerId": "acme"})
        ],
    )
    def post(self, request: Request) -> Response:
        ref = self.validated(self.Input).get("customerId") or ""
        customer = customer_get(organization=self.organization, id_or_key=ref) if ref else None
        run = invoice_run_start(organization=self.organization, customer_id=customer.id if customer else None)
        if run is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        body = RunOutput(run).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["links"]["self"]})


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
        wanted = status_filter(request, ("pending", "done", "failed"))
        if wanted:
            items = items.filter(status__in=wanted)
        page, size = page_params(request)
        run.item_page = paged(items, page, size, list)  # type: ignore[attr-defined]
        return Response(RunDetailOutput(run).data)
