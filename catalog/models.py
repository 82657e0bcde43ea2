"""Catalog models: features, plan versions, add-on versions.

A plan (or add-on) *version* is one row; its phases, rate cards and prices are one validated JSON
document on that row (see docs/catalog.md, "Storage"): a version is an immutable snapshot once
published, is always read and written whole (API, editor, billing's subscription snapshot), and
one row per version keeps every list and detail read at a constant number of queries. The
document is validated by `catalog.validation` before every write; `feature_keys` denormalizes which
features a version uses (GIN-indexed) so "is this feature used?" is one indexed query.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q

from core.models import TenantModel, unique_while_live


class Feature(TenantModel):
    """Something customers get: optionally a meter narrowed by group-by filters (model=gpt-4o)."""

    key = models.CharField(max_length=64)
    name = models.CharField(max_length=256)
    meter_slug = models.CharField(max_length=63, blank=True, default="")
    meter_group_by_filters = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [unique_while_live("key", ended="archived_at", name="catalog_feature_key_unique_live")]

    def __str__(self) -> str:
        return self.key


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    ARCHIVED = "archived", "Archived"


def version_constraints(prefix: str) -> list[models.BaseConstraint]:
    """A versioned document's rules, named after its table: each (key, version) once, and at most one
    published and one draft version of a key."""
    return [
        models.UniqueConstraint(fields=["organization", "key", "version"], name=f"{prefix}_version_unique"),
        models.UniqueConstraint(
            fields=["organization", "key"], condition=Q(status="published"), name=f"{prefix}_one_published"
        ),
        models.UniqueConstraint(
            fields=["organization", "key"], condition=Q(status="draft"), name=f"{prefix}_one_draft"
        ),
    ]


def version_indexes(prefix: str) -> list[models.Index]:
    """A versioned document's indexes: by status and key, and which features its rate cards price."""
    return [
        models.Index(fields=["organization", "status", "key"]),
        GinIndex(fields=["feature_keys"], name=f"{prefix}_feature_keys"),
    ]


class VersionedModel(TenantModel):
    key = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=256)
    description = models.TextField(blank=True, default="")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    feature_keys = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["key", "-version"]

    @property
    def is_draft(self) -> bool:
        return self.status == VersionStatus.DRAFT


class PlanVersion(VersionedModel):
    """One version of a plan (key). Draft -> published -> archived; published is immutable."""

    billing_cadence = models.CharField(max_length=32)
    phases = models.JSONField(default=list, blank=True)  # validated by catalog.validation.validate_plan
    addons = models.JSONField(default=list, blank=True)  # [{addonKey, fromPlanPhase, maxQuantity}]

    class Meta(VersionedModel.Meta):
        constraints = version_constraints("catalog_plan")
        indexes = version_indexes("catalog_plan")

    def __str__(self) -> str:
        return f"{self.key} v{self.version} ({self.status})"


class InstanceType(models.TextChoices):
    SINGLE = "single", "Single"
    MULTIPLE = "multiple", "Multiple"


class AddonVersion(VersionedModel):
    """One version of an add-on: rate cards bought on top of a plan, once or several times."""

    instance_type = models.CharField(max_length=16, choices=InstanceType.choices, default=InstanceType.SINGLE)
    rate_cards = models.JSONField(default=list, blank=True)

    class Meta(VersionedModel.Meta):
        constraints = version_constraints("catalog_addon")
        indexes = version_indexes("catalog_addon")

    def __str__(self) -> str:
        return f"addon {self.key} v{self.version} ({self.status})"
