from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from core.ids import new_ulid


class Organization(models.Model):
    """A tenant: one company using the platform. Every tenant-owned row points here."""

    id = models.CharField(primary_key=True, max_length=26, default=new_ulid, editable=False)
    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    default_currency = models.CharField(max_length=3, default="USD")
    timezone = models.CharField(max_length=64, default="UTC")
    brand_color = models.CharField(
        max_length=7,
        blank=True,
        default="",
        help_text="Hex colour (#rrggbb) for the customer portal; empty = derived.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TenantModel(models.Model):
    """Base for every tenant-owned model: a ULID id and the organization it belongs to."""

    id = models.CharField(primary_key=True, max_length=26, default=new_ulid, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True


def unique_while_live(field: str, *, name: str, ended: str = "deleted_at") -> models.UniqueConstraint:
    """`field` unique within the organization among the rows whose `ended` time is unset, so the key of
    a deleted (or archived) row may be taken again."""
    return models.UniqueConstraint(
        fields=["organization", field], condition=models.Q(**{f"{ended}__isnull": True}), name=name
    )


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    PRICING_EDITOR = "pricing_editor", "Pricing editor"
    VIEWER = "viewer", "Viewer"


# What each role may do in the console; a higher role includes the lower ones.
ROLE_RANK = {Role.VIEWER: 0, Role.PRICING_EDITOR: 1, Role.ADMIN: 2, Role.OWNER: 3}


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.organization_id} ({self.role})"

    def has_role(self, minimum: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(minimum)]


class Scope(models.TextChoices):
    INGEST = "ingest", "Ingest events"
    READ = "read", "Read"
    ADMIN = "admin", "Admin"


class ApiKey(TenantModel):
    """An organization's API credential. The secret is shown once; only its SHA-256 is stored.

    Secrets are 256-bit random tokens, so a fast hash is the right tool (no dictionary to
    defend against) and lets every request authenticate with one indexed lookup.
    """

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="First characters of the key, shown to identify it.")
    secret_hash = models.CharField(max_length=64, unique=True)
    scopes = ArrayField(models.CharField(max_length=10, choices=Scope.choices))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class AuditLog(models.Model):
    """Who changed what, with the state before and after. Written only through `audit_record`."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(
        max_length=200, help_text="Human-readable actor, kept if the user is deleted."
    )
    action = models.CharField(max_length=100)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "object_type", "object_id", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}:{self.object_id} by {self.actor_label}"


class JobFailure(models.Model):
    """A background job that failed for one organization's object (a meter's rollup, an inbox batch, an
    entitlement snapshot, a notification, a webhook delivery, a Stripe event). Written only through
    `core.jobs`. While open (`resolved_at` null) the object is quarantined: the job skips it and goes on
    with the others, trying it again after a back-off (a success resolves it) or when an operator retries
    it (`manage.py job_failures --retry`)."""

    job = models.CharField(max_length=64)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=1)
    first_failed_at = models.DateTimeField()
    last_failed_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "object_type", "object_id"], name="core_jobfailure_unique")
        ]
        indexes = [models.Index(fields=["organization", "resolved_at"], name="core_jobfail_org_open")]

    def __str__(self) -> str:
        return f"{self.job} {self.object_type}:{self.object_id} ({self.attempts}×)"


class Heartbeat(models.Model):
    """Last run of a periodic task; the health endpoint reads it to prove beat and a worker run."""

    name = models.CharField(max_length=100, primary_key=True)
    last_run_at = models.DateTimeField()
    runs = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_run_at.isoformat()}"


class Invitation(TenantModel):
    """An invitation to join an organization with a role, sent by e-mail as a signed, expiring link.

    The link carries `<id>.<secret>` signed with SECRET_KEY (core.invitations); only the SHA-256 of the
    secret is stored. Pending until accepted once, revoked, or expired.
    """

    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=20, choices=Role.choices)
    secret_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.email} as {self.role} ({self.organization_id})"

    def is_pending(self, now: datetime) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now
