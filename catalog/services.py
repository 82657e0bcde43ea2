"""Catalog writes: features, plan versions (draft -> published -> archived), phases, rate cards,
add-ons. Every write is atomic and leaves an audit row; a published version never changes
(`VersionImmutable`, 409)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog import selectors
from catalog.documents import (
    KEY_HELP,
    is_valid_key,
    validate_addon,
    validate_phase,
    validate_plan,
    validate_rate_card,
)
from catalog.models import AddonVersion, Feature, PlanVersion, VersionStatus
from catalog.pricing import ErrorList, PriceInvalid
from core.audit import Actor, audit_record
from core.errors import Conflict, NotFound, ValidationFailed
from core.models import Organization


class VersionImmutable(Conflict):
    code = "version-immutable"
    title = "Version is immutable"


def _invalid(exc: PriceInvalid) -> ValidationFailed:
    return ValidationFailed(str(exc), errors=exc.errors)


# --- features -------------------------------------------------------------------------------------
def feature_to_json(feature: Feature) -> dict[str, Any]:
    return {
        "key": feature.key,
        "name": feature.name,
        "meterSlug": feature.meter_slug or None,
        "meterGroupByFilters": feature.meter_group_by_filters or {},
        "metadata": feature.metadata or {},
        "archivedAt": feature.archived_at.isoformat() if feature.archived_at else None,
    }


def feature_create(
    *,
    organization: Organization,
    key: Any,
    name: Any,
    meter_slug: Any = None,
    meter_group_by_filters: Any = None,
    metadata: Any = None,
    actor: Actor = None,
    check_meter: bool = True,
) -> Feature:
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
    if not isinstance(filters, dict) or not all(isinstance(v, str) for v in filters.values()):
        errors.append({"name": "meterGroupByFilters", "reason": "Must be an object of string values."})
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
    try:
        with transaction.atomic():
            feature = Feature.objects.create(
                organization=organization,
                key=key,
                name=name.strip(),
                meter_slug=meter_slug or "",
                meter_group_by_filters=filters,
                metadata=meta,
            )
            audit_record(
                organization=organization,
                actor=actor,
                action="feature.created",
                object_type="feature",
                object_id=feature.key,
                after=feature_to_json(feature),
            )
    except IntegrityError:
        raise Conflict(f"A feature with key {key!r} already exists.", field="key") from None
    return feature


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
            audit_record(
                organization=organization,
                actor=actor,
                action="feature.archived",
                object_type="feature",
                object_id=feature.key,
                before=before,
                after=feature_to_json(feature),
            )
            return feature
        feature.delete()
        audit_record(
            organization=organization,
            actor=actor,
            action="feature.deleted",
            object_type="feature",
            object_id=before["key"],
            before=before,
        )
        return None


# --- plans ----------------------------------------------------------------------------------------
def plan_to_document(plan: PlanVersion) -> dict[str, Any]:
    """The editable body of a plan version (what PUT takes and what the audit log records)."""
    return {
        "name": plan.name,
        "description": plan.description,
        "currency": plan.currency,
        "billingCadence": plan.billing_cadence,
        "phases": copy.deepcopy(plan.phases),
        "addons": copy.deepcopy(plan.addons),
        "metadata": dict(plan.metadata or {}),
    }


def _audit_version(
    version: PlanVersion | AddonVersion, action: str, actor: Actor, before: Any = None, after: Any = None
) -> None:
    """Audit a plan or add-on version under its key (object type "plan" or "addon")."""
    audit_record(
        organization=version.organization,
        actor=actor,
        action=action,
        object_type="plan" if isinstance(version, PlanVersion) else "addon",
        object_id=version.key,
        before=before,
        after=after,
    )


def _validated_plan(organization: Organization, data: Any, *, for_publish: bool = False):
    try:
        return validate_plan(
            data,
            features=selectors.feature_refs(organization=organization),
            addons=selectors.addon_refs(organization=organization),
            for_publish=for_publish,
        )
    except PriceInvalid as exc:
        raise _invalid(exc) from None


def _apply_plan_document(plan: PlanVersion, doc: Any) -> None:
    plan.name = doc.name
    plan.description = doc.description
    plan.currency = doc.currency
    plan.billing_cadence = doc.billing_cadence
    plan.phases = doc.phases
    plan.addons = doc.addons
    plan.metadata = doc.metadata
    plan.feature_keys = doc.feature_keys


def plan_create(
    *, organization: Organization, key: Any, data: dict[str, Any], actor: Actor = None
) -> PlanVersion:
    """A new plan key: version 1, draft."""
    if not is_valid_key(key):
        raise ValidationFailed(KEY_HELP, field="key")
    doc = _validated_plan(organization, data)
    if PlanVersion.objects.filter(organization=organization, key=key).exists():
        raise Conflict(f"Plan {key!r} already exists; create its next version instead.", field="key")
    plan = PlanVersion(organization=organization, key=key, version=1, status=VersionStatus.DRAFT)
    _apply_plan_document(plan, doc)
    try:
        with transaction.atomic():
            plan.save()
            _audit_version(plan, "plan.created", actor, after={"version": 1, **plan_to_document(plan)})
    except IntegrityError:
        raise Conflict(f"Plan {key!r} already exists.", field="key") from None
    return plan


def _draft_for_update(organization: Organization, plan_id: str) -> PlanVersion:
    plan = PlanVersion.objects.select_for_update().filter(organization=organization, id=plan_id).first()
    if plan is None:
        raise NotFound(f"No plan version {plan_id!r}.")
    if plan.status != VersionStatus.DRAFT:
        raise VersionImmutable(
            f"Plan {plan.key!r} version {plan.version} is {plan.status}; a {plan.status} version never "
            "changes. Create the next version to edit it."
        )
    return plan


def plan_update(
    *, organization: Organization, plan_id: str, data: dict[str, Any], actor: Actor = None
) -> PlanVersion:
    """Replace a draft's body (name, description, currency, billingCadence, phases, addons)."""
    with transaction.atomic():
        plan = _draft_for_update(organization, plan_id)
        before = plan_to_document(plan)
        doc = _validated_plan(organization, data)
        _apply_plan_document(plan, doc)
        plan.save()
        _audit_version(
            plan,
            "plan.updated",
            actor,
            before={"version": plan.version, **before},
            after={"version": plan.version, **plan_to_document(plan)},
        )
    return plan


