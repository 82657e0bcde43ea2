"""What billing reads from `catalog` (plans, add-ons, features) and `metering` (usage), behind one module.

Billing never imports catalog or metering models elsewhere: it asks this module for plain dataclasses.
The default providers call `catalog.selectors` and `metering.selectors`; `set_provider()` replaces one
(tests of billing logic use in-memory providers; see tests/billing/conftest.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, cast

from catalog import selectors as catalog
from core.errors import NotFound
from core.models import Organization
from core.providers import Providers
from metering import selectors as metering


class JsonSpec:
    """`as_json()`: the dataclass's fields under camelCase names, nested specs as JSON too (the catalog
    document shape that `from_json` reads and subscriptions keep as their snapshot)."""

    NOT_IN_JSON: ClassVar[tuple[str, ...]] = ()

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(cast(Any, self)):
            if f.name in self.NOT_IN_JSON:
                continue
            value = getattr(self, f.name)
            head, *rest = f.name.split("_")
            out[head + "".join(word.title() for word in rest)] = (
                [v.as_json() for v in value] if isinstance(value, tuple) else value
            )
        return out


def _key_and_name(d: dict[str, Any]) -> dict[str, Any]:
    """A document's key, and its name (the key when it has none)."""
    return {"key": d["key"], "name": d.get("name") or d["key"]}


@dataclass(frozen=True)
class RateCardSpec(JsonSpec):
    key: str
    name: str
    feature_key: str = ""
    price: dict[str, Any] | None = None  # {"type": "flat", "amount": "10", "paymentTerm": "in_advance"} ...
    payment_term: str = "in_advance"  # catalog's effective term (flat: price.paymentTerm; usage: in_arrears)
    billing_cadence: str = "P1M"  # "" = one-time
    entitlement_template: dict[str, Any] | None = None  # OpenMeter's entitlementTemplate
    discounts: dict[str, Any] | None = None
    commitments: dict[str, Any] | None = None  # {"minimumAmount", "maximumAmount"} per billing period

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RateCardSpec:
        return cls(
            **_key_and_name(d),
            feature_key=d.get("featureKey") or "",
            price=d.get("price"),
            payment_term=d.get("paymentTerm") or "in_advance",
            billing_cadence=d.get("billingCadence") or "",  # none = one-time (catalog flat fees)
            entitlement_template=d.get("entitlementTemplate"),
            discounts=d.get("discounts"),
            commitments=d.get("commitments"),
        )


@dataclass(frozen=True)
class PhaseSpec(JsonSpec):
    key: str
    name: str
    duration: str | None  # ISO 8601; None = open-ended (last phase)
    rate_cards: tuple[RateCardSpec, ...] = ()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PhaseSpec:
        return cls(
            **_key_and_name(d),
            duration=d.get("duration"),
            rate_cards=tuple(RateCardSpec.from_json(rc) for rc in d.get("rateCards", [])),
        )


@dataclass(frozen=True)
class PlanSpec(JsonSpec):
    NOT_IN_JSON = ("published",)  # a catalog status, not part of the plan's document

    id: str
    key: str
    version: int
    name: str
    currency: str
    billing_cadence: str
    phases: tuple[PhaseSpec, ...]
    published: bool = True

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PlanSpec:
        return cls(
            **_key_and_name(d),
            id=d.get("id", ""),
            version=int(d["version"]),
            currency=d.get("currency") or "USD",
            billing_cadence=d.get("billingCadence") or "P1M",
            phases=tuple(PhaseSpec.from_json(p) for p in d["phases"]),
        )


@dataclass(frozen=True)
class AddonSpec(JsonSpec):
    id: str
    key: str
    version: int
    name: str
    rate_cards: tuple[RateCardSpec, ...]
    max_quantity: int | None = None


@dataclass(frozen=True)
class FeatureSpec:
    id: str
    key: str
    name: str
    meter_slug: str = ""
    meter_group_by_filters: dict[str, str] = field(default_factory=dict)


