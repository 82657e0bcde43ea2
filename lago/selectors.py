"""Lago's reads: our selectors' answers in Lago's shapes (snake_case, `amount_cents`, ISO times in UTC), for
billable metrics, plans, customers, subscriptions, events and webhook endpoints; what is billed (usage,
invoices, wallets) is `lago.invoice_selectors`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.utils import timezone

from billing import selectors as billing_selectors
from billing.models import Customer, Subscription
from billing.periods import period_at
from catalog import selectors as catalog_selectors
from catalog.models import PlanVersion
from core.errors import NotFound
from core.models import Organization
from invoicing.models import WebhookEndpoint
from lago import filters, mapping, plans, wire
from lago.mapping import SIGNATURE_ALGOS, lago_event_types
from lago.models import SubscriptionExternalId
from lago.wire import iso
from metering import selectors as metering_selectors

ZERO = Decimal(0)


# --- pagination ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    number: int
    per_page: int


def paginate(items: list[Any] | QuerySet, page: Page) -> tuple[list[Any], dict[str, Any]]:
    """Lago's `meta`: current_page, next_page, prev_page, total_pages, total_count."""
    total = items.count() if isinstance(items, QuerySet) else len(items)
    pages = max(1, -(-total // page.per_page))
    start = (page.number - 1) * page.per_page
    chunk = list(items[start : start + page.per_page])
    return chunk, {
        "current_page": page.number,
        "next_page": page.number + 1 if page.number < pages else None,
        "prev_page": page.number - 1 if page.number > 1 else None,
        "total_pages": pages,
        "total_count": total,
    }


# --- billable metrics ------------------------------------------------------------------------------


def metric_json(
    *, organization: Organization, feature: Any, meters: dict[str, Any] | None = None
) -> dict[str, Any]:
    meter = (meters or {}).get(feature.meter_slug) or metering_selectors.meter_get(
        organization=organization, id_or_slug=feature.meter_slug
    )
    spec = mapping.MeterSpec(
        key=feature.key,
        name=feature.name,
        description=meter.description,
        aggregation=meter.aggregation,
        value_property=meter.value_property,
        group_by=meter.group_by or {},
    )
    return mapping.metric_to_lago(spec, lago_id=feature.id, created_at=feature.created_at)


def metric_get(*, organization: Organization, code: str) -> dict[str, Any]:
    try:
        feature = catalog_selectors.feature_get(organization=organization, id_or_key=code)
    except NotFound:
        raise NotFound("billable_metric_not_found") from None
    if not feature.meter_slug or feature.archived_at is not None or filters.is_filter_feature(feature.key):
        raise NotFound("billable_metric_not_found")
    return metric_json(organization=organization, feature=feature)


def metric_list(*, organization: Organization, page: Page) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    features = (
        catalog_selectors.feature_list(organization=organization)
        .exclude(meter_slug="")
        .exclude(key__startswith=filters.FEATURE_PREFIX + "_")  # a charge filter's feature
    )
    chunk, meta = paginate(features, page)
    meters = {m.slug: m for m in metering_selectors.meter_list(organization=organization)}
    return [
        metric_json(organization=organization, feature=f, meters=meters)
        for f in chunk
        if f.meter_slug in meters
    ], meta


# --- plans -------------------------------------------------------------------------------------------


def _metrics_by_id(organization: Organization) -> dict[str, plans.Metric]:
    return {
        f.id: plans.Metric(id=f.id, code=f.key)
        for f in catalog_selectors.feature_list(organization=organization, include_archived=True)
    }


def plan_json(plan: PlanVersion, *, metrics: dict[str, plans.Metric]) -> dict[str, Any]:
    return plans.plan_to_lago(
        lago_id=plan.id,
        key=plan.key,
        name=plan.name,
        description=plan.description,
        currency=plan.currency,
        cadence=plan.billing_cadence,
        phases=plan.phases,
        metadata=plan.metadata or {},
        created_at=plan.created_at,
        metrics=metrics,
    )


def plan_get(*, organization: Organization, code: str) -> dict[str, Any]:
    plan = catalog_selectors.plan_list(organization=organization, key=code, status="published").first()
    if plan is None:
        raise NotFound("plan_not_found")
    return plan_json(plan, metrics=_metrics_by_id(organization))


def plan_list(*, organization: Organization, page: Page) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    versions = catalog_selectors.plan_list(organization=organization, status="published")
    chunk, meta = paginate(versions, page)
    metrics = _metrics_by_id(organization)
    return [plan_json(p, metrics=metrics) for p in chunk], meta


# --- customers ------------------------------------------------------------------------------------


def customer_by_external_id(*, organization: Organization, external_id: str) -> Customer:
    customer = billing_selectors.customer_list(organization=organization, key=external_id).first()
    if customer is None:
        raise NotFound("customer_not_found")
    return customer


def customer_json(customer: Customer, *, organization: Organization) -> dict[str, Any]:
    address = customer.billing_address or {}
    meta = customer.metadata or {}
    tax_ids = customer.tax_ids or []
    first_tax = tax_ids[0] if tax_ids else None
    return {
        "lago_id": customer.id,
        "external_id": customer.key,
        "name": customer.name,
        "legal_name": meta.get("legal_name"),
        "legal_number": meta.get("legal_number"),
        "firstname": meta.get("firstname"),
        "lastname": meta.get("lastname"),
        "url": meta.get("url"),
        "email": customer.primary_email or None,
        "currency": customer.currency or None,
        "timezone": customer.timezone or None,
        "applicable_timezone": customer.timezone or organization.timezone or "UTC",
        "address_line1": address.get("line1"),
        "address_line2": address.get("line2"),
        "city": address.get("city"),
        "zipcode": address.get("postalCode"),
        "state": address.get("state"),
        "country": address.get("country"),
        "phone": address.get("phoneNumber"),
        "tax_identification_number": (first_tax.get("value") if isinstance(first_tax, dict) else first_tax),
        "customer_type": None,
        "net_payment_term": None,
        "metadata": [],
        "taxes": [],
        "created_at": iso(customer.created_at),
        "updated_at": iso(customer.updated_at),
    }


def customer_list(*, organization: Organization, page: Page) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    customers = (
        billing_selectors.customer_list(organization=organization)
        .exclude(key=None)
        .order_by("created_at", "id")
    )
    chunk, meta = paginate(customers, page)
    return [customer_json(c, organization=organization) for c in chunk], meta


# --- subscriptions -------------------------------------------------------------------------------


_UNKNOWN: Any = object()


def subscription_json(
    sub: Subscription, *, external_id: str, now: datetime | None = None, nxt: Any = _UNKNOWN
) -> dict[str, Any]:
    """`nxt`: the subscription scheduled to follow (None when there is none; looked up when not given)."""
    now = now or timezone.now()
    status = mapping.subscription_status(active_from=sub.active_from, active_to=sub.active_to, now=now)
    if status == "terminated" and sub.cancel_requested_at is not None and sub.active_to == sub.active_from:
        status = "canceled"  # ended before it started: Lago's canceled
    if nxt is _UNKNOWN:
        nxt = Subscription.objects.filter(organization_id=sub.organization_id, previous=sub).first()
    period = None
    if status == "active":
        period = period_at(sub.billing_anchor, sub.billing_cadence, now, sub.timezone)
    local_anchor = sub.billing_anchor.astimezone(ZoneInfo(sub.timezone or "UTC"))
    calendar = mapping.calendar_anchor(local_anchor, sub.billing_cadence) == local_anchor
    billing_time = "calendar" if calendar else "anniversary"
    return {
        "lago_id": sub.id,
        "external_id": external_id,
        "lago_customer_id": sub.customer_id,
        "external_customer_id": sub.customer.key,
        "name": sub.name,
        "plan_code": sub.plan_key,
        "plan_amount_cents": None,
        "plan_amount_currency": sub.currency,
        "status": status,
        "billing_time": billing_time,
        "subscription_at": iso(sub.active_from),
        "started_at": iso(sub.active_from) if sub.active_from <= now else None,
        "terminated_at": iso(sub.active_to) if sub.active_to and sub.active_to <= now else None,
        "ending_at": iso(sub.active_to) if sub.active_to and sub.active_to > now else None,
        "canceled_at": iso(sub.cancel_requested_at),
        "created_at": iso(sub.created_at),
        "previous_plan_code": sub.previous.plan_key if sub.previous_id and sub.previous else None,
        "next_plan_code": nxt.plan_key if nxt else None,
        "downgrade_plan_date": iso(nxt.active_from) if nxt else None,
        "current_billing_period_started_at": iso(period.start) if period else None,
        "current_billing_period_ending_at": iso(period.end) if period else None,
        "trial_ended_at": None,
    }


def subscription_list(
    *,
    organization: Organization,
    page: Page,
    external_customer_id: str = "",
    plan_code: str = "",
    statuses: list[str],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One row per Lago subscription (external id): its current subscription. Default status: active."""
    now = timezone.now()
    rows = (
        SubscriptionExternalId.objects.filter(organization=organization)
        .select_related("subscription", "subscription__customer", "subscription__previous")
        .order_by("subscription__active_from", "id")
    )
    if external_customer_id:
        rows = rows.filter(subscription__customer__key=external_customer_id)
    current: dict[str, Subscription] = {}
    for row in rows:
        sub = row.subscription
        if row.external_id not in current or sub.active_from <= now:
            current[row.external_id] = sub
    following = {
        s.previous_id: s
        for s in Subscription.objects.filter(organization=organization, previous__in=list(current.values()))
    }
    out = []
    for external_id, sub in current.items():
        body = subscription_json(sub, external_id=external_id, now=now, nxt=following.get(sub.id))
        if plan_code and body["plan_code"] != plan_code:
            continue
        if body["status"] not in (statuses or ["active"]):
            continue
        out.append(body)
    return paginate(out, page)


# --- events ----------------------------------------------------------------------------------------


def event_json(cloud: dict[str, Any], *, created_at: datetime | None = None) -> dict[str, Any]:
    when = cloud.get("time")
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    return {
        "lago_id": None,
        "transaction_id": cloud["id"],
        "lago_customer_id": None,
        "lago_subscription_id": None,
        "external_subscription_id": cloud["subject"],
        "code": cloud["type"],
        "timestamp": iso(when),
        "properties": cloud.get("data") or {},
        "precise_total_amount_cents": None,
        "created_at": iso(created_at or timezone.now()),
    }


def event_get(*, organization: Organization, transaction_id: str) -> dict[str, Any]:
    found = [
        e
        for e in metering_selectors.events_list(organization=organization, id=transaction_id, limit=1000)
        if e.event["source"] == wire.EVENT_SOURCE
        and not str(e.validation_error or "").startswith("duplicate")  # a resend that conflicted
    ]
    if found:
        return event_json(found[0].event, created_at=found[0].stored_at)
    raise NotFound("event_not_found")


EVENTS_LIST_MAX = 1000  # metering's event log reads at most this many of the newest events


def event_list(
    *,
    organization: Organization,
    page: Page,
    external_subscription_id: str | None = None,
    code: str | None = None,
    timestamp_from: datetime | None = None,
    timestamp_to: datetime | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Lago's `GET /events`: events sent through this API, newest first, from the newest 1000 that match
    (`metering.selectors.events_list`); a resend that conflicted with the stored event is not listed."""
    found = metering_selectors.events_list(
        organization=organization,
        subject=external_subscription_id,
        type=code,
        from_=timestamp_from,
        to=timestamp_to,
        limit=EVENTS_LIST_MAX,
    )
    rows = [
        event_json(e.event, created_at=e.stored_at)
        for e in found
        if e.event["source"] == wire.EVENT_SOURCE
        and not str(e.validation_error or "").startswith("duplicate")
    ]
    return paginate(rows, page)


# --- webhook endpoints ------------------------------------------------------------------------------


def webhook_endpoint_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "lago_id": endpoint.id,
        "lago_organization_id": endpoint.organization_id,
        "webhook_url": endpoint.url,
        "signature_algo": SIGNATURE_ALGOS.get(endpoint.format, "hmac"),
        "name": endpoint.description or None,
        "event_types": lago_event_types(list(endpoint.event_types)),
        "created_at": iso(endpoint.created_at),
    }


def webhook_endpoint_list(
    *, organization: Organization, page: Page
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The organization's Lago-format endpoints (its Standard Webhooks endpoints are not Lago's)."""
    qs = WebhookEndpoint.objects.filter(organization=organization, format__in=list(SIGNATURE_ALGOS)).order_by(
        "created_at", "id"
    )
    chunk, meta = paginate(qs, page)
    return [webhook_endpoint_json(e) for e in chunk], meta
