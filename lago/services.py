"""Lago's writes, each mapped onto our own services (nothing is stored twice).

| Lago | ours |
|---|---|
| billable metric | a meter (slug and event type = the code) + a feature (key = the code) |
| plan | a published plan version (key = the code); an update publishes the next version |
| customer | a customer (key = `external_id`, which is also its first subject) |
| subscription | a subscription; its `external_id` is a subject of the customer and a `SubscriptionExternalId` |
| event | a CloudEvent (`id` = `transaction_id`, `source` = "lago", `type` = code, `subject` = the external id) |

Wallets are `lago.wallet_services`, webhook endpoints `lago.webhook_endpoint_services`.
"""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from billing import selectors as billing_selectors
from billing import services as billing_services
from billing.models import Customer, Subscription
from billing.subscriptions.schedule import SubscriptionNotActive
from catalog import selectors as catalog_selectors
from catalog import services as catalog_services
from catalog.validation import is_valid_key
from core.audit import Actor
from core.errors import Conflict, NotFound, ValidationFailed
from core.limits import check_timezone
from core.models import Organization
from core.money import is_currency
from invoicing import services as invoicing_services
from invoicing.models import Invoice
from lago import filters, mapping, plans, wire
from lago import selectors as lago_selectors
from lago.advance import advance_forget
from lago.models import SubscriptionExternalId
from lago.wire import LagoInvalid
from metering import selectors as metering_selectors
from metering import services as metering_services
from metering.ingest import validate_body

# --- billable metrics ------------------------------------------------------------------------------


def metric_create(*, organization: Organization, data: Any, actor: Actor = None) -> str:
    """A meter and its feature, both keyed by the metric's code; returns the feature's id (the `lago_id`)."""
    spec = mapping.metric_from_lago(data, key_valid=is_valid_key)
    if catalog_selectors.feature_list(organization=organization).filter(key=spec.key).exists():
        raise LagoInvalid({"code": ["value_already_exist"]})
    with transaction.atomic():
        metering_services.meter_create(
            organization=organization,
            slug=spec.key,
            event_type=spec.key,
            aggregation=spec.aggregation,
            value_property=spec.value_property,
            group_by=spec.group_by,
            name=spec.name,
            description=spec.description,
            actor=actor,
        )
        feature = catalog_services.feature_create(
            organization=organization, key=spec.key, name=spec.name, meter_slug=spec.key, actor=actor
        )
    return feature.id


def metric_delete(*, organization: Organization, code: str, actor: Actor = None) -> None:
    """The feature and its meter are deleted (the meter's events stay). A metric that a plan version uses is
    refused: running subscriptions bill from it (Lago would remove the plans' charges instead)."""
    with transaction.atomic():
        try:
            feature = catalog_selectors.feature_get(organization=organization, id_or_key=code)
        except NotFound:
            raise NotFound("billable_metric_not_found") from None
        own = [
            f
            for f in catalog_selectors.feature_list(organization=organization, meter_slug=feature.meter_slug)
            if (f.metadata or {}).get(filters.META_FILTER_OF) == feature.key
        ]
        for f in [feature, *own]:  # the metric and its charge filters' features
            if catalog_selectors.plans_using_feature(organization=organization, feature_key=f.key).exists():
                raise LagoInvalid({"billable_metric": ["used_by_plans"]})
        for f in [*own, feature]:
            catalog_services.feature_delete(organization=organization, id_or_key=f.id, actor=actor)
        if feature.meter_slug:
            metering_services.meter_delete(
                organization=organization, id_or_slug=feature.meter_slug, actor=actor
            )


# --- plans -------------------------------------------------------------------------------------------


def plan_metrics(*, organization: Organization) -> dict[str, plans.Metric]:
    """Every live metric (a feature with a meter, not a charge filter's), by id (the `billable_metric_id`
    Lago's charges carry), with its filter keys (its meter's group-by dimensions)."""
    meters = list(metering_selectors.meter_list(organization=organization))
    dims = {m.slug: tuple(sorted(m.group_by or {})) for m in meters}
    additive = {m.slug: m.aggregation in ("SUM", "COUNT") for m in meters}
    return {
        f.id: plans.Metric(
            id=f.id,
            code=f.key,
            filter_keys=dims.get(f.meter_slug, ()),
            additive=additive.get(f.meter_slug, False),
        )
        for f in catalog_selectors.feature_list(organization=organization)
        if f.meter_slug and not filters.is_filter_feature(f.key)
    }


