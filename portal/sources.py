"""The portal's one door to the other apps: every read of metering, catalog, billing and invoicing data
goes through these thin adapters over those apps' selectors.

Keeping the imports here (lazy, inside functions) means the portal has a single place that knows the
other apps' interfaces. A missing or renamed selector fails loudly (ImportError/AttributeError), never
as a silently empty section.
"""

from __future__ import annotations

import importlib
from typing import Any

from core.errors import NotFound
from core.models import Organization


def _selector(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


# --- billing: customers ----------------------------------------------------------------------------
def customer_get(*, organization: Organization, id_or_key: str):
    from billing.selectors import customer_get as _get

    return _get(organization=organization, id_or_key=id_or_key)


def customer_by_id(*, organization: Organization, customer_id: str):
    """The live customer with exactly this id in this organization, or None (never another org's)."""
    try:
        customer = customer_get(organization=organization, id_or_key=customer_id)
    except NotFound:
        return None
    return customer if customer.id == customer_id else None


def customer_id_for_subject(*, organization: Organization, subject_key: str) -> str | None:
    from billing.selectors import customers_for_subjects

    return customers_for_subjects(organization=organization, subject_keys=[subject_key]).get(subject_key)


def customer_list(*, organization: Organization):
    from billing.selectors import customer_list as _list

    return _list(organization=organization)


# --- metering --------------------------------------------------------------------------------------
def meter_list(*, organization: Organization) -> list:
    fn = _selector("metering.selectors", "meter_list")
    return list(fn(organization=organization))


def unknown_meter_slugs(*, organization: Organization, slugs: list[str]) -> list[str]:
    if not slugs:
        return []
    known = {m.slug for m in meter_list(organization=organization)}
    return [s for s in slugs if s not in known]


def meter_get(*, organization: Organization, slug: str):
    fn = _selector("metering.selectors", "meter_get")
    if fn is None:
        return None
    try:
        return fn(organization=organization, id_or_slug=slug)
    except NotFound:
        return None


def meter_query(
    *,
    organization: Organization,
    meter,
    start,
    end,
    window_size: str | None,
    window_time_zone: str = "UTC",
    subjects: list[str],
    customer_id: str = "",
    group_by: list[str] | None = None,
    filter_group_by: dict[str, list[str]] | None = None,
    force_empty: bool = False,
) -> dict:
    """The meter query's JSON answer ({from, to, windowSize, data: [...]}) restricted to `subjects`
    (through `metering.selectors.meter_query`, which reads rollups below the watermark).

    With `customer_id`, the subjects count as that customer's (rows grouped and labelled by customer);
    `force_empty` (a scope with no subjects) answers no rows rather than "all subjects"."""
    body: dict[str, Any] = {
        "from": _iso(start),
        "to": _iso(end),
        "windowSize": window_size,
        "data": [],
    }
    if force_empty or not subjects:
        return body
    fn = _selector("metering.selectors", "meter_query")
    if fn is None:
        return body
    kwargs: dict[str, Any] = {
        "organization": organization,
        "meter": meter,
        "from_": start,
        "to": end,
        "window_size": window_size,
        "window_tz": window_time_zone,
        "group_by": [g for g in (group_by or []) if g != "subject"],
        "filter_group_by": filter_group_by or None,
    }
    if customer_id and "subject" not in (group_by or []):
        kwargs["customers"] = {customer_id: list(subjects)}
    else:
        kwargs["subjects"] = list(subjects)
    rows = fn(**kwargs)
    body["data"] = [
        {
            "value": float(r.value) if r.value is not None else None,
            "windowStart": _iso(r.window_start),
            "windowEnd": _iso(r.window_end),
            "subject": r.subject,
            "customerId": r.customer_id,
            "groupBy": r.group_by or {},
        }
        for r in rows
    ]
    return body


def meter_rows(**kwargs) -> list:
    """Raw `UsageRow`s from metering.selectors.meter_query (Decimal values), or [] without metering."""
    fn = _selector("metering.selectors", "meter_query")
    if fn is None:
        return []
    return list(fn(**kwargs))


def _iso(value) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


# --- billing: subscriptions, entitlements, grants ----------------------------------------------------
def subscription_current(*, organization: Organization, customer, with_addons: bool = True):
    """The customer's active subscription (add-ons prefetched unless with_addons=False), or None."""
    fn = _selector("billing.selectors", "subscription_list")
    if fn is None or customer is None:
        return None
    qs = fn(organization=organization, customer=customer, status="active")
    return (qs.prefetch_related("addons") if with_addons else qs).first()


def subscription_period(*, subscription, at=None):
    fn = _selector("billing.selectors", "subscription_current_period")
    if fn is None or subscription is None:
        return None
    return fn(subscription=subscription, at=at)


def entitlements_with_values(
    *, organization: Organization, customer, subjects: list[str], at=None
) -> list[dict]:
    """[{entitlement, value, grants}] for the customer's live entitlements (metered ones with a value).

    One bulk read in billing (`customer_entitlement_values`): entitlements, grants, resets and balance
    snapshots in one statement, then the usage tail since the snapshots with one metering query per meter.
    `subjects` is unused: billing reads the customer's subjects in the same statement."""
    fn = _selector("billing.selectors", "customer_entitlement_values")
    if fn is None or customer is None:
        return []
    rows = fn(organization=organization, customer=customer, at=at)
    return [{"entitlement": r.entitlement, "value": r.value, "grants": r.grants} for r in rows]


# --- invoicing ------------------------------------------------------------------------------------
def invoices_for_customer(*, organization: Organization, customer, limit: int = 24) -> list:
    """Invoices of the customer other than gathering and draft ones, newest first (one query)."""
    if customer is None:
        return []
    fn = _selector("invoicing.selectors", "invoice_list")
    if fn is None:
        return []
    statuses = ["issued", "paid", "payment_failed", "overdue", "uncollectible", "voided"]
    qs = fn(organization=organization, customer_id=customer.id, statuses=statuses)
    return list(qs.order_by("-period_start", "-id")[:limit])


def invoice_for_customer(*, organization: Organization, customer, invoice_id: str):
    """The customer's issued invoice with this id, or None (never another customer's, whatever the id)."""
    if customer is None:
        return None
    fn = _selector("invoicing.selectors", "invoice_get")
    if fn is None:
        return None
    try:
        invoice = fn(organization=organization, invoice_id=invoice_id)
    except NotFound:
        return None
    if invoice.customer_id != customer.id or invoice.status in ("gathering", "draft"):
        return None
    return invoice


def invoice_pdf(*, organization: Organization, invoice) -> bytes | None:
    """The invoice PDF rendered by invoicing (`invoicing.pdf.invoice_pdf(invoice)`), or None."""
    fn = _selector("invoicing.pdf", "invoice_pdf")
    if fn is None or invoice.organization_id != organization.id:
        return None
    return fn(invoice)


ESTIMATE_MAX_AGE_SECONDS = 15 * 60


def gathering_estimate(*, organization: Organization, customer) -> list:
    """The customer's gathering invoice(s) for the current period with their lines prefetched.

    Reads what invoicing stored; when it is missing or older than ESTIMATE_MAX_AGE_SECONDS, asks invoicing
    to refresh it first (`invoice_gathering_refresh`, idempotent), so the estimate is at most that stale."""
    if customer is None:
        return []
    fn = _selector("invoicing.selectors", "invoice_list")
    if fn is None:
        return []
    from django.db.models import Prefetch
    from django.utils import timezone

    def read() -> list:
        from invoicing.models import InvoiceLine

        qs = fn(organization=organization, customer_id=customer.id, statuses=["gathering"])
        qs = qs.filter(period_end__gt=timezone.now()).prefetch_related(
            Prefetch("lines", queryset=InvoiceLine.objects.order_by("position", "id"))
        )
        return list(qs.order_by("currency"))

    invoices = read()
    stale = not invoices or any(
        (timezone.now() - inv.updated_at).total_seconds() > ESTIMATE_MAX_AGE_SECONDS for inv in invoices
    )
    refresh = _selector("invoicing.services", "invoice_gathering_refresh")
    if stale and refresh is not None:
        refresh(organization=organization, customer=customer)
        invoices = read()
    return invoices


def invoices_queryset(*, organization: Organization):
    """Invoices of the organization (a queryset to aggregate), through invoicing's selector when it has
    one; None without the invoicing app."""
    fn = _selector("invoicing.selectors", "invoice_list")
    if fn is not None:
        return fn(organization=organization)
    from django.apps import apps

    try:
        model = apps.get_model("invoicing", "Invoice")
    except LookupError:
        return None
    return model.objects.filter(organization=organization)


def invoice_lines_queryset(*, organization: Organization):
    from django.apps import apps

    try:
        model = apps.get_model("invoicing", "InvoiceLine")
    except LookupError:
        return None
    return model.objects.filter(organization=organization)


def subscriptions_queryset(*, organization: Organization, status: str = ""):
    fn = _selector("billing.selectors", "subscription_list")
    if fn is None:
        return None
    return fn(organization=organization, status=status)


def subjects_for_customers(*, organization: Organization, customer_ids) -> dict[str, list[str]]:
    from billing.selectors import subjects_for_customers as _fn

    return _fn(organization=organization, customer_ids=customer_ids)


def feature_get(*, organization: Organization, key: str):
    fn = _selector("catalog.selectors", "feature_get")
    if fn is None:
        return None
    try:
        return fn(organization=organization, id_or_key=key)
    except NotFound:
        return None


def feature_list(*, organization: Organization) -> list:
    fn = _selector("catalog.selectors", "feature_list")
    if fn is None:
        return []
    return list(fn(organization=organization))
