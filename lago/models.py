"""What the Lago API needs stored: its `external_id` of a subscription, and each organization's key pair
for Lago's JWT webhook signatures.

Lago keys a subscription by the tenant's `external_id` and keeps it across plan changes; ours ends a
subscription at a plan change and starts a new one (`Subscription.previous`). Each of our subscriptions
that carries a Lago subscription gets one row, so the id finds the current one (the newest started) and
its history. Everything else Lago keys by is an existing field: a customer's `external_id` is the
customer key, a billable metric's `code` the feature key and meter slug, a plan's `code` the plan key.
"""

from __future__ import annotations

from django.db import models

from billing.models import Subscription
from core.fields import EncryptedTextField
from core.models import TenantModel


class SubscriptionExternalId(TenantModel):
    external_id = models.CharField(max_length=255)
    subscription = models.OneToOneField(Subscription, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "external_id"])]

    def __str__(self) -> str:
        return self.external_id


class WebhookSigningKey(TenantModel):
    """The organization's RSA key pair for webhooks signed with Lago's `jwt` algorithm (`lago.signing`)."""

    private_key = EncryptedTextField()  # PEM, PKCS#8
    public_key = models.TextField()  # PEM, SubjectPublicKeyInfo (served to receivers)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization"], name="lago_signing_key_once")]

    def __str__(self) -> str:
        return f"signing key of {self.organization_id}"
