"""Lago charges paid in advance through the real `lago-python-client`: each batch of stored events of such a
charge gets an invoice at once for the increment it adds to the period's running total (a graduated price
worked out by hand), a resent `transaction_id` bills nothing, and the period invoice does not bill those
units again. Organization B has the same codes with events of its own and never sees A's invoices."""

from __future__ import annotations

import pytest
import time_machine

from invoicing.tasks import invoice_clock
from tests.lago.conftest import at, build, unix

pytestmark = pytest.mark.django_db(transaction=True)

GRADUATED = {
    "graduated_ranges": [
        {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "0"},
        {"from_value": 11, "to_value": None, "per_unit_amount": "0.5", "flat_amount": "0"},
    ]
}


def _charge(metric_id: str, model: str, properties: dict, **extra):
    from lago_python_client.models import Charge

    return build(Charge, billable_metric_id=metric_id, charge_model=model, properties=properties, **extra)


def _plan(client, charges: list, code: str = "seats_plan"):
    from lago_python_client.models import Plan
    from lago_python_client.models.charge import Charges

    return client.plans.create(
        build(
            Plan,
            name="Seats",
            code=code,
            interval="monthly",
            amount_cents=0,
            amount_currency="USD",
            charges=build(Charges, __root__=charges),
        )
    )


def _catalog(client) -> tuple[str, str]:
    from lago_python_client.models import BillableMetric, Customer, Subscription

    seats = client.billable_metrics.create(
        build(BillableMetric, name="Seats", code="seats", aggregation_type="sum_agg", field_name="units")
    )
    calls = client.billable_metrics.create(
        build(BillableMetric, name="Calls", code="calls", aggregation_type="count_agg")
    )
    plan = _plan(
        client,
        [
            _charge(seats.lago_id, "graduated", GRADUATED, pay_in_advance=True, invoiceable=True),
            _charge(calls.lago_id, "standard", {"amount": "0.01"}),
        ],
    )
    charges = {c.billable_metric_code: c for c in plan.charges.__root__}
    assert (charges["seats"].pay_in_advance, charges["seats"].properties) == (True, GRADUATED)
    assert charges["calls"].pay_in_advance is False
    client.customers.create(build(Customer, external_id="cust-1", name="Shop", currency="USD"))
    client.subscriptions.create(
        build(
            Subscription,
            external_customer_id="cust-1",
            plan_code="seats_plan",
            external_id="sub-1",
            subscription_at="2026-10-01T00:00:00Z",
        )
    )
    return seats.lago_id, calls.lago_id


def _event(txn: str, code: str, when: str, **properties):
    from lago_python_client.models import Event

    return build(
        Event,
        transaction_id=txn,
        external_subscription_id="sub-1",
        code=code,
        timestamp=unix(when),
        properties=properties,
    )


def _invoices(client) -> list[tuple[int, list[tuple[str, str, int]]]]:
    """Each invoice of cust-1, oldest first: (total, [(fee code, units, amount)])."""
    found = client.invoices.find_all({"external_customer_id": "cust-1", "per_page": 100})["invoices"]
    out = []
    for invoice in sorted(found, key=lambda i: i.issuing_date or ""):
        fees = client.invoices.find(invoice.lago_id).fees.__root__
        out.append((invoice.total_amount_cents, sorted((f.item.code, f.units, f.amount_cents) for f in fees)))
    return out


