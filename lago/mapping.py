"""Pure mappings between Lago's wire shapes and ours for billable metrics (meters), statuses (subscriptions,
invoices) and webhook names: no database, no Django models. Plans and charges are `lago.plans`; errors,
timestamps and amounts `lago.wire`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lago.wire import FieldErrors, LagoInvalid, iso

# --- billable metrics ↔ meters --------------------------------------------------------------------

# Lago aggregation → our meter aggregation (`weighted_sum_agg`, `custom_agg` and `recurring` metrics have no
# counterpart in our meters).
AGGREGATIONS = {
    "count_agg": "COUNT",
    "sum_agg": "SUM",
    "max_agg": "MAX",
    "unique_count_agg": "UNIQUE_COUNT",
    "latest_agg": "LATEST",
}
AGGREGATIONS_BACK = {v: k for k, v in AGGREGATIONS.items()}
UNSUPPORTED_AGGREGATIONS = ("weighted_sum_agg", "custom_agg")


@dataclass(frozen=True)
class MeterSpec:
    """What a Lago billable metric becomes: a meter (event type = the metric code) and a feature."""

    key: str
    name: str
    description: str
    aggregation: str
    value_property: str | None
    group_by: dict[str, str] = field(default_factory=dict)


def _json_path(name: str) -> str:
    return "$." + name if name.isidentifier() else "$['" + name.replace("'", "") + "']"


def metric_from_lago(data: Any, *, key_valid: Any) -> MeterSpec:
    """Lago `billable_metric` → `MeterSpec`. `key_valid(code)` says whether the code is a valid feature key."""
    errors = FieldErrors()
    if not isinstance(data, dict):
        raise LagoInvalid({"billable_metric": ["invalid_value"]})
    code = data.get("code")
    name = data.get("name")
    if not isinstance(code, str) or not code:
        errors.add("code", "value_is_mandatory")
    elif not key_valid(code):
        errors.add("code", "invalid_format")
    if not isinstance(name, str) or not name.strip():
        errors.add("name", "value_is_mandatory")
    description = data.get("description") or ""
    if not isinstance(description, str):
        errors.add("description", "invalid_value")
    agg = data.get("aggregation_type")
    field_name = data.get("field_name")
    aggregation = AGGREGATIONS.get(agg) if isinstance(agg, str) else None
    if agg in UNSUPPORTED_AGGREGATIONS:
        errors.add("aggregation_type", "not_supported")
    elif aggregation is None:
        errors.add("aggregation_type", "value_is_invalid")
    elif aggregation != "COUNT" and (not isinstance(field_name, str) or not field_name.strip()):
        errors.add("field_name", "value_is_mandatory")
    if data.get("recurring"):
        errors.add("recurring", "not_supported")
    if data.get("expression"):
        errors.add("expression", "not_supported")
    group_by: dict[str, str] = {}
    filters = data.get("filters")
    if filters is not None:
        if not isinstance(filters, list):
            errors.add("filters", "invalid_value")
        else:
            for i, f in enumerate(filters):
                key = f.get("key") if isinstance(f, dict) else None
                values = f.get("values") if isinstance(f, dict) else None
                if not isinstance(key, str) or not key or not key.isidentifier():
                    errors.add(f"filters[{i}].key", "invalid_value")
                elif not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                    errors.add(f"filters[{i}].values", "invalid_value")
                else:
                    group_by[key] = _json_path(key)
    errors.raise_any()
    assert isinstance(code, str) and isinstance(name, str) and aggregation is not None
    return MeterSpec(
        key=code,
        name=name.strip(),
        description=description,
        aggregation=aggregation,
        value_property=_json_path(field_name.strip()) if aggregation != "COUNT" and field_name else None,
        group_by=group_by,
    )


def field_name_of(value_property: str | None) -> str | None:
    """`$.gb` → `gb` (the reverse of `_json_path`)."""
    if not value_property:
        return None
    if value_property.startswith("$['") and value_property.endswith("']"):
        return value_property[3:-2]
    return value_property[2:] if value_property.startswith("$.") else value_property


def metric_to_lago(spec: MeterSpec, *, lago_id: str, created_at: datetime) -> dict[str, Any]:
    """`MeterSpec` → Lago `billable_metric` (the reverse of `metric_from_lago`)."""
    return {
        "lago_id": lago_id,
        "name": spec.name,
        "code": spec.key,
        "description": spec.description or None,
        "aggregation_type": AGGREGATIONS_BACK.get(spec.aggregation, spec.aggregation.lower() + "_agg"),
        "weighted_interval": None,
        "recurring": False,
        "rounding_function": None,
        "rounding_precision": None,
        "expression": None,
        "field_name": field_name_of(spec.value_property),
        "filters": [{"key": k, "values": []} for k in sorted(spec.group_by)],
        "created_at": iso(created_at),
    }


# --- subscriptions, invoices, wallets: statuses ------------------------------------------------------

INVOICE_STATUSES = {
    "draft": "draft",
    "issued": "finalized",
    "paid": "finalized",
    "payment_failed": "finalized",
    "overdue": "finalized",
    "uncollectible": "finalized",
    "voided": "voided",
}
PAYMENT_STATUSES = {"paid": "succeeded", "payment_failed": "failed"}
# Lago's invoice `status` filter → ours.
INVOICE_STATUS_FILTER = {
    "draft": ["draft"],
    "finalized": ["issued", "paid", "payment_failed", "overdue", "uncollectible"],
    "voided": ["voided"],
}


def subscription_status(*, active_from: datetime, active_to: datetime | None, now: datetime) -> str:
    if active_from > now:
        return "pending"
    if active_to is not None and active_to <= now:
        return "terminated"
    return "active"


def calendar_anchor(start: datetime, cadence: str) -> datetime:
    """Lago's `billing_time: calendar`: periods start on calendar boundaries (the 1st of the month, the
    1st of a quarter or half-year, Jan 1, or Monday), at midnight in `start`'s time zone."""
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if cadence == "P1W":
        return day - timedelta(days=day.weekday())
    if cadence == "P1Y":
        return day.replace(month=1, day=1)
    months = {"P3M": 3, "P6M": 6}.get(cadence, 1)
    return day.replace(month=((day.month - 1) // months) * months + 1, day=1)


# --- webhooks -------------------------------------------------------------------------------------

FORMAT = "lago"  # the webhook endpoint format of Lago's envelope signed with HMAC (the default)
JWT_FORMAT = "lago_jwt"  # Lago's envelope signed with a JWT (RS256)
SIGNATURE_ALGOS = {FORMAT: "hmac", JWT_FORMAT: "jwt"}  # endpoint format -> Lago's `signature_algo`
FORMATS = {algo: fmt for fmt, algo in SIGNATURE_ALGOS.items()}

INVOICE_TYPES = {
    "invoice.created": "invoice.drafted",
    "invoice.issued": "invoice.created",
    "invoice.paid": "invoice.payment_status_updated",
    "invoice.payment_failed": "invoice.payment_status_updated",
    "invoice.voided": "invoice.voided",
}
# Lago's webhook types we send, with the events of ours each comes from (the Lago API's `event_types`).
LAGO_EVENT_TYPES: dict[str, tuple[str, ...]] = {
    "invoice.drafted": ("invoice.created",),
    "invoice.created": ("invoice.issued",),
    "invoice.payment_status_updated": ("invoice.paid", "invoice.payment_failed"),
    "invoice.voided": ("invoice.voided",),
    "subscription.started": ("subscription.created", "subscription.changed"),
    "subscription.updated": ("subscription.changed", "subscription.canceled"),
    "subscription.terminated": ("subscription.canceled",),
}


def our_event_types(lago_types: list[str]) -> list[str]:
    """The Lago API's `event_types` (Lago's names) → ours (an endpoint filters on ours)."""
    return sorted({ours for t in lago_types for ours in LAGO_EVENT_TYPES[t]})


def lago_event_types(ours: list[str]) -> list[str] | None:
    """An endpoint's event types (ours) → the Lago names they can produce (None: all)."""
    if not ours:
        return None
    return sorted(t for t, sources in LAGO_EVENT_TYPES.items() if set(sources) & set(ours))
