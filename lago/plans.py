"""Lago plans and charges ↔ our plan documents, pure: each charge model onto a price of `catalog.pricing`
(standard, graduated, volume, package, percentage with its per-transaction options), the subscription
fee, the trial; and back. Bad input raises `LagoInvalid` with Lago-style `error_details`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.money import is_currency
from lago import filters
from lago.wire import FieldErrors, LagoInvalid, cents, decimal_string, from_cents, iso, plain

# --- plans and charges ↔ plan documents --------------------------------------------------------------

INTERVALS = {"weekly": "P1W", "monthly": "P1M", "quarterly": "P3M", "semiannual": "P6M", "yearly": "P1Y"}
INTERVALS_BACK = {v: k for k, v in INTERVALS.items()}
CHARGE_MODELS = ("standard", "graduated", "volume", "package", "percentage")
SUBSCRIPTION_CARD = "subscription_fee"


@dataclass(frozen=True)
class Metric:
    """A billable metric as the plan mapping needs it."""

    id: str
    code: str
    filter_keys: tuple[str, ...] = ()  # the metric's `filters` keys (its meter's group-by dimensions)
    additive: bool = True  # its usage adds up across events (sum_agg, count_agg)


def _amount(
    errors: FieldErrors, props: dict[str, Any], name: str, path: str, *, required: bool = True
) -> Decimal | None:
    value = props.get(name)
    if value is None:
        if required:
            errors.add(f"{path}.{name}", "value_is_mandatory")
        return None
    number = decimal_string(value)
    if number is None or number < 0:
        errors.add(f"{path}.{name}", "invalid_amount")
        return None
    return number


def _ranges(errors: FieldErrors, props: dict[str, Any], name: str, path: str) -> list[dict[str, Any]]:
    """Lago's graduated/volume ranges → our tiers. Ranges start at 0, each `to_value` is above the last,
    the last is open (`to_value: null`); `to_value` is inclusive, as our `upToAmount` is."""
    ranges = props.get(name)
    where = f"{path}.{name}"
    if not isinstance(ranges, list) or not ranges:
        errors.add(where, "value_is_mandatory")
        return []
    tiers: list[dict[str, Any]] = []
    previous: Decimal | None = None
    for i, r in enumerate(ranges):
        if not isinstance(r, dict):
            errors.add(f"{where}[{i}]", "invalid_value")
            continue
        frm = decimal_string(r.get("from_value"))
        to_raw = r.get("to_value")
        to = None if to_raw is None else decimal_string(to_raw)
        if frm is None or frm < 0 or (i == 0 and frm != 0):
            errors.add(f"{where}[{i}].from_value", "invalid_graduated_ranges")
        last = i == len(ranges) - 1
        bad_bound = to is None or to <= 0 or (previous is not None and to <= previous)
        if (to_raw is not None) if last else bad_bound:
            errors.add(f"{where}[{i}].to_value", "invalid_graduated_ranges")
        unit = _amount(errors, r, "per_unit_amount", f"{where}[{i}]")
        flat = _amount(errors, r, "flat_amount", f"{where}[{i}]")
        previous = to
        tiers.append(
            {
                "upToAmount": None if last or to is None else plain(to),
                "unitPrice": {"type": "unit", "amount": plain(unit)} if unit else None,
                "flatPrice": {"type": "flat", "amount": plain(flat)} if flat else None,
            }
        )
    for tier in tiers:  # a tier needs a price: a free tier is a unit price of 0
        if tier["unitPrice"] is None and tier["flatPrice"] is None:
            tier["unitPrice"] = {"type": "unit", "amount": "0"}
    return tiers


# Lago's per-transaction properties of a percentage charge -> our percentage price's (rated per event)
PER_TRANSACTION = {
    "per_transaction_min_amount": "perTransactionMinimumAmount",
    "per_transaction_max_amount": "perTransactionMaximumAmount",
    "free_units_per_events": "freeEvents",
    "free_units_per_total_aggregation": "freeAmount",
}


def _per_transaction(errors: FieldErrors, props: dict[str, Any], path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for theirs, ours in PER_TRANSACTION.items():
        if props.get(theirs) in (None, ""):
            continue
        if theirs == "free_units_per_events":
            value = props[theirs]
            count = (
                decimal_string(value)
                if isinstance(value, (int, str)) and not isinstance(value, bool)
                else None
            )
            if count is None or count < 0 or count != count.to_integral_value():
                errors.add(f"{path}.{theirs}", "invalid_value")
            elif count:
                out[ours] = plain(count)
            continue
        amount = _amount(errors, props, theirs, path)
        if amount is not None and (amount or theirs != "free_units_per_total_aggregation"):
            out[ours] = plain(amount)
    low, high = out.get("perTransactionMinimumAmount"), out.get("perTransactionMaximumAmount")
    if low is not None and high is not None and Decimal(low) > Decimal(high):
        errors.add(f"{path}.per_transaction_max_amount", "invalid_value")
    return out


def charge_from_lago(
    charge: Any,
    *,
    index: int,
    metrics: dict[str, Metric],
    currency: str,
    cadence: str,
    path: str | None = None,
) -> dict[str, Any]:
    """One Lago charge (without filters) → one `usage_based` rate card of our plan document."""
    path = path or f"charges[{index}]"
    errors = FieldErrors()
    if not isinstance(charge, dict):
        raise LagoInvalid({path: ["invalid_value"]})
    metric_id = charge.get("billable_metric_id")
    metric = metrics.get(metric_id) if isinstance(metric_id, str) else None
    if metric is None:
        errors.add(f"{path}.billable_metric_id", "billable_metric_not_found")
    model = charge.get("charge_model")
    props = charge.get("properties") or {}
    if not isinstance(props, dict):
        errors.add(f"{path}.properties", "invalid_value")
        props = {}
    if model not in CHARGE_MODELS:
        errors.add(f"{path}.charge_model", "value_is_invalid")
    in_advance = charge.get("pay_in_advance", False)
    invoiceable = charge.get("invoiceable", True)
    if not isinstance(in_advance, bool) or (in_advance and model == "volume"):
        errors.add(f"{path}.pay_in_advance", "invalid_value")
    elif in_advance and charge.get("min_amount_cents") not in (None, 0):
        errors.add(f"{path}.min_amount_cents", "invalid_value")  # as in Lago
    if invoiceable is False and in_advance:
        errors.add(f"{path}.invoiceable", "not_supported")  # fees outside any invoice
    if charge.get("prorated"):
        errors.add(f"{path}.prorated", "not_supported")
    if props.get("grouped_by") or props.get("pricing_group_keys"):
        errors.add(f"{path}.properties.grouped_by", "not_supported")
    price: dict[str, Any] = {}
    discounts: dict[str, Any] | None = None
    if model == "standard":
        amount = _amount(errors, props, "amount", f"{path}.properties")
        price = {"type": "unit", "amount": plain(amount or Decimal(0))}
    elif model in ("graduated", "volume"):
        name = "graduated_ranges" if model == "graduated" else "volume_ranges"
        price = {
            "type": "tiered",
            "mode": model,
            "tiers": _ranges(errors, props, name, f"{path}.properties"),
        }
    elif model == "package":
        amount = _amount(errors, props, "amount", f"{path}.properties")
        size = decimal_string(props.get("package_size"))
        if size is None or size <= 0 or size != size.to_integral_value():
            errors.add(f"{path}.properties.package_size", "invalid_package_size")
        free = _amount(errors, props, "free_units", f"{path}.properties", required=False)
        price = {
            "type": "package",
            "amount": plain(amount or Decimal(0)),
            "quantityPerPackage": plain(size) if size else "1",
        }
        if free:
            discounts = {"usage": {"quantity": plain(free)}}
    elif model == "percentage":
        rate = _amount(errors, props, "rate", f"{path}.properties")
        fixed = _amount(errors, props, "fixed_amount", f"{path}.properties", required=False)
        price = {"type": "percentage", "percentage": plain(rate or Decimal(0))}
        if fixed:
            price["fixedAmountPerEvent"] = plain(fixed)
        price.update(_per_transaction(errors, props, f"{path}.properties"))
    minimum = charge.get("min_amount_cents")
    if minimum not in (None, 0):
        amount_min = from_cents(minimum, currency)
        if amount_min is None or amount_min < 0:
            errors.add(f"{path}.min_amount_cents", "invalid_amount")
        elif price:
            price["minimumAmount"] = plain(amount_min)
    code = charge.get("code")
    if code is not None and (not isinstance(code, str) or not code):
        errors.add(f"{path}.code", "invalid_value")
    display = charge.get("invoice_display_name")
    if display is not None and not isinstance(display, str):
        errors.add(f"{path}.invoice_display_name", "invalid_value")
    errors.raise_any()
    assert metric is not None
    card: dict[str, Any] = {
        "type": "usage_based",
        "key": code or metric.code,
        "name": display or metric.code,
        "featureKey": metric.code,
        "billingCadence": cadence,
        "price": price,
        "metadata": {"lagoChargeModel": model, **({"lagoPayInAdvance": "1"} if in_advance else {})},
    }
    if discounts:
        card["discounts"] = discounts
    return card


def _charge_cards(
    charge: Any, *, index: int, metrics: dict[str, Metric], currency: str, cadence: str
) -> list[dict[str, Any]]:
    """A Lago charge → its rate cards: one, or one per filter (`lago.filters`)."""
    if not isinstance(charge, dict) or not charge.get("filters"):
        return [charge_from_lago(charge, index=index, metrics=metrics, currency=currency, cadence=cadence)]
    metric_id = charge.get("billable_metric_id")
    metric = metrics.get(metric_id) if isinstance(metric_id, str) else None
    if metric is None:
        raise LagoInvalid({f"charges[{index}].billable_metric_id": ["billable_metric_not_found"]})
    return filters.filter_cards(
        charge,
        path=f"charges[{index}]",
        key=charge.get("code") or metric.code,
        metric_code=metric.code,
        filter_keys=metric.filter_keys,
        additive=metric.additive,
        card_of=lambda own, where: charge_from_lago(
            own, index=index, metrics=metrics, currency=currency, cadence=cadence, path=where
        ),
    )


@dataclass(frozen=True)
class PlanDocument:
    key: str
    document: dict[str, Any]


def plan_from_lago(data: Any, *, metrics: dict[str, Metric], key_valid: Any) -> PlanDocument:
    """Lago `plan` → our plan document (one open-ended phase, plus a trial phase without the subscription
    fee when `trial_period` is set)."""
    if not isinstance(data, dict):
        raise LagoInvalid({"plan": ["invalid_value"]})
    errors = FieldErrors()
    code = data.get("code")
    if not isinstance(code, str) or not code:
        errors.add("code", "value_is_mandatory")
    elif not key_valid(code):
        errors.add("code", "invalid_format")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        errors.add("name", "value_is_mandatory")
    interval = data.get("interval")
    cadence = INTERVALS.get(interval) if isinstance(interval, str) else None
    if cadence is None:
        errors.add("interval", "value_is_invalid")
    currency = data.get("amount_currency")
    if not isinstance(currency, str) or not is_currency(currency):
        errors.add("amount_currency", "value_is_invalid")
        currency = "USD"
    currency = currency.upper()
    amount = from_cents(data.get("amount_cents", 0), currency)
    if amount is None or amount < 0:
        errors.add("amount_cents", "invalid_amount")
    pay_in_advance = data.get("pay_in_advance", False)
    if not isinstance(pay_in_advance, bool):
        errors.add("pay_in_advance", "invalid_value")
    trial = data.get("trial_period")
    trial_days: int | None = None
    if trial not in (None, 0, 0.0):
        if isinstance(trial, bool) or not isinstance(trial, (int, float)) or trial < 0 or trial != int(trial):
            errors.add("trial_period", "invalid_value")
        else:
            trial_days = int(trial)
    if data.get("minimum_commitment"):
        errors.add("minimum_commitment", "not_supported")
    if data.get("usage_thresholds"):
        errors.add("usage_thresholds", "not_supported")
    if data.get("fixed_charges"):
        errors.add("fixed_charges", "not_supported")
    charges_cadence = cadence or "P1M"
    if data.get("bill_charges_monthly"):
        if interval in ("yearly", "semiannual", "quarterly"):
            charges_cadence = "P1M"
        else:
            errors.add("bill_charges_monthly", "invalid_value")
    charges = data.get("charges") or []
    if not isinstance(charges, list):
        errors.add("charges", "invalid_value")
        charges = []
    errors.raise_any()
    assert isinstance(code, str) and isinstance(name, str) and cadence is not None and amount is not None
    cards: list[dict[str, Any]] = []
    seen: set[str] = set()
    charge_errors: dict[str, list[str]] = {}
    for i, charge in enumerate(charges):
        try:
            made = _charge_cards(charge, index=i, metrics=metrics, currency=currency, cadence=charges_cadence)
        except LagoInvalid as exc:
            charge_errors.update(exc.details)
            continue
        for card in made:
            if card["key"] in seen or card["key"] == SUBSCRIPTION_CARD or not key_valid(card["key"]):
                charge_errors.setdefault(f"charges[{i}].code", []).append(
                    "value_already_exist" if card["key"] in seen else "invalid_format"
                )
            seen.add(card["key"])
            cards.append(card)
    if charge_errors:
        raise LagoInvalid(charge_errors)
    fee: list[dict[str, Any]] = []
    if amount > 0:
        fee = [
            {
                "type": "flat_fee",
                "key": SUBSCRIPTION_CARD,
                "name": str(data.get("invoice_display_name") or name.strip()),
                "billingCadence": cadence,
                "price": {
                    "type": "flat",
                    "amount": plain(amount),
                    "paymentTerm": "in_advance" if pay_in_advance else "in_arrears",
                },
            }
        ]
    phases: list[dict[str, Any]] = []
    if trial_days:  # the trial: the charges without the subscription fee (a free fee keeps the phase valid)
        free = [{**c, "price": {**c["price"], "amount": "0"}} for c in fee]
        phases.append(
            {"key": "trial", "name": "Trial", "duration": f"P{trial_days}D", "rateCards": [*free, *cards]}
        )
    phases.append({"key": "default", "name": "Default", "duration": None, "rateCards": [*fee, *cards]})
    if not phases[-1]["rateCards"]:
        raise LagoInvalid({"charges": ["value_is_mandatory"]})
    description = data.get("description") or ""
    return PlanDocument(
        key=code,
        document={
            "key": code,
            "name": name.strip(),
            "description": description if isinstance(description, str) else "",
            "currency": currency,
            "billingCadence": cadence,
            "phases": phases,
            "metadata": {"lagoTrialDays": str(trial_days)} if trial_days else {},
        },
    )


def _ranges_back(tiers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    frm = Decimal(0)
    for tier in tiers:
        up = tier.get("upToAmount")
        unit = (tier.get("unitPrice") or {}).get("amount") or "0"
        flat = (tier.get("flatPrice") or {}).get("amount") or "0"
        out.append(
            {
                "from_value": int(frm) if frm == frm.to_integral_value() else plain(frm),
                "to_value": None if up is None else int(Decimal(up)),
                "per_unit_amount": plain(Decimal(unit)),
                "flat_amount": plain(Decimal(flat)),
            }
        )
        if up is not None:
            frm = Decimal(up) + 1
    return out


def in_advance(card: dict[str, Any]) -> bool:
    """Whether a usage rate card is a Lago charge paid in advance (billed as its events arrive)."""
    return (card.get("metadata") or {}).get("lagoPayInAdvance") == "1"


def charge_to_lago(card: dict[str, Any], *, metric: Metric | None, currency: str) -> dict[str, Any]:
    """A usage rate card → Lago `charge`. Prices Lago has no model for (dynamic, flat usage) come back as
    `dynamic`/`standard` with our price under `properties.meterline_price`."""
    price = card.get("price") or {}
    kind = price.get("type")
    props: dict[str, Any]
    if kind == "unit":
        model, props = "standard", {"amount": plain(Decimal(price["amount"]))}
    elif kind == "tiered":
        model = price.get("mode", "graduated")
        name = "graduated_ranges" if model == "graduated" else "volume_ranges"
        props = {name: _ranges_back(price.get("tiers") or [])}
    elif kind == "package":
        free = ((card.get("discounts") or {}).get("usage") or {}).get("quantity")
        model = "package"
        props = {
            "amount": plain(Decimal(price["amount"])),
            "package_size": int(Decimal(price["quantityPerPackage"])),
            "free_units": int(Decimal(free)) if free else 0,
        }
    elif kind == "percentage":
        model, props = "percentage", {"rate": plain(Decimal(price["percentage"]))}
        if price.get("fixedAmountPerEvent"):
            props["fixed_amount"] = plain(Decimal(price["fixedAmountPerEvent"]))
        for theirs, ours in PER_TRANSACTION.items():
            if price.get(ours) is not None:
                value = Decimal(price[ours])
                props[theirs] = int(value) if theirs == "free_units_per_events" else plain(value)
    elif kind == "dynamic":
        model, props = "dynamic", {}
    else:
        model, props = "standard", {"meterline_price": price}
    minimum = price.get("minimumAmount")
    return {
        "lago_id": card["key"],
        "lago_billable_metric_id": metric.id if metric else None,
        "billable_metric_code": card.get("featureKey"),
        "code": card["key"],
        "invoice_display_name": card.get("name") or None,
        "charge_model": model,
        "pay_in_advance": in_advance(card),
        "prorated": False,
        "invoiceable": True,
        "min_amount_cents": cents(Decimal(minimum), currency) if minimum else 0,
        "properties": props,
        "filters": [],
        "taxes": [],
    }


def charges_to_lago(
    cards: list[dict[str, Any]], *, metrics: dict[str, Metric], currency: str
) -> list[dict[str, Any]]:
    """Usage rate cards → Lago charges: the cards of one filtered charge become that charge's `filters`."""
    out: list[dict[str, Any]] = []
    grouped: dict[str, dict[str, Any]] = {}
    for card in cards:
        parent = filters.charge_of(card)
        if parent is None:
            out.append(
                charge_to_lago(card, metric=metrics.get(card.get("featureKey", "")), currency=currency)
            )
            continue
        own = charge_to_lago(card, metric=None, currency=currency)
        if parent not in grouped:
            code = card["metadata"].get("lagoMetric", "")
            metric = metrics.get(code)
            grouped[parent] = {
                **own,
                "lago_id": parent,
                "code": parent,
                "lago_billable_metric_id": metric.id if metric else None,
                "billable_metric_code": code,
                "invoice_display_name": None,
                "properties": filters.default_properties(card),
                "filters": [],
            }
            out.append(grouped[parent])
        if filters.is_default(card):  # the charge's own properties, already read back
            continue
        grouped[parent]["filters"].append(
            {
                "invoice_display_name": filters.filter_name(card),
                "properties": own["properties"],
                "values": filters.filter_values(card),
            }
        )
    return out