# --- providers ---------------------------------------------------------------------------------------


def _attributes(row: Any, *names: str) -> dict[str, Any]:
    """The catalog row's attributes that a spec takes as they are, by name."""
    return {name: getattr(row, name) for name in names}


# What a spec of a versioned catalog document (a plan or an add-on version) copies from its row.
_VERSIONED = ("id", "key", "version", "name")


def _catalog_plan(*, organization: Organization, key: str, version: int | None) -> PlanSpec:
    plan = catalog.plan_version_get(organization=organization, plan_key=key, version=version)
    return PlanSpec(
        **_attributes(plan, *_VERSIONED, "currency", "billing_cadence"),
        published=plan.status == "published",
        phases=tuple(PhaseSpec.from_json(p) for p in plan.phases),
    )


def _catalog_addon(*, organization: Organization, key: str) -> AddonSpec:
    addon = catalog.addon_get(organization=organization, id_or_key=key)
    return AddonSpec(
        **_attributes(addon, *_VERSIONED),
        rate_cards=tuple(RateCardSpec.from_json(rc) for rc in addon.rate_cards),
        max_quantity=1 if addon.instance_type == "single" else None,
    )


def _catalog_feature(*, organization: Organization, key_or_id: str) -> FeatureSpec:
    f = catalog.feature_get(organization=organization, id_or_key=key_or_id)
    return FeatureSpec(
        **_attributes(f, "id", "key", "name"),
        meter_slug=f.meter_slug or "",
        meter_group_by_filters=dict(f.meter_group_by_filters or {}),
    )


# Meter definitions change rarely and a value check runs on every gateway request: keep each (organization,
# slug) -> Meter for a few seconds per process instead of compiling an ORM query every time.
METER_CACHE_SECONDS = 10.0
_meter_cache: dict[tuple[str, str], tuple[float, Any]] = {}


def _meter(organization: Organization, slug: str) -> Any:
    key = (organization.id, slug)
    hit = _meter_cache.get(key)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    meter = metering.meter_get(organization=organization, id_or_slug=slug)
    if len(_meter_cache) > 10_000:
        _meter_cache.clear()
    _meter_cache[key] = (now + METER_CACHE_SECONDS, meter)
    return meter


def _metering_usage(
    *,
    organization: Organization,
    meter_slug: str,
    subject_keys: list[str],
    start: datetime,
    end: datetime,
    group_by_filters: dict[str, str],
) -> Decimal:
    rows = metering.meter_query(
        organization=organization,
        meter=_meter(organization, meter_slug),
        from_=start,
        to=end,
        subjects=subject_keys,
        filter_group_by={k: [v] for k, v in group_by_filters.items()},
    )
    return sum((row.value for row in rows), Decimal(0))


@dataclass(frozen=True)
class UsageRequest:
    """One usage window for `usage_totals`: a meter's usage of some subjects in [start, end) with
    {dimension: value} filters. Hashable (filters compare as a dict via `key`)."""

    meter_slug: str
    subject_keys: tuple[str, ...]
    start: datetime
    end: datetime
    group_by_filters: dict[str, str] = field(default_factory=dict)

    def key(self) -> tuple[Any, ...]:
        return (
            self.meter_slug,
            self.subject_keys,
            self.start,
            self.end,
            tuple(sorted(self.group_by_filters.items())),
        )

    def __hash__(self) -> int:
        return hash(self.key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UsageRequest) and self.key() == other.key()


