"""Catalog writes: features (`features.py`), and plans (`plans.py`) and add-ons (`addons.py`) through the
one versioned-document service (`versions.py`: draft -> published -> archived, audit on every write)."""

from catalog.services.addons import (
    ADDONS,
    addon_create,
    addon_publish,
    addon_rate_card_remove,
    addon_rate_card_upsert,
)
from catalog.services.features import feature_check, feature_create, feature_delete, feature_to_json
from catalog.services.plans import (
    PLANS,
    phase_add,
    phase_remove,
    phase_update,
    plan_addon_link,
    plan_addon_unlink,
    plan_archive,
    plan_create,
    plan_delete,
    plan_next_version,
    plan_publish,
    plan_update,
    rate_card_remove,
    rate_card_upsert,
)
from catalog.services.versions import VersionImmutable

__all__ = [
    "ADDONS",
    "PLANS",
    "VersionImmutable",
    "addon_create",
    "addon_publish",
    "addon_rate_card_remove",
    "addon_rate_card_upsert",
    "feature_check",
    "feature_create",
    "feature_delete",
    "feature_to_json",
    "phase_add",
    "phase_remove",
    "phase_update",
    "plan_addon_link",
    "plan_addon_unlink",
    "plan_archive",
    "plan_create",
    "plan_delete",
    "plan_next_version",
    "plan_publish",
    "plan_update",
    "rate_card_remove",
    "rate_card_upsert",
]