def _filter_features(*, organization: Organization, document: dict[str, Any], actor: Actor) -> None:
    """The features of the plan's charge filters (`lago.filters`), made when missing: the metric's meter
    narrowed by the filter's values."""
    existing = set(
        catalog_selectors.feature_list(organization=organization)
        .filter(key__startswith=filters.FEATURE_PREFIX + "_")
        .values_list("key", flat=True)
    )
    for phase in document.get("phases", []):
        for card in phase.get("rateCards", []):
            key = card.get("featureKey", "")
            if not filters.is_filter_feature(key) or key in existing:
                continue
            metric = card["metadata"]["lagoMetric"]
            values = filters.filter_values(card)
            label = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(values.items()))
            metadata = {filters.META_FILTER_OF: metric}
            if filters.is_default(card):  # the meter less the charge's filters
                label = "no filter"
                metadata["excludeFeatures"] = ",".join(filters.excludes_of(card))
            catalog_services.feature_create(
                organization=organization,
                key=key,
                name=f"{metric} ({label})",
                meter_slug=metric,
                meter_group_by_filters=filters.feature_filters(values),
                metadata=metadata,
                actor=actor,
            )
            existing.add(key)


def plan_create(*, organization: Organization, data: Any, actor: Actor = None) -> str:
    """A Lago plan becomes version 1 of our plan, published at once (Lago plans are live when created)."""
    doc = plans.plan_from_lago(data, metrics=plan_metrics(organization=organization), key_valid=is_valid_key)
    if catalog_selectors.plan_list(organization=organization, key=doc.key).exists():
        raise LagoInvalid({"code": ["value_already_exist"]})
    with transaction.atomic():
        _filter_features(organization=organization, document=doc.document, actor=actor)
        plan = catalog_services.plan_create(
            organization=organization, key=doc.key, data=doc.document, actor=actor
        )
        catalog_services.plan_publish(organization=organization, plan_id=plan.id, actor=actor)
    advance_forget(organization)
    return doc.key


def plan_update(*, organization: Organization, code: str, data: Any, actor: Actor = None) -> str:
    """Lago edits a plan in place; we publish its next version (running subscriptions keep theirs, as
    Lago's do unless `cascade_updates`)."""
    current = catalog_selectors.plan_version_get(organization=organization, plan_key=code)
    merged = {**_plan_as_lago_input(current), **(data if isinstance(data, dict) else {}), "code": code}
    doc = plans.plan_from_lago(
        merged, metrics=plan_metrics(organization=organization), key_valid=is_valid_key
    )
    with transaction.atomic():
        _filter_features(organization=organization, document=doc.document, actor=actor)
        draft = catalog_services.plan_next_version(
            organization=organization, id_or_key=current.id, actor=actor
        )
        catalog_services.plan_update(
            organization=organization, plan_id=draft.id, data=doc.document, actor=actor
        )
        catalog_services.plan_publish(organization=organization, plan_id=draft.id, actor=actor)
    advance_forget(organization)
    return code


def _plan_as_lago_input(plan: Any) -> dict[str, Any]:
    """The Lago fields of a published version, so a partial update keeps what it does not name."""
    metrics = {
        f.key: plans.Metric(id=f.id, code=f.key)
        for f in catalog_selectors.feature_list(organization=plan.organization)
    }
    lago = lago_selectors.plan_json(plan, metrics={m.id: m for m in metrics.values()})
    for charge in lago["charges"]:
        charge["billable_metric_id"] = charge.pop("lago_billable_metric_id")
    return {
        k: v for k, v in lago.items() if k not in ("lago_id", "created_at", "minimum_commitment", "taxes")
    }


def plan_delete(*, organization: Organization, code: str, actor: Actor = None) -> Any:
    plan = catalog_selectors.plan_version_get(organization=organization, plan_key=code)
    return catalog_services.plan_archive(organization=organization, plan_id=plan.id, actor=actor)


# --- customers ------------------------------------------------------------------------------------

ADDRESS_FIELDS = {
    "address_line1": "line1",
    "address_line2": "line2",
    "city": "city",
    "zipcode": "postalCode",
    "state": "state",
    "country": "country",
    "phone": "phoneNumber",
}


