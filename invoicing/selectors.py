"""Invoicing reads. Every function takes the organization explicitly."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Prefetch, QuerySet, Sum

from core.errors import NotFound
from core.models import Organization
from invoicing.models import (
    Invoice,
    InvoiceLine,
    InvoiceRun,
    InvoiceRunItem,
    WebhookDelivery,
    WebhookEndpoint,
)


def invoice_list(
    *,
    organization: Organization,
    statuses: list[str] | None = None,
    customer_id: str = "",
    period_from: datetime | None = None,
    period_to: datetime | None = None,
    include_gathering: bool = True,
) -> QuerySet[Invoice]:
    qs = Invoice.objects.filter(organization=organization).select_related("customer")
    if statuses:
        qs = qs.filter(status__in=statuses)
    elif not include_gathering:
        qs = qs.exclude(status="gathering")
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    if period_from:
        qs = qs.filter(period_end__gt=period_from)
    if period_to:
        qs = qs.filter(period_start__lt=period_to)
    return qs


def invoice_list_totals(qs: QuerySet[Invoice]) -> list[dict]:
    return list(
        qs.order_by().values("currency").annotate(count=Count("id"), total=Sum("total")).order_by("currency")
    )


def invoice_get(*, organization: Organization, invoice_id: str) -> Invoice:
    invoice = (
        Invoice.objects.filter(organization=organization, id=invoice_id)
        .select_related("customer", "organization")
        .prefetch_related(Prefetch("lines", queryset=InvoiceLine.objects.order_by("position", "id")))
        .first()
    )
    if invoice is None:
        raise NotFound(f"No such invoice: {invoice_id!r}.")
    return invoice


def invoice_run_list(*, organization: Organization) -> QuerySet[InvoiceRun]:
    return InvoiceRun.objects.filter(organization=organization)


def invoice_run_items(*, organization: Organization, run_id: str) -> QuerySet[InvoiceRunItem]:
    return InvoiceRunItem.objects.filter(organization=organization, run_id=run_id).select_related("customer")


def webhook_endpoint_list(*, organization: Organization) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(organization=organization)


def webhook_delivery_list(*, organization: Organization, limit: int = 100) -> list[WebhookDelivery]:
    return list(
        WebhookDelivery.objects.filter(organization=organization).select_related("endpoint", "message")[
            :limit
        ]
    )
