"""Invoice runs: start one now, list them, follow one's progress and items."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing.selectors import customer_get
from core.api_base import TenantAPIView
from core.enqueue import enqueue_on_commit
from core.errors import NotFound, ValidationFailed
from core.pagination import PAGE_PARAMETERS, page_of, page_params, paged
from invoicing import runs, selectors
from invoicing.models import InvoiceRun, InvoiceRunItem


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
        v = self.validated(self.Input)
        ref = v.get("customerId") or ""
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