def _customer_fields(data: dict[str, Any], *, existing: Customer | None) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    fields: dict[str, Any] = {}
    for attr in ("name", "email", "currency", "timezone", "tax_identification_number", "legal_name"):
        value = data.get(attr)
        if value is not None and not isinstance(value, str):
            errors[attr] = ["invalid_value"]
    if errors:
        raise LagoInvalid(errors)
    currency = data.get("currency")
    if currency:
        if not is_currency(currency):
            raise LagoInvalid({"currency": ["value_is_invalid"]})
        if existing is not None and existing.currency and existing.currency != currency.upper():
            raise LagoInvalid({"currency": ["currencies_does_not_match"]})
        fields["currency"] = currency.upper()
    tz = data.get("timezone")
    if tz is not None:
        try:
            check_timezone(tz, field="timezone")
        except ValidationFailed:
            raise LagoInvalid({"timezone": ["invalid_timezone"]}) from None
        fields["timezone_name"] = tz
    name = data.get("name") or data.get("legal_name")
    if name:
        fields["name"] = name[:256]
    elif existing is None:
        fields["name"] = data["external_id"][:256]
    if data.get("email") is not None:
        fields["primary_email"] = data["email"][:320]
    address = {ours: data[lago] for lago, ours in ADDRESS_FIELDS.items() if isinstance(data.get(lago), str)}
    if address:
        fields["billing_address"] = {**((existing.billing_address or {}) if existing else {}), **address}
    if data.get("tax_identification_number"):
        fields["tax_ids"] = [{"value": data["tax_identification_number"]}]
    meta = {k: data[k] for k in ("legal_name", "legal_number", "firstname", "lastname", "url") if data.get(k)}
    if meta:
        fields["metadata"] = {
            **((existing.metadata or {}) if existing else {}),
            **{k: str(v) for k, v in meta.items()},
        }
    return fields


def customer_upsert(*, organization: Organization, data: Any, actor: Actor = None) -> Customer:
    """Lago's `POST /customers` creates or updates by `external_id`."""
    if not isinstance(data, dict):
        raise LagoInvalid({"customer": ["invalid_value"]})
    external_id = data.get("external_id")
    if not isinstance(external_id, str) or not external_id.strip() or len(external_id) > 255:
        raise LagoInvalid({"external_id": ["value_is_mandatory"]})
    existing = billing_selectors.customer_list(organization=organization, key=external_id).first()
    fields = _customer_fields(data, existing=existing)
    if existing is not None:
        return billing_services.customer_update(
            organization=organization, customer=existing, actor=actor, **fields
        )
    if billing_selectors.customer_for_subject(organization=organization, subject_key=external_id):
        raise LagoInvalid({"external_id": ["value_already_exist"]})
    return billing_services.customer_create(
        organization=organization, key=external_id, subject_keys=[external_id], actor=actor, **fields
    )


def customer_delete(*, organization: Organization, external_id: str, actor: Actor = None) -> Customer:
    customer = billing_selectors.customer_get(organization=organization, id_or_key=external_id)
    return billing_services.customer_delete(organization=organization, customer=customer, actor=actor)


# --- subscriptions -------------------------------------------------------------------------------


def subscription_current(*, organization: Organization, external_id: str) -> Subscription:
    """The subscription an external id names now: the newest one started (else the first scheduled)."""
    now = timezone.now()
    rows = list(
        SubscriptionExternalId.objects.filter(organization=organization, external_id=external_id)
        .select_related("subscription", "subscription__customer")
        .order_by("subscription__active_from")
    )
    if not rows:
        raise NotFound("subscription_not_found")
    started = [r.subscription for r in rows if r.subscription.active_from <= now]
    return started[-1] if started else rows[0].subscription


