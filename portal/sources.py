"""The portal's one door to the other apps: every read of metering, catalog, billing and invoicing data
goes through these thin adapters over those apps' selectors.

Keeping the imports here (lazy, inside functions) means the portal has a single place that knows the
other apps' interfaces, and that a section of the portal degrades to "not available yet" when a
dependency is missing instead of breaking the page.
"""

from __future__ import annotations

import importlib
from typing import Any

from core.errors import NotFound
from core.models import Organization


def _selector(module: str, name: str) -> Any | None:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    return getattr(mod, name, None)


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
    if fn is not None:
        return list(fn(organization=organization))
    try:
        from metering.models import Meter
    except ImportError:
        return []
    return list(Meter.objects.filter(organization=organization, deleted_at__isnull=True).order_by("slug"))


def unknown_meter_slugs(*, organization: Organization, slugs: list[str]) -> list[str]:
    if not slugs:
        return []
    known = {m.slug for m in meter_list(organization=organization)}
    return [s for s in slugs if s not in known]


def meter_get(*, organization: Organization, slug: str):
    for meter in meter_list(organization=organization):
        if meter.slug == slug or meter.id == slug:
            return meter
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
    group_by: list[str] | None = None,
    force_empty: bool = False,
) -> dict:
    """The meter query's JSON answer ({from, to, windowSize, data: [...]}) restricted to `subjects`.

    `force_empty` (a scope with no subjects) answers no rows rather than "all subjects"."""
    body: dict[str, Any] = {
        "from": start.isoformat().replace("+00:00", "Z") if start else None,
        "to": end.isoformat().replace("+00:00", "Z") if end else None,
        "windowSize": window_size,
        "data": [],
    }
    if force_empty or not subjects:
        return body
    fn = _selector("metering.selectors", "meter_query")
    if fn is None:
        return body
    return _metering_query(
        fn,
        organization=organization,
        meter=meter,
        start=start,
        end=end,
        window_size=window_size,
        window_time_zone=window_time_zone,
        subjects=subjects,
        group_by=group_by or [],
    )


def _metering_query(fn, **kwargs) -> dict:  # adapted to metering.selectors.meter_query once it lands
    return fn(**kwargs)


# --- billing: subscriptions, entitlements, grants ----------------------------------------------------
def subscription_current(*, organization: Organization, customer):
    """The customer's active subscription (with add-ons prefetched), or None."""
    fn = _selector("billing.selectors", "subscription_list")
    if fn is None:
        return None
    return (
        fn(organization=organization, customer=customer, status="active").prefetch_related("addons").first()
    )


def subscription_period(*, subscription, at=None):
    fn = _selector("billing.selectors", "subscription_current_period")
    if fn is None or subscription is None:
        return None
    return fn(subscription=subscription, at=at)


def entitlements_with_values(*, organization: Organization, customer, at=None) -> list[dict]:
    """[{entitlement, value, grants}] for the customer's live entitlements (metered ones with a value)."""
    list_fn = _selector("billing.entitlements", "entitlement_list")
    value_fn = _selector("billing.entitlements", "entitlement_value")
    grant_fn = _selector("billing.entitlements", "grant_list")
    if list_fn is None or value_fn is None or customer is None:
        return []
    from django.utils import timezone

    at = at or timezone.now()
    subjects = sorted(s.subject_key for s in customer.subjects.all())
    ents = list(list_fn(organization=organization, customer=customer, active_at=at))
    grants_by_ent: dict[str, list] = {e.id: [] for e in ents}
    if grant_fn is not None and ents:
        for g in grant_fn(organization=organization).filter(entitlement_id__in=list(grants_by_ent)):
            grants_by_ent[g.entitlement_id].append(g)
    out = []
    for ent in ents:
        value = value_fn(organization=organization, entitlement=ent, at=at, subjects=subjects)
        out.append({"entitlement": ent, "value": value, "grants": grants_by_ent.get(ent.id, [])})
    return out


# --- invoicing ------------------------------------------------------------------------------------
def invoices_for_customer(*, organization: Organization, customer, limit: int = 24) -> list:
    """Issued (non-gathering) invoices of the customer, newest first."""
    if customer is None:
        return []
    fn = _selector("invoicing.selectors", "invoice_list")
    if fn is None:
        return []
    qs = fn(organization=organization, customer=customer)
    return [inv for inv in qs[: limit + 5] if inv.status not in ("gathering",)][:limit]


def invoice_for_customer(*, organization: Organization, customer, invoice_id: str):
    """The customer's invoice with this id, or None (never another customer's, whatever the id)."""
    if customer is None:
        return None
    fn = _selector("invoicing.selectors", "invoice_get")
    if fn is None:
        return None
    try:
        invoice = fn(organization=organization, invoice_id=invoice_id)
    except NotFound:
        return None
    return invoice if invoice.customer_id == customer.id else None


def invoice_pdf(*, organization: Organization, invoice) -> bytes | None:
    fn = _selector("invoicing.selectors", "invoice_pdf") or _selector("invoicing.pdf", "invoice_pdf")
    if fn is None:
        return None
    return fn(organization=organization, invoice=invoice)


def gathering_estimate(*, organization: Organization, customer):
    """The current period's gathering invoice with its lines as an estimate, or None."""
    if customer is None:
        return None
    fn = _selector("invoicing.selectors", "gathering_invoice_preview")
    if fn is None:
        return None
    return fn(organization=organization, customer=customer)