def _metering_usage_bulk(*, organization: Organization, requests: list[UsageRequest]) -> list[Decimal]:
    """All requests through one `metering.selectors.meter_usage_totals` call: a constant number of
    statements whatever the number of meters, subjects and windows (SUM/COUNT meters; others fall back to
    one meter_query each inside metering). Meters come from the per-process cache, cold ones from one
    `meter_list` query."""
    out: list[Decimal] = [Decimal(0)] * len(requests)
    unique: dict[UsageRequest, list[int]] = {}
    for i, r in enumerate(requests):
        if r.subject_keys and r.end > r.start:
            unique.setdefault(r, []).append(i)
    if not unique:
        return out
    now = time.monotonic()
    fresh = {s for (o, s), (exp, _m) in _meter_cache.items() if o == organization.id and exp > now}
    slugs = sorted({r.meter_slug for r in unique} - fresh)
    if slugs:  # warm the per-process meter cache with one query
        for m in metering.meter_list(organization=organization).filter(slug__in=slugs):
            _meter_cache[(organization.id, m.slug)] = (now + METER_CACHE_SECONDS, m)
    keys = list(unique)
    totals = metering.meter_usage_totals(
        organization=organization,
        requests=[
            (
                _meter(organization, r.meter_slug),
                list(r.subject_keys),
                r.start,
                r.end,
                dict(r.group_by_filters),
            )
            for r in keys
        ],
    )
    for r, total in zip(keys, totals, strict=True):
        for i in unique[r]:
            out[i] = total
    return out


def _catalog_plan_choices(*, organization: Organization) -> list[tuple[str, str, int]]:
    rows = catalog.plan_list(organization=organization, status="published")
    return [(p.key, p.name, p.version) for p in rows]


_PROVIDERS = Providers(
    {
        "plan": _catalog_plan,
        "addon": _catalog_addon,
        "feature": _catalog_feature,
        "usage": _metering_usage,
        "usage_bulk": _metering_usage_bulk,
        "plan_choices": _catalog_plan_choices,
    }
)
set_provider = _PROVIDERS.set


def _provided(provider: str, missing: str, **kwargs: Any) -> Any:
    """What the provider answers; NotFound(`missing`) when it knows no such thing."""
    try:
        return _PROVIDERS[provider](**kwargs)
    except (AttributeError, LookupError):
        raise NotFound(missing) from None


def plan_spec_get(*, organization: Organization, key: str, version: int | None = None) -> PlanSpec:
    missing = f"No such plan: {key!r}" + (f" version {version}." if version else ".")
    return _provided("plan", missing, organization=organization, key=key, version=version)


def addon_spec_get(*, organization: Organization, key: str) -> AddonSpec:
    return _provided("addon", f"No such add-on: {key!r}.", organization=organization, key=key)


def feature_spec_get(*, organization: Organization, key_or_id: str) -> FeatureSpec:
    return _provided(
        "feature", f"No such feature: {key_or_id!r}.", organization=organization, key_or_id=key_or_id
    )


def usage_total(*, organization: Organization, window: UsageRequest) -> Decimal:
    """Metered usage of the window's subjects in [start, end)."""
    if not window.subject_keys or window.end <= window.start:
        return Decimal(0)
    return Decimal(
        _PROVIDERS["usage"](
            organization=organization,
            meter_slug=window.meter_slug,
            subject_keys=list(window.subject_keys),
            start=window.start,
            end=window.end,
            group_by_filters=window.group_by_filters,
        )
    )


def usage_totals(*, organization: Organization, requests: list[UsageRequest]) -> list[Decimal]:
    """`usage_total` for many windows at once (the bulk entitlement read), in request order. When the
    single-window `usage` provider is replaced (tests), each request goes through it."""
    if not requests:
        return []
    if _PROVIDERS["usage"] is not _metering_usage:
        return [usage_total(organization=organization, window=r) for r in requests]
    return [Decimal(v) for v in _PROVIDERS["usage_bulk"](organization=organization, requests=requests)]


def plan_choices(*, organization: Organization) -> list[tuple[str, str, int]]:
    """Published plans as (key, name, version), for the console's plan pickers."""
    try:
        return list(_PROVIDERS["plan_choices"](organization=organization))
    except (AttributeError, LookupError):
        return []