def subscription_create(*, organization: Organization, data: Any, actor: Actor = None) -> Subscription:
    """Lago's `POST /subscriptions`: a new external id subscribes the customer; a known one with another
    `plan_code` changes the plan (an upgrade now, a downgrade at the end of the period, as Lago does)."""
    if not isinstance(data, dict):
        raise LagoInvalid({"subscription": ["invalid_value"]})
    errors: dict[str, list[str]] = {}
    customer_id = data.get("external_customer_id")
    plan_code = data.get("plan_code")
    external_id = data.get("external_id") or customer_id
    if not isinstance(customer_id, str) or not customer_id:
        errors["external_customer_id"] = ["value_is_mandatory"]
    if not isinstance(plan_code, str) or not plan_code:
        errors["plan_code"] = ["value_is_mandatory"]
    if not isinstance(external_id, str) or not external_id or len(external_id) > 255:
        errors["external_id"] = ["value_is_mandatory"]
    billing_time = data.get("billing_time") or "calendar"
    if billing_time not in ("calendar", "anniversary"):
        errors["billing_time"] = ["value_is_invalid"]
    start = None
    if data.get("subscription_at") is not None:
        start = wire.parse_datetime(data["subscription_at"])
        if start is None:
            errors["subscription_at"] = ["invalid_date"]
    ending = None
    if data.get("ending_at") is not None:
        ending = wire.parse_datetime(data["ending_at"])
        if ending is None or ending <= max(start or timezone.now(), timezone.now()):
            errors["ending_at"] = ["invalid_date"]
    if data.get("plan_overrides"):
        errors["plan_overrides"] = ["not_supported"]
    if errors:
        raise LagoInvalid(errors)
    assert isinstance(customer_id, str) and isinstance(plan_code, str) and isinstance(external_id, str)
    customer = billing_selectors.customer_list(organization=organization, key=customer_id).first()
    if customer is None:
        raise NotFound("customer_not_found")
    if not catalog_selectors.plan_list(organization=organization, key=plan_code, status="published").exists():
        raise NotFound("plan_not_found")
    existing = SubscriptionExternalId.objects.filter(organization=organization, external_id=external_id)
    if existing.exists():
        current = subscription_current(organization=organization, external_id=external_id)
        if current.customer_id != customer.id:
            raise LagoInvalid({"external_id": ["value_already_exist"]})
        if current.plan_key == plan_code:
            return current  # Lago answers the subscription unchanged
        with transaction.atomic():
            old, new = billing_services.subscription_change(
                organization=organization, subscription=current, plan_key=plan_code, timing=None, actor=actor
            )
            SubscriptionExternalId.objects.create(
                organization=organization, external_id=external_id, subscription=new
            )
        # A downgrade waits for the end of the period: Lago answers the current one with `next_plan_code`.
        return new if new.active_from <= timezone.now() else old
    subject_owner = billing_selectors.customer_for_subject(organization=organization, subject_key=external_id)
    if subject_owner is not None and subject_owner.id != customer.id:
        raise LagoInvalid({"external_id": ["value_already_exist"]})
    now = timezone.now()
    active_from = start or now
    plan = catalog_selectors.plan_version_get(organization=organization, plan_key=plan_code)
    tz = customer.timezone or organization.timezone or "UTC"
    local = active_from.astimezone(ZoneInfo(tz))
    anchor = (
        mapping.calendar_anchor(local, plan.billing_cadence) if billing_time == "calendar" else active_from
    )
    with transaction.atomic():
        subjects = billing_selectors.customer_subject_keys(customer=customer)
        if external_id not in subjects:
            billing_services.customer_update(
                organization=organization,
                customer=customer,
                subject_keys=[*subjects, external_id],
                actor=actor,
            )
        sub = billing_services.subscription_create(
            organization=organization,
            customer=customer,
            plan_key=plan_code,
            active_from=active_from,
            billing_anchor=anchor,
            actor=actor,
        )
        SubscriptionExternalId.objects.create(
            organization=organization, external_id=external_id, subscription=sub
        )
        if ending is not None:
            sub = billing_services.subscription_cancel(
                organization=organization, subscription=sub, timing=ending, actor=actor
            )
    return sub


def subscription_update(
    *, organization: Organization, external_id: str, data: Any, actor: Actor = None
) -> Subscription:
    """Lago's `PUT /subscriptions/{external_id}`: `ending_at` schedules the end (our cancel at that instant);
    `name` is accepted and ignored (the subscription is named after its plan); the rest is not supported."""
    if not isinstance(data, dict):
        raise LagoInvalid({"subscription": ["invalid_value"]})
    errors: dict[str, list[str]] = {}
    for name in ("subscription_at", "plan_overrides", "plan_code"):
        if data.get(name) is not None:
            errors[name] = ["not_supported"]
    ending = None
    if data.get("ending_at") is not None:
        ending = wire.parse_datetime(data["ending_at"])
        if ending is None or ending <= timezone.now():
            errors["ending_at"] = ["invalid_date"]
    if errors:
        raise LagoInvalid(errors)
    sub = subscription_current(organization=organization, external_id=external_id)
    if ending is None:
        return sub
    try:
        return billing_services.subscription_cancel(
            organization=organization, subscription=sub, timing=ending, actor=actor
        )
    except SubscriptionNotActive:
        raise LagoInvalid({"subscription": ["not_active"]}) from None
    except Conflict:
        raise LagoInvalid({"subscription": ["pending_plan_change"]}) from None


