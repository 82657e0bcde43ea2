"""Lago's percentage charge with its per-transaction options (`per_transaction_min_amount`/`_max_amount`,
`free_units_per_events`, `free_units_per_total_aggregation`, `fixed_amount`), through the real
`lago-python-client`: current usage, then October billed by our invoice clock. Every amount by hand.
Organization B has the same codes with events of its own and never sees A's."""

from __future__ import annotations

from decimal import Decimal

import pytest
import time_machine

from invoicing.models import Invoice
from invoicing.tasks import invoice_clock
from tests.lago.conftest import at, build, unix

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal

CARD = {  # 2% + 0.30 a transaction, each between 0.50 and 5.00; the first 2 transactions or 150 free
    "rate": "2",
    "fixed_amount": "0.3",
    "free_units_per_events": 2,
    "free_units_per_total_aggregation": "150",
    "per_transaction_min_amount": "0.5",
    "per_transaction_max_amount": "5",
}
TRANSFER = {  # Lago's documented example: 1.2% + 0.10, the first 3 transactions or 500 free
    "rate": "1.2",
    "fixed_amount": "0.1",
    "free_units_per_events": 3,
    "free_units_per_total_aggregation": "500",
}


def _catalog(client) -> None:
    from lago_python_client.models import BillableMetric, Charge, Customer, Plan, Subscription
    from lago_python_client.models.charge import Charges

    metrics = {
        code: client.billable_metrics.create(
            build(BillableMetric, name=code, code=code, aggregation_type="sum_agg", field_name="amount")
        )
        for code in ("card_payments", "transfers")
    }
    plan = client.plans.create(
        build(
            Plan,
            name="Payments",
            code="payments",
            interval="monthly",
            amount_cents=0,
            amount_currency="USD",
            pay_in_advance=False,
            charges=build(
                Charges,
                __root__=[
                    build(
                        Charge,
                        billable_metric_id=metrics["card_payments"].lago_id,
                        charge_model="percentage",
                        properties=CARD,
                    ),
                    build(
                        Charge,
                        billable_metric_id=metrics["transfers"].lago_id,
                        charge_model="percentage",
                        properties=TRANSFER,
                    ),
                ],
            ),
        )
    )
    read = {c.billable_metric_code: c.properties for c in plan.charges.__root__}
    assert read == {"card_payments": CARD, "transfers": TRANSFER}  # read back as written
    client.customers.create(build(Customer, external_id="cust-1", name="Shop", currency="USD"))
    client.subscriptions.create(
        build(
            Subscription,
            external_customer_id="cust-1",
            plan_code="payments",
            external_id="sub-1",
            subscription_at="2026-10-01T00:00:00Z",
        )
    )


def _events(code: str, amounts: list[str], day0: int = 2) -> list:
    from lago_python_client.models import Event

    # sent newest first: the engine orders them by event time
    return [
        build(
            Event,
            transaction_id=f"{code}-{i}",
            external_subscription_id="sub-1",
            code=code,
            timestamp=unix(f"2026-10-{day0 + i:02d} 10:00"),
            properties={"amount": amount},
        )
        for i, amount in reversed(list(enumerate(amounts)))
    ]


def test_percentage_per_transaction_usage_and_invoice(lago_clients, tenant_a, tenant_b):
    from lago_python_client.models import BatchEvent

    a, b = lago_clients
    with time_machine.travel(at("2026-10-01 00:00"), tick=True):
        _catalog(a)
        _catalog(b)
    with time_machine.travel(at("2026-10-20 12:00"), tick=True):
        a.events.batch_create(
            build(
                BatchEvent,
                events=_events("card_payments", ["100", "40", "5", "500", "20", "1000"])
                + _events("transfers", ["200", "100", "100", "50", "1000"]),
            )
        )
        b.events.batch_create(build(BatchEvent, events=_events("card_payments", ["1000"])))
        usage = a.customers.current_usage("cust-1", "sub-1")
        charges = {c.billable_metric.code: c for c in usage.charges_usage}
        # card: 100 and 40 free (2 events, 140 of 150); then 5 -> 0.40 raised to 0.50; 500 -> 10.30
        #   lowered to 5.00; 20 -> 0.70; 1000 -> 20.30 lowered to 5.00: 11.20
        #   (on the period's volume it would be 2% of 1665 + 6 x 0.30 = 35.10)
        assert (charges["card_payments"].units, charges["card_payments"].events_count) == ("1665", 6)
        assert charges["card_payments"].amount_cents == 1120
        # transfers: 200, 100, 100 free (3 events); 50 -> 0.60 + 0.10; 1000 -> 12.00 + 0.10: 12.80
        assert charges["transfers"].amount_cents == 1280
        assert (usage.amount_cents, usage.total_amount_cents) == (2400, 2400)
        # B: 1000 crosses its 150 free: 2% of 850 + 0.30 = 17.30, lowered to 5.00
        other = {
            c.billable_metric.code: c.amount_cents
            for c in b.customers.current_usage("cust-1", "sub-1").charges_usage
        }
        assert other == {"card_payments": 500, "transfers": 0}

    with time_machine.travel(at("2026-11-01 01:00"), tick=True):
        invoice_clock()
        [invoice] = a.invoices.find_all({"external_customer_id": "cust-1"})["invoices"]
        assert (invoice.fees_amount_cents, invoice.total_amount_cents) == (2400, 2400)
        fees = sorted((f.item.code, f.amount_cents) for f in a.invoices.find(invoice.lago_id).fees.__root__)
        assert fees == [("card_payments", 1120), ("transfers", 1280)]
        [b_invoice] = b.invoices.find_all()["invoices"]
        assert b_invoice.total_amount_cents == 500
    assert Invoice.objects.filter(organization=tenant_a.org).count() == 1
    assert Invoice.objects.filter(organization=tenant_b.org).count() == 1
