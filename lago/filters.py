"""Lago's charge filters ↔ our rate cards, pure.

A Lago charge with `filters` prices the events that match each filter (`values`: {property: [value]}) with
that filter's own `properties`. We make each filter a rate card of its own on a *filter feature*: a feature
on the metric's meter narrowed by the filter's values (`meterGroupByFilters`), so the invoice line engine
rates each filter's usage on its own, current usage and invoices show one amount per filter, and the
usage of an event counts for the filter it matches.

What maps: each property of a filter names one value (a feature filter matches one value per dimension),
and the charge's own `properties` (the price of events that match no filter) are free (every amount 0):
events outside every filter cost nothing. Anything else is refused with 422 `not_supported` rather than
billed differently from Lago.

A filter card carries in its metadata the Lago charge it belongs to (`lagoCharge`), the metric
(`lagoMetric`), the filter's values (`lagoFilter`, JSON) and the charge's default properties
(`lagoProperties`, JSON), so the plan reads back as Lago's charge with its filters.
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


def filter_feature_key(metric_code: str, values: dict[str, str]) -> str:
    """A stable key for the feature of (metric, values): `lagof_<hash>_<code>`, at most 64 characters."""
    digest = hashlib.sha256(json.dumps([metric_code, values], sort_keys=True).encode()).hexdigest()[:12]
    return f"{FEATURE_PREFIX}_{digest}_{metric_code}"[:64].rstrip("_")


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


def _values(raw: Any, path: str, keys: tuple[str, ...], errors: FieldErrors) -> dict[str, str]:
    if not isinstance(raw, dict) or not raw:
        errors.add(path, "value_is_mandatory")
        return {}
    out: dict[str, str] = {}
    for key, values in raw.items():
        where = f"{path}.{key}"
        if key not in keys:
            errors.add(where, "invalid_key")  # not one of the metric's filters
        elif not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            errors.add(where, "invalid_value")
        elif len(values) > 1:
            errors.add(where, "not_supported")  # one value per property
        else:
            out[key] = values[0]
    return out


CardOf = Callable[[dict[str, Any], str], dict[str, Any]]  # (charge, error path) -> our rate card


def filter_cards(
    charge: dict[str, Any],
    *,
    path: str,
    key: str,
    metric_code: str,
    filter_keys: tuple[str, ...],
    card_of: CardOf,
) -> list[dict[str, Any]]:
    """The rate cards of a charge with filters: one per filter (`card_of` maps a charge without filters)."""
    errors = FieldErrors()
    filters = charge.get("filters")
    if not isinstance(filters, list):
        raise LagoInvalid({f"{path}.filters": ["invalid_value"]})
    default = charge.get("properties") or {}
    if not _free(default):
        errors.add(f"{path}.properties", "not_supported")  # events outside every filter would be priced
    cards: list[dict[str, Any]] = []
    seen: set[str] = set()
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
        feature = filter_feature_key(metric_code, values)
        if values and feature in seen:
            errors.add(f"{where}.values", "value_already_exist")
        seen.add(feature)
        own = {**charge, "filters": None, "properties": f.get("properties") or {}, "code": f"{key}_{j + 1}"}
        own["invoice_display_name"] = name or None
        try:
            card = card_of(own, where)
        except LagoInvalid as exc:
            details.update(exc.details)
            continue
        label = ", ".join(f"{k}: {v}" for k, v in sorted(values.items()))
        card["name"] = name or f"{charge.get('invoice_display_name') or metric_code} ({label})"
        card["featureKey"] = feature
        card["metadata"] = {
            **card.get("metadata", {}),
            "lagoCharge": key,
            "lagoMetric": metric_code,
            "lagoFilter": json.dumps({k: [v] for k, v in values.items()}, sort_keys=True),
            "lagoFilterName": name or "",
            "lagoProperties": json.dumps(default, sort_keys=True),
        }
        cards.append(card)
    details.update(errors.details)
    if details:
        raise LagoInvalid(details)
    if not cards:
        raise LagoInvalid({f"{path}.filters": ["value_is_mandatory"]})
    return cards


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