def plan_edit(
    *,
    organization: Organization,
    plan_id: str,
    change: Callable[[dict[str, Any]], None],
    action: str,
    actor: Actor = None,
) -> PlanVersion:
    """Apply `change` to a draft's document, re-validate the whole document and save it."""
    with transaction.atomic():
        plan = _draft_for_update(organization, plan_id)
        before = plan_to_document(plan)
        data = plan_to_document(plan)
        change(data)
        doc = _validated_plan(organization, data)
        _apply_plan_document(plan, doc)
        plan.save()
        _audit_version(
            plan,
            action,
            actor,
            before={"version": plan.version, **before},
            after={"version": plan.version, **plan_to_document(plan)},
        )
    return plan


def _phase_index(data: dict[str, Any], phase_key: str) -> int:
    for index, phase in enumerate(data["phases"]):
        if phase["key"] == phase_key:
            return index
    raise NotFound(f"No phase {phase_key!r} in this plan version.")


def _check(validator: Callable[..., Any], raw: Any, path: str, organization: Organization) -> None:
    """Validate one phase or rate card alone so its errors carry its own short path for forms."""
    errors = ErrorList()
    validator(raw, path=path, features=selectors.feature_refs(organization=organization), errors=errors)
    if errors.items:
        raise ValidationFailed(
            "; ".join(f"{e['name']}: {e['reason']}" for e in errors.items), errors=errors.items
        )


