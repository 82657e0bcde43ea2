"""The rate card editor's values (strings, as its inputs show them, with tier rows) <-> rate card JSON,
and where each rate card path is shown in the editor. The form that reads them from a request and puts
domain errors next to their inputs is `catalog.forms.RateCardForm`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PRICE_MODELS = [
    ("flat", "Flat fee"),
    ("unit", "Per unit"),
    ("graduated", "Graduated tiers"),
    ("volume", "Volume tiers"),
    ("package", "Package (per N units)"),
    ("dynamic", "Dynamic (cost x multiplier)"),
    ("percentage", "Percentage of value"),
]
CADENCES = [
    ("", "One-time"),
    ("P1D", "Daily"),
    ("P1W", "Weekly"),
    ("P1M", "Monthly"),
    ("P3M", "Quarterly"),
    ("P1Y", "Yearly"),
]
PLAN_CADENCES = CADENCES[3:]


@dataclass
class TierRow:
    up_to: str = ""
    unit: str = ""
    flat: str = ""
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class RateCardValues:
    """The editor's rate card, as strings (what the inputs show)."""

    key: str = ""
    name: str = ""
    description: str = ""
    feature_key: str = ""
    billing_cadence: str = "P1M"
    payment_term: str = "in_advance"
    price_model: str = "unit"
    amount: str = ""
    quantity_per_package: str = ""
    multiplier: str = "1"
    percentage: str = ""
    fixed_amount_per_event: str = ""
    minimum_amount: str = ""
    maximum_amount: str = ""
    discount_percentage: str = ""
    discount_usage: str = ""
    entitlement: str = ""
    usage_period: str = "P1M"
    issue_after_reset: str = ""
    is_soft_limit: bool = False
    static_config: str = ""
    tiers: list[TierRow] = field(default_factory=list)
    # what the live preview reads beside the card (not part of it)
    preview_quantity: str = "1000"
    currency: str = ""
    tier_action: str = ""

    @property
    def is_tiered(self) -> bool:
        return self.price_model in ("graduated", "volume")

    @property
    def card_type(self) -> str:
        return "flat_fee" if self.price_model == "flat" else "usage_based"


def values_from_data(
    data: Mapping[str, Any], tier_columns: tuple[list[str], list[str], list[str]]
) -> RateCardValues:
    """The values of a submitted editor: `data` is the form's cleaned data (named as the inputs are),
    `tier_columns` the tier rows' up-to, unit and flat inputs, column by column."""

    def text(name: str) -> str:  # an input that did not clean (a NUL character) reads as empty
        return str(data.get(name) or "")

    values = RateCardValues(
        key=text("key"),
        name=text("name"),
        description=text("description"),
        feature_key=text("featureKey"),
        billing_cadence=text("billingCadence"),
        payment_term=text("paymentTerm") or "in_advance",
        price_model=text("priceModel") or "unit",
        amount=text("amount"),
        quantity_per_package=text("quantityPerPackage"),
        multiplier=text("multiplier"),
        percentage=text("percentage"),
        fixed_amount_per_event=text("fixedAmountPerEvent"),
        minimum_amount=text("minimumAmount"),
        maximum_amount=text("maximumAmount"),
        discount_percentage=text("discountPercentage"),
        discount_usage=text("discountUsage"),
        entitlement=text("entitlement"),
        usage_period=text("usagePeriod") or "P1M",
        issue_after_reset=text("issueAfterReset"),
        is_soft_limit=bool(data.get("isSoftLimit")),
        static_config=text("staticConfig"),
        preview_quantity=text("previewQuantity"),
        currency=text("currency"),
        tier_action=text("tierAction"),
    )
    ups, units, flats = tier_columns

    def pick(column: list[str], index: int) -> str:
        return column[index].strip() if index < len(column) else ""

    for index in range(max(len(ups), len(units), len(flats))):
        values.tiers.append(TierRow(up_to=pick(ups, index), unit=pick(units, index), flat=pick(flats, index)))
    if values.is_tiered and not values.tiers:
        values.tiers = default_tiers()
    return values


def tiers_edit(form: RateCardValues) -> None:
    """Apply the form's tier action: `add` a row before the open-ended last one, `remove-<i>` a row (the
    last row stays open-ended); a tiered model gets the default rows when it has none."""
    action = form.tier_action
    if action == "add":
        last = form.tiers.pop() if form.tiers and not form.tiers[-1].up_to else TierRow()
        form.tiers.append(TierRow())
        form.tiers.append(last)
    elif action.startswith("remove-"):
        index = int(action.split("-", 1)[1]) if action.split("-", 1)[1].isdigit() else -1
        if 0 <= index < len(form.tiers) and len(form.tiers) > 1:
            del form.tiers[index]
            form.tiers[-1].up_to = ""
    if form.is_tiered and not form.tiers:
        form.tiers = default_tiers()


def default_tiers() -> list[TierRow]:
    return [TierRow(up_to="1000", unit=""), TierRow(up_to="", unit="")]


