"""Portal models: access tokens for a customer's self-service portal.

Everything else the portal shows is read through the other apps' selectors (see portal/sources.py).
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from core.models import TenantModel


class PortalToken(TenantModel):
    """A signed, expiring portal credential for one customer (or one subject).

    The token string itself is never stored: it is `signing.dumps({"o": org id, "t": this id, "e": expiry})`,
    so only the signature proves it. This row is the jti: it lets tokens be listed and invalidated, and
    every request checks it (invalidation works at once).
    """

    subject = models.CharField(max_length=256, blank=True, default="")
    customer = models.ForeignKey(
        "billing.Customer",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The customer the token is scoped to (also set for a subject token when the subject is attributed).",
    )
    allowed_meter_slugs = ArrayField(models.CharField(max_length=256), default=list, blank=True)
    expires_at = models.DateTimeField()
    invalidated_at = models.DateTimeField(null=True, blank=True)
    created_by_label = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-created_at"]),
            models.Index(fields=["organization", "subject"]),
            models.Index(fields=["organization", "customer_id"]),
        ]

    def __str__(self) -> str:
        return f"portal token {self.id} ({self.subject or self.customer_id})"

    @property
    def is_active(self) -> bool:
        return self.invalidated_at is None and self.expires_at > timezone.now()


class PortalSettings(TenantModel):
    """What an organization lets its customers do in the portal. Self-service (changing plan among
    `plan_keys`, canceling at the end of the billing period) is off until an admin turns it on."""

    self_service = models.BooleanField(default=False)
    plan_keys = ArrayField(models.CharField(max_length=256), default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization"], name="portal_settings_one_per_org")]

    def __str__(self) -> str:
        return f"portal settings of {self.organization_id}"