def subscription_terminate(
    *, organization: Organization, external_id: str, actor: Actor = None
) -> Subscription:
    """Lago's `DELETE /subscriptions/{external_id}`: ends it now (a pending one ends at its start, i.e. never
    runs). A subscription with a scheduled plan change cannot be ended in our billing (422)."""
    sub = subscription_current(organization=organization, external_id=external_id)
    try:
        return billing_services.subscription_cancel(
            organization=organization, subscription=sub, timing="immediate", actor=actor
        )
    except SubscriptionNotActive:
        raise LagoInvalid({"subscription": ["not_active"]}) from None
    except Conflict:
        raise LagoInvalid({"subscription": ["pending_plan_change"]}) from None


# --- events --------------------------------------------------------------------------------------


def _event_cloud(raw: Any, index: int | None) -> tuple[dict[str, Any], dict[str, list[str]]]:
    prefix = "" if index is None else f"events[{index}]."
    errors: dict[str, list[str]] = {}
    if not isinstance(raw, dict):
        return {}, {prefix.rstrip(".") or "event": ["invalid_value"]}
    transaction_id = raw.get("transaction_id")
    code = raw.get("code")
    subject = raw.get("external_subscription_id") or raw.get("external_customer_id")
    if not isinstance(transaction_id, str) or not transaction_id or len(transaction_id) > 255:
        errors[prefix + "transaction_id"] = ["value_is_mandatory"]
    if not isinstance(code, str) or not code or len(code) > 255:
        errors[prefix + "code"] = ["value_is_mandatory"]
    if not isinstance(subject, str) or len(subject) > 255:
        errors[prefix + "external_subscription_id"] = ["value_is_mandatory"]
    when = timezone.now()
    if raw.get("timestamp") is not None:
        parsed = wire.parse_timestamp(raw["timestamp"])
        if parsed is None:
            errors[prefix + "timestamp"] = ["invalid_format"]
        else:
            when = parsed
    props = raw.get("properties")
    if props is None:
        props = {}
    if not isinstance(props, dict):
        errors[prefix + "properties"] = ["invalid_value"]
    return {
        "id": transaction_id,
        "source": wire.EVENT_SOURCE,
        "specversion": "1.0",
        "type": code,
        "subject": subject,
        "time": when.isoformat(),
        "data": props,
    }, errors


def events_ingest(*, organization: Organization, events: list[Any], single: bool) -> list[dict[str, Any]]:
    """Lago events → CloudEvents through the same durable path as `POST /api/v1/events` (validated, one inbox
    row, drained after commit, deduplicated on (organization, "lago", transaction_id)). All or nothing."""
    clouds: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for i, raw in enumerate(events):
        cloud, problems = _event_cloud(raw, None if single else i)
        clouds.append(cloud)
        errors.update(problems)
    if errors:
        raise LagoInvalid(errors)
    body = json.dumps(clouds if not single else clouds[0]).encode()
    try:
        validated, count = validate_body(body)
    except ValidationFailed as exc:  # our limits (time range, numbers): named the Lago way
        details: dict[str, list[str]] = {}
        for e in exc.errors or [{"name": "event", "reason": exc.detail}]:
            name = e["name"].replace("time", "timestamp").replace("data", "properties")
            details.setdefault(name, []).append("invalid_value")
        raise LagoInvalid(details) from None
    metering_services.events_accept(organization=organization, body=validated, event_count=count)
    return clouds


# --- invoices ---------------------------------------------------------------------------------------


def invoice_finalize(*, organization: Organization, invoice: Invoice, actor: Actor = None) -> Invoice:
    """Lago's finalize = approving a draft (numbered, issued, late usage included by the rebuild)."""
    if invoice.status != "draft":
        return invoice  # Lago answers a finalized invoice unchanged
    return invoicing_services.invoice_approve(organization=organization, invoice=invoice, actor=actor)