def test_charge_paid_in_advance_bills_each_increment_once(lago_clients, tenant_a, tenant_b):
    from lago_python_client.models import BatchEvent

    a, b = lago_clients
    with time_machine.travel(at("2026-10-01 00:00"), tick=True):
        seats_id, _ = _catalog(a)
        _catalog(b)
    with time_machine.travel(at("2026-10-05 12:00"), tick=True):
        a.events.create(_event("t-1", "seats", "2026-10-05 10:00", units=4))
        b.events.create(_event("t-1", "seats", "2026-10-05 10:00", units=20))
        # 4 seats x 1.00 = 4.00, invoiced at once
        assert _invoices(a) == [(400, [("seats", "4", 400)])]
        # B: 10 x 1.00 + 10 x 0.50 = 15.00, its own invoice
        assert _invoices(b) == [(1500, [("seats", "20", 1500)])]
    with time_machine.travel(at("2026-10-06 12:00"), tick=True):
        a.events.create(_event("t-2", "seats", "2026-10-06 10:00", units=8))
        # running total 12: 10 x 1.00 + 2 x 0.50 = 11.00, of which 4.00 billed: 7.00 for these 8 seats
        a.events.create(_event("t-2", "seats", "2026-10-06 10:00", units=8))  # resent: nothing more
        a.events.create(_event("c-1", "calls", "2026-10-06 10:00"))  # in arrears: no invoice now
        assert [total for total, _ in _invoices(a)] == [400, 700]
    with time_machine.travel(at("2026-10-07 12:00"), tick=True):
        a.events.batch_create(
            build(
                BatchEvent,
                events=[
                    _event("t-3", "seats", "2026-10-07 10:00", units=3),
                    _event("t-4", "seats", "2026-10-07 11:00", units=1),
                    _event("c-2", "calls", "2026-10-07 10:00"),
                    _event("c-3", "calls", "2026-10-07 10:00"),
                ],
            )
        )
        # running total 16: 10 + 6 x 0.50 = 13.00, of which 11.00 billed: 2.00 for the batch's 4 seats
        assert _invoices(a) == [
            (400, [("seats", "4", 400)]),
            (700, [("seats", "8", 700)]),
            (200, [("seats", "4", 200)]),
        ]
        # current usage: what the period invoice will still bill (the seats are paid): calls 3 x 0.01
        usage = {
            c.billable_metric.code: c for c in a.customers.current_usage("cust-1", "sub-1").charges_usage
        }
        assert (usage["seats"].amount_cents, usage["calls"].amount_cents, usage["calls"].units) == (0, 3, "3")

        # what Lago refuses, and what has no counterpart here, is refused; nothing stored
        from lago_python_client.exceptions import LagoApiError

        volume = {
            "volume_ranges": [{"from_value": 0, "to_value": None, "per_unit_amount": "1", "flat_amount": "0"}]
        }
        for charge, details in (
            (
                _charge(seats_id, "volume", volume, pay_in_advance=True),
                {"charges[0].pay_in_advance": ["invalid_value"]},
            ),
            (
                _charge(seats_id, "standard", {"amount": "1"}, pay_in_advance=True, invoiceable=False),
                {"charges[0].invoiceable": ["not_supported"]},
            ),
            (
                _charge(seats_id, "standard", {"amount": "1"}, pay_in_advance=True, min_amount_cents=100),
                {"charges[0].min_amount_cents": ["invalid_value"]},
            ),
        ):
            with pytest.raises(LagoApiError) as exc:
                _plan(a, [charge], code="other")
            assert (exc.value.status_code, exc.value.response["error_details"]) == (422, details)
        assert [p.code for p in a.plans.find_all()["plans"]] == ["seats_plan"]

    with time_machine.travel(at("2026-11-01 01:00"), tick=True):
        invoice_clock()
        *advance, period = _invoices(a)
        assert [total for total, _ in advance] == [400, 700, 200]
        # the period invoice: the calls (3 x 0.01), and no seat billed again
        assert period == (3, [("calls", "3", 3)])
        # B: its in-advance invoice, then a period invoice with nothing left to bill
        assert [total for total, _ in _invoices(b)] == [1500, 0]


def test_subscribers_of_one_plan_read_its_version_once(lago_clients, tenant_a, tenant_b, monkeypatch):
    """Billing a batch's subjects in advance reads each plan version once, however many subscriptions of it
    the batch touches; a second pass over events already billed issues nothing, for A and never for B."""
    from lago_python_client.models import Customer, Subscription

    from catalog import selectors as catalog_selectors
    from invoicing.models import Invoice
    from lago import advance

    a, b = lago_clients
    with time_machine.travel(at("2026-10-01 00:00"), tick=True):
        _catalog(a)
        _catalog(b)
        a.customers.create(build(Customer, external_id="cust-2", name="Other shop", currency="USD"))
        a.subscriptions.create(
            build(
                Subscription,
                external_customer_id="cust-2",
                plan_code="seats_plan",
                external_id="sub-2",
                subscription_at="2026-10-01T00:00:00Z",
            )
        )
    with time_machine.travel(at("2026-10-05 12:00"), tick=True):
        a.events.create(_event("t-1", "seats", "2026-10-05 10:00", units=4))
        b.events.create(_event("t-1", "seats", "2026-10-05 10:00", units=3))
        issued = Invoice.objects.filter(organization=tenant_a.org).count()
        assert issued == 1
        reads = []
        real = catalog_selectors.plan_version_get

        def counted(**kwargs):
            reads.append(kwargs["plan_key"])
            return real(**kwargs)

        monkeypatch.setattr(advance.catalog_selectors, "plan_version_get", counted)
        assert advance.usage_in_advance_bill(organization=tenant_a.org, subjects=["sub-1", "sub-2"]) == []
        assert len(reads) == 1
        assert Invoice.objects.filter(organization=tenant_a.org).count() == issued
        assert Invoice.objects.filter(organization=tenant_b.org).count() == 1
