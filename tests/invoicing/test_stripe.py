"""Stripe push (request shapes, minor units, idempotency keys, resume after failure) and Stripe webhooks in
(signature accept/reject, stored once, duplicate processed once). No network: the real `stripe` library
talks to a fake HTTP client."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from rest_framework.test import APIClient

from billing.models import Customer
from invoicing.models import Invoice, StripeEvent
from invoicing.services import customer_credit_create, stripe_settings_set, tax_rate_create
from tests.invoicing.conftest import (
    WEBHOOK_SECRET,
    make_customer,
    make_subscription,
    run_period,
    stripe_signed,
)

# Real commits: the Stripe push and event processing are queued with transaction.on_commit.
pytestmark = pytest.mark.django_db(transaction=True)

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 1, 1, tzinfo=UTC)


def issue_one(tenant, usage, *, currency: str = "USD", unit: str = "0.015") -> Invoice:
    cust = make_customer(tenant, "initech", currency=currency)
    make_subscription(
        tenant,
        cust,
        anchor=OCT,
        currency=currency,
        items=[
            {
                "key": "base",
                "name": "Base fee",
                "payment_term": "in_arrears",  # one invoice for October: the fee and the usage
                "price": {"type": "flat", "amount": "25", "paymentTerm": "in_arrears"},
            },
            {
                "key": "calls",
                "name": "Calls",
                "feature_key": "calls",
                "price": {"type": "unit", "amount": unit},
                "discounts": {"percentage": {"percentage": "20"}},
            },
        ],
    )
    usage.add(cust, "calls", datetime(2026, 10, 9, tzinfo=UTC), 1001)
    with time_machine.travel(NOW, tick=False):
        return run_period(tenant, NOW)


@pytest.fixture
def stripe_on(tenant_a):
    return stripe_settings_set(
        organization=tenant_a.org,
        secret_key="sk_test_123",
        webhook_secret=WEBHOOK_SECRET,
        api_version="2026-10-28.endive",
    )


def test_push_on_issue_sends_minor_units_and_deterministic_idempotency_keys(
    tenant_a, tenant_b, usage, fake_stripe, stripe_on
):
    tax_rate_create(organization=tenant_a.org, name="VAT", percentage="20", is_default=True)
    invoice = issue_one(tenant_a, usage)
    customer_credit_create(organization=tenant_a.org, customer=invoice.customer, amount="1", currency="USD")
    invoice.refresh_from_db()
    assert invoice.status == "issued" and invoice.stripe_status == "open"
    lines = {x.type: x for x in invoice.lines.all()}
    # calls: 1001 x 0.015 = 15.015 -> 15.02 ; discount 20% of 15.015 = 3.003 -> -3.00 ; VAT 20% of 37.02 = 7.404
    assert (lines["usage"].amount, lines["discount"].amount, lines["tax"].amount) == (
        Decimal("15.02"),
        Decimal("-3.00"),
        Decimal("7.40"),
    )
    paths = [(r["method"], r["path"]) for r in fake_stripe.requests]
    assert paths[0] == ("post", "/v1/customers")
    assert paths[1] == ("post", "/v1/invoices")
    assert paths[-1] == ("post", f"/v1/invoices/{invoice.stripe_invoice_id}/finalize")
    assert all(r["version"] == "2026-10-28.endive" for r in fake_stripe.requests)
    cust_req, inv_req = fake_stripe.requests[0], fake_stripe.requests[1]
    assert cust_req["idempotency_key"] == f"customer-{invoice.customer_id}"
    assert inv_req["idempotency_key"] == f"invoice-create-{invoice.id}"
    assert inv_req["params"]["auto_advance"] == "false"
    assert inv_req["params"]["currency"] == "usd"
    assert inv_req["params"]["metadata[meterline_invoice_id]"] == invoice.id
    assert inv_req["params"]["metadata[meterline_invoice_number]"] == "ACME-2026-000001"
    items = fake_stripe.calls("/v1/invoiceitems")
    got = sorted((r["params"]["amount"], r["params"]["currency"], r["idempotency_key"]) for r in items)
    want = sorted(
        (str(a), "usd", f"ii-{lid}")
        for a, lid in [
            (1502, lines["usage"].id),
            (-300, lines["discount"].id),
            (2500, lines["flat_fee"].id),
            (740, lines["tax"].id),
        ]
    )
    assert got == want
    assert all(r["params"]["invoice"] == invoice.stripe_invoice_id for r in items)
    assert Customer.objects.get(id=invoice.customer_id).stripe_customer_id.startswith("cus_")
    assert invoice.lines.exclude(type="credit").filter(stripe_invoice_item_id="").count() == 0
    # tenant B has no Stripe settings: nothing was pushed for it
    other = issue_one(tenant_b, usage)
    assert other.stripe_invoice_id == "" and len(fake_stripe.requests) == len(paths)


def test_zero_decimal_currency_pushes_whole_yen(tenant_a, tenant_b, usage, fake_stripe, stripe_on):
    invoice = issue_one(tenant_a, usage, currency="JPY", unit="1.5")
    amounts = sorted(int(r["params"]["amount"]) for r in fake_stripe.calls("/v1/invoiceitems"))
    # 1001 x 1.5 = 1501.5 -> 1502 yen; 20% off 1501.5 = 300.3 -> -300 ; base 25
    assert amounts == [-300, 25, 1502]
    assert fake_stripe.calls("/v1/invoices")[0]["params"]["currency"] == "jpy"
    assert invoice.total == Decimal("1227")


def test_push_resumes_after_a_failure_without_duplicates(tenant_a, tenant_b, usage, fake_stripe, stripe_on):
    from invoicing import stripe_gateway

    fake_stripe.fail_next.append(("/finalize", 400))
    invoice = issue_one(tenant_a, usage)
    invoice.refresh_from_db()
    assert invoice.stripe_invoice_id and invoice.stripe_status == "draft"
    assert "boom" in invoice.sync_error
    first = len(fake_stripe.calls("/v1/invoiceitems"))
    stripe_gateway.invoice_push(invoice_id=invoice.id)  # the retry button / task
    invoice.refresh_from_db()
    assert invoice.stripe_status == "open" and invoice.sync_error == ""
    assert len(fake_stripe.calls("/v1/invoices")) == 1 + 2  # one create, two finalize attempts
    assert len(fake_stripe.calls("/v1/invoiceitems")) == first  # items were not sent again
    stripe_gateway.invoice_push(invoice_id=invoice.id)  # finalized: a no-op
    assert len(fake_stripe.calls("/finalize")) == 2


# --- webhooks in --------------------------------------------------------------------------------------
def event(invoice: Invoice, type_: str, event_id: str = "evt_1") -> dict:
    return {
        "id": event_id,
        "object": "event",
        "type": type_,
        "api_version": "2026-10-28.endive",
        "data": {
            "object": {
                "id": invoice.stripe_invoice_id,
                "object": "invoice",
                "status": "paid",
                "metadata": {"meterline_invoice_id": invoice.id},
            }
        },
    }


def post(org_slug: str, body: bytes, sig: str):
    return APIClient().post(
        f"/api/v1/apps/stripe/webhook/{org_slug}",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sig,
    )


def test_signed_webhook_marks_paid_once_even_when_delivered_twice(
    tenant_a, tenant_b, usage, fake_stripe, stripe_on
):
    invoice = issue_one(tenant_a, usage)
    body, sig = stripe_signed(event(invoice, "invoice.paid"))
    first = post("acme", body, sig)
    assert first.status_code == 200 and first.json()["duplicate"] is False
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.paid_at is not None
    second = post("acme", body, sig)
    assert second.status_code == 200 and second.json()["duplicate"] is True
    assert StripeEvent.objects.filter(organization=tenant_a.org).count() == 1
    row = StripeEvent.objects.get()
    assert row.result == f"{invoice.id} → paid"
    from core.models import AuditLog

    assert AuditLog.objects.filter(organization=tenant_a.org, action="invoice.paid").count() == 1


def test_forged_stale_and_foreign_signatures_are_rejected(tenant_a, tenant_b, usage, fake_stripe, stripe_on):
    invoice = issue_one(tenant_a, usage)
    payload = event(invoice, "invoice.paid")
    body, _ = stripe_signed(payload, secret="whsec_wrong")
    _, forged_sig = stripe_signed(payload, secret="whsec_wrong")
    resp = post("acme", body, forged_sig)
    assert resp.status_code == 400
    assert resp["Content-Type"] == "application/problem+json"
    assert resp.json()["invalid_params"][0]["name"] == "Stripe-Signature"
    stale_body, stale_sig = stripe_signed(payload, at=int(time.time()) - 301)
    assert post("acme", stale_body, stale_sig).status_code == 400
    ok_body, ok_sig = stripe_signed(payload)
    assert post("acme", ok_body + b" ", ok_sig).status_code == 400  # body tampered after signing
    assert post("acme", ok_body, "").status_code == 400
    # tenant B has no webhook secret: a payload about A's invoice sent to B's URL changes nothing
    assert post("globex", ok_body, ok_sig).status_code == 400
    assert StripeEvent.objects.count() == 0
    invoice.refresh_from_db()
    assert invoice.status == "issued"


def test_event_types_move_invoices_and_unknown_types_are_accepted(
    tenant_a, tenant_b, usage, fake_stripe, stripe_on
):
    invoice = issue_one(tenant_a, usage)
    body, sig = stripe_signed(event(invoice, "customer.created", "evt_a"))
    assert post("acme", body, sig).status_code == 200
    assert StripeEvent.objects.get(stripe_event_id="evt_a").result == "ignored: unhandled type"
    body, sig = stripe_signed(event(invoice, "invoice.payment_failed", "evt_b"))
    post("acme", body, sig)
    invoice.refresh_from_db()
    assert invoice.status == "payment_failed"
    body, sig = stripe_signed(event(invoice, "invoice.marked_uncollectible", "evt_c"))
    post("acme", body, sig)
    invoice.refresh_from_db()
    assert invoice.status == "uncollectible"
    body, sig = stripe_signed(event(invoice, "invoice.voided", "evt_d"))
    post("acme", body, sig)
    invoice.refresh_from_db()
    assert invoice.status == "voided" and invoice.number == "ACME-2026-000001"  # voiding keeps the number
    # out of order: paid after void is recorded as ignored, 200 so Stripe stops retrying
    body, sig = stripe_signed(event(invoice, "invoice.paid", "evt_e"))
    assert post("acme", body, sig).status_code == 200
    assert StripeEvent.objects.get(stripe_event_id="evt_e").result.startswith("ignored:")
    invoice.refresh_from_db()
    assert invoice.status == "voided"
