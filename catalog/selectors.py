"""Catalog reads. Billing uses `plan_version_get`, `plan_rate_cards` and `rate_card_rate`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from django.db.models import QuerySet

from catalog.models import AddonVersion, Feature, PlanVersion, VersionStatus
from catalog.pricing import (
    Commitments,
    Discounts,
    Price,
    Rating,
    parse_commitments,
    parse_discounts,
    parse_price,
    rate,
)
from catalog.validation import AddonRef, FeatureRef
from core.errors import NotFound
from core.ids import is_ulid
from core.models import AuditLog, Organization
from core.querysets import filter_given
from metering.selectors import meter_get


# --- features -------------------------------------------------------------------------------------
def feature_list(
    *, organization: Organization, include_archived: bool = False, meter_slug: str = ""
) -> QuerySet[Feature]:
    qs = Feature.objects.filter(organization=organization)
    if not include_archived:
        qs = qs.filter(archived_at__isnull=True)
    if meter_slug:
        qs = qs.filter(meter_slug=meter_slug)
    return qs.order_by("key", "-created_at")


def feature_get(*, organization: Organization, id_or_key: str) -> Feature:
    qs = Feature.objects.filter(organization=organization)
    feature = None
    if is_ulid(id_or_key):
        feature = qs.filter(id=id_or_key.upper()).first()
    if feature is None:
        feature = qs.filter(key=id_or_key, archived_at__isnull=True).first()
    if feature is None:
        raise NotFound(f"No feature {id_or_key!r}.")
    return feature


def feature_refs(*, organization: Organization) -> dict[str, FeatureRef]:
    """What plan validation needs to know about features: one query."""
    refs: dict[str, FeatureRef] = {}
    for key, meter_slug, archived_at in Feature.objects.filter(organization=organization).values_list(
        "key", "meter_slug", "archived_at"
    ):
        if key not in refs or archived_at is None:  # a live feature wins over archived namesakes
            refs[key] = FeatureRef(key=key, meter_slug=meter_slug, archived=archived_at is not None)
    return refs


def meter_exists(*, organization: Organization, slug: str) -> tuple[bool, dict[str, Any] | None]:
    """Ask the metering app (which owns meters) whether a meter exists, and its group-by map."""
    try:
        meter = meter_get(organization=organization, id_or_slug=slug)
    except NotFound:
        return False, None
    return True, dict(meter.group_by or {})


# --- plans ----------------------------------------------------------------------------------------
def plan_list(
    *,
    organization: Organization,
    key: str | Iterable[str] = "",
    status: str | Iterable[str] = "",
    currency: str = "",
    include_archived: bool = True,
) -> QuerySet[PlanVersion]:
    qs = PlanVersion.objects.filter(organization=organization)
    if key:
        qs = qs.filter(key__in=[key] if isinstance(key, str) else list(key))
    if status:
        qs = qs.filter(status__in=[status] if isinstance(status, str) else list(status))
    elif not include_archived:
        qs = qs.exclude(status=VersionStatus.ARCHIVED)
    if currency:
        qs = qs.filter(currency=currency.upper())
    return qs.order_by("key", "-version")


_V = TypeVar("_V", PlanVersion, AddonVersion)


def _version_find(qs: QuerySet[_V], *, id_or_key: str, version: int | None) -> _V | None:
    """By version id; or by key: the given version, else the published one, else the newest."""
    if is_ulid(id_or_key) and version is None:
        found = qs.filter(id=id_or_key.upper()).first()
        if found is not None:
            return found
    versions = qs.filter(key=id_or_key)
    if version is not None:
        return versions.filter(version=version).first()
    return versions.filter(status=VersionStatus.PUBLISHED).first() or versions.order_by("-version").first()


def plan_get(*, organization: Organization, id_or_key: str, version: int | None = None) -> PlanVersion:
    """By version id; or by key: the given version, else the published one, else the newest."""
    plan = _version_find(
        PlanVersion.objects.filter(organization=organization), id_or_key=id_or_key, version=version
    )
    if plan is None:
        raise NotFound(f"No plan {id_or_key!r}" + (f" version {version}." if version else "."))
    return plan


def plan_version_get(*, organization: Organization, plan_key: str, version: int | None = None) -> PlanVersion:
    """For billing: the published version of a plan key (or an explicit version number)."""
    qs = PlanVersion.objects.filter(organization=organization, key=plan_key)
    plan = (
        qs.filter(version=version).first()
        if version is not None
        else qs.filter(status=VersionStatus.PUBLISHED).first()
    )
    if plan is None:
        which = f"version {version}" if version is not None else "a published version"
        raise NotFound(f"Plan {plan_key!r} has no {which}.")
    return plan


def plan_versions(*, organization: Organization, plan_key: str) -> QuerySet[PlanVersion]:
    return PlanVersion.objects.filter(organization=organization, key=plan_key).order_by("-version")


def plans_using_feature(*, organization: Organization, feature_key: str) -> QuerySet[PlanVersion]:
    return PlanVersion.objects.filter(organization=organization, feature_keys__contains=[feature_key])


# --- add-ons --------------------------------------------------------------------------------------
def addon_list(*, organization: Organization, key: str = "", status: str = "") -> QuerySet[AddonVersion]:
    """The versions, newest first per key; `key` and `status` narrow the list when given (not "")."""
    qs = filter_given(
        AddonVersion.objects.filter(organization=organization), key=key or None, status=status or None
    )
    return qs.order_by("key", "-version")


def addon_get(*, organization: Organization, id_or_key: str, version: int | None = None) -> AddonVersion:
    addon = _version_find(
        AddonVersion.objects.filter(organization=organization), id_or_key=id_or_key, version=version
    )
    if addon is None:
        raise NotFound(f"No add-on {id_or_key!r}.")
    return addon


def addon_refs(*, organization: Organization) -> dict[str, AddonRef]:
    """Latest non-archived version per add-on key (one query)."""
    refs: dict[str, AddonRef] = {}
    rows = (
        AddonVersion.objects.filter(organization=organization)
        .exclude(status=VersionStatus.ARCHIVED)
        .order_by("key", "version")
        .values_list("key", "currency", "instance_type")
    )
    for key, currency, instance_type in rows:
        refs[key] = AddonRef(key=key, currency=currency, instance_type=instance_type)
    return refs


# --- rate cards as engine objects ----------------------------------------------------------------
@dataclass(frozen=True)
class RateCard:
    phase_key: str | None
    key: str
    name: str
    type: str
    feature_key: str | None
    billing_cadence: str | None
    payment_term: str | None
    price: Price | None
    discounts: Discounts | None
    commitments: Commitments | None
    entitlement_template: dict[str, Any] | None
    document: dict[str, Any]


def rate_card_from_document(card: dict[str, Any], *, phase_key: str | None = None) -> RateCard:
    """A stored rate card (already validated) -> engine objects."""
    return RateCard(
        phase_key=phase_key,
        key=card["key"],
        name=card["name"],
        type=card["type"],
        feature_key=card.get("featureKey"),
        billing_cadence=card.get("billingCadence"),
        payment_term=card.get("paymentTerm"),
        price=parse_price(card["price"]) if card.get("price") else None,
        discounts=parse_discounts(card.get("discounts")),
        commitments=parse_commitments(card.get("commitments")),
        entitlement_template=card.get("entitlementTemplate"),
        document=card,
    )


def plan_rate_cards(*, plan: PlanVersion, phase_key: str | None = None) -> list[RateCard]:
    """Every rate card of a plan version (or of one phase), with parsed prices."""
    return [
        rate_card_from_document(card, phase_key=phase["key"])
        for phase in plan.phases
        if phase_key is None or phase["key"] == phase_key
        for card in phase["rateCards"]
    ]


def addon_rate_cards(*, addon: AddonVersion) -> list[RateCard]:
    return [rate_card_from_document(card) for card in addon.rate_cards]


def rate_card_rate(card: RateCard, *, quantity: Decimal, event_count: int = 0) -> Rating:
    """The engine's rating of one rate card for one period's quantity (unrounded; use price_total)."""
    if card.price is None:
        return Rating(Decimal(0), ())
    return rate(
        card.price, quantity, event_count=event_count, discounts=card.discounts, commitments=card.commitments
    )


# --- audit ----------------------------------------------------------------------------------------
def catalog_history(
    *, organization: Organization, object_type: str, object_ids: Iterable[str]
) -> QuerySet[AuditLog]:
    return AuditLog.objects.filter(
        organization=organization, object_type=object_type, object_id__in=list(object_ids)
    ).order_by("-created_at", "-id")
