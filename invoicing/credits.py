"""Customer credits (a money balance per customer and currency): writes and reads.

A credit is applied by the invoice line engine (`invoicing.builder`) after tax, as negative `credit`
lines, in burn order (priority, then nearest expiry, then oldest); each use is a `CreditApplication` row.
What is left of a credit is its amount minus its applications on invoices that are neither voided nor
still gathering, so voiding an invoice gives its credit back without counters. Voiding a credit
(`voided_at`) stops it from being applied again; what was already applied stays applied.

Status, at an instant: `voided` (voided_at set), `used` (nothing left), `expired` (expires_at passed),
otherwise `active`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import (
    Case,
    CharField,
    DecimalField,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.models import Customer
from core.audit import Actor, audit_object
from core.errors import Conflict, NotFound, ValidationFailed
from core.ids import is_ulid
from core.models import Organization
from core.money import currency_exponent, is_currency, quantize, to_decimal
from core.querysets import first_or_not_found
from invoicing.models import CreditApplication, CustomerCredit, InvoiceStatus

MAX_INTEGER_DIGITS = 18
MAX_PRIORITY = 255
MONEY = DecimalField(max_digits=38, decimal_places=12)
NOT_COUNTED = (InvoiceStatus.VOIDED, InvoiceStatus.GATHERING)  # applications that do not use a credit


class CreditStatus:
    ACTIVE = "active"
    EXPIRED = "expired"
    VOIDED = "voided"
    USED = "used"


CREDIT_STATUSES = (CreditStatus.ACTIVE, CreditStatus.EXPIRED, CreditStatus.VOIDED, CreditStatus.USED)


# --- writes -------------------------------------------------------------------------------------------
def customer_credit_validate(
    *,
    customer: Customer,
    amount: object,
    currency: str | None,
    description: str,
    priority: int,
    expires_at: datetime | None,
    now: datetime,
) -> tuple[Decimal, str]:
    """Every error at once (problem+json `invalid_params`); returns the rounded amount and the currency."""
    errors: list[dict[str, str]] = []
    code = (currency or customer.currency or "").upper()
    if not code:
        errors.append({"name": "currency", "reason": "A currency is required (the customer has none)."})
    elif not is_currency(code):
        errors.append({"name": "currency", "reason": f"Unknown currency {code!r}."})
        code = ""
    elif customer.currency and customer.currency.upper() != code:
        errors.append(
            {"name": "currency", "reason": f"Must be the customer's currency, {customer.currency.upper()}."}
        )
        code = ""
    value = Decimal(0)
    try:
        value = to_decimal(amount)
    except TypeError:
        errors.append({"name": "amount", "reason": 'Send the amount as a decimal string, e.g. "25.00".'})
    except ValueError:
        errors.append({"name": "amount", "reason": "Not a decimal number."})
    else:
        if value <= 0:
            errors.append({"name": "amount", "reason": "A credit must be positive."})
        elif value >= Decimal(10) ** MAX_INTEGER_DIGITS:
            errors.append(
                {"name": "amount", "reason": f"At most {MAX_INTEGER_DIGITS} digits before the decimal point."}
            )
        elif code and quantize(value, code) != value:
            places = currency_exponent(code)
            errors.append({"name": "amount", "reason": f"{code} allows at most {places} decimal places."})
    if not description.strip() or len(description) > 200:
        errors.append({"name": "description", "reason": "Between 1 and 200 characters."})
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= MAX_PRIORITY:
        errors.append({"name": "priority", "reason": f"An integer from 0 to {MAX_PRIORITY}."})
    if expires_at is not None and expires_at <= now:
        errors.append({"name": "expiresAt", "reason": "Must be in the future."})
    if errors:
        raise ValidationFailed("; ".join(f"{e['name']}: {e['reason']}" for e in errors), errors=errors)
    return quantize(value, code), code


def customer_credit_create(
    *,
    organization: Organization,
    customer: Customer,
    amount: Decimal | str,
    currency: str | None = None,
    description: str = "Credit",
    expires_at: datetime | None = None,
    priority: int = 1,
    actor: Actor = None,
    now: datetime | None = None,
) -> CustomerCredit:
    """A money credit for the customer, in the customer's currency (when it has one)."""
    if customer.organization_id != organization.id:
        raise NotFound("No such customer.")
    value, code = customer_credit_validate(
        customer=customer,
        amount=amount,
        currency=currency,
        description=description,
        priority=priority,
        expires_at=expires_at,
        now=now or timezone.now(),
    )
    with transaction.atomic():
        credit = CustomerCredit.objects.create(
            organization=organization,
            customer=customer,
            amount=value,
            currency=code,
            description=description.strip(),
            expires_at=expires_at,
            priority=priority,
        )
        audit_object(
            credit,
            "credit.created",
            actor,
            after={
                "customerId": customer.id,
                "amount": str(value),
                "currency": code,
                "description": credit.description,
                "priority": priority,
                "expiresAt": expires_at.isoformat() if expires_at else None,
            },
        )
    return credit


