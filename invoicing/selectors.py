"""Invoicing reads. Every function takes the organization explicitly."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.http import HttpRequest

from billing.models import Customer
from core.links import absolute_url
from core.models import Organization
from core.querysets import filter_given, first_or_not_found
from invoicing.models import (
    Invoice,
    InvoiceLine,
    InvoiceRun,
    InvoiceRunItem,
    StripeSettings,
    TaxRate,
    WebhookDelivery,
    WebhookEndpoint,
)


def live_customer_get(*, organization: Organization, customer_id: str) -> Customer:
    """The organization's live customer with this id (one query, its subjects not loaded), else NotFound."""
    return first_or_not_found(
        Customer.objects.filter(organization=organization, id=customer_id, deleted_at__isnull=True),
        f"No such customer: {customer_id!r}.",
    )


def invoice_list(
    *,
    organization: Organization,
    statuses: list[str] | None = None,
    customer_id: str = "",
    period_from: datetime | None = None,
    period_to: datetime | None = None,
    include_gathering: bool = True,
    run_id: str = "",
) -> QuerySet[Invoice]:
    qs = Invoice.objects.filter(organization=organization).select_related("customer", "credit_note")
    if statuses:
        qs = qs.filter(status__in=statuses)
    elif not include_gathering:
        qs = qs.exclude(status="gathering")
    qs = filter_given(
        qs, customer_id=customer_id or None, period_end__gt=period_from, period_start__lt=period_to
    )
    if run_id:
        issued = InvoiceRunItem.objects.filter(organization=organization, run_id=run_id)
        qs = qs.filter(id__in=issued.values("invoice_id"))
    return qs


def invoice_list_totals(qs: QuerySet[Invoice]) -> list[dict]:
    rows = (
        qs.order_by().values("currency").annotate(count=Count("id"), total=Sum("total")).order_by("currency")
    )
    return [dict(row) for row in rows]


def invoice_get(*, organization: Organization, invoice_id: str) -> Invoice:
    return first_or_not_found(
        Invoice.objects.filter(organization=organization, id=invoice_id)
        .select_related("customer", "organization", "credit_note")
        .prefetch_related(Prefetch("lines", queryset=InvoiceLine.objects.order_by("position", "id"))),
        f"No such invoice: {invoice_id!r}.",
    )


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


# --- settings ---------------------------------------------------------------------------------------
def tax_rate_list(*, organization: Organization, include_archived: bool = False) -> QuerySet[TaxRate]:
    qs = TaxRate.objects.filter(organization=organization).order_by("name", "id")
    return qs if include_archived else qs.filter(archived_at=None)


def tax_rate_get(*, organization: Organization, tax_rate_id: str) -> TaxRate:
    return first_or_not_found(
        TaxRate.objects.filter(organization=organization, id=tax_rate_id), f"No tax rate {tax_rate_id}."
    )


def stripe_settings_get(*, organization: Organization) -> StripeSettings | None:
    return StripeSettings.objects.filter(organization=organization).first()


def stripe_webhook_url(*, organization: Organization, request: HttpRequest | None = None) -> str:
    """What the tenant pastes into Stripe's dashboard (Developers → Webhooks): under PUBLIC_BASE_URL, or
    the address of the request that shows it (core/links.py)."""
    return absolute_url(f"/api/v1/apps/stripe/webhook/{organization.slug}", request=request)


def secret_hint(secret: str) -> str:
    """The last 4 characters of a secret, the only part ever shown again."""
    return secret[-4:] if len(secret) >= 12 else ""


def webhook_endpoint_get(*, organization: Organization, endpoint_id: str) -> WebhookEndpoint:
    return first_or_not_found(
        WebhookEndpoint.objects.filter(organization=organization, id=endpoint_id),
        f"No webhook endpoint {endpoint_id}.",
    )


ISSUED_STATUSES = ("issued", "paid", "payment_failed", "overdue", "uncollectible")
ESTIMATE_STATUSES = ("gathering", "draft")


def invoice_list_totals_split(qs: QuerySet[Invoice]) -> list[dict]:
    """Per currency, issued invoices (numbered: issued, paid, failed, overdue, uncollectible) apart from
    estimates (gathering and draft, still moving): count and total of each; voided ones count in neither.
    One query."""
    issued, estimate = Q(status__in=ISSUED_STATUSES), Q(status__in=ESTIMATE_STATUSES)
    rows = (
        qs.order_by()
        .values("currency")
        .annotate(
            issued_count=Count("id", filter=issued),
            issued_total=Sum("total", filter=issued, default=0),
            estimate_count=Count("id", filter=estimate),
            estimate_total=Sum("total", filter=estimate, default=0),
        )
        .order_by("currency")
    )
    return [dict(row) for row in rows if row["issued_count"] or row["estimate_count"]]
