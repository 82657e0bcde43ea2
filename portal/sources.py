"""The portal's reads of the other apps: thin adapters over metering's, catalog's, billing's and
invoicing's selectors (imported directly), each scoped to what a portal credential may see: one
organization, one customer and its subjects. Portal pages and the portal API read other apps only here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Prefetch
from django.utils import timezone

from billing import selectors as billing_selectors
from billing.models import Customer, Subscription
from billing.sources import PlanSpec, plan_spec_get
from billing.subscriptions.schedule import IMMEDIATE, change_default_timing
from catalog import selectors as catalog_selectors
from catalog.models import PlanVersion
from core.errors import NotFound
from core.models import Organization
from invoicing import selectors as invoicing_selectors
from invoicing.credit_notes import credit_note_of
from invoicing.models import Invoice, InvoiceLine
from invoicing.pdf import credit_note_pdf as render_credit_note_pdf
from invoicing.pdf import invoice_pdf as render_invoice_pdf
from invoicing.services import invoice_gathering_refresh
from metering import selectors as metering_selectors
from metering.models import Meter


# --- billing: customers ----------------------------------------------------------------------------
def customer_get(*, organization: Organization, id_or_key: str) -> Customer:
    return billing_selectors.customer_get(organization=organization, id_or_key=id_or_key)


def customer_id_for_subject(*, organization: Organization, subject_key: str) -> str | None:
    owners = billing_selectors.customers_for_subjects(organization=organization, subject_keys=[subject_key])
    return owners.get(subject_key)


# --- metering --------------------------------------------------------------------------------------
def meter_list(*, organization: Organization) -> list[Meter]:
    return list(metering_selectors.meter_list(organization=organization))


def unknown_meter_slugs(*, organization: Organization, slugs: list[str]) -> list[str]:
    if not slugs:
        return []
    known = {m.slug for m in meter_list(organization=organization)}
    return [s for s in slugs if s not in known]


def meter_get(*, organization: Organization, slug: str) -> Meter | None:
    try:
        return metering_selectors.meter_get(organization=organization, id_or_slug=slug)
    except NotFound:
        return None


def meter_query(
    *,
    organization: Organization,
    meter: Meter,
    start: datetime,
    end: datetime,
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
    rows = metering_selectors.meter_query(**kwargs)
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


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


# --- billing: subscriptions, entitlements, grants ----------------------------------------------------
def subscription_current(
    *, organization: Organization, customer: Customer | None, with_addons: bool = True
) -> Subscription | None:
    """The customer's active subscription (add-ons prefetched unless with_addons=False), or None."""
    if customer is None:
        return None
    qs = billing_selectors.subscription_list(organization=organization, customer=customer, status="active")
    return (qs.prefetch_related("addons") if with_addons else qs).first()


def subscription_period(*, subscription: Subscription | None, at: datetime | None = None):
    if subscription is None:
        return None
    return billing_selectors.subscription_current_period(subscription=subscription, at=at)


def entitlements_with_values(
    *, organization: Organization, customer: Customer | None, subjects: list[str], at=None
) -> list[dict]:
    """[{entitlement, value, grants}] for the customer's live entitlements (metered ones with a value).

    One bulk read in billing (`customer_entitlement_values`): entitlements, grants, resets and balance
    snapshots in one statement, then the usage tail since the snapshots with one metering query per meter.
    `subjects` is unused: billing reads the customer's subjects in the same statement."""
    if customer is None:
        return []
    rows = billing_selectors.customer_entitlement_values(organization=organization, customer=customer, at=at)
    return [{"entitlement": r.entitlement, "value": r.value, "grants": r.grants} for r in rows]


def subscription_successor(*, organization: Organization, subscription: Subscription) -> Subscription | None:
    """The subscription a scheduled plan change starts (its `previous` is this one), or None."""
    return (
        billing_selectors.subscription_list(organization=organization).filter(previous=subscription).first()
    )


def plans_published(*, organization: Organization) -> list[PlanVersion]:
    """The organization's published plans, one per key (the newest published version). One query."""
    latest: dict[str, PlanVersion] = {}
    for plan in catalog_selectors.plan_list(organization=organization, status="published"):
        latest.setdefault(plan.key, plan)
    return list(latest.values())


