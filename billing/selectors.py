"""Reads for billing. Other apps (invoicing, portal, metering's customer hook) call these."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Prefetch, Q, QuerySet

from billing.models import Customer, CustomerSubject
from core.errors import NotFound
from core.ids import is_ulid
from core.models import Organization


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
    if key:
        qs = qs.filter(key=key)
    if name:
        qs = qs.filter(name__icontains=name)
    if primary_email:
        qs = qs.filter(primary_email__icontains=primary_email)
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


def customer_subject_keys(*, customer: Customer) -> list[str]:
    return sorted(s.subject_key for s in customer.subjects.all())


def customers_annotate_current_subscription(
    *, organization: Organization, customers: list[Customer]
) -> list[Customer]:
    """Set `current_subscription_id` on each customer (one query; None until subscriptions exist)."""
    for c in customers:
        c.current_subscription_id = None  # type: ignore[attr-defined]
    return customers
