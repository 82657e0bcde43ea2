"""Billing test fixtures: in-memory catalog and usage providers behind `billing.sources`.

Billing logic is tested against plain plan/feature specs and an in-memory event list, so these tests
do not depend on how catalog stores plans or metering stores events. (Wire tests against the real
metering app live in test_sdk_*.py.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import pytest

from billing import sources
from billing.sources import AddonSpec, FeatureSpec, PhaseSpec, PlanSpec, RateCardSpec


@dataclass
class FakeCatalog:
    plans: dict[tuple[str, str, int], PlanSpec] = field(default_factory=dict)
    addons: dict[tuple[str, str], AddonSpec] = field(default_factory=dict)
    features: dict[tuple[str, str], FeatureSpec] = field(default_factory=dict)
    events: list[tuple[str, str, str, datetime, Decimal]] = field(
        default_factory=list
    )  # org, meter, subject, t, v

    def add_plan(self, org, plan: PlanSpec) -> PlanSpec:
        self.plans[(org.id, plan.key, plan.version)] = plan
        return plan

    def add_feature(self, org, key: str, meter: str = "") -> FeatureSpec:
        f = FeatureSpec(id=f"01FEATURE{len(self.features):017d}", key=key, name=key.title(), meter_slug=meter)
        self.features[(org.id, key)] = f
        return f

    def add_addon(self, org, addon: AddonSpec) -> AddonSpec:
        self.addons[(org.id, addon.key)] = addon
        return addon

    def usage(self, org, meter: str, subject: str, at: datetime, value) -> None:
        self.events.append((org.id, meter, subject, at, Decimal(value)))

    # providers
    def plan(self, *, organization, key, version):
        versions = [p for (o, k, _v), p in self.plans.items() if o == organization.id and k == key]
        if version is not None:
            versions = [p for p in versions if p.version == version]
        if not versions:
            raise LookupError(key)
        return max(versions, key=lambda p: p.version)

    def addon(self, *, organization, key):
        return self.addons[(organization.id, key)]

    def feature(self, *, organization, key_or_id):
        for (o, k), f in self.features.items():
            if o == organization.id and key_or_id in (k, f.id):
                return f
        raise LookupError(key_or_id)

    def usage_total(self, *, organization, meter_slug, subject_keys, start, end, group_by_filters):
        return sum(
            (
                v
                for o, m, s, t, v in self.events
                if o == organization.id and m == meter_slug and s in subject_keys and start <= t < end
            ),
            Decimal(0),
        )


@pytest.fixture
def catalog():
    fake = FakeCatalog()
    sources.set_provider("plan", fake.plan)
    sources.set_provider("addon", fake.addon)
    sources.set_provider("feature", fake.feature)
    sources.set_provider("usage", fake.usage_total)
    yield fake
    for name in ("plan", "addon", "feature", "usage"):
        sources.set_provider(name, None)


def flat(amount: str, term: str = "in_advance") -> dict:
    return {"type": "flat", "amount": amount, "paymentTerm": term}


def pro_plan(
    org,
    catalog: FakeCatalog,
    *,
    version: int = 1,
    fee: str = "30",
    tokens: int = 1000,
    trial: str | None = None,
    key: str = "pro",
) -> PlanSpec:
    """A monthly plan: a flat in-advance fee and a metered `tokens` feature with `tokens` per period."""
    if (org.id, "tokens") not in catalog.features:
        catalog.add_feature(org, "tokens", meter="tokens_total")
        catalog.add_feature(org, "sso")
    cards = (
        RateCardSpec(key="base", name="Base fee", price=flat(fee)),
        RateCardSpec(
            key="tokens",
            name="Tokens",
            feature_key="tokens",
            price={"type": "unit", "amount": "0.001", "paymentTerm": "in_arrears"},
            payment_term="in_arrears",
            entitlement_template={"type": "metered", "issueAfterReset": tokens, "usagePeriod": "P1M"},
        ),
        RateCardSpec(
            key="sso", name="SSO", feature_key="sso", price=None, entitlement_template={"type": "boolean"}
        ),
    )
    phases = [PhaseSpec(key="default", name="Default", duration=None, rate_cards=cards)]
    if trial:
        trial_cards = (
            RateCardSpec(
                key="tokens",
                name="Tokens (trial)",
                feature_key="tokens",
                price=None,
                payment_term="in_arrears",
                entitlement_template={"type": "metered", "issueAfterReset": 100, "usagePeriod": "P1M"},
            ),
        )
        phases.insert(0, PhaseSpec(key="trial", name="Trial", duration=trial, rate_cards=trial_cards))
    return catalog.add_plan(
        org,
        PlanSpec(
            id=f"01PLAN{key.upper():0>20}"[:26],
            key=key,
            version=version,
            name=key.title(),
            currency="USD",
            billing_cadence="P1M",
            phases=tuple(phases),
        ),
    )
