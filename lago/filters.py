"""Lago's charge filters ↔ our rate cards, pure.

A Lago charge with `filters` prices the events that match each filter (`values`: {property: [values]}: the
event's property is any of the values, for every property of the filter) with that filter's own
`properties`, and the events that match no filter with the charge's own `properties` (its default). We
make each filter a rate card of its own on a *filter feature*: a feature on the metric's meter narrowed by
the filter's values (`meterGroupByFilters`, a list of values where there are several), so the invoice line
engine rates each filter's usage on its own, current usage and invoices show one amount per filter, and
the usage of an event counts for the filter it matches. A priced default is one more card, on a *default
feature*: the whole meter less the filters' features (`excludeFeatures`), for metrics whose usage adds up
(`sum_agg`, `count_agg`).

What does not map is refused with 422 `not_supported` rather than billed differently from Lago: filters
that overlap (an event matching two of them: Lago prices it with the more specific one), and a priced
default on a metric whose usage does not add up, or rated transaction by transaction.

A filter card carries in its metadata the Lago charge it belongs to (`lagoCharge`), the metric
(`lagoMetric`), the filter's values (`lagoFilter`, JSON; `{}` on the default card, `lagoDefault: "1"`), the
charge's default properties (`lagoProperties`, JSON) and, on the default card, the filter features it
leaves out (`lagoExcludes`), so the plan reads back as Lago's charge with its filters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from lago.wire import FieldErrors, LagoInvalid, decimal_string

FEATURE_PREFIX = "lagof"  # filter features' keys start with it (they are not billable metrics)
META_FILTER_OF = "lagoFilterOf"  # a filter feature's metadata: the metric's code


def filter_feature_key(metric_code: str, values: dict[str, list[str]]) -> str:
    """A stable key for the feature of (metric, values): `lagof_<hash>_<code>`, at most 64 characters (a
    property with one value hashes as that value, the form filters have always had)."""
    plain_values = {k: v[0] if len(v) == 1 else sorted(v) for k, v in values.items()}
    digest = hashlib.sha256(json.dumps([metric_code, plain_values], sort_keys=True).encode()).hexdigest()[:12]
    return f"{FEATURE_PREFIX}_{digest}_{metric_code}"[:64].rstrip("_")


def default_feature_key(metric_code: str, excludes: list[str]) -> str:
    """The key of the feature of (metric, less these filter features): `lagof_<hash>_<code>` too."""
    digest = hashlib.sha256(json.dumps([metric_code, sorted(excludes), "default"]).encode()).hexdigest()[:12]
    return f"{FEATURE_PREFIX}_{digest}_{metric_code}"[:64].rstrip("_")


def feature_filters(values: dict[str, list[str]]) -> dict[str, Any]:
    """A filter's values as a feature's `meterGroupByFilters` (one value as a string, several as a list)."""
    return {k: v[0] if len(v) == 1 else list(v) for k, v in values.items()}


def is_filter_feature(key: str) -> bool:
    return key.startswith(FEATURE_PREFIX + "_")


def _free(value: Any) -> bool:
    """Whether every amount in Lago properties is 0 (sizes and counts aside)."""
    if isinstance(value, dict):
        return all(_free(v) for k, v in value.items() if k not in ("package_size", "from_value", "to_value"))
    if isinstance(value, list):
        return all(_free(v) for v in value)
    number = decimal_string(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    return number is None or number == Decimal(0)


def _values(raw: Any, path: str, keys: tuple[str, ...], errors: FieldErrors) -> dict[str, list[str]]:
    if not isinstance(raw, dict) or not raw:
        errors.add(path, "value_is_mandatory")
        return {}
    out: dict[str, list[str]] = {}
    for key, values in raw.items():
        where = f"{path}.{key}"
        if key not in keys:
            errors.add(where, "invalid_key")  # not one of the metric's filters
        elif not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            errors.add(where, "invalid_value")
        else:
            out[key] = list(dict.fromkeys(values))
    return out


def overlap(a: dict[str, list[str]], b: dict[str, list[str]]) -> bool:
    """Whether an event can match both filters: every property they share has a value in common."""
    return all(set(a[k]) & set(b[k]) for k in a.keys() & b.keys())


CardOf = Callable[[dict[str, Any], str], dict[str, Any]]  # (charge, error path) -> our rate card


PER_EVENT_KEYS = ("perTransactionMinimumAmount", "perTransactionMaximumAmount", "freeEvents", "freeAmount")


def filter_cards(
    charge: dict[str, Any],
    *,
    path: str,
    key: str,
    metric_code: str,
    filter_keys: tuple[str, ...],
    additive: bool,
    card_of: CardOf,
) -> list[dict[str, Any]]:
    """The rate cards of a charge with filters: one per filter, and one for the events that match none
    when the charge's own `properties` are priced (`card_of` maps a charge without filters; `additive`:
    whether the metric's usage adds up across events, so the default can be the rest of the meter)."""
    errors = FieldErrors()
    filters = charge.get("filters")
    if not isinstance(filters, list):
        raise LagoInvalid({f"{path}.filters": ["invalid_value"]})
    default = charge.get("properties") or {}
    cards: list[dict[str, Any]] = []
    seen: list[dict[str, list[str]]] = []
    details: dict[str, list[str]] = {}
    for j, f in enumerate(filters):
        where = f"{path}.filters[{j}]"
        if not isinstance(f, dict):
            errors.add(where, "invalid_value")
            continue
        values = _values(f.get("values"), f"{where}.values", filter_keys, errors)
        name = f.get("invoice_display_name")
        if name is not None and not isinstance(name, str):
            errors.add(f"{where}.invoice_display_name", "invalid_value")
        if values and any(
            {k: set(v) for k, v in values.items()} == {k: set(v) for k, v in o.items()} for o in seen
        ):
            errors.add(f"{where}.values", "value_already_exist")
        elif values and any(overlap(values, o) for o in seen):
            errors.add(f"{where}.values", "not_supported")  # an event would match two filters
        if values:
            seen.append(values)
        own = {**charge, "filters": None, "properties": f.get("properties") or {}, "code": f"{key}_{j + 1}"}
        own["invoice_display_name"] = name or None
        try:
            card = card_of(own, where)
        except LagoInvalid as exc:
            details.update(exc.details)
            continue
        label = ", ".join(f"{k}: {', '.join(v)}" for k, v in sorted(values.items()))
        card["name"] = name or f"{charge.get('invoice_display_name') or metric_code} ({label})"
        card["featureKey"] = filter_feature_key(metric_code, values)
        card["metadata"] = {
            **card.get("metadata", {}),
            "lagoCharge": key,
            "lagoMetric": metric_code,
            "lagoFilter": json.dumps(values, sort_keys=True),
            "lagoFilterName": name or "",
            "lagoProperties": json.dumps(default, sort_keys=True),
        }
        cards.append(card)
    if not _free(default) and cards:
        own = {**charge, "filters": None, "properties": default, "code": f"{key}_default"}
        try:
            card = card_of(own, path)
        except LagoInvalid as exc:
            details.update(exc.details)
        else:
            if not additive or any(k in card.get("price", {}) for k in PER_EVENT_KEYS):
                # the rest of the meter is its total less the filters' usage: only for usage that adds up
                errors.add(f"{path}.properties", "not_supported")
            excludes = [c["featureKey"] for c in cards]
            card["name"] = charge.get("invoice_display_name") or metric_code
            card["featureKey"] = default_feature_key(metric_code, excludes)
            card["metadata"] = {
                **card.get("metadata", {}),
                "lagoCharge": key,
                "lagoMetric": metric_code,
                "lagoFilter": "{}",
                "lagoFilterName": "",
                "lagoDefault": "1",
                "lagoExcludes": ",".join(excludes),
                "lagoProperties": json.dumps(default, sort_keys=True),
            }
            cards.append(card)
    details.update(errors.details)
    if details:
        raise LagoInvalid(details)
    if not cards:
        raise LagoInvalid({f"{path}.filters": ["value_is_mandatory"]})
    return cards


def is_default(card: dict[str, Any]) -> bool:
    """Whether a card prices the events of its Lago charge that match no filter."""
    return (card.get("metadata") or {}).get("lagoDefault") == "1"


def excludes_of(card: dict[str, Any]) -> list[str]:
    return [k for k in ((card.get("metadata") or {}).get("lagoExcludes") or "").split(",") if k]


def charge_of(card: dict[str, Any]) -> str | None:
    """The Lago charge a filter card belongs to (None: a card of its own)."""
    return (card.get("metadata") or {}).get("lagoCharge")


def metric_of(card: dict[str, Any]) -> str:
    """The billable metric's code of a usage rate card (a filter card's is in its metadata)."""
    return (card.get("metadata") or {}).get("lagoMetric") or card.get("featureKey", "")


def filter_values(card: dict[str, Any]) -> dict[str, list[str]]:
    return json.loads((card.get("metadata") or {}).get("lagoFilter") or "{}")


def filter_name(card: dict[str, Any]) -> str | None:
    return (card.get("metadata") or {}).get("lagoFilterName") or None


def default_properties(card: dict[str, Any]) -> dict[str, Any]:
    return json.loads((card.get("metadata") or {}).get("lagoProperties") or "{}")
