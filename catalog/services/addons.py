"""Add-on writes: the versioned-document service (`versions.py`) for add-ons and their rate cards."""

from __future__ import annotations

from typing import Any

from catalog import selectors
from catalog.models import AddonVersion
from catalog.services import versions
from catalog.validation import validate_addon
from core.audit import Actor
from core.models import Organization

ADDONS: versions.Kind[AddonVersion] = versions.Kind(
    model=AddonVersion,
    get=selectors.addon_get,
    object_type="addon",
    noun="Add-on",
    fields=("name", "description", "currency", "instance_type", "rate_cards", "metadata"),
    validate=lambda organization, data, for_publish: validate_addon(
        data, features=selectors.feature_refs(organization=organization), for_publish=for_publish
    ),
)


def addon_create(
    *, organization: Organization, key: Any, data: dict[str, Any], actor: Actor = None
) -> AddonVersion:
    return versions.version_create(ADDONS, organization=organization, key=key, data=data, actor=actor)


def addon_publish(*, organization: Organization, addon_id: str, actor: Actor = None) -> AddonVersion:
    return versions.version_publish(ADDONS, organization=organization, version_id=addon_id, actor=actor)


def addon_rate_card_upsert(
    *,
    organization: Organization,
    addon_id: str,
    rate_card: dict[str, Any],
    replace_key: str | None = None,
    actor: Actor = None,
) -> AddonVersion:
    """Add a rate card to a draft add-on, or replace the one keyed `replace_key`."""
    versions.check_rate_card(rate_card, organization)
    return versions.version_edit(
        ADDONS,
        organization=organization,
        version_id=addon_id,
        change=lambda data: versions.card_upsert(data["rateCards"], rate_card, replace_key),
        action="rate_card_updated" if replace_key else "rate_card_added",
        actor=actor,
    )


def addon_rate_card_remove(
    *, organization: Organization, addon_id: str, rate_card_key: str, actor: Actor = None
) -> AddonVersion:
    return versions.version_edit(
        ADDONS,
        organization=organization,
        version_id=addon_id,
        change=lambda data: versions.card_remove(data["rateCards"], rate_card_key),
        action="rate_card_removed",
        actor=actor,
    )
