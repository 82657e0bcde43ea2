"""Reads for billing. Other apps (invoicing, portal, metering's customer hook) call these."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from billing.entitlements.queries import (  # noqa: F401 - re-exported reads
    entitlement_get,
    entitlement_history,
    entitlement_list,
    grant_list,
)
from billing.entitlements.values import (  # noqa: F401 - re-exported reads
    EntitlementValue,
    EntitlementWithValue,
    customer_access,
    customer_entitlement_values,
    entitlement_value,
    entitlement_value_lookup,
)
from billing.models import Customer, CustomerSubject, Subscription, SubscriptionItem
from billing.periods import Period, period_at, periods_between
from billing.proration import prorate, proration_fraction
from core.errors import NotFound
from core.ids import is_ulid
from core.models import Organization
from core.querysets import filter_given, first_or_not_found


def customer_get(*, organization: Organization, id_or_key: str, include_deleted: bool = False) -> Customer:
    """The customer with this id or key (id wins). Raises NotFound (404) otherwise."""
    qs = Customer.objects.filter(organization=organization).prefetch_related("subjects")
    if not include_deleted:
        qs = qs.filter(deleted_at__isnull=True)
    customer = None
    if is_ulid(id_or_key):
        customer = qs.filter(id=id_or_key.upper()).first()
    if customer is None:
        customer = qs.filter(key=id_or_key).order_by("deleted_at").first()
    if customer is None:
        raise NotFound(f"No such customer: {id_or_key!r}.")
    return customer


def customer_list(
    *,
    organization: Organization,
    search: str = "",
    key: str = "",
    name: str = "",
    primary_email: str = "",
    subject: str = "",
    include_deleted: bool = False,
    order_by: str = "name",
) -> QuerySet[Customer]:
    qs = Customer.objects.filter(organization=organization).prefetch_related(
        Prefetch("subjects", queryset=CustomerSubject.objects.order_by("subject_key"))
    )
    if not include_deleted:
        qs = qs.filter(deleted_at__isnull=True)
    if search:
        qs = qs.filter(
            Q(key__icontains=search)
            | Q(name__icontains=search)
            | Q(primary_email__icontains=search)
            | Q(subjects__subject_key__icontains=search)
        ).distinct()
    qs = filter_given(
        qs, key=key or None, name__icontains=name or None, primary_email__icontains=primary_email or None
    )
    if subject:
        qs = qs.filter(subjects__subject_key=subject)
    ordering = {
        "name": ["name", "id"],
        "id": ["id"],
        "createdAt": ["created_at", "id"],
        "key": ["key", "id"],
    }.get(order_by, ["name", "id"])
    return qs.order_by(*ordering)


def customer_for_subject(*, organization: Organization, subject_key: str) -> Customer | None:
    """The live customer a metering subject is attributed to, or None."""
    row = (
        CustomerSubject.objects.select_related("customer")
        .filter(organization=organization, subject_key=subject_key, customer__deleted_at__isnull=True)
        .first()
    )
    return row.customer if row else None


def customers_for_subjects(*, organization: Organization, subject_keys: Iterable[str]) -> dict[str, str]:
    """{subject_key: customer_id} for the given subjects (one query)."""
    rows = CustomerSubject.objects.filter(
        organization=organization, subject_key__in=list(subject_keys), customer__deleted_at__isnull=True
    )
    return dict(rows.values_list("subject_key", "customer_id"))


def subjects_for_customers(
    *, organization: Organization, customer_ids: Iterable[str]
) -> dict[str, list[str]]:
    """{customer_id: [subject_key, ...]} (sorted) for the given customer ids (one query). Customers without
    subjects are present with an empty list."""
    ids = list(customer_ids)
    out: dict[str, list[str]] = {cid: [] for cid in ids}
    rows = (
        CustomerSubject.objects.filter(organization=organization, customer_id__in=ids)
        .order_by("subject_key")
        .values_list("customer_id", "subject_key")
    )
    for customer_id, subject_key in rows:
        out[customer_id].append(subject_key)
    return out


def customer_subject_map(
    *, organization: Organization, customer_ids: list[str] | None = None, subjects: list[str] | None = None
) -> dict[str, list[str]]:
    """Metering's customer resolver (registered in BillingConfig.ready through metering.hooks).

    With `customer_ids` (ids or keys): {the given ref: [subject keys]} for each live customer found (refs
    that match nothing are left out, metering answers 404). Otherwise {customer_id: [subjects]} for the
    customers owning `subjects`. Two queries at most.
    """
    if customer_ids is not None:
        refs = list(customer_ids)
        ids = [r.upper() for r in refs if is_ulid(r)]
        found = list(
            Customer.objects.filter(organization=organization, deleted_at__isnull=True)
            .filter(Q(id__in=ids) | Q(key__in=refs))
            .values_list("id", "key")
        )
        by_ref: dict[str, str] = {}
        for cid, key in found:
            by_ref.setdefault(cid, cid)
            if key:
                by_ref.setdefault(key, cid)
        subs = subjects_for_customers(organization=organization, customer_ids=[cid for cid, _ in found])
        out: dict[str, list[str]] = {}
        for ref in refs:
            owner = by_ref.get(ref.upper() if is_ulid(ref) else ref) or by_ref.get(ref)
            if owner:
                out[ref] = subs[owner]
        return out
    owners = customers_for_subjects(organization=organization, subject_keys=subjects or [])
    result: dict[str, list[str]] = {}
    for subject, cid in sorted(owners.items()):
        result.setdefault(cid, []).append(subject)
    return result


def customer_subject_keys(*, customer: Customer) -> list[str]:
    return sorted(s.subject_key for s in customer.subjects.all())


def customers_annotate_current_subscription(
    *, organization: Organization, customers: list[Customer], at: datetime | None = None
) -> list[Customer]:
    """Set `current_subscription_id` and `current_subscription` on each customer (one query)."""
    at = at or timezone.now()
    subs = (
        Subscription.objects.filter(
            organization=organization, customer_id__in=[c.id for c in customers], active_from__lte=at
        )
        .filter(Q(active_to__isnull=True) | Q(active_to__gt=at))
        .order_by("active_from")
    )
    by_customer = {s.customer_id: s for s in subs}
    for c in customers:
        sub = by_customer.get(c.id)
        c.current_subscription = sub  # type: ignore[attr-defined]
        c.current_subscription_id = sub.id if sub else None  # type: ignore[attr-defined]
    return customers


# --- subscriptions --------------------------------------------------------------------------------


def subscription_get(*, organization: Organization, subscription_id: str) -> Subscription:
    return first_or_not_found(
        Subscription.objects.filter(organization=organization, id=subscription_id).select_related("customer"),
        f"No such subscription: {subscription_id!r}.",
    )


def subscription_list(
    *, organization: Organization, customer: Customer | None = None, status: str = ""
) -> QuerySet[Subscription]:
    qs = Subscription.objects.filter(organization=organization).select_related("customer")
    if customer is not None:
        qs = qs.filter(customer=customer)
    now = timezone.now()
    if status == "active":
        qs = qs.filter(active_from__lte=now).filter(Q(active_to__isnull=True) | Q(active_to__gt=now))
    elif status == "scheduled":
        qs = qs.filter(active_from__gt=now)
    elif status == "ended":
        qs = qs.filter(active_to__lte=now)
    return qs.order_by("-active_from", "-id")


def subscription_status(sub: Subscription, at: datetime | None = None) -> str:
    at = at or timezone.now()
    if sub.active_from > at:
        return "scheduled"
    if sub.active_to is not None and sub.active_to <= at:
        return "inactive"
    if sub.active_to is not None:
        return "canceled"  # still active, ends at active_to
    return "active"


def subscription_current_period(*, subscription: Subscription, at: datetime | None = None) -> Period:
    return period_at(
        subscription.billing_anchor, subscription.billing_cadence, at or timezone.now(), subscription.timezone
    )


@dataclass(frozen=True)
class BillableItem:
    """One rate card to bill for one service period, over the span it was active in that period."""

    subscription_id: str
    item_id: str
    key: str
    name: str
    feature_key: str
    price: dict[str, Any] | None
    payment_term: str
    quantity: Decimal
    addon_key: str
    currency: str
    period_start: datetime
    period_end: datetime
    span_start: datetime
    span_end: datetime
    proration: Fraction  # span seconds / period seconds (exact)
    one_time: bool

    @property
    def prorated(self) -> bool:
        return self.proration != 1

    def flat_amount(self) -> Decimal | None:
        """For a flat price: amount * quantity * proration, rounded once (None for other price types)."""
        if not self.price or str(self.price.get("type", "")).lower() != "flat":
            return None
        amount = Decimal(str(self.price.get("amount", "0"))) * self.quantity
        return prorate(amount=amount, fraction=self.proration, currency=self.currency)


def billable_items(
    *, organization: Organization, customer: Customer, period_start: datetime, period_end: datetime
) -> list[BillableItem]:
    """Every subscription item of the customer active in [period_start, period_end), cut into the
    subscription's billing periods, with the exact active span and proration fraction of each.

    For in-advance flat fees the charge is `price.amount * quantity * proration` (see `flat_amount`);
    for usage prices bill the usage inside [span_start, span_end). One-time items (no cadence) appear
    once, in the window containing their start, with proration 1. One query.
    """
    items = (
        SubscriptionItem.objects.filter(
            organization=organization, subscription__customer=customer, active_from__lt=period_end
        )
        .filter(Q(active_to__isnull=True) | Q(active_to__gt=period_start))
        .select_related("subscription")
        .order_by("active_from", "key", "id")
    )
    out: list[BillableItem] = []
    for item in items:
        sub = item.subscription
        item_end = item.active_to
        lo = max(item.active_from, period_start)
        hi = min(item_end, period_end) if item_end else period_end
        if hi <= lo:
            continue
        common: dict[str, Any] = dict(
            subscription_id=sub.id,
            item_id=item.id,
            key=item.key,
            name=item.name,
            feature_key=item.feature_key,
            price=item.price,
            payment_term=item.payment_term,
            quantity=item.quantity,
            addon_key=item.addon_key,
            currency=sub.currency,
        )
        if not item.billing_cadence:
            if period_start <= item.active_from < period_end:
                out.append(
                    BillableItem(
                        **common,
                        period_start=item.active_from,
                        period_end=item.active_from,
                        span_start=item.active_from,
                        span_end=item.active_from,
                        proration=Fraction(1),
                        one_time=True,
                    )
                )
            continue
        for p in periods_between(sub.billing_anchor, item.billing_cadence, lo, hi, sub.timezone):
            # the part of this service period in which the item is active
            span_s = max(p.start, item.active_from)
            span_e = min(p.end, item_end) if item_end else p.end
            if span_e <= span_s:
                continue
            out.append(
                BillableItem(
                    **common,
                    period_start=p.start,
                    period_end=p.end,
                    span_start=span_s,
                    span_end=span_e,
                    one_time=False,
                    proration=proration_fraction(
                        span_start=span_s, span_end=span_e, period_start=p.start, period_end=p.end
                    ),
                )
            )
    return out
