"""Lago's wallets and wallet transactions, written as our customer credits (`invoicing.credits`): a
wallet is the customer's credits in its currency, each paid or granted top-up one credit."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing import selectors as billing_selectors
from billing import services as billing_services
from billing.models import Customer
from core.audit import Actor
from core.errors import NotFound
from core.models import Organization
from core.money import is_currency
from invoicing import credits as invoicing_credits
from invoicing.models import CustomerCredit
from lago import wire
from lago.wire import LagoInvalid

# --- wallets (customer credits) ---------------------------------------------------------------------


def _credit(
    *,
    organization: Organization,
    customer: Customer,
    amount: Decimal,
    description: str,
    expires_at: datetime | None,
    priority: int,
    actor: Actor,
) -> CustomerCredit:
    return invoicing_credits.customer_credit_create(
        organization=organization,
        customer=customer,
        amount=amount,
        currency=customer.currency or None,
        description=description,
        expires_at=expires_at,
        priority=priority,
        actor=actor,
    )


def _credits_amounts(data: dict[str, Any], errors: dict[str, list[str]]) -> tuple[Decimal, Decimal]:
    out = []
    for name in ("paid_credits", "granted_credits"):
        raw = data.get(name)
        if raw in (None, ""):
            out.append(Decimal(0))
            continue
        value = wire.decimal_string(raw)
        if value is None or value < 0:
            errors[name] = ["invalid_amount"]
            value = Decimal(0)
        out.append(value)
    return out[0], out[1]


def _document(data: Any, root: str) -> dict[str, Any]:
    """The object inside Lago's `root` envelope; anything but a JSON object is `invalid_value`."""
    if not isinstance(data, dict):
        raise LagoInvalid({root: ["invalid_value"]})
    return data


def _mandatory_id(data: dict[str, Any], name: str, errors: dict[str, list[str]]) -> str:
    """`data[name]`, an id that must be a non-empty string: when it is not, `value_is_mandatory` goes
    into `errors` and the answer is ""."""
    value = data.get(name)
    if isinstance(value, str) and value:
        return value
    errors[name] = ["value_is_mandatory"]
    return ""


def wallet_create(
    *, organization: Organization, data: Any, actor: Actor = None
) -> tuple[Customer, list[CustomerCredit]]:
    """A Lago wallet is the customer's credits in its currency (1 credit = 1 unit of the currency): paid and
    granted credits become one credit each. The wallet's id is the customer's id."""
    data = _document(data, "wallet")
    errors: dict[str, list[str]] = {}
    external_customer_id = _mandatory_id(data, "external_customer_id", errors)
    rate = data.get("rate_amount", "1")
    if wire.decimal_string(rate) != Decimal(1):
        errors["rate_amount"] = ["not_supported"]
    paid, granted = _credits_amounts(data, errors)
    expires_at = None
    if data.get("expiration_at"):
        expires_at = wire.parse_datetime(data["expiration_at"])
        if expires_at is None or expires_at <= timezone.now():
            errors["expiration_at"] = ["invalid_date"]
    priority = data.get("priority", 1)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 50:
        errors["priority"] = ["invalid_value"]
    if data.get("recurring_transaction_rules"):
        errors["recurring_transaction_rules"] = ["not_supported"]
    if errors:
        raise LagoInvalid(errors)
    customer = billing_selectors.customer_list(organization=organization, key=external_customer_id).first()
    if customer is None:
        raise NotFound("customer_not_found")
    currency = data.get("currency")
    if currency and customer.currency and str(currency).upper() != customer.currency:
        raise LagoInvalid({"currency": ["currencies_does_not_match"]})
    if currency and not customer.currency:
        if not isinstance(currency, str) or not is_currency(currency):
            raise LagoInvalid({"currency": ["value_is_invalid"]})
        customer = billing_services.customer_update(
            organization=organization, customer=customer, currency=currency.upper(), actor=actor
        )
    return customer, wallet_top_up(
        organization=organization,
        customer=customer,
        paid=paid,
        granted=granted,
        expires_at=expires_at,
        priority=priority,
        actor=actor,
    )


def wallet_top_up(
    *,
    organization: Organization,
    customer: Customer,
    paid: Decimal,
    granted: Decimal,
    expires_at: datetime | None = None,
    priority: int = 1,
    actor: Actor = None,
) -> list[CustomerCredit]:
    out = []
    with transaction.atomic():
        for amount, label in ((paid, "Paid credits"), (granted, "Granted credits")):
            if amount > 0:
                out.append(
                    _credit(
                        organization=organization,
                        customer=customer,
                        amount=amount,
                        description=label,
                        expires_at=expires_at,
                        priority=priority,
                        actor=actor,
                    )
                )
    return out


def wallet_transaction_create(
    *, organization: Organization, data: Any, actor: Actor = None
) -> tuple[Customer, list[CustomerCredit]]:
    data = _document(data, "wallet_transaction")
    errors: dict[str, list[str]] = {}
    wallet_id = _mandatory_id(data, "wallet_id", errors)
    paid, granted = _credits_amounts(data, errors)
    if data.get("voided_credits") not in (None, "", "0", 0):
        errors["voided_credits"] = ["not_supported"]
    if errors:
        raise LagoInvalid(errors)
    customer = wallet_customer(organization=organization, wallet_id=wallet_id)
    return customer, wallet_top_up(
        organization=organization, customer=customer, paid=paid, granted=granted, actor=actor
    )


def wallet_customer(*, organization: Organization, wallet_id: str) -> Customer:
    customer = billing_selectors.customer_list(organization=organization).filter(id=wallet_id.upper()).first()
    if customer is None:
        raise NotFound("wallet_not_found")
    return customer


def wallet_terminate(*, organization: Organization, wallet_id: str, actor: Actor = None) -> Customer:
    """Voids every credit of the wallet that is still active."""
    customer = wallet_customer(organization=organization, wallet_id=wallet_id)
    with transaction.atomic():
        for credit in invoicing_credits.customer_credit_list(
            organization=organization, customer_id=customer.id, statuses=["active"]
        ):
            invoicing_credits.customer_credit_void(organization=organization, credit=credit, actor=actor)
    return customer