def plan_choices(*, organization: Organization, subscription: Subscription, keys: list[str]) -> list[dict]:
    """The published plans among `keys` other than the subscription's own, each with when a change to it
    takes effect (billing's rule, `change_default_timing`: an upgrade now, a downgrade at the end of the
    billing period): [{plan, upgrade}] in one query."""
    if not keys:
        return []
    current = (
        PlanSpec.from_json(subscription.plan_snapshot)
        if subscription.plan_snapshot
        else plan_spec_get(
            organization=organization, key=subscription.plan_key, version=subscription.plan_version
        )
    )
    latest: dict[str, PlanVersion] = {}
    for plan in catalog_selectors.plan_list(organization=organization, key=keys, status="published"):
        latest.setdefault(plan.key, plan)  # newest version first
    out = []
    for key in keys:
        if key not in latest or key == subscription.plan_key:
            continue
        plan = latest[key]
        spec = PlanSpec.from_json(
            {
                "id": plan.id,
                "key": plan.key,
                "version": plan.version,
                "name": plan.name,
                "currency": plan.currency,
                "billingCadence": plan.billing_cadence,
                "phases": plan.phases,
            }
        )
        out.append({"plan": plan, "upgrade": change_default_timing(current, spec) == IMMEDIATE})
    return out


# --- invoicing ------------------------------------------------------------------------------------
CUSTOMER_STATUSES = ["issued", "paid", "payment_failed", "overdue", "uncollectible", "voided"]


def invoices_for_customer(
    *, organization: Organization, customer: Customer | None, limit: int = 24
) -> list[Invoice]:
    """Invoices of the customer other than gathering and draft ones, newest first (one query)."""
    if customer is None:
        return []
    qs = invoicing_selectors.invoice_list(
        organization=organization, customer_id=customer.id, statuses=CUSTOMER_STATUSES
    )
    return list(qs.order_by("-period_start", "-id")[:limit])


def invoice_for_customer(
    *, organization: Organization, customer: Customer | None, invoice_id: str
) -> Invoice | None:
    """The customer's issued invoice with this id, or None (never another customer's, whatever the id)."""
    if customer is None:
        return None
    try:
        invoice = invoicing_selectors.invoice_get(organization=organization, invoice_id=invoice_id)
    except NotFound:
        return None
    if invoice.customer_id != customer.id or invoice.status in ("gathering", "draft"):
        return None
    return invoice


def invoice_pdf(*, organization: Organization, invoice: Invoice) -> bytes | None:
    """The invoice PDF rendered by invoicing, or None for another organization's invoice."""
    if invoice.organization_id != organization.id:
        return None
    return render_invoice_pdf(invoice)


def credit_note_pdf(*, organization: Organization, invoice: Invoice) -> tuple[str, bytes] | None:
    """(number, PDF) of the invoice's credit note, or None (no credit note, another organization's)."""
    note = credit_note_of(invoice) if invoice.organization_id == organization.id else None
    return (note.number, render_credit_note_pdf(note)) if note is not None else None


ESTIMATE_MAX_AGE_SECONDS = 15 * 60


def _gathering(organization: Organization, customer: Customer) -> list[Invoice]:
    qs = invoicing_selectors.invoice_list(
        organization=organization, customer_id=customer.id, statuses=["gathering"]
    )
    qs = qs.filter(period_end__gt=timezone.now()).prefetch_related(
        Prefetch("lines", queryset=InvoiceLine.objects.order_by("position", "id"))
    )
    return list(qs.order_by("currency"))


def gathering_estimate(*, organization: Organization, customer: Customer | None) -> list[Invoice]:
    """The customer's gathering invoice(s) for the current period with their lines prefetched.

    Reads what invoicing stored; when it is missing or older than ESTIMATE_MAX_AGE_SECONDS, asks invoicing
    to refresh it first (`invoice_gathering_refresh`, idempotent), so the estimate is at most that stale."""
    if customer is None:
        return []
    invoices = _gathering(organization, customer)
    now = timezone.now()
    stale = not invoices or any(
        (now - inv.updated_at).total_seconds() > ESTIMATE_MAX_AGE_SECONDS for inv in invoices
    )
    if stale:
        invoice_gathering_refresh(organization=organization, customer=customer)
        invoices = _gathering(organization, customer)
    return invoices


# --- catalog --------------------------------------------------------------------------------------
def feature_get(*, organization: Organization, key: str):
    try:
        return catalog_selectors.feature_get(organization=organization, id_or_key=key)
    except NotFound:
        return None


def feature_list(*, organization: Organization) -> list:
    return list(catalog_selectors.feature_list(organization=organization))
