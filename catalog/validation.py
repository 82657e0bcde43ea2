"""Validation of a plan or add-on version's content document (phases, rate cards, add-on links).

Pure: no database. The caller passes what it knows about the organization's features and add-ons
(`FeatureRef`, `AddonRef`), so the same function serves the API, the editor and tests. Every problem
is reported under its full path, e.g. `phases[1].rateCards[0].price.tiers[2].upToAmount`, in
core.errors' shape [{"name": ..., "reason": ...}]. The result is the canonical JSON we store.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from catalog.pricing import (
    ErrorList,
    FlatPrice,
    PriceInvalid,
    dec_str,
    discounts_to_json,
    parse_commitments,
    parse_decimal,
    parse_discounts_into,
    parse_price_into,
    price_to_json,
)
from core import limits
from core.money import is_currency

KEY_RE = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")
KEY_HELP = "Lowercase letters and digits separated by single underscores (e.g. gpt4o_input_tokens)."
_DURATION_RE = re.compile(
    r"^P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$"
)
RATE_CARD_TYPES = ("flat_fee", "usage_based")
ENTITLEMENT_TYPES = ("metered", "boolean", "static")
TAX_BEHAVIORS = ("inclusive", "exclusive")
INSTANCE_TYPES = ("single", "multiple")

D = TypeVar("D")


@dataclass(frozen=True)
class FeatureRef:
    key: str
    meter_slug: str
    archived: bool = False


@dataclass(frozen=True)
class AddonRef:
    key: str
    currency: str
    instance_type: str


def parse_duration(text: Any) -> tuple[int, ...] | None:
    """ISO 8601 duration -> (years, months, weeks, days, hours, minutes, seconds), or None if invalid
    or zero. Only whole numbers (what billing periods need)."""
    if not isinstance(text, str):
        return None
    match = _DURATION_RE.match(text.strip().upper())
    if not match:
        return None
    parts = tuple(int(g) if g else 0 for g in match.groups())
    years, months, weeks, days, hours, minutes, seconds = parts
    approx_days = (
        years * 365.25 + months * 30.4375 + weeks * 7 + days + (hours * 3600 + minutes * 60 + seconds) / 86400
    )
    if limits.duration_days_problem(approx_days):  # longer than 100 years: no period can hold it
        return None
    return parts if any(parts) else None


def is_valid_key(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64 and bool(KEY_RE.match(value))


def _text(
    obj: Mapping[str, Any], name: str, path: str, errors: ErrorList, *, required: bool, max_length: int = 256
) -> str:
    value = obj.get(name)
    if value is None or value == "":
        if required:
            errors.add(f"{path}.{name}" if path else name, "This field is required.")
        return ""
    if not isinstance(value, str):
        errors.add(f"{path}.{name}" if path else name, "Must be a string.")
        return ""
    if len(value) > max_length:
        errors.add(f"{path}.{name}" if path else name, f"At most {max_length} characters.")
    return value.strip()


def _key(obj: Mapping[str, Any], path: str, errors: ErrorList) -> str:
    value = obj.get("key")
    name = f"{path}.key" if path else "key"
    if not is_valid_key(value):
        errors.add(name, "This field is required. " + KEY_HELP if not value else KEY_HELP)
        return ""
    return str(value)


def _duration(
    obj: Mapping[str, Any], name: str, path: str, errors: ErrorList, *, required: bool
) -> str | None:
    value = obj.get(name)
    full = f"{path}.{name}" if path else name
    if value in (None, ""):
        if required:
            errors.add(full, "This field is required (an ISO 8601 duration such as P1M).")
        return None
    if parse_duration(value) is None:
        errors.add(
            full,
            f"{value!r} is not a positive ISO 8601 duration of at most 100 years (e.g. P14D, P1M, P3M, P1Y).",
        )
        return None
    return str(value).strip().upper()


def _metadata(obj: Mapping[str, Any], path: str, errors: ErrorList) -> dict[str, str]:
    value = obj.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        errors.add(f"{path}.metadata" if path else "metadata", "Must be an object of string values.")
        return {}
    return {str(k): v for k, v in value.items()}


def _entitlement(
    data: Any, feature: FeatureRef | None, path: str, errors: ErrorList
) -> dict[str, Any] | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        errors.add(path, "Must be an object.")
        return None
    kind = data.get("type")
    if kind not in ENTITLEMENT_TYPES:
        errors.add(f"{path}.type", f"Must be one of: {', '.join(ENTITLEMENT_TYPES)}.")
        return None
    if feature is None:
        errors.add(path, "An entitlement template needs the rate card to have a featureKey.")
    if kind == "boolean":
        return {"type": "boolean"}
    if kind == "static":
        config = data.get("config")
        if isinstance(config, str):
            try:
                json.loads(config)
            except ValueError:
                errors.add(f"{path}.config", "Must be valid JSON.")
                return None
        elif isinstance(config, (dict, list)):
            config = json.dumps(config, separators=(",", ":"), sort_keys=True)
        else:
            errors.add(f"{path}.config", "Must be a JSON document (an object or a JSON string).")
            return None
        return {"type": "static", "config": config}
    # metered
    if feature is not None and not feature.meter_slug:
        errors.add(path, f"A metered entitlement needs a feature with a meter; {feature.key!r} has none.")
    usage_period = _duration(data, "usagePeriod", path, errors, required=True)
    issue = None
    if data.get("issueAfterReset") is not None:
        parsed = parse_decimal(data["issueAfterReset"], f"{path}.issueAfterReset", errors)
        issue = None if parsed is None else dec_str(parsed)
    flags = {}
    for flag in ("isSoftLimit", "preserveOverageAtReset"):
        value = data.get(flag, False)
        if not isinstance(value, bool):
            errors.add(f"{path}.{flag}", "Must be true or false.")
        flags[flag] = bool(value)
    return {"type": "metered", "usagePeriod": usage_period, "issueAfterReset": issue, **flags}


def _is_object(data: Any, path: str, errors: ErrorList) -> bool:
    """Whether `data` is an object (a JSON object: a mapping); if not, an error at `path` says so."""
    if not isinstance(data, Mapping):
        errors.add(path, "Must be an object.")
        return False
    return True


def validate_rate_card(
    data: Any, *, path: str, features: Mapping[str, FeatureRef], errors: ErrorList
) -> dict[str, Any] | None:
    """One rate card -> its canonical JSON (or None, with errors added)."""
    if not _is_object(data, path, errors):
        return None
    before = len(errors.items)
    kind = data.get("type")
    if kind not in RATE_CARD_TYPES:
        errors.add(f"{path}.type", f"Must be one of: {', '.join(RATE_CARD_TYPES)}.")
    key = _key(data, path, errors)
    name = _text(data, "name", path, errors, required=True)
    description = _text(data, "description", path, errors, required=False, max_length=2000)
    feature: FeatureRef | None = None
    feature_key = data.get("featureKey") or None
    if feature_key is not None:
        feature = features.get(feature_key) if isinstance(feature_key, str) else None
        if feature is None:
            errors.add(f"{path}.featureKey", f"No feature with key {feature_key!r}.")
        elif feature.archived:
            errors.add(f"{path}.featureKey", f"Feature {feature_key!r} is archived.")
    cadence = _duration(data, "billingCadence", path, errors, required=kind == "usage_based")
    price_json = None
    price = None
    if data.get("price") is not None:
        price = parse_price_into(data["price"], f"{path}.price", errors)
    payment_term = data.get("paymentTerm")
    if payment_term is not None and payment_term not in ("in_advance", "in_arrears"):
        errors.add(f"{path}.paymentTerm", "Must be in_advance or in_arrears.")
        payment_term = None
    if kind == "flat_fee":
        if price is not None and not isinstance(price, FlatPrice):
            errors.add(f"{path}.price.type", 'A flat_fee rate card takes a "flat" price.')
        if isinstance(price, FlatPrice) and payment_term and data["price"].get("paymentTerm") is None:
            price = FlatPrice(amount=price.amount, payment_term=payment_term)
        elif isinstance(price, FlatPrice) and payment_term and payment_term != price.payment_term:
            errors.add(f"{path}.paymentTerm", "Differs from price.paymentTerm; set it in one place.")
    elif kind == "usage_based":
        if data.get("price") is None:
            errors.add(f"{path}.price", "A usage_based rate card needs a price.")
        elif isinstance(price, FlatPrice):
            errors.add(
                f"{path}.price.type",
                "A usage_based rate card takes a usage price (unit, tiered, package, dynamic, percentage).",
            )
        if feature_key is None:
            errors.add(
                f"{path}.featureKey",
                "A usage_based rate card needs a feature (its meter gives the quantity).",
            )
        elif feature is not None and not feature.meter_slug:
            errors.add(
                f"{path}.featureKey", f"Feature {feature_key!r} has no meter, so it cannot be usage-priced."
            )
        if payment_term == "in_advance":
            errors.add(f"{path}.paymentTerm", "Usage is billed in arrears.")
    if price is not None:
        price_json = price_to_json(price)
    discounts = parse_discounts_into(data.get("discounts"), f"{path}.discounts", errors)
    if discounts is not None and discounts.usage_quantity is not None and kind != "usage_based":
        errors.add(f"{path}.discounts.usage", "A usage discount applies to usage_based rate cards only.")
    commitments_json = None
    if data.get("commitments") is not None:
        try:
            commitments = parse_commitments(data["commitments"], f"{path}.commitments")
        except PriceInvalid as exc:
            errors.items.extend(exc.errors)
            commitments = None
        if commitments is not None:
            if kind != "usage_based":
                errors.add(f"{path}.commitments", "Commitments apply to usage_based rate cards only.")
            if price_json and ("minimumAmount" in price_json or "maximumAmount" in price_json):
                errors.add(
                    f"{path}.commitments",
                    "The price already sets minimumAmount/maximumAmount; set them in one place.",
                )
            commitments_json = {
                k: dec_str(v)
                for k, v in (
                    ("minimumAmount", commitments.minimum_amount),
                    ("maximumAmount", commitments.maximum_amount),
                )
                if v is not None
            } or None
    entitlement = _entitlement(
        data.get("entitlementTemplate"), feature, f"{path}.entitlementTemplate", errors
    )
    tax = data.get("taxBehavior")
    if tax is not None and tax not in TAX_BEHAVIORS:
        errors.add(f"{path}.taxBehavior", f"Must be one of: {', '.join(TAX_BEHAVIORS)}.")
    known = {
        "type", "key", "name", "description", "featureKey", "billingCadence", "price", "paymentTerm",
        "entitlementTemplate", "discounts", "commitments", "taxBehavior", "metadata",
    }  # fmt: skip
    for extra in data:
        if extra not in known:
            errors.add(f"{path}.{extra}", "Unknown field.")
    metadata = _metadata(data, path, errors)
    if len(errors.items) != before:
        return None
    effective_term = (
        price.payment_term
        if isinstance(price, FlatPrice)
        else ("in_arrears" if kind == "usage_based" else None)
    )
    return {
        "type": kind,
        "key": key,
        "name": name,
        "description": description,
        "featureKey": feature_key,
        "billingCadence": cadence,
        "price": price_json,
        "paymentTerm": effective_term,
        "entitlementTemplate": entitlement,
        "discounts": discounts_to_json(discounts),
        "commitments": commitments_json,
        "taxBehavior": tax,
        "metadata": metadata,
    }


def _rate_cards(
    data: Any, *, path: str, features: Mapping[str, FeatureRef], errors: ErrorList
) -> list[dict[str, Any]]:
    if data is None:
        return []
    if not isinstance(data, list):
        errors.add(path, "Must be a list of rate cards.")
        return []
    cards = []
    seen: set[str] = set()
    for index, raw in enumerate(data):
        card = validate_rate_card(raw, path=f"{path}[{index}]", features=features, errors=errors)
        key = raw.get("key") if isinstance(raw, Mapping) else None
        if isinstance(key, str) and key in seen:
            errors.add(f"{path}[{index}].key", f"Duplicate rate card key {key!r} in this list.")
        if isinstance(key, str):
            seen.add(key)
        if card is not None:
            cards.append(card)
    return cards


def validate_phase(
    data: Any, *, path: str, features: Mapping[str, FeatureRef], errors: ErrorList
) -> dict[str, Any] | None:
    if not _is_object(data, path, errors):
        return None
    before = len(errors.items)
    for extra in data:
        if extra not in {"key", "name", "description", "duration", "rateCards", "metadata"}:
            errors.add(f"{path}.{extra}", "Unknown field.")
    phase = {
        "key": _key(data, path, errors),
        "name": _text(data, "name", path, errors, required=True),
        "description": _text(data, "description", path, errors, required=False, max_length=2000),
        "duration": _duration(data, "duration", path, errors, required=False),
        "rateCards": _rate_cards(
            data.get("rateCards"), path=f"{path}.rateCards", features=features, errors=errors
        ),
        "metadata": _metadata(data, path, errors),
    }
    return phase if len(errors.items) == before else None


@dataclass(frozen=True)
class PlanDocument:
    """The validated content of a plan version (what PlanVersion stores)."""

    name: str
    description: str
    currency: str
    billing_cadence: str
    phases: list[dict[str, Any]]
    addons: list[dict[str, Any]]
    metadata: dict[str, str]

    @property
    def feature_keys(self) -> list[str]:
        return sorted(
            {card["featureKey"] for phase in self.phases for card in phase["rateCards"] if card["featureKey"]}
        )


def _version_head(data: Any, errors: ErrorList) -> tuple[Mapping[str, Any], str, str, str]:
    """What every plan or add-on version body starts with: the body as an object (anything else fails
    at once), then its name, description and currency ("" when unknown, with an error added).
    `_version_document` ends the reading."""
    if not isinstance(data, Mapping):
        errors.add("body", "Must be a JSON object.")
        errors.raise_if_any()
    assert isinstance(data, Mapping)
    name = _text(data, "name", "", errors, required=True)
    description = _text(data, "description", "", errors, required=False, max_length=2000)
    currency = data.get("currency")
    if not isinstance(currency, str) or not is_currency(currency):
        errors.add("currency", f"Unknown currency code {currency!r}.")
        currency = ""
    return data, name, description, currency


def _version_document(
    document: Callable[..., D],
    data: Mapping[str, Any],
    head: tuple[str, str, str],
    errors: ErrorList,
    **fields: Any,
) -> D:
    """What every plan or add-on version body ends with: its metadata read last, every error raised at
    once, then the document with the head (name, description, currency upper-cased) and `fields`."""
    metadata = _metadata(data, "", errors)
    errors.raise_if_any()
    name, description, currency = head
    return document(
        name=name, description=description, currency=currency.upper(), metadata=metadata, **fields
    )


def validate_plan(
    data: Any,
    *,
    features: Mapping[str, FeatureRef],
    addons: Mapping[str, AddonRef] | None = None,
    for_publish: bool = False,
) -> PlanDocument:
    """A plan version's body (without key) -> PlanDocument; raises PriceInvalid with every error."""
    errors = ErrorList()
    data, name, description, currency = _version_head(data, errors)
    cadence = _duration(data, "billingCadence", "", errors, required=True) or ""
    phases: list[dict[str, Any]] = []
    raw_phases = data.get("phases") or []
    if not isinstance(raw_phases, list):
        errors.add("phases", "Must be a list of phases.")
        raw_phases = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_phases):
        phase = validate_phase(raw, path=f"phases[{index}]", features=features, errors=errors)
        key = raw.get("key") if isinstance(raw, Mapping) else None
        if isinstance(key, str):
            if key in seen:
                errors.add(f"phases[{index}].key", f"Duplicate phase key {key!r}.")
            seen.add(key)
        if isinstance(raw, Mapping) and index < len(raw_phases) - 1 and not raw.get("duration"):
            errors.add(
                f"phases[{index}].duration",
                "Only the last phase may be open-ended; give this one a duration.",
            )
        if phase is not None:
            phases.append(phase)
    if for_publish and not raw_phases:
        errors.add("phases", "A plan needs at least one phase to be published.")
    if for_publish:
        for index, raw in enumerate(raw_phases):
            if isinstance(raw, Mapping) and not raw.get("rateCards"):
                errors.add(f"phases[{index}].rateCards", "A published phase needs at least one rate card.")
    links = _addon_links(data.get("addons"), addons or {}, currency, seen, errors)
    return _version_document(
        PlanDocument,
        data,
        (name, description, currency),
        errors,
        billing_cadence=cadence,
        phases=phases,
        addons=links,
    )