def phase_add(
    *,
    organization: Organization,
    plan_id: str,
    phase: dict[str, Any],
    actor: Actor = None,
    position: int | None = None,
) -> PlanVersion:
    _check(validate_phase, {**phase, "rateCards": phase.get("rateCards") or []}, "phase", organization)

    def change(data: dict[str, Any]) -> None:
        if any(p["key"] == phase.get("key") for p in data["phases"]):
            raise ValidationFailed(
                f"Phase key {phase.get('key')!r} is already used in this plan.", field="phase.key"
            )
        phases = data["phases"]
        phases.insert(len(phases) if position is None else position, {"rateCards": [], **phase})

    return plan_edit(
        organization=organization, plan_id=plan_id, change=change, action="plan.phase_added", actor=actor
    )


def phase_update(
    *, organization: Organization, plan_id: str, phase_key: str, phase: dict[str, Any], actor: Actor = None
) -> PlanVersion:
    def change(data: dict[str, Any]) -> None:
        index = _phase_index(data, phase_key)
        merged = {**data["phases"][index], **phase}
        _check(validate_phase, merged, "phase", organization)
        data["phases"][index] = merged

    return plan_edit(
        organization=organization, plan_id=plan_id, change=change, action="plan.phase_updated", actor=actor
    )


def phase_remove(
    *, organization: Organization, plan_id: str, phase_key: str, actor: Actor = None
) -> PlanVersion:
    def change(data: dict[str, Any]) -> None:
        del data["phases"][_phase_index(data, phase_key)]

    return plan_edit(
        organization=organization, plan_id=plan_id, change=change, action="plan.phase_removed", actor=actor
    )


def _card_upsert(cards: list[dict[str, Any]], rate_card: dict[str, Any], replace_key: str | None) -> None:
    """Add `rate_card` to `cards`, or replace the one keyed `replace_key` (keys stay unique)."""
    keys = [c["key"] for c in cards]
    if replace_key is not None and replace_key not in keys:
        raise NotFound(f"No rate card {replace_key!r}.")
    if rate_card.get("key") != replace_key and rate_card.get("key") in keys:
        raise ValidationFailed(
            f"Rate card key {rate_card.get('key')!r} is already used here.", field="rateCard.key"
        )
    if replace_key is not None:
        cards[keys.index(replace_key)] = rate_card
    else:
        cards.append(rate_card)


def _card_remove(cards: list[dict[str, Any]], rate_card_key: str) -> None:
    remaining = [c for c in cards if c["key"] != rate_card_key]
    if len(remaining) == len(cards):
        raise NotFound(f"No rate card {rate_card_key!r}.")
    cards[:] = remaining


def rate_card_upsert(
    *,
    organization: Organization,
    plan_id: str,
    phase_key: str,
    rate_card: dict[str, Any],
    replace_key: str | None = None,
    actor: Actor = None,
) -> PlanVersion:
    """Add a rate card to a phase, or replace the one keyed `replace_key`."""
    _check(validate_rate_card, rate_card, "rateCard", organization)

    def change(data: dict[str, Any]) -> None:
        _card_upsert(data["phases"][_phase_index(data, phase_key)]["rateCards"], rate_card, replace_key)

    action = "plan.rate_card_updated" if replace_key else "plan.rate_card_added"
    return plan_edit(organization=organization, plan_id=plan_id, change=change, action=action, actor=actor)


def rate_card_remove(
    *, organization: Organization, plan_id: str, phase_key: str, rate_card_key: str, actor: Actor = None
) -> PlanVersion:
    def change(data: dict[str, Any]) -> None:
        _card_remove(data["phases"][_phase_index(data, phase_key)]["rateCards"], rate_card_key)

    return plan_edit(
        organization=organization,
        plan_id=plan_id,
        change=change,
        action="plan.rate_card_removed",
        actor=actor,
    )


