"""Lago's reads: our selectors' answers in Lago's shapes (snake_case, `amount_cents`, ISO times in UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.core import signing
from django.db.models import QuerySet
from django.utils import timezone

from billing import selectors as billing_selectors
from billing.models import Customer, Subscription
from billing.periods import period_at
from catalog import selectors as catalog_selectors
from catalog.models import PlanVersion
from core.errors import NotFound
from core.models import Organization
from invoicing import credits as invoicing_credits
from invoicing import lines as L
from invoicing import selectors as invoicing_selectors
from invoicing import services as invoicing_services
from invoicing import sources as invoicing_sources
from invoicing.models import CustomerCredit, Invoice, WebhookEndpoint
from lago import mapping
from lago.mapping import SIGNATURE_ALGOS, cents, iso, lago_event_types, plain
from lago.models import SubscriptionExternalId
from metering import selectors as metering_selectors

ZERO = Decimal(0)
FILE_SALT = "lago.invoice-file"
FILE_MAX_AGE = timedelta(days=7)


# --- pagination ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    number: int
    per_page: int


def paginate(items: list[Any] | QuerySet, page: Page) -> tuple[list[Any], dict[str, Any]]:
    """Lago's `meta`: current_page, next_page, prev_page, total_pages, total_count."""
    total = items.count() if isinstance(items, QuerySet) else len(items)
    pages = max(1, -(-total // page.per_page))
    start = (page.number - 1) * page.per_page
    chunk = list(items[start : start + page.per_page])
    return chunk, {
        "current_page": page.number,
        "next_page": page.number + 1 if page.number < pages else None,
        "prev_page": page.number - 1 if page.number > 1 else None,
        "total_pages": pages,
        "total_count": total,
    }


# --- billable metrics ------------------------------------------------------------------------------


def metric_json(
    *, organization: Organization, feature: Any, meters: dict[str, Any] | None = None
) -> dict[str, Any]:
    meter = (meters or {}).get(feature.meter_slug) or metering_selectors.meter_get(
        organization=organization, id_or_slug=feature.meter_slug
    )
    return mapping.metric_to_lago(
        lago_id=feature.id,
        code=feature.key,
        name=feature.name,
        description=meter.description,
        aggregation=meter.aggregation,
        value_property=meter.value_property,
        group_by=meter.group_by or {},
        created_at=feature.created_at,
    )


def metric_get(*, organization: Organization, code: str) -> dict[str, Any]:
    try:
        feature = catalog_selectors.feature_get(organization=organization, id_or_key=code)
    except NotFound:
        raise NotFound("billable_metric_not_found") from None
    if not feature.meter_slug or feature.archived_at is not None:
        raise NotFound("billable_metric_not_found")
    return metric_json(organization=organization, feature=feature)


def metric_list(*, organization: Organization, page: Page) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    features = catalog_selectors.feature_list(organization=organization).exclude(meter_slug="")
    chunk, meta = paginate(features, page)
    meters = {m.slug: m for m in metering_selectors.meter_list(organization=organization)}
    return [
        metric_json(organization=organization, feature=f, meters=meters)
        for f in chunk
        if f.meter_slug in meters
    ], meta


# --- plans -------------------------------------------------------------------------------------------


def _metrics_by_id(organization: Organization) -> dict[str, mapping.Metric]:
    return {
        f.id: mapping.Metric(id=f.id, code=f.key)
        for f in catalog_selectors.feature_list(organization=organization, include_archived=True)
    }


def plan_json(plan: PlanVersion, *, metrics: dict[str, mapping.Metric]) -> dict[str, Any]:
    return mapping.plan_to_lago(
        lago_id=plan.id,
        key=plan.key,
        name=plan.name,
        description=plan.description,
        currency=plan.currency,
        cadence=plan.billing_cadence,
        phases=plan.phases,
        metadata=plan.metadata or {},
        created_at=plan.created_at,
        metrics=metrics,
    )


def plan_get(*, organization: Organization, code: str) -> dict[str, Any]:
    plan = catalog_selectors.plan_list(organization=organization, key=code, status="published").first()
    if plan is None:
        raise NotFound("plan_not_found")
    return plan_json(plan, metrics=_metrics_by_id(organization))


def plan_list(*, organization: Organization, page: Page) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    plans = catalog_selectors.plan_list(organization=organization, status="published")
    chunk, meta = paginate(plans, page)
    metrics = _metrics_by_id(organization)
    return [plan_json(p, metrics=metrics) for p in chunk], meta


# --- customers ------------------------------------------------------------------------------------


def customer_by_external_id(*, organization: Organization, external_id: str) -> Customer:
    customer = billing_selectors.customer_list(organization=organization, key=external_id).first()
    if customer is None:
        raise NotFound("customer_not_found")
    return customer


def customer_json(customer: Customer, *, organization: Organization) -> dict[str, Any]:
    address = customer.billing_address or {}
    meta = customer.metadata or {}
    tax_ids = customer.tax_ids or []
    first_tax = tax_ids[0] if tax_ids else None
    return {
        "lago_id": customer.id,
        "external_id": customer.key,
        "name": customer.name,
        "legal_name": meta.get("legal_name"),
        "legal_number": meta.get("legal_number"),
        "firstname": meta.get("firstname"),
        "lastname": meta.get("lastname"),
        "url": meta.get("url"),
        "email": customer.primary_email or None,
        "currency": customer.currency or None,
        "timezone": customer.timezone or None,
        "applicable_timezone": customer.timezone or organization.timezone or "UTC",
        "address_line1": address.get("line1"),
        "address_line2": address.get("line2"),
        "city": address.get("city"),
        "zipcode": address.get("postalCode"),
        "state": address.get("state"),
        "country": address.get("country"),
        "phone": address.get("phoneNumber"),
        "tax_identification_number": (first_tax.get("value") if isinstance(first_tax, dict) else first_tax),
        "customer_type": None,
        "net_payment_term": None,
        "metadata": [],
        "taxes": [],
        "created_at": iso(customer.created_at),
        "updated_at": iso(customer.updated_at),
    }


def customer_list(*, organization: Organization, page: Page) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    customers = (
        billing_selectors.customer_list(organization=organization)
        .exclude(key=None)
        .order_by("created_at", "id")
    )
    chunk, meta = paginate(customers, page)
    return [customer_json(c, organization=organization) for c in chunk], meta


# --- subscriptions -------------------------------------------------------------------------------


_UNKNOWN: Any = object()


def subscription_json(
    sub: Subscription, *, external_id: str, now: datetime | None = None, nxt: Any = _UNKNOWN
) -> dict[str, Any]:
    """`nxt`: the subscription scheduled to follow (None when there is none; looked up when not given)."""
    now = now or timezone.now()
    status = mapping.subscription_status(active_from=sub.active_from, active_to=sub.active_to, now=now)
    if status == "terminated" and sub.cancel_requested_at is not None and sub.active_to == sub.active_from:
        status = "canceled"  # ended before it started: Lago's canceled
    if nxt is _UNKNOWN:
        nxt = Subscription.objects.filter(organization_id=sub.organization_id, previous=sub).first()
    period = None
    if status == "active":
        period = period_at(sub.billing_anchor, sub.billing_cadence, now, sub.timezone)
    local_anchor = sub.billing_anchor.astimezone(ZoneInfo(sub.timezone or "UTC"))
    calendar = mapping.calendar_anchor(local_anchor, sub.billing_cadence) == local_anchor
    billing_time = "calendar" if calendar else "anniversary"
    return {
        "lago_id": sub.id,
        "external_id": external_id,
        "lago_customer_id": sub.customer_id,
        "external_customer_id": sub.customer.key,
        "name": sub.name,
        "plan_code": sub.plan_key,
        "plan_amount_cents": None,
        "plan_amount_currency": sub.currency,
        "status": status,
        "billing_time": billing_time,
        "subscription_at": iso(sub.active_from),
        "started_at": iso(sub.active_from) if sub.active_from <= now else None,
        "terminated_at": iso(sub.active_to) if sub.active_to and sub.active_to <= now else None,
        "ending_at": iso(sub.active_to) if sub.active_to and sub.active_to > now else None,
        "canceled_at": iso(sub.cancel_requested_at),
        "created_at": iso(sub.created_at),
        "previous_plan_code": sub.previous.plan_key if sub.previous_id and sub.previous else None,
        "next_plan_code": nxt.plan_key if nxt else None,
        "downgrade_plan_date": iso(nxt.active_from) if nxt else None,
        "current_billing_period_started_at": iso(period.start) if period else None,
        "current_billing_period_ending_at": iso(period.end) if period else None,
        "trial_ended_at": None,
    }


def subscription_list(
    *,
    organization: Organization,
    page: Page,
    external_customer_id: str = "",
    plan_code: str = "",
    statuses: list[str],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One row per Lago subscription (external id): its current subscription. Default status: active."""
    now = timezone.now()
    rows = (
        SubscriptionExternalId.objects.filter(organization=organization)
        .select_related("subscription", "subscription__customer", "subscription__previous")
        .order_by("subscription__active_from", "id")
    )
    if external_customer_id:
        rows = rows.filter(subscription__customer__key=external_customer_id)
    current: dict[str, Subscription] = {}
    for row in rows:
        sub = row.subscription
        if row.external_id not in current or sub.active_from <= now:
            current[row.external_id] = sub
    following = {
        s.previous_id: s
        for s in Subscription.objects.filter(organization=organization, previous__in=list(current.values()))
    }
    out = []
    for external_id, sub in current.items():
        body = subscription_json(sub, external_id=external_id, now=now, nxt=following.get(sub.id))
        if plan_code and body["plan_code"] != plan_code:
            continue
        if body["status"] not in (statuses or ["active"]):
            continue
        out.append(body)
    return paginate(out, page)


# --- events ----------------------------------------------------------------------------------------


def event_json(cloud: dict[str, Any], *, created_at: datetime | None = None) -> dict[str, Any]:
    when = cloud.get("time")
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    return {
        "lago_id": None,
        "transaction_id": cloud["id"],
        "lago_customer_id": None,
        "lago_subscription_id": None,
        "external_subscription_id": cloud["subject"],
        "code": cloud["type"],
        "timestamp": iso(when),
        "properties": cloud.get("data") or {},
        "precise_total_amount_cents": None,
        "created_at": iso(created_at or timezone.now()),
    }


def event_get(*, organization: Organization, transaction_id: str) -> dict[str, Any]:
    found = [
        e
        for e in metering_selectors.events_list(organization=organization, id=transaction_id, limit=1000)
        if e.event["source"] == mapping.EVENT_SOURCE
        and not str(e.validation_error or "").startswith("duplicate")  # a resend that conflicted
    ]
    if found:
        return event_json(found[0].event, created_at=found[0].stored_at)
    raise NotFound("event_not_found")


EVENTS_LIST_MAX = 1000  # metering's event log reads at most this many of the newest events


def event_list(
    *,
    organization: Organization,
    page: Page,
    external_subscription_id: str | None = None,
    code: str | None = None,
    timestamp_from: datetime | None = None,
    timestamp_to: datetime | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Lago's `GET /events`: events sent through this API, newest first, from the newest 1000 that match
    (`metering.selectors.events_list`); a resend that conflicted with the stored event is not listed."""
    found = metering_selectors.events_list(
        organization=organization,
        subject=external_subscription_id,
        type=code,
        from_=timestamp_from,
        to=timestamp_to,
        limit=EVENTS_LIST_MAX,
    )
    rows = [
        event_json(e.event, created_at=e.stored_at)
        for e in found
        if e.event["source"] == mapping.EVENT_SOURCE
        and not str(e.validation_error or "").startswith("duplicate")
    ]
    return paginate(rows, page)


# --- current usage ---------------------------------------------------------------------------------


def _tax_specs(organization: Organization) -> tuple[L.TaxSpec | None, dict[str, L.TaxSpec]]:
    rates: dict[str, L.TaxSpec] = {}
    default = None
    for r in invoicing_selectors.tax_rate_list(organization=organization, include_archived=True):
        rates[r.id] = L.TaxSpec(r.id, r.name, r.percentage, r.inclusive)
        if r.is_default and r.archived_at is None:
            default = rates[r.id]
    return default, rates


USAGE_LINE_TYPES = ("usage", "discount", "commitment")


def current_usage(
    *, organization: Organization, customer: Customer, subscription: Subscription, now: datetime | None = None
) -> dict[str, Any]:
    """Lago's `customer_usage` for the subscription's current period, from our upcoming invoice
    (`invoicing.services.invoice_upcoming`): its usage lines (and their discounts) per rate card, the taxes
    on them, and each charge's number of events."""
    now = now or timezone.now()
    upcoming = next(
        (
            u
            for u in invoicing_services.invoice_upcoming(
                organization=organization, customer=customer, now=now
            )
            if u.currency == subscription.currency
        ),
        None,
    )
    if upcoming is None:
        raise NotFound("no_active_subscription")
    currency = upcoming.currency
    lines = [
        x
        for x in upcoming.lines
        if x.type in USAGE_LINE_TYPES and x.subscription_id == subscription.id and x.rate_card_key
    ]
    phase_cards: list[dict[str, Any]] = []
    for phase in subscription.plan_snapshot.get("phases", []):
        phase_cards.extend(
            c
            for c in phase.get("rateCards", [])
            if c.get("featureKey") and (c.get("price") or {}).get("type") != "flat"
        )
    cards: dict[str, dict[str, Any]] = {}
    for card in phase_cards:
        cards.setdefault(card["key"], card)
    features = {
        f.key: f
        for f in catalog_selectors.feature_list(organization=organization, include_archived=True).filter(
            key__in=[c.get("featureKey") for c in cards.values()]
        )
    }
    meters = {m.slug: m for m in metering_selectors.meter_list(organization=organization)}
    charges = []
    usage_lines: list[L.LineDraft] = []
    for key, card in cards.items():
        own = [x for x in lines if x.rate_card_key == key]
        usage_lines.extend(own)
        amount = sum((x.amount for x in own), ZERO)
        units = sum((x.quantity or ZERO for x in own if x.type == "usage"), ZERO)
        feature = features.get(card.get("featureKey", ""))
        meter = meters.get(feature.meter_slug) if feature else None
        events = invoicing_sources.usage(
            organization=organization,
            customer_id=customer.id,
            feature_key=card.get("featureKey", ""),
            start=max(upcoming.period_start, subscription.active_from),
            end=min(now, upcoming.period_end),
            measure="count",
        )
        charge = mapping.charge_to_lago(card, metric=None, currency=currency)
        charges.append(
            {
                "units": plain(units),
                "total_aggregated_units": plain(units),
                "events_count": int(events),
                "amount_cents": cents(amount, currency),
                "amount_currency": currency,
                "charge": {
                    "lago_id": key,
                    "charge_model": charge["charge_model"],
                    "invoice_display_name": card.get("name") or None,
                },
                "billable_metric": {
                    "lago_id": feature.id if feature else "",
                    "name": feature.name if feature else key,
                    "code": card.get("featureKey", ""),
                    "aggregation_type": mapping.AGGREGATIONS_BACK.get(meter.aggregation, "") if meter else "",
                },
                "filters": [],
                "grouped_usage": [],
            }
        )
    default, rates = _tax_specs(organization)
    taxes = L.tax_lines(usage_lines, currency=currency, default=default, rates=rates)
    amount = sum((x.amount for x in usage_lines), ZERO)
    tax_total = sum((x.amount for x in taxes if not (x.detail and x.detail[0].get("inclusive"))), ZERO)
    return {
        "from_datetime": iso(max(upcoming.period_start, subscription.active_from)),
        "to_datetime": iso(upcoming.period_end),
        "issuing_date": upcoming.period_end.date().isoformat(),
        "lago_invoice_id": None,
        "currency": currency,
        "amount_cents": cents(amount, currency),
        "taxes_amount_cents": cents(tax_total, currency),
        "total_amount_cents": cents(amount + tax_total, currency),
        "charges_usage": charges,
    }


# --- invoices ---------------------------------------------------------------------------------------


def invoice_file_token(invoice: Invoice) -> str:
    return signing.dumps({"o": invoice.organization_id, "i": invoice.id}, salt=FILE_SALT, compress=True)


def invoice_from_file_token(token: str) -> Invoice:
    """The invoice a signed file link names (7 days); NotFound for a forged, stale or unknown link."""
    try:
        data = signing.loads(token, salt=FILE_SALT, max_age=FILE_MAX_AGE)
    except signing.BadSignature:
        raise NotFound("invoice_not_found") from None
    invoice = (
        Invoice.objects.filter(organization_id=data.get("o"), id=data.get("i"))
        .select_related("customer", "organization")
        .first()
    )
    if invoice is None or invoice.status == "gathering":
        raise NotFound("invoice_not_found")
    return invoice


FEE_TYPES = {"usage": "charge", "flat_fee": "subscription", "adjustment": "charge", "manual": "add_on"}


def invoice_json(
    invoice: Invoice, *, organization: Organization, file_url: str | None, with_fees: bool
) -> dict[str, Any]:
    cur = invoice.currency
    status = mapping.INVOICE_STATUSES.get(invoice.status, invoice.status)
    sub_excl = invoice.amount - invoice.discounts_total
    taxes_excl = invoice.taxes_total - invoice.taxes_inclusive_total
    paid = invoice.status == "paid"
    body: dict[str, Any] = {
        "lago_id": invoice.id,
        "sequential_id": None,
        "number": invoice.number or "",
        "issuing_date": (invoice.issued_at or invoice.period_end).date().isoformat(),
        "payment_due_date": invoice.due_at.date().isoformat() if invoice.due_at else None,
        "payment_overdue": invoice.status == "overdue",
        "net_payment_term": (invoice.due_at - invoice.issued_at).days
        if invoice.due_at and invoice.issued_at
        else 0,
        "invoice_type": "subscription",
        "version_number": 4,
        "status": status,
        "payment_status": mapping.PAYMENT_STATUSES.get(invoice.status, "pending"),
        "currency": cur,
        "fees_amount_cents": cents(invoice.amount, cur),
        "coupons_amount_cents": cents(invoice.discounts_total, cur),
        "taxes_amount_cents": cents(invoice.taxes_total, cur),
        "credit_notes_amount_cents": 0,
        "progressive_billing_credit_amount_cents": 0,
        "sub_total_excluding_taxes_amount_cents": cents(sub_excl, cur),
        "sub_total_including_taxes_amount_cents": cents(sub_excl + taxes_excl, cur),
        "prepaid_credit_amount_cents": cents(invoice.credits_total, cur),
        "total_amount_cents": cents(invoice.total, cur),
        "total_due_amount_cents": 0 if paid or status == "voided" else cents(invoice.total, cur),
        "total_paid_amount_cents": cents(invoice.total, cur) if paid else 0,
        "voided_at": iso(invoice.voided_at),
        "file_url": file_url,
        "customer": customer_json(invoice.customer, organization=organization),
        "metadata": [],
        "applied_taxes": [],
        "credits": [],
    }
    if with_fees:
        fees = []
        for line in invoice.lines.all():
            if line.type in ("tax", "credit", "discount"):
                continue
            fees.append(
                {
                    "lago_id": line.id,
                    "lago_invoice_id": invoice.id,
                    "lago_subscription_id": line.subscription_id or None,
                    "item": {
                        "type": FEE_TYPES.get(line.type, line.type),
                        "code": line.feature_key or line.rate_card_key or line.type,
                        "name": line.description,
                        "invoice_display_name": line.description,
                    },
                    "amount_cents": cents(line.amount, cur),
                    "amount_currency": cur,
                    "units": plain(line.quantity) if line.quantity is not None else "1",
                    "unit_amount_cents": cents(line.unit_price, cur) if line.unit_price is not None else None,
                    "total_amount_cents": cents(line.amount, cur),
                    "total_amount_currency": cur,
                    "taxes_amount_cents": 0,
                    "from_date": iso(line.period_start),
                    "to_date": iso(line.period_end),
                }
            )
        body["fees"] = fees
    return body


def invoice_get(*, organization: Organization, invoice_id: str) -> Invoice:
    try:
        invoice = invoicing_selectors.invoice_get(organization=organization, invoice_id=invoice_id.upper())
    except NotFound:
        raise NotFound("invoice_not_found") from None
    if invoice.status == "gathering":
        raise NotFound("invoice_not_found")
    return invoice


def invoice_list(
    *, organization: Organization, external_customer_id: str = "", status: str = ""
) -> QuerySet[Invoice]:
    statuses = mapping.INVOICE_STATUS_FILTER.get(status) if status else None
    qs = invoicing_selectors.invoice_list(
        organization=organization, statuses=statuses, include_gathering=False
    ).exclude(status="gathering")
    if external_customer_id:
        qs = qs.filter(customer__key=external_customer_id)
    return qs.order_by("-period_end", "-id")


# --- wallets -----------------------------------------------------------------------------------------


def _ongoing_usage(*, organization: Organization, customer: Customer, now: datetime) -> Decimal:
    """What the customer's current usage costs so far (usage lines of the upcoming invoice, with their taxes):
    Lago's ongoing balance is the balance minus this."""
    default, rates = _tax_specs(organization)
    total = ZERO
    for u in invoicing_services.invoice_upcoming(organization=organization, customer=customer, now=now):
        if u.currency != customer.currency:
            continue
        usage = [x for x in u.lines if x.type in USAGE_LINE_TYPES]
        taxes = L.tax_lines(usage, currency=u.currency, default=default, rates=rates)
        total += sum((x.amount for x in usage), ZERO)
        total += sum((x.amount for x in taxes if not (x.detail and x.detail[0].get("inclusive"))), ZERO)
    return total


def wallet_json(
    *, organization: Organization, customer: Customer, now: datetime | None = None
) -> dict[str, Any]:
    now = now or timezone.now()
    credits = list(
        invoicing_credits.customer_credit_list(organization=organization, customer_id=customer.id, at=now)
    )
    currency = customer.currency or organization.default_currency
    balance = sum((c.remaining for c in credits if c.status == "active"), ZERO)  # type: ignore[attr-defined]
    consumed = sum((c.applied for c in credits), ZERO)  # type: ignore[attr-defined]
    ongoing_usage = _ongoing_usage(organization=organization, customer=customer, now=now) if balance else ZERO
    ongoing = max(ZERO, balance - ongoing_usage)
    terminated = bool(credits) and all(c.voided_at is not None for c in credits)
    first = min((c.created_at for c in credits), default=customer.created_at)
    expiries = [c.expires_at for c in credits if c.expires_at and c.status == "active"]  # type: ignore[attr-defined]
    return {
        "lago_id": customer.id,
        "lago_customer_id": customer.id,
        "external_customer_id": customer.key,
        "status": "terminated" if terminated else "active",
        "currency": currency,
        "name": None,
        "code": None,
        "priority": min((c.priority for c in credits), default=1),
        "rate_amount": "1.0",
        "credits_balance": plain(balance),
        "balance_cents": cents(balance, currency),
        "consumed_credits": plain(consumed),
        "ongoing_balance_cents": cents(ongoing, currency),
        "ongoing_usage_balance_cents": cents(ongoing_usage, currency),
        "credits_ongoing_balance": plain(ongoing),
        "credits_ongoing_usage_balance": plain(ongoing_usage),
        "created_at": iso(first),
        "expiration_at": iso(min(expiries)) if expiries else None,
        "last_balance_sync_at": iso(now),
        "last_consumed_credit_at": None,
        "terminated_at": iso(max(c.voided_at for c in credits if c.voided_at)) if terminated else None,
        "recurring_transaction_rules": [],
    }


def wallet_list(*, organization: Organization, external_customer_id: str) -> list[dict[str, Any]]:
    customer = customer_by_external_id(organization=organization, external_id=external_customer_id)
    has_credit = CustomerCredit.objects.filter(organization=organization, customer=customer).exists()
    return [wallet_json(organization=organization, customer=customer)] if has_credit else []


def credit_transaction_json(credit: CustomerCredit, *, customer: Customer) -> dict[str, Any]:
    granted = credit.description == "Granted credits"
    return {
        "lago_id": credit.id,
        "lago_wallet_id": customer.id,
        "lago_invoice_id": None,
        "status": "settled",
        "source": "manual",
        "transaction_status": "voided" if credit.voided_at else ("granted" if granted else "purchased"),
        "transaction_type": "inbound",
        "amount": plain(credit.amount),
        "credit_amount": plain(credit.amount),
        "priority": credit.priority,
        "settled_at": iso(credit.created_at),
        "failed_at": None,
        "created_at": iso(credit.created_at),
        "name": credit.description,
        "metadata": [],
    }


def wallet_transactions(*, organization: Organization, customer: Customer) -> list[dict[str, Any]]:
    """Inbound: each credit (paid or granted). Outbound: each use of a credit on an invoice."""
    out = []
    credits = list(invoicing_credits.customer_credit_list(organization=organization, customer_id=customer.id))
    for credit in credits:
        out.append(credit_transaction_json(credit, customer=customer))
        for app in invoicing_credits.credit_application_list(organization=organization, credit=credit):
            invoice = app.line.invoice
            out.append(
                {
                    "lago_id": app.id,
                    "lago_wallet_id": customer.id,
                    "lago_invoice_id": invoice.id,
                    "status": "settled",
                    "source": "manual",
                    "transaction_status": "invoiced",
                    "transaction_type": "outbound",
                    "amount": plain(app.amount),
                    "credit_amount": plain(app.amount),
                    "settled_at": iso(app.at),  # type: ignore[attr-defined]
                    "failed_at": None,
                    "created_at": iso(app.at),  # type: ignore[attr-defined]
                    "name": None,
                    "metadata": [],
                }
            )
    out.sort(key=lambda t: (t["created_at"] or "", t["lago_id"]))
    return out


# --- webhook endpoints ------------------------------------------------------------------------------


def webhook_endpoint_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "lago_id": endpoint.id,
        "lago_organization_id": endpoint.organization_id,
        "webhook_url": endpoint.url,
        "signature_algo": SIGNATURE_ALGOS.get(endpoint.format, "hmac"),
        "name": endpoint.description or None,
        "event_types": lago_event_types(list(endpoint.event_types)),
        "created_at": iso(endpoint.created_at),
    }


def webhook_endpoint_list(
    *, organization: Organization, page: Page
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The organization's Lago-format endpoints (its Standard Webhooks endpoints are not Lago's)."""
    qs = WebhookEndpoint.objects.filter(organization=organization, format__in=list(SIGNATURE_ALGOS)).order_by(
        "created_at", "id"
    )
    chunk, meta = paginate(qs, page)
    return [webhook_endpoint_json(e) for e in chunk], meta
