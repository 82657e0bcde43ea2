"""Plan writes: the versioned-document service (`versions.py`) for plans, and what only a plan has:
phases (each with rate cards) and links to add-ons."""

from __future__ import annotations

from typing import Any

from catalog import selectors
from catalog.models import PlanVersion
from catalog.services import versions
from catalog.validation import validate_phase, validate_plan
from core.audit import Actor
from core.errors import NotFound, ValidationFailed
from core.models import Organization

PLANS: versions.Kind[PlanVersion] = versions.Kind(
    model=PlanVersion,
    get=selectors.plan_get,
    object_type="plan",
    noun="Plan",
    fields=("name", "description", "currency", "billing_cadence", "phases", "addons", "metadata"),
    validate=lambda organization, data, for_publish: validate_plan(
        data,
        features=selectors.feature_refs(organization=organization),
        addons=selectors.addon_refs(organization=organization),
        for_publish=for_publish,
    ),
)


def plan_create(
    *, organization: Organization, key: Any, data: dict[str, Any], actor: Actor = None
) -> PlanVersion:
    """A new plan key: version 1, draft."""
    return versions.version_create(PLANS, organization=organization, key=key, data=data, actor=actor)


def plan_update(
    *, organization: Organization, plan_id: str, data: dict[str, Any], actor: Actor = None
) -> PlanVersion:
    """Replace a draft's body (name, description, currency, billingCadence, phases, addons)."""
    return versions.version_update(
        PLANS, organization=organization, version_id=plan_id, data=data, actor=actor
    )


def _edit(organization: Organization, plan_id: str, change: Any, action: str, actor: Actor) -> PlanVersion:
    return versions.version_edit(
        PLANS, organization=organization, version_id=plan_id, change=change, action=action, actor=actor
    )


def plan_publish(*, organization: Organization, plan_id: str, actor: Actor = None) -> PlanVersion:
    """Publish a draft: the key's previously published version is archived in the same transaction."""
    return versions.version_publish(PLANS, organization=organization, version_id=plan_id, actor=actor)


def plan_archive(*, organization: Organization, plan_id: str, actor: Actor = None) -> PlanVersion:
    """Archive a published version: new subscriptions can no longer pick it (running ones keep it)."""
    return versions.version_archive(PLANS, organization=organization, version_id=plan_id, actor=actor)


def plan_next_version(*, organization: Organization, id_or_key: str, actor: Actor = None) -> PlanVersion:
    """A new draft copied from the given version (by id) or from the key's newest version."""
    return versions.version_next_from(PLANS, organization=organization, id_or_key=id_or_key, actor=actor)


def plan_delete(*, organization: Organization, plan_id: str, actor: Actor = None) -> None:
    versions.version_delete(PLANS, organization=organization, version_id=plan_id, actor=actor)


# --- phases ---------------------------------------------------------------------------------------
def _phase_index(data: dict[str, Any], phase_key: str) -> int:
    for index, phase in enumerate(data["phases"]):
        if phase["key"] == phase_key:
            return index
    raise NotFound(f"No phase {phase_key!r} in this plan version.")


def phase_add(
    *,
    organization: Organization,
    plan_id: str,
    phase: dict[str, Any],
    actor: Actor = None,
    position: int | None = None,
) -> PlanVersion:
    versions.check_part(
        validate_phase, {**phase, "rateCards": phase.get("rateCards") or []}, "phase", organization
    )

    def change(data: dict[str, Any]) -> None:
        if any(p["key"] == phase.get("key") for p in data["phases"]):
            raise ValidationFailed(
                f"Phase key {phase.get('key')!r} is already used in this plan.", field="phase.key"
            )
        phases = data["phases"]
        phases.insert(len(phases) if position is None else position, {"rateCards": [], **phase})

    return _edit(organization, plan_id, change, "phase_added", actor)


def phase_update(
    *, organization: Organization, plan_id: str, phase_key: str, phase: dict[str, Any], actor: Actor = None
) -> PlanVersion:
    def change(data: dict[str, Any]) -> None:
        index = _phase_index(data, phase_key)
        merged = {**data["phases"][index], **phase}
        versions.check_part(validate_phase, merged, "phase", organization)
        data["phases"][index] = merged

    return _edit(organization, plan_id, change, "phase_updated", actor)


def phase_remove(
    *, organization: Organization, plan_id: str, phase_key: str, actor: Actor = None
) -> PlanVersion:
    def change(data: dict[str, Any]) -> None:
        del data["phases"][_phase_index(data, phase_key)]

    return _edit(organization, plan_id, change, "phase_removed", actor)


# --- rate cards in a phase ------------------------------------------------------------------------
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
    versions.check_rate_card(rate_card, organization)

    def change(data: dict[str, Any]) -> None:
        versions.card_upsert(
            data["phases"][_phase_index(data, phase_key)]["rateCards"], rate_card, replace_key
        )

    return _edit(
        organization, plan_id, change, "rate_card_updated" if replace_key else "rate_card_added", actor
    )


def rate_card_remove(
    *, organization: Organization, plan_id: str, phase_key: str, rate_card_key: str, actor: Actor = None
) -> PlanVersion:
    def change(data: dict[str, Any]) -> None:
        versions.card_remove(data["phases"][_phase_index(data, phase_key)]["rateCards"], rate_card_key)

    return _edit(organization, plan_id, change, "rate_card_removed", actor)


# --- links to add-ons -----------------------------------------------------------------------------
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

    return _edit(organization, plan_id, change, "addon_linked", actor)


def plan_addon_unlink(
    *, organization: Organization, plan_id: str, addon_key: str, actor: Actor = None
) -> PlanVersion:
    def change(data: dict[str, Any]) -> None:
        if not any(link["addonKey"] == addon_key for link in data["addons"]):
            raise NotFound(f"Add-on {addon_key!r} is not linked to this plan version.")
        data["addons"] = [link for link in data["addons"] if link["addonKey"] != addon_key]

    return _edit(organization, plan_id, change, "addon_unlinked", actor)