def customer_credit_void(
    *, organization: Organization, credit: CustomerCredit, actor: Actor = None, now: datetime | None = None
) -> CustomerCredit:
    """Stop the credit from being applied again (a conditional UPDATE; 409 when already voided). The update
    waits for an invoice build holding the credit's row lock, which then sees the credit as voided."""
    now = now or timezone.now()
    with transaction.atomic():
        changed = CustomerCredit.objects.filter(
            organization=organization, id=credit.id, voided_at__isnull=True
        ).update(voided_at=now)
        if not changed:
            raise Conflict("The credit is already voided.", field="credit")
        voided = customer_credit_get(
            organization=organization, customer_id=credit.customer_id, credit_id=credit.id
        )
        left = quantize(voided.remaining, voided.currency)  # type: ignore[attr-defined]
        audit_object(
            credit,
            "credit.voided",
            actor,
            before={"voidedAt": None, "remaining": str(left)},
            after={"voidedAt": now.isoformat()},
        )
    return voided


# --- reads --------------------------------------------------------------------------------------------
def customer_credit_list(
    *,
    organization: Organization,
    customer_id: str,
    at: datetime | None = None,
    statuses: list[str] | None = None,
) -> QuerySet[CustomerCredit]:
    """The customer's credits in burn order, each annotated with `applied`, `remaining` and `status` at `at`
    (only those with one of `statuses`, when given)."""
    at = at or timezone.now()
    applied = (
        CreditApplication.objects.filter(organization=organization, credit=OuterRef("pk"))
        .exclude(line__invoice__status__in=NOT_COUNTED)
        .order_by()
        .values("credit")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    qs = (
        CustomerCredit.objects.filter(organization=organization, customer_id=customer_id)
        .annotate(
            applied=Coalesce(Subquery(applied, output_field=MONEY), Value(Decimal(0)), output_field=MONEY)
        )
        .annotate(remaining=F("amount") - F("applied"))
        .annotate(
            status=Case(
                When(voided_at__isnull=False, then=Value(CreditStatus.VOIDED)),
                When(remaining__lte=0, then=Value(CreditStatus.USED)),
                When(Q(expires_at__isnull=False) & Q(expires_at__lte=at), then=Value(CreditStatus.EXPIRED)),
                default=Value(CreditStatus.ACTIVE),
                output_field=CharField(),
            )
        )
        .order_by("priority", F("expires_at").asc(nulls_last=True), "created_at", "id")
    )
    return qs.filter(status__in=statuses) if statuses else qs


def customer_credit_get(
    *, organization: Organization, customer_id: str, credit_id: str, at: datetime | None = None
) -> CustomerCredit:
    return first_or_not_found(
        customer_credit_list(organization=organization, customer_id=customer_id, at=at).filter(
            id=credit_id.upper() if is_ulid(credit_id) else credit_id
        ),
        f"No such credit: {credit_id!r}.",
    )


def credit_application_list(
    *, organization: Organization, credit: CustomerCredit
) -> QuerySet[CreditApplication]:
    """Where the credit was applied: invoice, line and amount; `at` is when the invoice was issued (or drafted,
    or created, while it is not issued yet). Applications on voided invoices are listed too (their status
    says the amount was given back)."""
    return (
        CreditApplication.objects.filter(organization=organization, credit=credit)
        .select_related("line__invoice")
        .annotate(
            at=Coalesce("line__invoice__issued_at", "line__invoice__drafted_at", "line__invoice__created_at")
        )
        .order_by("at", "id")
    )