def plan_publish(*, organization: Organization, plan_id: str, actor: Actor = None) -> PlanVersion:
    """Publish a draft: the key's previously published version is archived in the same transaction."""
    with transaction.atomic():
        plan = _draft_for_update(organization, plan_id)
        _validated_plan(organization, plan_to_document(plan), for_publish=True)
        now = timezone.now()
        previous = list(
            PlanVersion.objects.select_for_update()
            .filter(organization=organization, key=plan.key, status=VersionStatus.PUBLISHED)
            .order_by("pk")
        )
        for old in previous:
            PlanVersion.objects.filter(pk=old.pk, status=VersionStatus.PUBLISHED).update(
                status=VersionStatus.ARCHIVED, archived_at=now, updated_at=now
            )
            _audit_version(
                old,
                "plan.archived",
                actor,
                before={"version": old.version, "status": "published"},
                after={"version": old.version, "status": "archived", "supersededBy": plan.version},
            )
        updated = PlanVersion.objects.filter(pk=plan.pk, status=VersionStatus.DRAFT).update(
            status=VersionStatus.PUBLISHED, published_at=now, updated_at=now
        )
        if updated != 1:
            raise Conflict("This version changed while publishing; reload and try again.")
        plan.refresh_from_db()
        _audit_version(
            plan,
            "plan.published",
            actor,
            before={"version": plan.version, "status": "draft", "replaces": [o.version for o in previous]},
            after={"version": plan.version, "status": "published"},
        )
    return plan


def plan_archive(*, organization: Organization, plan_id: str, actor: Actor = None) -> PlanVersion:
    """Archive a published version: new subscriptions can no longer pick it (running ones keep it)."""
    with transaction.atomic():
        plan = PlanVersion.objects.select_for_update().filter(organization=organization, id=plan_id).first()
        if plan is None:
            raise NotFound(f"No plan version {plan_id!r}.")
        if plan.status != VersionStatus.PUBLISHED:
            raise Conflict(
                f"Only a published version can be archived; this one is {plan.status}. Delete a draft instead."
            )
        now = timezone.now()
        PlanVersion.objects.filter(pk=plan.pk, status=VersionStatus.PUBLISHED).update(
            status=VersionStatus.ARCHIVED, archived_at=now, updated_at=now
        )
        plan.refresh_from_db()
        _audit_version(
            plan,
            "plan.archived",
            actor,
            before={"version": plan.version, "status": "published"},
            after={"version": plan.version, "status": "archived"},
        )
    return plan


def plan_next_version(*, organization: Organization, id_or_key: str, actor: Actor = None) -> PlanVersion:
    """A new draft copied from the given version (by id) or from the key's newest version."""
    with transaction.atomic():
        source = selectors.plan_get(organization=organization, id_or_key=id_or_key)
        if source.key == id_or_key:  # by key: copy the newest version, whatever its status
            source = selectors.plan_versions(organization=organization, plan_key=source.key).first() or source
        if PlanVersion.objects.filter(
            organization=organization, key=source.key, status=VersionStatus.DRAFT
        ).exists():
            raise Conflict(f"Plan {source.key!r} already has a draft version; edit it instead.")
        latest = selectors.plan_versions(organization=organization, plan_key=source.key).first()
        assert latest is not None
        plan = PlanVersion(
            organization=organization,
            key=source.key,
            version=latest.version + 1,
            status=VersionStatus.DRAFT,
            name=source.name,
            description=source.description,
            currency=source.currency,
            billing_cadence=source.billing_cadence,
            phases=copy.deepcopy(source.phases),
            addons=copy.deepcopy(source.addons),
            metadata=dict(source.metadata or {}),
            feature_keys=list(source.feature_keys),
        )
        try:
            with transaction.atomic():
                plan.save()
        except IntegrityError:
            raise Conflict(f"Plan {source.key!r} already has a draft version.") from None
        _audit_version(
            plan, "plan.version_created", actor, after={"version": plan.version, "copiedFrom": source.version}
        )
    return plan


def plan_delete(*, organization: Organization, plan_id: str, actor: Actor = None) -> None:
    with transaction.atomic():
        plan = _draft_for_update(organization, plan_id)
        before = {"version": plan.version, **plan_to_document(plan)}
        key = plan.key
        plan.delete()
        audit_record(
            organization=organization,
            actor=actor,
            action="plan.draft_deleted",
            object_type="plan",
            object_id=key,
            before=before,
        )


