"""Billing models: customers and the subjects attributed to them.

Subscriptions, entitlements and grants live in this module too (added below as they are built).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from core.models import TenantModel, unique_while_live


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
        constraints = [unique_while_live("key", name="billing_customer_key_unique_live")]
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


class Subscription(TenantModel):
    """A customer on one plan version from `active_from` until `active_to` (open-ended when null).

    A plan change ends this subscription at the change instant and starts a new one (same billing
    anchor), so every subscription is on exactly one plan version for its whole life (grandfathering).
    `plan_snapshot` keeps the plan as it was when subscribed (phases, rate cards), so later catalog
    edits never change a running subscription.
    """

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="subscriptions")
    plan_id = models.CharField(max_length=64, blank=True, default="")
    plan_key = models.CharField(max_length=256)
    plan_version = models.PositiveIntegerField()
    name = models.CharField(max_length=256)
    currency = models.CharField(max_length=3)
    timezone = models.CharField(max_length=64, default="UTC")
    billing_cadence = models.CharField(max_length=32, default="P1M")
    billing_anchor = models.DateTimeField()
    active_from = models.DateTimeField()
    active_to = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    plan_snapshot = models.JSONField(default=dict)
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-active_from", "-id"]
        indexes = [models.Index(fields=["organization", "customer", "active_from"])]


class SubscriptionPhase(TenantModel):
    """A phase of the plan as scheduled for this subscription: [starts_at, ends_at). Phases switch
    only at billing-period boundaries."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="phases")
    index = models.PositiveIntegerField()
    key = models.CharField(max_length=256)
    name = models.CharField(max_length=256)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at", "index"]


class SubscriptionItem(TenantModel):
    """One rate card (or add-on rate card) active on a subscription over [active_from, active_to).

    This is the timeline invoicing bills from: a flat in-advance fee over a partial period is prorated
    by the span's share of the period; usage-based prices bill usage inside the span.
    """

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="items")
    phase = models.ForeignKey(
        SubscriptionPhase, null=True, blank=True, on_delete=models.CASCADE, related_name="items"
    )
    key = models.CharField(max_length=256)
    name = models.CharField(max_length=256)
    feature_key = models.CharField(max_length=256, blank=True, default="")
    price = models.JSONField(null=True, blank=True)  # catalog price document (type, amount, tiers, ...)
    payment_term = models.CharField(max_length=16, default="in_advance")
    billing_cadence = models.CharField(max_length=32, blank=True, default="")  # "" = one-time
    quantity = models.DecimalField(default=1, max_digits=38, decimal_places=12)
    addon_key = models.CharField(max_length=256, blank=True, default="")
    entitlement_template = models.JSONField(null=True, blank=True)
    discounts = models.JSONField(null=True, blank=True)
    commitments = models.JSONField(null=True, blank=True)  # {"minimumAmount", "maximumAmount"} per period
    active_from = models.DateTimeField()
    active_to = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["active_from", "key"]
        indexes = [models.Index(fields=["organization", "subscription", "active_from"])]


class SubscriptionAddon(TenantModel):
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="addons")
    addon_key = models.CharField(max_length=256)
    addon_version = models.PositiveIntegerField(default=1)
    name = models.CharField(max_length=256, blank=True, default="")
    quantity = models.PositiveIntegerField()
    active_from = models.DateTimeField()
    active_to = models.DateTimeField(null=True, blank=True)
    snapshot = models.JSONField(default=dict)

    class Meta:
        ordering = ["active_from", "addon_key"]


class EntitlementType(models.TextChoices):
    METERED = "metered"
    BOOLEAN = "boolean"
    STATIC = "static"