def _addon_links(
    data: Any, addons: Mapping[str, AddonRef], currency: str, phase_keys: set[str], errors: ErrorList
) -> list[dict[str, Any]]:
    if data is None:
        return []
    if not isinstance(data, list):
        errors.add("addons", "Must be a list of add-on links.")
        return []
    links = []
    seen: set[str] = set()
    for index, raw in enumerate(data):
        path = f"addons[{index}]"
        if not isinstance(raw, Mapping):
            errors.add(path, "Must be an object.")
            continue
        key = raw.get("addonKey")
        addon = addons.get(key) if isinstance(key, str) else None
        if addon is None:
            errors.add(f"{path}.addonKey", f"No add-on with key {key!r}.")
            continue
        if key in seen:
            errors.add(f"{path}.addonKey", f"Add-on {key!r} is linked twice.")
        seen.add(addon.key)
        if currency and addon.currency.upper() != str(currency).upper():
            errors.add(
                f"{path}.addonKey", f"Add-on currency {addon.currency} differs from the plan's {currency}."
            )
        from_phase = raw.get("fromPlanPhase") or None
        if from_phase is not None and from_phase not in phase_keys:
            errors.add(f"{path}.fromPlanPhase", f"No phase with key {from_phase!r} in this plan.")
        max_quantity = raw.get("maxQuantity")
        if max_quantity is not None and (
            isinstance(max_quantity, bool) or not isinstance(max_quantity, int) or max_quantity < 1
        ):
            errors.add(f"{path}.maxQuantity", "Must be a positive integer (or null for no limit).")
            max_quantity = None
        if addon.instance_type == "single" and max_quantity not in (None, 1):
            errors.add(f"{path}.maxQuantity", "A single-instance add-on can be bought once (maxQuantity 1).")
        links.append(
            {
                "addonKey": addon.key,
                "fromPlanPhase": from_phase,
                "maxQuantity": 1 if addon.instance_type == "single" else max_quantity,
            }
        )
    return links


@dataclass(frozen=True)
class AddonDocument:
    name: str
    description: str
    currency: str
    instance_type: str
    rate_cards: list[dict[str, Any]]
    metadata: dict[str, str]

    @property
    def feature_keys(self) -> list[str]:
        return sorted({card["featureKey"] for card in self.rate_cards if card["featureKey"]})


def validate_addon(
    data: Any, *, features: Mapping[str, FeatureRef], for_publish: bool = False
) -> AddonDocument:
    errors = ErrorList()
    data, name, description, currency = _version_head(data, errors)
    instance_type = data.get("instanceType") or "single"
    if instance_type not in INSTANCE_TYPES:
        errors.add("instanceType", "Must be single or multiple.")
    cards = _rate_cards(data.get("rateCards"), path="rateCards", features=features, errors=errors)
    if for_publish and not data.get("rateCards"):
        errors.add("rateCards", "An add-on needs at least one rate card to be published.")
    return _version_document(
        AddonDocument,
        data,
        (name, description, currency),
        errors,
        instance_type=instance_type,
        rate_cards=cards,
    )