def plan_to_lago(
    *,
    lago_id: str,
    key: str,
    name: str,
    description: str,
    currency: str,
    cadence: str,
    phases: list[dict[str, Any]],
    metadata: dict[str, Any],
    created_at: datetime,
    metrics: dict[str, Metric],
) -> dict[str, Any]:
    """Our published plan version → Lago `plan` (the steady-state, last phase)."""
    cards = phases[-1]["rateCards"] if phases else []
    fee = next((c for c in cards if c.get("type") == "flat_fee" and c.get("billingCadence")), None)
    fee_price = (fee or {}).get("price") or {}
    amount = Decimal(fee_price.get("amount") or "0")
    usage = [c for c in cards if c.get("type") == "usage_based"]
    trial = metadata.get("lagoTrialDays")
    by_code = {m.code: m for m in metrics.values()}
    return {
        "lago_id": lago_id,
        "name": name,
        "invoice_display_name": (fee or {}).get("name") or None,
        "created_at": iso(created_at),
        "code": key,
        "interval": INTERVALS_BACK.get(cadence, cadence),
        "description": description or None,
        "amount_cents": cents(amount, currency),
        "amount_currency": currency,
        "trial_period": float(trial) if trial else 0.0,
        "pay_in_advance": (fee_price.get("paymentTerm") or "in_advance") == "in_advance" if fee else False,
        "bill_charges_monthly": any(c.get("billingCadence") == "P1M" for c in usage) and cadence != "P1M",
        "charges": charges_to_lago(usage, metrics=by_code, currency=currency),
        "minimum_commitment": None,
        "taxes": [],
    }