# --- add-ons --------------------------------------------------------------------------------------
def addon_to_document(addon: AddonVersion) -> dict[str, Any]:
    return {
        "name": addon.name,
        "description": addon.description,
        "currency": addon.currency,
        "instanceType": addon.instance_type,
        "rateCards": copy.deepcopy(addon.rate_cards),
        "metadata": dict(addon.metadata or {}),
    }


def _validated_addon(organization: Organization, data: Any, *, for_publish: bool = False):
    try:
        return validate_addon(
            data, features=selectors.feature_refs(organization=organization), for_publish=for_publish
        )
    except PriceInvalid as exc:
        raise _invalid(exc) from None


def _apply_addon_document(addon: AddonVersion, doc: Any) -> None:
    addon.name = doc.name
    addon.description = doc.description
    addon.currency = doc.currency
    addon.instance_type = doc.instance_type
    addon.rate_cards = doc.rate_cards
    addon.metadata = doc.metadata
    addon.feature_keys = doc.feature_keys


def addon_create(
    *, organization: Organization, key: Any, data: dict[str, Any], actor: Actor = None
) -> AddonVersion:
    if not is_valid_key(key):
        raise ValidationFailed(KEY_HELP, field="key")
    doc = _validated_addon(organization, data)
    if AddonVersion.objects.filter(organization=organization, key=key).exists():
        raise Conflict(f"Add-on {key!r} already exists; create its next version instead.", field="key")
    addon = AddonVersion(organization=organization, key=key, version=1)
    _apply_addon_document(addon, doc)
    with transaction.atomic():
        addon.save()
        _audit_version(addon, "addon.created", actor, after={"version": 1, **addon_to_document(addon)})
    return addon


def _addon_draft(organization: Organization, addon_id: str) -> AddonVersion:
    addon = AddonVersion.objects.select_for_update().filter(organization=organization, id=addon_id).first()
    if addon is None:
        raise NotFound(f"No add-on version {addon_id!r}.")
    if addon.status != VersionStatus.DRAFT:
        raise VersionImmutable(
            f"Add-on {addon.key!r} version {addon.version} is {addon.status} and never changes; create the next version."
        )
    return addon


def addon_update(
    *, organization: Organization, addon_id: str, data: dict[str, Any], actor: Actor = None
) -> AddonVersion:
    with transaction.atomic():
        addon = _addon_draft(organization, addon_id)
        before = addon_to_document(addon)
        _apply_addon_document(addon, _validated_addon(organization, data))
        addon.save()
        _audit_version(addon, "addon.updated", actor, before=before, after=addon_to_document(addon))
    return addon


def addon_publish(*, organization: Organization, addon_id: str, actor: Actor = None) -> AddonVersion:
    with transaction.atomic():
        addon = _addon_draft(organization, addon_id)
        _validated_addon(organization, addon_to_document(addon), for_publish=True)
        now = timezone.now()
        AddonVersion.objects.filter(
            organization=organization, key=addon.key, status=VersionStatus.PUBLISHED
        ).update(status=VersionStatus.ARCHIVED, archived_at=now, updated_at=now)
        AddonVersion.objects.filter(pk=addon.pk, status=VersionStatus.DRAFT).update(
            status=VersionStatus.PUBLISHED, published_at=now, updated_at=now
        )
        addon.refresh_from_db()
        _audit_version(
            addon, "addon.published", actor, after={"version": addon.version, "status": "published"}
        )
    return addon


def addon_archive(*, organization: Organization, addon_id: str, actor: Actor = None) -> AddonVersion:
    with transaction.atomic():
        addon = (
            AddonVersion.objects.select_for_update().filter(organization=organization, id=addon_id).first()
        )
        if addon is None:
            raise NotFound(f"No add-on version {addon_id!r}.")
        if addon.status != VersionStatus.PUBLISHED:
            raise Conflict(f"Only a published add-on version can be archived; this one is {addon.status}.")
        now = timezone.now()
        AddonVersion.objects.filter(pk=addon.pk).update(
            status=VersionStatus.ARCHIVED, archived_at=now, updated_at=now
        )
        addon.refresh_from_db()
        _audit_version(addon, "addon.archived", actor, after={"version": addon.version, "status": "archived"})
    return addon


