"""Feature writes: create (validated against the organization's meters) and delete (archive when a plan
or add-on version uses the feature)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from catalog import selectors
from catalog.models import AddonVersion, Feature
from catalog.validation import KEY_HELP, is_valid_key
from core.audit import Actor, audit_object
from core.audited import create_audited
from core.errors import ValidationFailed
from core.models import Organization


def feature_to_json(feature: Feature) -> dict[str, Any]:
    return {
        "key": feature.key,
        "name": feature.name,
        "meterSlug": feature.meter_slug or None,
        "meterGroupByFilters": feature.meter_group_by_filters or {},
        "metadata": feature.metadata or {},
        "archivedAt": feature.archived_at.isoformat() if feature.archived_at else None,
    }


def _filter_value(value: Any) -> bool:
    """A group-by filter's value: one string, or a non-empty list of strings (any of them matches)."""
    if isinstance(value, list):
        return bool(value) and all(isinstance(v, str) and v for v in value)
    return isinstance(value, str)


def feature_check(
    *,
    organization: Organization,
    key: Any,
    name: Any,
    meter_slug: Any = None,
    meter_group_by_filters: Any = None,
    metadata: Any = None,
    check_meter: bool = True,
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """A new feature's rules, every problem at once (ValidationFailed naming each field); else its meter
    slug, filters and metadata as they will be saved."""
    errors: list[dict[str, str]] = []
    if not is_valid_key(key):
        errors.append({"name": "key", "reason": KEY_HELP})
    if not isinstance(name, str) or not name.strip():
        errors.append({"name": "name", "reason": "This field is required."})
    elif len(name) > 256:
        errors.append({"name": "name", "reason": "At most 256 characters."})
    if meter_slug is not None and not isinstance(meter_slug, str):
        errors.append({"name": "meterSlug", "reason": "Must be a string."})
        meter_slug = None
    filters = meter_group_by_filters or {}
    if not isinstance(filters, dict) or not all(_filter_value(v) for v in filters.values()):
        errors.append(
            {
                "name": "meterGroupByFilters",
                "reason": "Must be an object of string values (or lists of them).",
            }
        )
        filters = {}
    if filters and not meter_slug:
        errors.append({"name": "meterGroupByFilters", "reason": "Filters need a meterSlug."})
    meta = metadata or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        errors.append({"name": "metadata", "reason": "Must be an object of string values."})
        meta = {}
    if meter_slug and check_meter:
        exists, group_by = selectors.meter_exists(organization=organization, slug=meter_slug)
        if not exists:
            errors.append({"name": "meterSlug", "reason": f"No meter with slug {meter_slug!r}."})
        elif group_by is not None:
            for dimension in filters:
                if dimension not in group_by:
                    errors.append(
                        {
                            "name": f"meterGroupByFilters.{dimension}",
                            "reason": f"Meter {meter_slug!r} has no group-by dimension {dimension!r}"
                            + (f" (it has: {', '.join(sorted(group_by))})." if group_by else "."),
                        }
                    )
    if errors:
        raise ValidationFailed("; ".join(f"{e['name']}: {e['reason']}" for e in errors), errors=errors)
    return meter_slug or "", filters, meta


def feature_create(
    *, organization: Organization, actor: Actor = None, check_meter: bool = True, **fields: Any
) -> Feature:
    """A new feature from `feature_check`'s fields (key, name, meter_slug, meter_group_by_filters,
    metadata), once they pass its rules."""
    meter_slug, filters, meta = feature_check(organization=organization, check_meter=check_meter, **fields)
    key, name = fields["key"], fields["name"]
    return create_audited(
        lambda: Feature.objects.create(
            organization=organization,
            key=key,
            name=name.strip(),
            meter_slug=meter_slug,
            meter_group_by_filters=filters,
            metadata=meta,
        ),
        action="feature.created",
        object_id=lambda f: f.key,
        after=feature_to_json,
        actor=actor,
        conflict=f"A feature with key {key!r} already exists.",
    )


def feature_delete(*, organization: Organization, id_or_key: str, actor: Actor = None) -> Feature | None:
    """Delete an unused feature; archive one that a plan or add-on version uses (returned)."""
    with transaction.atomic():
        feature = selectors.feature_get(organization=organization, id_or_key=id_or_key)
        if feature.archived_at is not None:
            return feature
        before = feature_to_json(feature)
        used = (
            selectors.plans_using_feature(organization=organization, feature_key=feature.key).exists()
            or AddonVersion.objects.filter(
                organization=organization, feature_keys__contains=[feature.key]
            ).exists()
        )
        if used:
            feature.archived_at = timezone.now()
            feature.save(update_fields=["archived_at", "updated_at"])
            audit_object(
                feature,
                "feature.archived",
                actor,
                object_id=feature.key,
                before=before,
                after=feature_to_json(feature),
            )
            return feature
        feature.delete()
        audit_object(feature, "feature.deleted", actor, object_id=before["key"], before=before)
        return None