def values_from_card(card: dict[str, Any]) -> RateCardValues:
    price = card.get("price") or {}
    kind = price.get("type") or ("flat" if card.get("type") == "flat_fee" else "unit")
    model = str(price.get("mode") or "graduated") if kind == "tiered" else str(kind)
    discounts = card.get("discounts") or {}
    ent = card.get("entitlementTemplate") or {}
    commitments = card.get("commitments") or {}
    form = RateCardValues(
        key=card.get("key", ""),
        name=card.get("name", ""),
        description=card.get("description", "") or "",
        feature_key=card.get("featureKey") or "",
        billing_cadence=card.get("billingCadence") or "",
        payment_term=price.get("paymentTerm") or card.get("paymentTerm") or "in_advance",
        price_model=model,
        amount=price.get("amount", ""),
        quantity_per_package=price.get("quantityPerPackage", ""),
        multiplier=price.get("multiplier", "1"),
        percentage=price.get("percentage", ""),
        fixed_amount_per_event=price.get("fixedAmountPerEvent", ""),
        minimum_amount=price.get("minimumAmount") or commitments.get("minimumAmount", ""),
        maximum_amount=price.get("maximumAmount") or commitments.get("maximumAmount", ""),
        discount_percentage=(discounts.get("percentage") or {}).get("percentage", ""),
        discount_usage=(discounts.get("usage") or {}).get("quantity", ""),
        entitlement=ent.get("type", ""),
        usage_period=ent.get("usagePeriod") or "P1M",
        issue_after_reset=ent.get("issueAfterReset") or "",
        is_soft_limit=bool(ent.get("isSoftLimit")),
        static_config=ent.get("config", ""),
    )
    for tier in price.get("tiers") or []:
        form.tiers.append(
            TierRow(
                up_to=tier.get("upToAmount") or "",
                unit=(tier.get("unitPrice") or {}).get("amount", ""),
                flat=(tier.get("flatPrice") or {}).get("amount", ""),
            )
        )
    return form


def price_from_form(form: RateCardValues) -> dict[str, Any]:
    """The OpenMeter price JSON the form describes (validation is the parser's job)."""
    model = form.price_model

    def opt(value: str) -> str | None:
        return value or None

    if model == "flat":
        return {"type": "flat", "amount": form.amount, "paymentTerm": form.payment_term}
    commit = {
        k: v for k, v in (("minimumAmount", form.minimum_amount), ("maximumAmount", form.maximum_amount)) if v
    }
    if model == "unit":
        return {"type": "unit", "amount": form.amount, **commit}
    if model in ("graduated", "volume"):
        tiers = [
            {
                "upToAmount": opt(row.up_to),
                "unitPrice": {"type": "unit", "amount": row.unit} if row.unit else None,
                "flatPrice": {"type": "flat", "amount": row.flat} if row.flat else None,
            }
            for row in form.tiers
        ]
        return {"type": "tiered", "mode": model, "tiers": tiers, **commit}
    if model == "package":
        return {
            "type": "package",
            "amount": form.amount,
            "quantityPerPackage": form.quantity_per_package,
            **commit,
        }
    if model == "dynamic":
        return {"type": "dynamic", "multiplier": form.multiplier or "1", **commit}
    if model == "percentage":
        price: dict[str, Any] = {"type": "percentage", "percentage": form.percentage, **commit}
        if form.fixed_amount_per_event:
            price["fixedAmountPerEvent"] = form.fixed_amount_per_event
        return price
    return {"type": model}


def discounts_from_form(form: RateCardValues) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    if form.discount_percentage:
        out["percentage"] = {"percentage": form.discount_percentage}
    if form.discount_usage:
        out["usage"] = {"quantity": form.discount_usage}
    return out or None


def rate_card_from_form(form: RateCardValues) -> dict[str, Any]:
    card: dict[str, Any] = {
        "type": form.card_type,
        "key": form.key,
        "name": form.name,
        "description": form.description,
        "featureKey": form.feature_key or None,
        "billingCadence": form.billing_cadence or None,
        "price": price_from_form(form),
        "discounts": discounts_from_form(form),
    }
    if form.entitlement == "metered":
        card["entitlementTemplate"] = {
            "type": "metered",
            "usagePeriod": form.usage_period,
            "issueAfterReset": form.issue_after_reset or None,
            "isSoftLimit": form.is_soft_limit,
        }
    elif form.entitlement == "boolean":
        card["entitlementTemplate"] = {"type": "boolean"}
    elif form.entitlement == "static":
        try:
            config: Any = json.loads(form.static_config or "")
        except ValueError:
            config = form.static_config or None  # the validator names the field
        card["entitlementTemplate"] = {
            "type": "static",
            "config": config if not isinstance(config, str) else form.static_config,
        }
    return card


# Where the editor shows the errors of a rate card path (the path without its `rateCard.` prefix): the
# input's name; a path not listed goes to its first segment's entry, else to the input named as its last
# segment, else above the form (`core.forms.add_domain_error`). Tier rows are `catalog.forms.RateCardForm`'s.
FIELD_FOR_PATH = {
    "key": "key",
    "name": "name",
    "description": "description",
    "featureKey": "featureKey",
    "billingCadence": "billingCadence",
    "paymentTerm": "paymentTerm",
    "type": "priceModel",
    "price": "priceModel",
    "price.type": "priceModel",
    "price.mode": "priceModel",
    "price.amount": "amount",
    "price.paymentTerm": "paymentTerm",
    "price.quantityPerPackage": "quantityPerPackage",
    "price.multiplier": "multiplier",
    "price.percentage": "percentage",
    "price.fixedAmountPerEvent": "fixedAmountPerEvent",
    "price.minimumAmount": "minimumAmount",
    "price.maximumAmount": "maximumAmount",
    "price.tiers": "tiers",
    "discounts.percentage.percentage": "discountPercentage",
    "discounts.percentage": "discountPercentage",
    "discounts.usage.quantity": "discountUsage",
    "discounts.usage": "discountUsage",
    "commitments": "minimumAmount",
    "commitments.maximumAmount": "maximumAmount",
    "entitlementTemplate": "entitlement",
    "entitlementTemplate.type": "entitlement",
    "entitlementTemplate.usagePeriod": "usagePeriod",
    "entitlementTemplate.issueAfterReset": "issueAfterReset",
    "entitlementTemplate.config": "staticConfig",
}