def addon_next_version(*, organization: Organization, id_or_key: str, actor: Actor = None) -> AddonVersion:
    with transaction.atomic():
        source = selectors.addon_get(organization=organization, id_or_key=id_or_key)
        versions = selectors.addon_list(organization=organization, key=source.key)
        if versions.filter(status=VersionStatus.DRAFT).exists():
            raise Conflict(f"Add-on {source.key!r} already has a draft version; edit it instead.")
        latest = versions.order_by("-version").first()
        assert latest is not None
        addon = AddonVersion(
            organization=organization,
            key=source.key,
            version=latest.version + 1,
            name=source.name,
            description=source.description,
            currency=source.currency,
            instance_type=source.instance_type,
            rate_cards=copy.deepcopy(source.rate_cards),
            metadata=dict(source.metadata or {}),
            feature_keys=list(source.feature_keys),
        )
        addon.save()
        _audit_version(
            addon,
            "addon.version_created",
            actor,
            after={"version": addon.version, "copiedFrom": source.version},
        )
    return addon


def addon_edit(
    *,
    organization: Organization,
    addon_id: str,
    change: Callable[[dict[str, Any]], None],
    action: str,
    actor: Actor = None,
) -> AddonVersion:
    """Apply `change` to a draft add-on's document, re-validate the whole document and save it."""
    with transaction.atomic():
        addon = _addon_draft(organization, addon_id)
        before = addon_to_document(addon)
        data = addon_to_document(addon)
        change(data)
        _apply_addon_document(addon, _validated_addon(organization, data))
        addon.save()
        _audit_version(
            addon,
            action,
            actor,
            before={"version": addon.version, **before},
            after={"version": addon.version, **addon_to_document(addon)},
        )
    return addon


def addon_rate_card_upsert(
    *,
    organization: Organization,
    addon_id: str,
    rate_card: dict[str, Any],
    replace_key: str | None = None,
    actor: Actor = None,
) -> AddonVersion:
    """Add a rate card to a draft add-on, or replace the one keyed `replace_key`."""
    _check(validate_rate_card, rate_card, "rateCard", organization)
    return addon_edit(
        organization=organization,
        addon_id=addon_id,
        change=lambda data: _card_upsert(data["rateCards"], rate_card, replace_key),
        action="addon.rate_card_updated" if replace_key else "addon.rate_card_added",
        actor=actor,
    )


def addon_rate_card_remove(
    *, organization: Organization, addon_id: str, rate_card_key: str, actor: Actor = None
) -> AddonVersion:
    return addon_edit(
        organization=organization,
        addon_id=addon_id,
        change=lambda data: _card_remove(data["rateCards"], rate_card_key),
        action="addon.rate_card_removed",
        actor=actor,
    )


def plan_addon_link(
    *,
    organization: Organization,
    plan_id: str,
    addon_key: str,
    max_quantity: int | None,
    actor: Actor = None,
) -> PlanVersion:
    """Link an add-on to a draft plan version (or change its max quantity); validated like PUT."""

    def change(data: dict[str, Any]) -> None:
        links = [link for link in data["addons"] if link["addonKey"] != addon_key]
        links.append({"addonKey": addon_key, "fromPlanPhase": None, "maxQuantity": max_quantity})
        data["addons"] = links

    return plan_edit(
        organization=organization, plan_id=plan_id, change=change, action="plan.addon_linked", actor=actor
    )


def plan_addon_unlink(
    *, organization: Organization, plan_id: str, addon_key: str, actor: Actor = None
) -> PlanVersion:
    def change(data: dict[str, Any]) -> None:
        if not any(link["addonKey"] == addon_key for link in data["addons"]):
            raise NotFound(f"Add-on {addon_key!r} is not linked to this plan version.")
        data["addons"] = [link for link in data["addons"] if link["addonKey"] != addon_key]

    return plan_edit(
        organization=organization, plan_id=plan_id, change=change, action="plan.addon_unlinked", actor=actor
    )
