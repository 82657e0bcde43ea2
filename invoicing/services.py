"""Invoice writes: build (gathering → draft), issue with gapless numbers, state changes, manual lines,
on-demand invoices, credits, tax rates, Stripe settings.

State changes are conditional updates (`UPDATE ... WHERE status IN (allowed)`); zero rows → `Conflict`
(409). Row locks are taken only in `_invoice_lock` and `invoice_number_assign`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import Customer
from core.audit import Actor, audit_record
from core.enqueue import enqueue, enqueue_on_commit
from core.errors import Conflict, NotFound, ValidationFailed, raise_invalid
from core.models import Organization
from core.money import quantize, to_decimal
from invoicing import lines as L
from invoicing import sources
from invoicing.builder import Build, InvoiceBuilder, Moment, customers_lock, tax_specs
from invoicing.credit_notes import credit_note_issue
from invoicing.credits import customer_credit_create as customer_credit_create  # re-export
from invoicing.models import (
    CreditApplication,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    InvoicingSettings,
    LineType,
    StripeSettings,
    TaxRate,
)
from invoicing.numbering import invoice_number_assign as invoice_number_assign  # re-export
from invoicing.webhooks import webhook_event_emit

S = InvoiceStatus
TRANSITIONS: dict[str, tuple[str, ...]] = {
    S.DRAFT: (S.GATHERING,),
    S.ISSUED: (S.DRAFT,),
    S.PAID: (S.ISSUED, S.PAYMENT_FAILED, S.OVERDUE, S.UNCOLLECTIBLE),
    S.PAYMENT_FAILED: (S.ISSUED, S.OVERDUE, S.PAYMENT_FAILED),
    S.OVERDUE: (S.ISSUED, S.PAYMENT_FAILED),
    S.UNCOLLECTIBLE: (S.ISSUED, S.PAYMENT_FAILED, S.OVERDUE),
    S.VOIDED: (S.DRAFT, S.ISSUED, S.PAYMENT_FAILED, S.OVERDUE, S.UNCOLLECTIBLE),
}
WEBHOOK_ON = {
    S.ISSUED: "invoice.issued",
    S.PAID: "invoice.paid",
    S.PAYMENT_FAILED: "invoice.payment_failed",
    S.VOIDED: "invoice.voided",
}


class InvoiceNotEditable(Conflict):
    code = "invoice-not-editable"
    title = "Invoice not editable"


# --- settings -----------------------------------------------------------------------------------------
SETTINGS_LIMITS: dict[str, tuple[int, int]] = {  # field -> (min, max)
    "collection_delay_seconds": (0, 30 * 86400),
    "draft_period_seconds": (0, 90 * 86400),
    "due_days": (0, 365),
}
SETTINGS_TEXT = {
    "supplier_name": 200,
    "supplier_address": 2000,
    "supplier_tax_id": 64,
    "supplier_email": 320,
    "payment_instructions": 2000,
}
SETTINGS_FIELDS = (*SETTINGS_LIMITS, "auto_advance", "number_prefix", *SETTINGS_TEXT)
NUMBER_PREFIX_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,19}$")
API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z_]+)?$")
STRIPE_KEY_PREFIXES = ("sk_test_", "sk_live_", "rk_test_", "rk_live_", "sk_", "rk_")
COLLECTION_METHODS = ("send_invoice", "charge_automatically")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def invoicing_settings_get(*, organization: Organization) -> InvoicingSettings:
    found = InvoicingSettings.objects.filter(organization=organization).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return InvoicingSettings.objects.create(
                organization=organization, number_prefix=organization.slug.upper()[:20]
            )
    except IntegrityError:
        return InvoicingSettings.objects.get(organization=organization)


def invoicing_settings_validate(fields: dict[str, Any]) -> dict[str, Any]:
    """Clean the given settings (snake_case names); every problem is reported at once, named in
    camelCase as the API spells it."""
    errors: list[dict[str, str]] = []
    clean: dict[str, Any] = {}
    for name, value in fields.items():
        api = _camel(name)
        if name not in SETTINGS_FIELDS:
            errors.append({"name": api, "reason": "Unknown setting."})
        elif name in SETTINGS_LIMITS:
            low, high = SETTINGS_LIMITS[name]
            try:
                number = int(str(value).strip())
            except (TypeError, ValueError):
                errors.append({"name": api, "reason": "Must be a whole number."})
                continue
            if isinstance(value, bool) or not (low <= number <= high):
                errors.append({"name": api, "reason": f"Must be between {low} and {high}."})
                continue
            clean[name] = number
        elif name == "auto_advance":
            if not isinstance(value, bool):
                errors.append({"name": api, "reason": "Must be true or false."})
                continue
            clean[name] = value
        elif name == "number_prefix":
            prefix = str(value or "").strip().upper()
            if not NUMBER_PREFIX_RE.match(prefix):
                errors.append(
                    {
                        "name": api,
                        "reason": "1 to 20 characters: letters, digits, '-' or '_', starting with a "
                        "letter or digit.",
                    }
                )
                continue
            clean[name] = prefix
        else:
            text = str(value or "").strip()
            if len(text) > SETTINGS_TEXT[name]:
                errors.append({"name": api, "reason": f"At most {SETTINGS_TEXT[name]} characters."})
                continue
            clean[name] = text
    if errors:
        raise ValidationFailed(
            "; ".join(f"{e['name']}: {e['reason']}" for e in errors), field=errors[0]["name"], errors=errors
        )
    return clean


def invoicing_settings_update(
    *, organization: Organization, actor: Actor = None, **fields: Any
) -> InvoicingSettings:
    """Change some invoicing settings (validated; audit row with what changed, before and after)."""
    clean = invoicing_settings_validate(fields)
    s = invoicing_settings_get(organization=organization)
    before = {_camel(k): getattr(s, k) for k in clean}
    changed = {k: v for k, v in clean.items() if getattr(s, k) != v}
    if not changed:
        return s
    for name, value in changed.items():
        setattr(s, name, value)
    with transaction.atomic():
        s.save(update_fields=list(changed))
        audit_record(
            organization=organization,
            actor=actor,
            action="invoicing_settings.updated",
            object_type="invoicing_settings",
            object_id=s.id,
            before={_camel(k): before[_camel(k)] for k in changed},
            after={_camel(k): v for k, v in changed.items()},
        )
    return s


def _tax_rate_clean(
    *, name: str | None, percentage: Decimal | str | None, errors: list[dict[str, str]]
) -> tuple[str | None, Decimal | None]:
    clean_name = None if name is None else str(name).strip()
    if clean_name is not None and not (1 <= len(clean_name) <= 100):
        errors.append({"name": "name", "reason": "A name of 1 to 100 characters is required."})
    pct = None
    if percentage is not None:
        try:
            if isinstance(percentage, (int, float)) and not isinstance(percentage, bool):
                raise TypeError
            pct = to_decimal(str(percentage).strip())
        except (TypeError, ValueError):
            errors.append({"name": "percentage", "reason": 'A decimal string such as "19" or "7.5".'})
        else:
            if not (0 <= pct <= 100) or pct.as_tuple().exponent < -4:  # type: ignore[operator]
                errors.append(
                    {"name": "percentage", "reason": "Between 0 and 100, at most 4 decimal places."}
                )
                pct = None
    return clean_name, pct


def _tax_rate_audit(rate: TaxRate) -> dict[str, Any]:
    return {
        "name": rate.name,
        "percentage": str(rate.percentage),
        "inclusive": rate.inclusive,
        "isDefault": rate.is_default,
        "archived": rate.archived_at is not None,
    }


def tax_rate_create(
    *,
    organization: Organization,
    name: str,
    percentage: Decimal | str,
    inclusive: bool = False,
    is_default: bool = False,
    actor: Actor = None,
) -> TaxRate:
    errors: list[dict[str, str]] = []
    clean_name, pct = _tax_rate_clean(name=name, percentage=percentage, errors=errors)
    raise_invalid(errors)
    assert clean_name is not None and pct is not None
    with transaction.atomic():
        if is_default:
            TaxRate.objects.filter(organization=organization, is_default=True).update(is_default=False)
        rate = TaxRate.objects.create(
            organization=organization,
            name=clean_name,
            percentage=pct,
            inclusive=bool(inclusive),
            is_default=bool(is_default),
        )
        audit_record(
            organization=organization,
            actor=actor,
            action="tax_rate.created",
            object_type="tax_rate",
            object_id=rate.id,
            after=_tax_rate_audit(rate),
        )
    return rate


def tax_rate_update(
    *,
    organization: Organization,
    tax_rate_id: str,
    name: str | None = None,
    percentage: Decimal | str | None = None,
    inclusive: bool | None = None,
    is_default: bool | None = None,
    actor: Actor = None,
) -> TaxRate:
    """Change a rate. Issued invoices keep their amounts; drafts and later invoices use the new rate."""
    errors: list[dict[str, str]] = []
    clean_name, pct = _tax_rate_clean(name=name, percentage=percentage, errors=errors)
    raise_invalid(errors)
    with transaction.atomic():
        rate = TaxRate.objects.select_for_update().filter(organization=organization, id=tax_rate_id).first()
        if rate is None:
            raise NotFound(f"No tax rate {tax_rate_id}.")
        if rate.archived_at is not None:
            raise Conflict("An archived tax rate cannot be changed.", field="id")
        before = _tax_rate_audit(rate)
        if clean_name is not None:
            rate.name = clean_name
        if pct is not None:
            rate.percentage = pct
        if inclusive is not None:
            rate.inclusive = bool(inclusive)
        if is_default is not None:
            if is_default and not rate.is_default:
                TaxRate.objects.filter(organization=organization, is_default=True).update(is_default=False)
            rate.is_default = bool(is_default)
        after = _tax_rate_audit(rate)
        if after == before:
            return rate
        rate.save()
        audit_record(
            organization=organization,
            actor=actor,
            action="tax_rate.updated",
            object_type="tax_rate",
            object_id=rate.id,
            before=before,
            after=after,
        )
    return rate


def tax_rate_archive(*, organization: Organization, tax_rate_id: str, actor: Actor = None) -> TaxRate | None:
    """Remove a rate: archived (kept, no longer default or offered) when an invoice line uses it,
    deleted otherwise. Returns the archived rate, or None when it was deleted."""
    with transaction.atomic():
        rate = TaxRate.objects.select_for_update().filter(organization=organization, id=tax_rate_id).first()
        if rate is None:
            raise NotFound(f"No tax rate {tax_rate_id}.")
        before = _tax_rate_audit(rate)
        used = InvoiceLine.objects.filter(organization=organization, tax_rate_id=rate.id).exists()
        if used:
            if rate.archived_at is None:
                rate.archived_at = timezone.now()
                rate.is_default = False
                rate.save(update_fields=["archived_at", "is_default"])
            action, after, result = "tax_rate.archived", _tax_rate_audit(rate), rate
        else:
            rate.delete()
            action, after, result = "tax_rate.deleted", None, None
        audit_record(
            organization=organization,
            actor=actor,
            action=action,
            object_type="tax_rate",
            object_id=tax_rate_id,
            before=before,
            after=after,
        )
    return result


def _secret_state(old: str, new: str) -> str:
    if new == old:
        return "unchanged" if old else "unset"
    if not new:
        return "removed"
    return "changed" if old else "set"


def stripe_settings_set(
    *,
    organization: Organization,
    secret_key: str | None = None,
    webhook_secret: str | None = None,
    api_version: str | None = None,
    enabled: bool | None = None,
    collection_method: str | None = None,
    actor: Actor = None,
) -> StripeSettings:
    """Connect or reconfigure Stripe. None keeps a value; secrets are validated by prefix and never
    written to the audit log (it records "set"/"changed"/"removed")."""
    current = StripeSettings.objects.filter(organization=organization).first()
    errors: list[dict[str, str]] = []
    if secret_key is not None:
        secret_key = secret_key.strip()
        if not secret_key.startswith(("sk_", "rk_")) or len(secret_key) < 8 or " " in secret_key:
            errors.append({"name": "secretKey", "reason": "A Stripe secret key starts with sk_ or rk_."})
    elif current is None:
        errors.append({"name": "secretKey", "reason": "Required to connect Stripe."})
    if webhook_secret is not None:
        webhook_secret = webhook_secret.strip()
        if webhook_secret and (not webhook_secret.startswith("whsec_") or len(webhook_secret) < 10):
            errors.append({"name": "webhookSecret", "reason": "A webhook signing secret starts with whsec_."})
    if api_version is not None:
        api_version = api_version.strip()
        if api_version and not API_VERSION_RE.match(api_version):
            errors.append({"name": "apiVersion", "reason": "A Stripe API version such as 2026-10-28.endive."})
    if collection_method is not None and collection_method not in COLLECTION_METHODS:
        errors.append({"name": "collectionMethod", "reason": f"One of {', '.join(COLLECTION_METHODS)}."})
    raise_invalid(errors)
    with transaction.atomic():
        obj = StripeSettings.objects.select_for_update().filter(organization=organization).first()
        created = obj is None
        if obj is None:
            obj = StripeSettings(organization=organization)
        old_key, old_hook = obj.secret_key, obj.webhook_secret
        before = {
            "apiVersion": obj.api_version,
            "enabled": obj.enabled,
            "collectionMethod": obj.collection_method,
        }
        if secret_key is not None:
            obj.secret_key = secret_key
        if webhook_secret is not None:
            obj.webhook_secret = webhook_secret
        if api_version:
            obj.api_version = api_version
        if enabled is not None:
            obj.enabled = bool(enabled)
        if collection_method is not None:
            obj.collection_method = collection_method
        obj.save()
        audit_record(
            organization=organization,
            actor=actor,
            action="stripe_settings.created" if created else "stripe_settings.updated",
            object_type="stripe_settings",
            object_id=obj.id,
            before=None if created else before,
            after={
                "secretKey": _secret_state(old_key, obj.secret_key),
                "webhookSecret": _secret_state(old_hook, obj.webhook_secret),
                "apiVersion": obj.api_version,
                "enabled": obj.enabled,
                "collectionMethod": obj.collection_method,
            },
        )
    return obj


# --- state machine ------------------------------------------------------------------------------------
def _transition(invoice: Invoice, to: str, **fields: Any) -> Invoice:
    allowed = TRANSITIONS[to]
    updated = Invoice.objects.filter(
        id=invoice.id, organization_id=invoice.organization_id, status__in=allowed
    ).update(status=to, updated_at=timezone.now(), **fields)
    if updated == 0:
        current = Invoice.objects.filter(id=invoice.id).values_list("status", flat=True).first()
        raise Conflict(
            f"Invoice {invoice.id} cannot move from {current} to {to}.",
            field="status",
            extra={"invoiceStatus": current, "allowedFrom": list(allowed)},
        )
    invoice.refresh_from_db()
    return invoice


def _invoice_lock(invoice_id: str, organization: Organization, *, billing: bool = True) -> Invoice:
    """The one place an invoice row is locked (building and issuing are serialized per invoice, and
    billing per customer: the customer's row is locked first, see `builder.customers_lock`; a preview
    that bills nothing, `billing=False`, locks the invoice row only and never waits for a run)."""
    customer_id = Invoice.objects.filter(id=invoice_id).values_list("customer_id", flat=True).first()
    if billing and customer_id is not None:
        customers_lock(organization=organization, customer_ids=[customer_id])
    return Invoice.objects.select_for_update().get(id=invoice_id, organization=organization)


# --- line building ------------------------------------------------------------------------------------
def invoice_moment(invoice: Invoice, *, now: datetime | None = None) -> Moment:
    """What an invoice bills: a period invoice everything due at its end; a start invoice the in-advance
    fees due at its start; an on-demand invoice everything due by its end plus the usage so far."""
    if invoice.kind == "start":
        return Moment(
            invoice.customer_id,
            invoice.currency,
            invoice.period_start,
            "start",
            exclude_invoice_id=invoice.id,
        )
    if invoice.kind == "on_demand":
        return Moment(
            invoice.customer_id,
            invoice.currency,
            invoice.period_end,
            progressive=True,
            exclude_invoice_id=invoice.id,
        )
    return Moment(invoice.customer_id, invoice.currency, invoice.period_end, exclude_invoice_id=invoice.id)


def _build_one(*, organization: Organization, invoice: Invoice, moment: Moment, apply_credits: bool) -> Build:
    builder = InvoiceBuilder(
        organization=organization, customer_ids=[invoice.customer_id], moments=[moment.at]
    )
    manual = list(invoice.lines.filter(type=LineType.MANUAL)) if invoice.pk else []
    builder.prefetch([moment])
    return builder.build(moment, manual=manual, apply_credits=apply_credits)


def _line_rows(
    *, organization: Organization, invoice: Invoice, drafts: list[L.LineDraft], start: int
) -> list[InvoiceLine]:
    """Unsaved rows for the computed lines of one invoice: positions from `start`, tax lines from 9000."""
    return [
        InvoiceLine(
            organization=organization,
            invoice=invoice,
            type=d.type,
            position=start + i if d.type != "tax" else 9000 + i,
            description=d.description[:500],
            quantity=d.quantity,
            unit_price=d.unit_price,
            amount=d.amount,
            period_start=d.period_start,
            period_end=d.period_end,
            detail=d.detail,
            key=d.key,
            subscription_id=d.subscription_id,
            subscription_item_id=d.subscription_item_id,
            rate_card_key=d.rate_card_key,
            feature_key=d.feature_key,
            billing_period_start=d.billing_period_start,
            billing_period_end=d.billing_period_end,
            taxable=d.taxable,
            tax_rate_id=d.tax_rate_id,
        )
        for i, d in enumerate(drafts)
    ]


def _write_lines(*, organization: Organization, invoice: Invoice, build: Build) -> None:
    """Replace the computed lines (manual lines stay), apply credits, store the totals."""
    invoice.lines.exclude(type=LineType.MANUAL).delete()
    start = (invoice.lines.count() and 1000) or 0
    rows = _line_rows(organization=organization, invoice=invoice, drafts=build.lines, start=start)
    created = InvoiceLine.objects.bulk_create(rows)
    by_draft = {id(d): row for d, row in zip(build.lines, created, strict=True)}
    CreditApplication.objects.bulk_create(
        [
            CreditApplication(organization=organization, credit=credit, line=by_draft[id(draft)], amount=take)
            for draft, credit, take in build.credits
        ]
    )
    Invoice.objects.filter(id=invoice.id).update(
        **L.totals(invoice.lines.all()).fields(), updated_at=timezone.now()
    )
    invoice.refresh_from_db()


def invoice_payload(invoice: Invoice) -> dict[str, Any]:
    """The invoice as JSON-safe data (audit rows and webhook payloads)."""
    return json.loads(json.dumps(_payload(invoice), cls=DjangoJSONEncoder))


def _payload(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "number": invoice.number or None,
        "status": invoice.status,
        "customerId": invoice.customer_id,
        "currency": invoice.currency,
        "periodStart": invoice.period_start,
        "periodEnd": invoice.period_end,
        "issuedAt": invoice.issued_at,
        "dueAt": invoice.due_at,
        "totals": {
            "amount": str(invoice.amount),
            "discountsTotal": str(invoice.discounts_total),
            "creditsTotal": str(invoice.credits_total),
            "taxesTotal": str(invoice.taxes_total),
            "total": str(invoice.total),
        },
    }


# --- building from subscriptions ----------------------------------------------------------------------
def invoice_gathering_get(
    *,
    organization: Organization,
    customer_id: str,
    currency: str,
    period_start: datetime,
    period_end: datetime,
    kind: str = "period",
) -> Invoice:
    """The invoice for this natural key, created in `gathering` when missing (an upsert)."""
    invoice, _ = Invoice.objects.get_or_create(
        organization=organization,
        customer_id=customer_id,
        currency=currency,
        kind=kind,
        period_start=period_start,
        period_end=period_end,
        defaults={"status": S.GATHERING},
    )
    return invoice


def invoice_upcoming_build(
    *,
    organization: Organization,
    customer_id: str,
    currency: str,
    period_end: datetime,
    now: datetime,
    timeline: sources.CustomerTimeline | None = None,
) -> Build:
    """What the invoice at the end of the current period would hold if usage stopped now (the upcoming
    invoice): everything due at `period_end`, with the open periods' usage so far and no commitments yet,
    before credits. Writes nothing. `timeline` (`sources.customer_timeline`) spares the items read."""
    moment = Moment(customer_id, currency, period_end, progressive=True, usage_upto=min(now, period_end))
    builder = InvoiceBuilder(
        organization=organization,
        customer_ids=[customer_id],
        moments=[period_end],
        items=timeline.items_for(period_end) if timeline is not None else None,
    )
    builder.prefetch([moment])
    return builder.build(moment, apply_credits=False)


@dataclass(frozen=True)
class Upcoming:
    currency: str
    period_start: datetime
    period_end: datetime
    lines: list[L.LineDraft]
    totals: L.Totals


def invoice_upcoming(
    *, organization: Organization, customer: Customer, now: datetime | None = None
) -> list[Upcoming]:
    """The customer's next invoice per currency as it stands now (nothing stored): what is due at the end
    of the current billing period, with the open periods' usage so far, before credits. The periods and
    the items come from one read (`sources.customer_timeline`)."""
    now = now or timezone.now()
    timeline = sources.customer_timeline(organization=organization, customer_id=customer.id, at=now)
    return _upcoming(organization=organization, timeline=timeline, now=now)


def customer_invoice_upcoming(
    *, organization: Organization, customer_id: str, now: datetime | None = None
) -> list[Upcoming]:
    """`invoice_upcoming` of a live customer known by id (the console's customer page): the read of its
    items also tells whether it exists, so the customer row is read only when it has none. Raises
    NotFound for another organization's, a deleted or an unknown customer."""
    now = now or timezone.now()
    timeline = sources.customer_timeline(organization=organization, customer_id=customer_id, at=now)
    live = timeline.customer_live
    if live is None:
        live = Customer.objects.filter(
            organization=organization, id=customer_id, deleted_at__isnull=True
        ).exists()
    if not live:
        raise NotFound("Customer not found.", field="customer")
    return _upcoming(organization=organization, timeline=timeline, now=now)


def _upcoming(
    *, organization: Organization, timeline: sources.CustomerTimeline, now: datetime
) -> list[Upcoming]:
    out = []
    for cp in timeline.periods:
        build = invoice_upcoming_build(
            organization=organization,
            customer_id=timeline.customer_id,
            currency=cp.currency,
            period_end=cp.period_end,
            now=now,
            timeline=timeline,
        )
        out.append(Upcoming(cp.currency, cp.period_start, cp.period_end, build.lines, L.totals(build.lines)))
    return out


def invoice_gathering_refresh(
    *, organization: Organization, customer: Customer, now: datetime | None = None
) -> list[Invoice]:
    """The customer's gathering invoice(s) of the current period: the upcoming invoice as of `now`
    (`invoice_upcoming_build`), stored so the portal and the console can show it."""
    now = now or timezone.now()
    out = []
    for cp in sources.current_periods(organization=organization, customer_id=customer.id, at=now):
        with transaction.atomic():
            invoice = invoice_gathering_get(
                organization=organization,
                customer_id=customer.id,
                currency=cp.currency,
                period_start=cp.period_start,
                period_end=cp.period_end,
            )
            invoice = _invoice_lock(invoice.id, organization, billing=False)
            if invoice.status == S.GATHERING:
                build = invoice_upcoming_build(
                    organization=organization,
                    customer_id=customer.id,
                    currency=cp.currency,
                    period_end=cp.period_end,
                    now=now,
                )
                _write_lines(organization=organization, invoice=invoice, build=build)
            out.append(invoice)
    return out


def invoice_draft_for_period(
    *,
    organization: Organization,
    customer_id: str,
    currency: str,
    period_start: datetime,
    period_end: datetime,
    kind: str = "period",
    now: datetime | None = None,
    actor: Actor = "invoice_run",
) -> Invoice | None:
    """Idempotent: the invoice of this billing moment as a draft with its final lines, or None when
    nothing is due at that moment (no invoice is created).

    The natural key makes a second run (or a rerun after a crash) find the same row; anything past
    `gathering` is returned unchanged. The whole build is one transaction, so a crash leaves nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        invoice = invoice_gathering_get(
            organization=organization,
            customer_id=customer_id,
            currency=currency,
            period_start=period_start,
            period_end=period_end,
            kind=kind,
        )
        invoice = _invoice_lock(invoice.id, organization)
        if invoice.status != S.GATHERING:
            return invoice
        build = _build_one(
            organization=organization, invoice=invoice, moment=invoice_moment(invoice), apply_credits=True
        )
        if build.empty and not invoice.lines.filter(type=LineType.MANUAL).exists():
            invoice.delete()
            return None
        _write_lines(organization=organization, invoice=invoice, build=build)
        cfg = invoicing_settings_get(organization=organization)
        invoice = _transition(
            invoice, S.DRAFT, drafted_at=now, draft_until=now + timedelta(seconds=cfg.draft_period_seconds)
        )
        _invoice_event_record(
            organization=organization, invoice=invoice, action="invoice.created", actor=actor
        )
    return invoice


def _invoice_event_record(*, organization: Organization, invoice: Invoice, action: str, actor: Actor) -> None:
    """Audit the invoice as it is now under `action` and send the webhook event of the same name."""
    audit_record(
        organization=organization,
        actor=actor,
        action=action,
        object_type="invoice",
        object_id=invoice.id,
        after=invoice_payload(invoice),
    )
    webhook_event_emit(organization=organization, type=action, payload=invoice_payload(invoice))


def invoice_on_demand_create(
    *, organization: Organization, customer: Customer, now: datetime | None = None, actor: Actor = None
) -> list[Invoice]:
    """Bill now what is due and not billed yet, with the usage of open periods so far (progressive
    billing: the period-end invoice bills only the remainder). One invoice per currency."""
    now = now or timezone.now()
    starts: dict[str, datetime] = {}  # the current billing period's start per currency, shown on the invoice
    for cp in sources.current_periods(organization=organization, customer_id=customer.id, at=now):
        starts[cp.currency] = min(cp.period_start, starts.get(cp.currency, cp.period_start))
    currencies = sorted(set(starts) | ({customer.currency} if customer.currency else set()))
    out = []
    for currency in currencies:
        with transaction.atomic():
            customers_lock(organization=organization, customer_ids=[customer.id])
            try:
                with transaction.atomic():
                    invoice = Invoice.objects.create(
                        organization=organization,
                        customer=customer,
                        currency=currency,
                        period_start=starts.get(currency, now),
                        period_end=now,
                        kind="on_demand",
                        status=S.GATHERING,
                    )
            except IntegrityError:
                raise Conflict(
                    "An invoice for exactly this span exists already.", field="customerId"
                ) from None
            build = _build_one(
                organization=organization, invoice=invoice, moment=invoice_moment(invoice), apply_credits=True
            )
            if build.empty:
                invoice.delete()
                continue
            _write_lines(organization=organization, invoice=invoice, build=build)
            invoice = _transition(invoice, S.DRAFT, drafted_at=now, draft_until=now)
            _invoice_event_record(
                organization=organization, invoice=invoice, action="invoice.created", actor=actor
            )
        out.append(invoice_issue(organization=organization, invoice=invoice, actor=actor, now=now))
    if not out:
        raise Conflict("Nothing to invoice yet.", field="customerId")
    return out


# --- manual lines -----------------------------------------------------------------------------------
def invoice_line_add_manual(
    *,
    organization: Organization,
    invoice: Invoice,
    description: str,
    quantity: Decimal | str,
    unit_price: Decimal | str,
    tax_rate_id: str | None = None,
    actor: Actor = None,
) -> InvoiceLine:
    qty, unit = to_decimal(quantity), to_decimal(unit_price)
    if not description.strip():
        raise ValidationFailed("A description is required.", field="description")
    with transaction.atomic():
        invoice = _invoice_lock(invoice.id, organization)
        if invoice.status not in (S.DRAFT, S.GATHERING):
            raise InvoiceNotEditable(
                f"Only draft invoices can be edited; this one is {invoice.status}.", field="status"
            )
        if (
            tax_rate_id
            and not TaxRate.objects.filter(
                organization=organization, id=tax_rate_id, archived_at=None
            ).exists()
        ):
            raise ValidationFailed("No such tax rate.", field="taxRateId")
        line = InvoiceLine.objects.create(
            organization=organization,
            invoice=invoice,
            type=LineType.MANUAL,
            position=500 + invoice.lines.count(),
            description=description.strip()[:500],
            quantity=qty,
            unit_price=unit,
            amount=quantize(qty * unit, invoice.currency),
            tax_rate_id=tax_rate_id,
        )
        _retax(organization=organization, invoice=invoice)
        audit_record(
            organization=organization,
            actor=actor,
            action="invoice.line_added",
            object_type="invoice",
            object_id=invoice.id,
            after={"lineId": line.id, "amount": str(line.amount)},
        )
    return line


def _retax(*, organization: Organization, invoice: Invoice) -> None:
    """Recompute the tax lines and totals of a draft after a manual edit (credits are kept)."""
    invoice.lines.filter(type=LineType.TAX).delete()
    default_tax, rates = tax_specs(organization)
    current = list(invoice.lines.all())
    drafts = [
        L.LineDraft(x.type, x.description, x.amount, taxable=x.taxable, tax_rate_id=x.tax_rate_id)
        for x in current
    ]
    taxes = L.tax_lines(drafts, currency=invoice.currency, default=default_tax, rates=rates)
    InvoiceLine.objects.bulk_create(
        [
            InvoiceLine(
                organization=organization,
                invoice=invoice,
                type="tax",
                position=9000 + i,
                description=t.description,
                quantity=t.quantity,
                unit_price=t.unit_price,
                amount=t.amount,
                detail=t.detail,
                taxable=False,
                tax_rate_id=t.tax_rate_id,
            )
            for i, t in enumerate(taxes)
        ]
    )
    Invoice.objects.filter(id=invoice.id).update(**L.totals(invoice.lines.all()).fields())


# --- lifecycle --------------------------------------------------------------------------------------
def _supplier_snapshot(organization: Organization) -> dict[str, Any]:
    cfg = invoicing_settings_get(organization=organization)
    return {
        "name": cfg.supplier_name or organization.name,
        "address": cfg.supplier_address,
        "taxId": cfg.supplier_tax_id,
        "email": cfg.supplier_email,
        "paymentInstructions": cfg.payment_instructions,
    }


def _customer_snapshot(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "key": customer.key,
        "name": customer.name,
        "email": customer.primary_email,
        "billingAddress": customer.billing_address,
        "taxIds": customer.tax_ids,
    }


def invoice_issue(
    *,
    organization: Organization,
    invoice: Invoice,
    actor: Actor = None,
    now: datetime | None = None,
    rebuild: bool = False,
) -> Invoice:
    """draft → issued: (optionally) recompute the lines from raw usage, number it, snapshot the parties,
    then push to Stripe after commit."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _invoice_lock(invoice.id, organization)
        if locked.status != S.DRAFT:
            raise Conflict(
                f"Invoice {invoice.id} cannot be issued: it is {locked.status}.",
                field="status",
                extra={"invoiceStatus": locked.status},
            )
        if rebuild and locked.kind in ("period", "start"):
            build = _build_one(
                organization=organization, invoice=locked, moment=invoice_moment(locked), apply_credits=True
            )
            _write_lines(organization=organization, invoice=locked, build=build)
        cfg = invoicing_settings_get(organization=organization)
        number = invoice_number_assign(
            organization=organization, prefix=cfg.number_prefix or organization.slug.upper(), at=now
        )
        customer = Customer.objects.get(id=locked.customer_id, organization=organization)
        invoice = _transition(
            locked,
            S.ISSUED,
            number=number,
            issued_at=now,
            due_at=now + timedelta(days=cfg.due_days),
            supplier_snapshot=_supplier_snapshot(organization),
            customer_snapshot=_customer_snapshot(customer),
        )
        _invoice_event_record(
            organization=organization, invoice=invoice, action="invoice.issued", actor=actor
        )
        if StripeSettings.objects.filter(organization=organization, enabled=True).exists():
            enqueue_on_commit("invoicing.tasks.invoice_stripe_push", invoice.id)
    return invoice


def invoice_set_status(
    *,
    organization: Organization,
    invoice: Invoice,
    status: str,
    actor: Actor = None,
    now: datetime | None = None,
    reason: str = "",
) -> Invoice:
    """Move an issued invoice to paid / payment_failed / overdue / uncollectible / voided (409 if not allowed).
    Voiding keeps the number and, for a numbered invoice, issues its credit note in the same transaction
    (`invoicing/credit_notes.py`; `reason` goes on it)."""
    if status not in (S.PAID, S.PAYMENT_FAILED, S.OVERDUE, S.UNCOLLECTIBLE, S.VOIDED):
        raise ValidationFailed(f"Cannot set status {status!r}.", field="status")
    now = now or timezone.now()
    extra: dict[str, Any] = {}
    if status == S.PAID:
        extra["paid_at"] = now
    if status == S.VOIDED:
        extra["voided_at"] = now
    with transaction.atomic():
        before = invoice.status
        invoice = _transition(invoice, status, **extra)
        if status == S.VOIDED and invoice.number:
            credit_note_issue(organization=organization, invoice=invoice, at=now, reason=reason, actor=actor)
        audit_record(
            organization=organization,
            actor=actor,
            action=f"invoice.{status}",
            object_type="invoice",
            object_id=invoice.id,
            before={"status": before},
            after={"status": status},
        )
        if status in WEBHOOK_ON:
            webhook_event_emit(
                organization=organization,
                type=WEBHOOK_ON[status],  # type: ignore[index]
                payload=invoice_payload(invoice),
            )
    return invoice


def invoice_advance(*, organization: Organization, invoice: Invoice, actor: Actor = None) -> Invoice:
    """The next step of the lifecycle: a gathering invoice is drafted now (bills its period so far... only
    once the period is over), a draft is issued."""
    if invoice.status == S.DRAFT:
        return invoice_issue(organization=organization, invoice=invoice, actor=actor, rebuild=True)
    if invoice.status == S.GATHERING:
        if invoice.period_end > timezone.now():
            raise Conflict(
                "The period is not over yet; use on-demand invoicing to bill it early.", field="status"
            )
        drafted = invoice_draft_for_period(
            organization=organization,
            customer_id=invoice.customer_id,
            currency=invoice.currency,
            period_start=invoice.period_start,
            period_end=invoice.period_end,
            kind=invoice.kind,
            actor=actor,
        )
        if drafted is None:
            raise Conflict("Nothing is due on this invoice; it was removed.", field="status")
        return drafted
    raise Conflict(
        f"Invoice {invoice.id} cannot be advanced: it is {invoice.status}.",
        field="status",
        extra={"invoiceStatus": invoice.status},
    )


def invoice_approve(*, organization: Organization, invoice: Invoice, actor: Actor = None) -> Invoice:
    if invoice.status != S.DRAFT:
        raise Conflict(
            f"Only drafts can be approved; this invoice is {invoice.status}.",
            field="status",
            extra={"invoiceStatus": invoice.status},
        )
    return invoice_issue(organization=organization, invoice=invoice, actor=actor, rebuild=True)


def invoice_void(
    *, organization: Organization, invoice: Invoice, actor: Actor = None, reason: str = ""
) -> Invoice:
    """Void a draft or an unpaid issued invoice; an issued one gets its credit note (`credit_notes`)."""
    invoice = invoice_set_status(
        organization=organization, invoice=invoice, status=S.VOIDED, actor=actor, reason=reason
    )
    if (
        invoice.stripe_invoice_id
        and StripeSettings.objects.filter(organization=organization, enabled=True).exists()
    ):
        enqueue_on_commit("invoicing.tasks.invoice_stripe_void", invoice.id)
    return invoice


def invoice_retry_sync(*, organization: Organization, invoice: Invoice, actor: Actor = None) -> Invoice:
    """Push an issued invoice to Stripe again (idempotent: the keys come from our ids)."""
    if invoice.status in (S.GATHERING, S.DRAFT, S.VOIDED):
        raise Conflict(
            f"Only issued invoices are synced; this one is {invoice.status}.",
            field="status",
            extra={"invoiceStatus": invoice.status},
        )
    if not StripeSettings.objects.filter(organization=organization, enabled=True).exists():
        raise Conflict("Stripe is not configured for this organization.", field="stripe")
    audit_record(
        organization=organization,
        actor=actor,
        action="invoice.sync_retried",
        object_type="invoice",
        object_id=invoice.id,
    )
    enqueue("invoicing.tasks.invoice_stripe_push", invoice.id)
    return invoice


def invoices_auto_advance(*, now: datetime | None = None) -> int:
    """Issue drafts whose draft period is over (organizations with auto-advance). Returns how many."""
    now = now or timezone.now()
    count = 0
    auto_orgs = InvoicingSettings.objects.filter(auto_advance=True).values_list("organization_id", flat=True)
    drafts = (
        Invoice.objects.filter(status=S.DRAFT, draft_until__lte=now)
        .filter(
            Q(organization_id__in=auto_orgs)
            | ~Q(organization_id__in=InvoicingSettings.objects.values("organization_id"))
        )
        .select_related("organization")
    )
    for invoice in drafts[:1000]:
        try:
            invoice_issue(
                organization=invoice.organization,
                invoice=invoice,
                now=now,
                rebuild=True,
                actor="auto_advance",
            )
            count += 1
        except Conflict:
            continue
    return count


def invoices_mark_overdue(*, now: datetime | None = None, limit: int = 1000) -> int:
    """issued → overdue for invoices whose due date has passed (beat). Idempotent: a conditional update
    per invoice (`_transition`), so an invoice paid meanwhile, or already overdue, is skipped."""
    now = now or timezone.now()
    due = (
        Invoice.objects.filter(status=S.ISSUED, due_at__lte=now)
        .select_related("organization")
        .order_by("due_at", "id")
    )
    count = 0
    for invoice in due[:limit]:
        try:
            invoice_set_status(
                organization=invoice.organization,
                invoice=invoice,
                status=S.OVERDUE,
                actor="overdue_sweep",
                now=now,
            )
            count += 1
        except Conflict:
            continue
    return count


def invoice_get_for_update(*, organization: Organization, invoice_id: str) -> Invoice:
    invoice = Invoice.objects.filter(organization=organization, id=invoice_id).first()
    if invoice is None:
        raise NotFound(f"No such invoice: {invoice_id!r}.")
    return invoice


# --- payments recorded by hand ------------------------------------------------------------------------
def invoice_mark_paid(
    *,
    organization: Organization,
    invoice: Invoice,
    amount: Decimal,
    paid_at: datetime,
    reference: str = "",
    actor: Actor = None,
) -> Invoice:
    """An issued (or failed, overdue, uncollectible) invoice settled outside Stripe: record the payment
    (amount, date received, reference) and move the invoice to paid at that date, in one transaction.
    The amount must be the invoice total (partial payments are not tracked); the date may not be in the
    future."""
    from invoicing.models import InvoicePayment

    amount = to_decimal(amount)
    total = quantize(invoice.total, invoice.currency)
    if quantize(amount, invoice.currency) != total:
        raise ValidationFailed(
            f"The payment must settle the invoice total of {total} {invoice.currency}.", field="amount"
        )
    if paid_at > timezone.now():
        raise ValidationFailed("The payment date cannot be in the future.", field="paidAt")
    with transaction.atomic():
        paid = invoice_set_status(
            organization=organization, invoice=invoice, status=S.PAID, actor=actor, now=paid_at
        )
        payment = InvoicePayment.objects.create(
            organization=organization,
            invoice=paid,
            amount=total,
            currency=paid.currency,
            paid_at=paid_at,
            reference=reference.strip(),
        )
        audit_record(
            organization=organization,
            actor=actor,
            action="invoice.payment_recorded",
            object_type="invoice",
            object_id=paid.id,
            after={
                "paymentId": payment.id,
                "amount": str(total),
                "currency": paid.currency,
                "paidAt": paid_at.isoformat(),
                "reference": payment.reference,
            },
        )
    return paid


def invoice_record_billed_elsewhere(
    *,
    organization: Organization,
    customer: Customer,
    at: datetime,
    reference: str,
    actor: Actor = None,
) -> list[Invoice]:
    """Record the fees another billing system already invoiced at `at` (a migration: the in-advance fees of
    the current period, billed by the old system at its start) as settled invoices of kind `external`, one
    per currency: no number, never pushed to Stripe nor sent, and the ledger counts their lines as billed,
    so no run bills those fees again. Returns the invoices recorded (none when nothing was due at `at`)."""
    out = []
    currencies = {
        i.currency
        for i in sources.billable_items(
            organization=organization, customer_ids=[customer.id], since=at, until=at
        )[customer.id]
    }
    for currency in sorted(currencies):
        with transaction.atomic():
            customers_lock(organization=organization, customer_ids=[customer.id])
            invoice, created = Invoice.objects.get_or_create(
                organization=organization,
                customer=customer,
                currency=currency,
                kind="external",
                period_start=at,
                period_end=at,
                defaults={"status": S.GATHERING},
            )
            if not created and invoice.status != S.GATHERING:
                out.append(invoice)
                continue
            moment = Moment(customer.id, currency, at, "start", exclude_invoice_id=invoice.id)
            build = _build_one(organization=organization, invoice=invoice, moment=moment, apply_credits=False)
            if build.empty:
                invoice.delete()
                continue
            _write_lines(organization=organization, invoice=invoice, build=build)
            Invoice.objects.filter(id=invoice.id).update(
                status=S.PAID,
                paid_at=timezone.now(),
                customer_snapshot={**_customer_snapshot(customer), "billedBy": reference[:200]},
            )
            invoice.refresh_from_db()
            audit_record(
                organization=organization,
                actor=actor,
                action="invoice.recorded_external",
                object_type="invoice",
                object_id=invoice.id,
                after={**invoice_payload(invoice), "billedBy": reference[:200]},
            )
            out.append(invoice)
    return out
