"""Writes for billing: customers (subscriptions, entitlements and grants below as they are built).

Every service is atomic, takes keyword-only arguments with the organization explicit, and writes an
audit row.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.entitlements.grants import grant_create, grant_void  # noqa: F401 - re-exported writes
from billing.entitlements.lifecycle import (  # noqa: F401 - re-exported writes
    entitlement_create,
    entitlement_delete,
    entitlement_override,
    entitlement_reset,
)
from billing.entitlements.snapshots import (  # noqa: F401 - re-exported writes
    entitlement_snapshot_refresh,
    entitlements_usage_landed,
)
from billing.entitlements.thresholds import (  # noqa: F401 - re-exported writes
    entitlement_thresholds_check,
    notification_rule_create,
)
from billing.models import Customer, CustomerSubject, Entitlement, Subscription
from billing.subscriptions.addons import subscription_addon_set  # noqa: F401 - re-exported writes
from billing.subscriptions.cancel import (  # noqa: F401 - re-exported writes
    subscription_cancel,
    subscription_unschedule_cancelation,
)
from billing.subscriptions.change import subscription_change, subscription_migrate  # noqa: F401
from billing.subscriptions.create import subscription_create  # noqa: F401 - re-exported writes
from billing.subscriptions.schedule import IMMEDIATE, NEXT_BILLING_CYCLE  # noqa: F401 - re-exported
from core.audit import Actor, audit_object
from core.errors import Conflict, ValidationFailed
from core.models import Organization
from core.money import is_currency

_UNSET: Any = object()


def customer_snapshot(customer: Customer) -> dict[str, Any]:
    return {
        "key": customer.key,
        "name": customer.name,
        "description": customer.description,
        "primaryEmail": customer.primary_email,
        "currency": customer.currency,
        "timezone": customer.timezone,
        "billingAddress": customer.billing_address,
        "taxIds": customer.tax_ids,
        "metadata": customer.metadata,
        "subjectKeys": sorted(s.subject_key for s in customer.subjects.all()),
        "deletedAt": customer.deleted_at.isoformat() if customer.deleted_at else None,
    }


def _validate(*, currency: str | None, timezone_name: str | None) -> None:
    if currency and not is_currency(currency):
        raise ValidationFailed(f"Unknown currency code {currency!r}.", field="currency")
    if timezone_name:
        try:
            ZoneInfo(timezone_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationFailed(f"Unknown time zone {timezone_name!r}.", field="timezone") from None


def _set_subjects(*, organization: Organization, customer: Customer, subject_keys: list[str]) -> None:
    wanted = list(dict.fromkeys(k for k in subject_keys))
    if any(not k for k in wanted):
        raise ValidationFailed("Subject keys must not be empty.", field="usageAttribution.subjectKeys")
    taken = (
        CustomerSubject.objects.filter(organization=organization, subject_key__in=wanted)
        .exclude(customer=customer)
        .values_list("subject_key", flat=True)
    )
    conflicting = sorted(taken)
    if conflicting:
        raise Conflict(
            f"Subject {conflicting[0]!r} already belongs to another customer.",
            field="usageAttribution.subjectKeys",
            extra={"conflictingSubjectKeys": conflicting},
        )
    CustomerSubject.objects.filter(customer=customer).exclude(subject_key__in=wanted).delete()
    existing = set(CustomerSubject.objects.filter(customer=customer).values_list("subject_key", flat=True))
    try:
        with transaction.atomic():
            CustomerSubject.objects.bulk_create(
                [
                    CustomerSubject(organization=organization, customer=customer, subject_key=k)
                    for k in wanted
                    if k not in existing
                ]
            )
    except IntegrityError:  # a concurrent writer took one of them between the check and the insert
        raise Conflict(
            "A subject already belongs to another customer.", field="usageAttribution.subjectKeys"
        ) from None


def _check_key(*, organization: Organization, key: str | None, exclude_id: str | None = None) -> None:
    if key is None:
        return
    if not key.strip():
        raise ValidationFailed("Key must not be blank.", field="key")
    qs = Customer.objects.filter(organization=organization, key=key, deleted_at__isnull=True)
    if exclude_id:
        qs = qs.exclude(id=exclude_id)
    if qs.exists():
        raise Conflict(f"A customer with key {key!r} already exists.", field="key")


def customer_create(
    *,
    organization: Organization,
    name: str,
    key: str | None = None,
    description: str = "",
    primary_email: str = "",
    currency: str = "",
    timezone_name: str = "",
    billing_address: dict | None = None,
    tax_ids: list | None = None,
    metadata: dict | None = None,
    subject_keys: list[str] | None = None,
    actor: Actor = None,
) -> Customer:
    _validate(currency=currency, timezone_name=timezone_name)
    if not name:
        raise ValidationFailed("Name is required.", field="name")
    try:
        with transaction.atomic():
            _check_key(organization=organization, key=key)
            customer = Customer.objects.create(
                organization=organization,
                key=key,
                name=name,
                description=description or "",
                primary_email=primary_email or "",
                currency=(currency or "").upper(),
                timezone=timezone_name or "",
                billing_address=billing_address,
                tax_ids=tax_ids or [],
                metadata=metadata or {},
            )
            _set_subjects(organization=organization, customer=customer, subject_keys=subject_keys or [])
            audit_object(
                customer,
                "customer.created",
                actor,
                after=customer_snapshot(customer),
            )
    except IntegrityError:
        raise Conflict(f"A customer with key {key!r} already exists.", field="key") from None
    return customer


def customer_update(
    *,
    organization: Organization,
    customer: Customer,
    name: Any = _UNSET,
    key: Any = _UNSET,
    description: Any = _UNSET,
    primary_email: Any = _UNSET,
    currency: Any = _UNSET,
    timezone_name: Any = _UNSET,
    billing_address: Any = _UNSET,
    tax_ids: Any = _UNSET,
    metadata: Any = _UNSET,
    subject_keys: Any = _UNSET,
    actor: Actor = None,
) -> Customer:
    """Update the given fields (unset fields keep their value: PATCH; the API passes all fields for PUT)."""
    assert customer.organization_id == organization.id
    if customer.deleted_at is not None:
        raise Conflict("The customer is deleted.")
    _validate(
        currency=None if currency is _UNSET else currency,
        timezone_name=None if timezone_name is _UNSET else timezone_name,
    )
    try:
        with transaction.atomic():
            before = customer_snapshot(customer)
            if key is not _UNSET:
                _check_key(organization=organization, key=key, exclude_id=customer.id)
                customer.key = key
            if name is not _UNSET:
                if not name:
                    raise ValidationFailed("Name is required.", field="name")
                customer.name = name
            fields: list[tuple[str, Any, Any]] = [
                ("description", description, ""),
                ("primary_email", primary_email, ""),
                ("timezone", timezone_name, ""),
                ("billing_address", billing_address, None),
                ("tax_ids", tax_ids, []),
                ("metadata", metadata, {}),
            ]
            for attr, value, default in fields:
                if value is not _UNSET:
                    setattr(customer, attr, value if value is not None else default)
            if currency is not _UNSET:
                customer.currency = (currency or "").upper()
            customer.save()
            if subject_keys is not _UNSET:
                _set_subjects(organization=organization, customer=customer, subject_keys=subject_keys or [])
            customer = Customer.objects.prefetch_related("subjects").get(pk=customer.pk)
            audit_object(
                customer,
                "customer.updated",
                actor,
                before=before,
                after=customer_snapshot(customer),
            )
    except IntegrityError:
        raise Conflict(f"A customer with key {key!r} already exists.", field="key") from None
    return customer


def customer_delete(*, organization: Organization, customer: Customer, actor: Actor = None) -> Customer:
    """Soft-delete: the row stays (invoices point at it), its key and subjects are freed, and its
    subscriptions are canceled immediately."""
    assert customer.organization_id == organization.id
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk, organization=organization)
        if locked.deleted_at is not None:
            return locked
        before = customer_snapshot(locked)
        locked.deleted_at = timezone.now()
        locked.save(update_fields=["deleted_at", "updated_at"])
        CustomerSubject.objects.filter(customer=locked).delete()
        _on_customer_deleted(organization=organization, customer=locked, actor=actor)
        audit_object(
            locked,
            "customer.deleted",
            actor,
            before=before,
            after={"deletedAt": locked.deleted_at.isoformat()},
        )
    return locked


def _on_customer_deleted(*, organization: Organization, customer: Customer, actor: Actor) -> None:
    """Cancel live subscriptions now and end the customer's entitlements."""
    now = timezone.now()
    for sub in Subscription.objects.filter(organization=organization, customer=customer).exclude(
        active_to__lte=now
    ):
        subscription_cancel(
            organization=organization, subscription=sub, timing=max(now, sub.active_from), actor=actor
        )
    Entitlement.objects.filter(organization=organization, customer=customer, deleted_at__isnull=True).update(
        deleted_at=now
    )
