"""Lago's reads of what is billed, in Lago's shapes: the current usage (`customer_usage`), invoices and
the signed links to their PDF, wallets and their transactions.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core import signing
from django.db.models import QuerySet
from django.utils import timezone

from billing.models import Customer, Subscription
from catalog import selectors as catalog_selectors
from core.errors import NotFound
from core.models import Organization
from invoicing import credits as invoicing_credits
from invoicing import lines as L
from invoicing import selectors as invoicing_selectors
from invoicing import services as invoicing_services
from invoicing import sources as invoicing_sources
from invoicing.models import CustomerCredit, Invoice
from lago import filters, mapping, plans
from lago.selectors import customer_by_external_id, customer_json
from lago.wire import cents, iso, plain
from metering import selectors as metering_selectors

ZERO = Decimal(0)
FILE_SALT = "lago.invoice-file"
FILE_MAX_AGE = timedelta(days=7)


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
    if any(filters.is_filter_feature(c.get("featureKey", "")) for c in cards.values()):
        # the snapshot keeps prices, not rate card metadata: a filter card's Lago charge is in the version's
        version = catalog_selectors.plan_version_get(
            organization=organization, plan_key=subscription.plan_key, version=subscription.plan_version
        )
        meta = {c["key"]: c.get("metadata") or {} for p in version.phases for c in p.get("rateCards", [])}
        cards = {k: {**c, "metadata": meta.get(k, {})} for k, c in cards.items()}
    metric_codes = {filters.metric_of(c) for c in cards.values()}
    features = {
        f.key: f
        for f in catalog_selectors.feature_list(organization=organization, include_archived=True).filter(
            key__in=metric_codes
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
        code = filters.metric_of(card)
        feature = features.get(code)
        meter = meters.get(feature.meter_slug) if feature else None
        events = invoicing_sources.usage(
            organization=organization,
            customer_id=customer.id,
            feature_key=card.get("featureKey", ""),
            start=max(upcoming.period_start, subscription.active_from),
            end=min(now, upcoming.period_end),
            measure="count",
        )
        charge = plans.charge_to_lago(card, metric=None, currency=currency)
        entry = {
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
                "code": code,
                "aggregation_type": mapping.AGGREGATIONS_BACK.get(meter.aggregation, "") if meter else "",
            },
            "filters": [],
            "grouped_usage": [],
        }
        charges.append(entry)
    charges = _group_filters(charges, cards, currency)
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


def _group_filters(
    entries: list[dict[str, Any]], cards: dict[str, dict[str, Any]], currency: str
) -> list[dict[str, Any]]:
    """One `charges_usage` entry per Lago charge: a filtered charge's cards become its `filters` (each with
    its units, events and amount), the charge's totals their sums."""
    out: list[dict[str, Any]] = []
    parents: dict[str, dict[str, Any]] = {}
    for entry, card in zip(entries, cards.values(), strict=True):
        parent = filters.charge_of(card)
        if parent is None:
            out.append(entry)
            continue
        if parent not in parents:
            parents[parent] = {
                **entry,
                "units": "0",
                "total_aggregated_units": "0",
                "events_count": 0,
                "amount_cents": 0,
                "charge": {**entry["charge"], "lago_id": parent, "invoice_display_name": None},
                "filters": [],
            }
            out.append(parents[parent])
        total = parents[parent]
        units = plain(Decimal(total["units"]) + Decimal(entry["units"]))
        total.update(units=units, total_aggregated_units=units)
        total["events_count"] += entry["events_count"]
        total["amount_cents"] += entry["amount_cents"]
        total["filters"].append(
            {
                "units": entry["units"],
                "total_aggregated_units": entry["units"],
                "events_count": entry["events_count"],
                "amount_cents": entry["amount_cents"],
                "invoice_display_name": filters.filter_name(card),
                "values": filters.filter_values(card),
            }
        )
    return out


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
        lines = [x for x in invoice.lines.all() if x.type not in ("tax", "credit", "discount")]
        filtered = _filter_features(organization, {x.feature_key for x in lines})
        for line in lines:
            metric, values = filtered.get(line.feature_key, (None, None))
            fees.append(
                {
                    "lago_id": line.id,
                    "lago_invoice_id": invoice.id,
                    "lago_subscription_id": line.subscription_id or None,
                    "lago_charge_filter_id": line.rate_card_key if values else None,
                    "item": {
                        "type": FEE_TYPES.get(line.type, line.type),
                        "code": metric or line.feature_key or line.rate_card_key or line.type,
                        "name": line.description,
                        "invoice_display_name": line.description,
                        "filter_invoice_display_name": line.description if values else None,
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


def _filter_features(
    organization: Organization, keys: set[str]
) -> dict[str, tuple[str, dict[str, list[str]]]]:
    """{filter feature key: (the metric's code, the filter's values)} for the charge filters among `keys`
    (one query, none when there are none)."""
    wanted = {k for k in keys if k and filters.is_filter_feature(k)}
    if not wanted:
        return {}
    return {
        f.key: (
            (f.metadata or {}).get(filters.META_FILTER_OF, f.meter_slug),
            {k: [v] if isinstance(v, str) else list(v) for k, v in f.meter_group_by_filters.items()},
        )
        for f in catalog_selectors.feature_list(organization=organization, include_archived=True).filter(
            key__in=wanted
        )
    }


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