class Entitlement(TenantModel):
    """A customer's access to a feature. Immutable apart from ending it: an override soft-deletes the
    old one and creates a new one. One live (not deleted, not ended) entitlement per customer+feature."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="entitlements")
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="entitlements"
    )
    feature_id = models.CharField(max_length=64, blank=True, default="")
    feature_key = models.CharField(max_length=256)
    type = models.CharField(max_length=10, choices=EntitlementType.choices)
    config = models.TextField(blank=True, default="")  # static: a JSON string, echoed back
    meter_slug = models.CharField(max_length=256, blank=True, default="")
    meter_group_by_filters = models.JSONField(default=dict, blank=True)
    is_soft_limit = models.BooleanField(default=False)
    issue_after_reset = models.DecimalField(null=True, blank=True, max_digits=38, decimal_places=12)
    issue_after_reset_priority = models.PositiveSmallIntegerField(default=1)
    preserve_overage_at_reset = models.BooleanField(default=False)
    usage_period_interval = models.CharField(max_length=32, blank=True, default="")
    usage_period_anchor = models.DateTimeField(null=True, blank=True)
    measure_usage_from = models.DateTimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    metadata = models.JSONField(default=dict, blank=True)
    active_from = models.DateTimeField()
    active_to = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["feature_key", "-active_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "customer", "feature_key"],
                condition=Q(deleted_at__isnull=True, active_to__isnull=True),
                name="billing_entitlement_one_live_per_feature",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "customer", "feature_key"]),
            models.Index(fields=["organization", "meter_slug"]),
        ]


class EntitlementReset(TenantModel):
    entitlement = models.ForeignKey(Entitlement, on_delete=models.CASCADE, related_name="resets")
    at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at"]


class Grant(TenantModel):
    """Credits on a metered entitlement (OpenMeter's grant). `id` order is creation order."""

    entitlement = models.ForeignKey(Entitlement, on_delete=models.CASCADE, related_name="grants")
    amount = models.DecimalField(max_digits=38, decimal_places=12)
    priority = models.PositiveSmallIntegerField(default=1)
    effective_at = models.DateTimeField()
    expiration_duration = models.CharField(max_length=8, blank=True, default="")
    expiration_count = models.PositiveIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    min_rollover = models.DecimalField(default=0, max_digits=38, decimal_places=12)
    max_rollover = models.DecimalField(default=0, max_digits=38, decimal_places=12)
    recurrence_interval = models.CharField(max_length=32, blank=True, default="")
    recurrence_anchor = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=32, default="api")  # api | issue_after_reset | subscription
    voided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["effective_at", "id"]
        indexes = [models.Index(fields=["organization", "entitlement"])]


class BalanceSnapshot(TenantModel):
    """Engine state of a metered entitlement at `at` (everything before `at` burnt). Maintained by a
    Celery task; value reads resume from the newest one and burn only the tail. A late event older than a
    snapshot deletes it (see services.entitlement_usage_landed)."""

    entitlement = models.ForeignKey(Entitlement, on_delete=models.CASCADE, related_name="snapshots")
    at = models.DateTimeField()
    period_start = models.DateTimeField()
    grant_balances = models.JSONField(default=dict)
    usage = models.DecimalField(max_digits=38, decimal_places=12)
    overage = models.DecimalField(max_digits=38, decimal_places=12)
    total_available = models.DecimalField(default=0, max_digits=38, decimal_places=12)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at"]
        constraints = [
            models.UniqueConstraint(fields=["entitlement", "at"], name="billing_snapshot_unique_at")
        ]


class NotificationRule(TenantModel):
    """Balance threshold rule for a feature: thresholds are [{"type": "PERCENT"|"BALANCE_VALUE"|"USAGE_VALUE",
    "value": "75"}]. Evaluated when usage lands."""

    name = models.CharField(max_length=256)
    feature_key = models.CharField(max_length=256)
    thresholds = models.JSONField(default=list)
    disabled = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]


class NotificationEvent(TenantModel):
    """An outbound notification (e.g. `entitlements.balance.threshold`) waiting to be delivered as a
    webhook. `dedupe_key` makes each threshold fire once per usage period."""

    type = models.CharField(max_length=100)
    payload = models.JSONField()
    rule = models.ForeignKey(
        NotificationRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dedupe_key = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "dedupe_key"], name="billing_notification_event_dedupe"
            )
        ]
