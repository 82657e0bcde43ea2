"""Billing models: customers and the subjects attributed to them.

Subscriptions, entitlements and grants live in this module too (added below as they are built).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from core.models import TenantModel


class Customer(TenantModel):
    """A customer of the tenant. `key` is the tenant's own identifier (unique per organization among
    live customers); usage is attributed through `CustomerSubject` rows."""

    key = models.CharField(max_length=256, null=True, blank=True)  # noqa: DJ001 - NULL = no key (unique only when set)
    name = models.CharField(max_length=256)
    description = models.TextField(blank=True, default="")
    primary_email = models.CharField(max_length=320, blank=True, default="")
    currency = models.CharField(max_length=3, blank=True, default="")
    timezone = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="Billing time zone (IANA); empty = the organization's.",
    )
    billing_address = models.JSONField(null=True, blank=True)
    tax_ids = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    stripe_customer_id = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "key"],
                condition=Q(deleted_at__isnull=True),
                name="billing_customer_key_unique_live",
            ),
        ]
        indexes = [models.Index(fields=["organization", "name"])]

    def __str__(self) -> str:
        return self.key or self.name


class CustomerSubject(TenantModel):
    """A metering subject attributed to a customer. A subject belongs to at most one customer per
    organization: the unique constraint is the rule (the API maps violations to 409)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="subjects")
    subject_key = models.CharField(max_length=256)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subject_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "subject_key"], name="billing_subject_one_customer"
            ),
        ]
