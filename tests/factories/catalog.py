"""Features, plan and add-on versions, and the rate cards and prices inside them (catalog documents)."""

from __future__ import annotations

from typing import Any

import factory
from django.utils import timezone

from catalog.models import AddonVersion, Feature, PlanVersion, VersionStatus
from tests.factories.core import OrganizationFactory


def flat(amount: str, term: str = "in_advance") -> dict[str, Any]:
    """A flat price document."""
    return {"type": "flat", "amount": amount, "paymentTerm": term}


def unit(amount: str) -> dict[str, Any]:
    """A per-unit price document (billed in arrears)."""
    return {"type": "unit", "amount": amount}


def rate_card(
    key: str,
    *,
    price: dict[str, Any] | None,
    feature_key: str | None = None,
    billing_cadence: str | None = "P1M",
    name: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A rate card: `usage_based` when it names a feature and has a unit-like price, else `flat_fee`.
    `extra` adds document fields as written (`entitlementTemplate`, `discounts`, ...)."""
    usage_based = feature_key is not None and (price or {}).get("type") not in (None, "flat")
    card: dict[str, Any] = {
        "type": "usage_based" if usage_based else "flat_fee",
        "key": key,
        "name": name or key.replace("_", " ").title(),
        "billingCadence": billing_cadence,
        "price": price,
    }
    if feature_key is not None:
        card["featureKey"] = feature_key
    card.update(extra)
    return card


def phase(
    key: str = "default", *, rate_cards: list[dict[str, Any]], duration: str | None = None, name: str = ""
) -> dict[str, Any]:
    """A plan phase (`duration` None: the last phase, open-ended)."""
    return {"key": key, "name": name or key.title(), "duration": duration, "rateCards": rate_cards}


def _feature_keys(cards: list[dict[str, Any]]) -> list[str]:
    return sorted({card["featureKey"] for card in cards if card.get("featureKey")})


class FeatureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feature

    organization = factory.SubFactory(OrganizationFactory)
    key = factory.Sequence(lambda n: f"feature_{n}")
    name = factory.LazyAttribute(lambda f: f.key.replace("_", " ").title())
    meter_slug = ""


class PlanVersionFactory(factory.django.DjangoModelFactory):
    """A plan version (draft unless `published=True`): one open phase with a flat 30 fee by default."""

    class Meta:
        model = PlanVersion

    organization = factory.SubFactory(OrganizationFactory)
    key = factory.Sequence(lambda n: f"plan_{n}")
    version = 1
    name = factory.LazyAttribute(lambda p: p.key.replace("_", " ").title())
    currency = "USD"
    billing_cadence = "P1M"
    phases = factory.LazyFunction(lambda: [phase(rate_cards=[rate_card("base", price=flat("30"))])])
    feature_keys = factory.LazyAttribute(
        lambda p: _feature_keys([card for ph in p.phases for card in ph["rateCards"]])
    )

    class Params:
        published = factory.Trait(
            status=VersionStatus.PUBLISHED, published_at=factory.LazyFunction(timezone.now)
        )


class AddonVersionFactory(factory.django.DjangoModelFactory):
    """An add-on version (draft unless `published=True`): one flat 10 monthly rate card by default."""

    class Meta:
        model = AddonVersion

    organization = factory.SubFactory(OrganizationFactory)
    key = factory.Sequence(lambda n: f"addon_{n}")
    version = 1
    name = factory.LazyAttribute(lambda a: a.key.replace("_", " ").title())
    currency = "USD"
    rate_cards = factory.LazyFunction(lambda: [rate_card("addon", price=flat("10"))])
    feature_keys = factory.LazyAttribute(lambda a: _feature_keys(a.rate_cards))

    class Params:
        published = factory.Trait(
            status=VersionStatus.PUBLISHED, published_at=factory.LazyFunction(timezone.now)
        )
