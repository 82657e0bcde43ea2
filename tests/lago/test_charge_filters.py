"""Lago charge `filters` through the real `lago-python-client`: a charge whose events are priced by the
filter they match (each filter its own rate card on a filtered feature), current usage with one entry per
filter, the plan read back with its filters, the invoice with one fee per filter. Amounts by hand.
Organization B has the same codes with events of its own and never sees A's."""

from __future__ import annotations

import pytest
import time_machine

from invoicing.tasks import invoice_clock
from tests.lago.conftest import at, build, unix

pytestmark = pytest.mark.django_db(transaction=True)

CARDS = {"invoice_display_name": "Cards", "properties": {"amount": "0.02"}, "values": {"method": ["card"]}}
SEPA = {"invoice_display_name": None, "properties": {"amount": "0.01"}, "values": {"method": ["sepa"]}}


def _plan(
    client, metric_id: str, filters: list[dict], properties: dict | None = None, code: str = "payments"
):
    from lago_python_client.models import Charge, Plan
    from lago_python_client.models.charge import ChargeFilter, ChargeFilters, Charges

    return client.plans.create(
        build(
            Plan,
            name="Payments",
            code=code,
            interval="monthly",
            amount_cents=0,
            amount_currency="USD",
            charges=build(
                Charges,
                __root__=[
                    build(
                        Charge,
                        billable_metric_id=metric_id,
                        charge_model="standard",
                        properties=properties or {"amount": "0"},
                        filters=build(ChargeFilters, __root__=[build(ChargeFilter, **f) for f in filters]),
                    )
                ],
            ),
        )
    )


def _metric(client, code: str = "payments", aggregation: str = "sum_agg", countries: bool = False):
    from lago_python_client.models import BillableMetric
    from lago_python_client.models.billable_metric import BillableMetricFilter, BillableMetricFilters

    keys = [build(BillableMetricFilter, key="method", values=["card", "sepa", "wire"])]
    if countries:
        keys.append(build(BillableMetricFilter, key="country", values=["FR", "DE", "US"]))
    return client.billable_metrics.create(
        build(
            BillableMetric,
            name=code.title(),
            code=code,
            aggregation_type=aggregation,
            field_name="amount",
            filters=build(BillableMetricFilters, __root__=keys),
        )
    )


def _subscribe(client, plan_code: str = "payments") -> None:
    from lago_python_client.models import Customer, Subscription

    client.customers.create(build(Customer, external_id="cust-1", name="Shop", currency="USD"))
    client.subscriptions.create(
        build(
            Subscription,
            external_customer_id="cust-1",
            plan_code=plan_code,
            external_id="sub-1",
            subscription_at="2026-10-01T00:00:00Z",
        )
    )


def _catalog(client) -> str:
    metric = _metric(client)
    plan = _plan(client, metric.lago_id, [CARDS, SEPA])
    [charge] = plan.charges.__root__
    assert (charge.billable_metric_code, charge.charge_model, charge.properties) == (
        "payments",
        "standard",
        {"amount": "0"},
    )
    assert [(f.invoice_display_name, f.properties, f.values) for f in charge.filters.__root__] == [
        ("Cards", {"amount": "0.02"}, {"method": ["card"]}),
        (None, {"amount": "0.01"}, {"method": ["sepa"]}),
    ]
    _subscribe(client)
    return metric.lago_id


def _events(rows: list[tuple], extra: str = ""):
    from lago_python_client.models import BatchEvent, Event

    return build(
        BatchEvent,
        events=[
            build(
                Event,
                transaction_id=f"t-{extra}{i}",
                external_subscription_id="sub-1",
                code="payments",
                timestamp=unix(f"2026-10-{i + 2:02d} 10:00"),
                properties={
                    "amount": row[0],
                    **({"method": row[1]} if row[1] else {}),
                    **({"country": row[2]} if len(row) > 2 and row[2] else {}),
                },
            )
            for i, row in enumerate(rows)
        ],
    )


def test_filters_price_each_filter_on_its_own(lago_clients, tenant_a, tenant_b):
    a, b = lago_clients
    with time_machine.travel(at("2026-10-01 00:00"), tick=True):
        metric_id = _catalog(a)
        _catalog(b)
        # the metric list shows the metric, not the filters' features
        assert [m.code for m in a.billable_metrics.find_all()["billable_metrics"]] == ["payments"]
    with time_machine.travel(at("2026-10-20 12:00"), tick=True):
        a.events.batch_create(
            _events([("100", "card"), ("50", "card"), ("200", "sepa"), ("1000", "wire"), ("10", None)])
        )
        b.events.batch_create(_events([("1000", "card")]))
        [usage] = a.customers.current_usage("cust-1", "sub-1").charges_usage
        # cards: 150 x 0.02 = 3.00; sepa: 200 x 0.01 = 2.00; wire and no method match no filter: free
        assert (usage.units, usage.events_count, usage.amount_cents) == ("350", 3, 500)
        assert usage.billable_metric.code == "payments" and usage.charge.charge_model == "standard"
        assert [
            (f.invoice_display_name, f.values, f.units, f.events_count, f.amount_cents) for f in usage.filters
        ] == [
            ("Cards", {"method": ["card"]}, "150", 2, 300),
            (None, {"method": ["sepa"]}, "200", 1, 200),
        ]
        [b_usage] = b.customers.current_usage("cust-1", "sub-1").charges_usage
        assert [(f.units, f.amount_cents) for f in b_usage.filters] == [("1000", 2000), ("0", 0)]

        # what does not map is refused, nothing stored: overlapping filters, a key that is not one of the
        # metric's filters
        from lago_python_client.exceptions import LagoApiError

        for filters, props, details in (
            (
                [CARDS, {**SEPA, "values": {"method": ["sepa", "card"]}}],
                None,
                {"charges[0].filters[1].values": ["not_supported"]},
            ),
            (
                [CARDS, {**SEPA, "values": {"method": ["card"]}}],
                None,
                {"charges[0].filters[1].values": ["value_already_exist"]},
            ),
            (
                [{**CARDS, "values": {"country": ["FR"]}}],
                None,
                {"charges[0].filters[0].values.country": ["invalid_key"]},
            ),
        ):
            with pytest.raises(LagoApiError) as exc:
                _plan(a, metric_id, filters, props, code="other")
            assert (exc.value.status_code, exc.value.response["error_details"]) == (422, details)
        assert [p.code for p in a.plans.find_all()["plans"]] == ["payments"]

    with time_machine.travel(at("2026-11-01 01:00"), tick=True):
        invoice_clock()
        [invoice] = a.invoices.find_all({"external_customer_id": "cust-1"})["invoices"]
        assert invoice.total_amount_cents == 500
        fees = a.invoices.find(invoice.lago_id).fees.__root__
        assert sorted((f.item.code, f.item.filter_invoice_display_name, f.amount_cents) for f in fees) == [
            ("payments", "Cards", 300),
            ("payments", "payments (method: sepa)", 200),
        ]
        [b_invoice] = b.invoices.find_all()["invoices"]
        assert b_invoice.total_amount_cents == 2000


EU_CARDS = {
    "invoice_display_name": "Cards EU",
    "properties": {"amount": "0.02"},
    "values": {"method": ["card"], "country": ["FR", "DE"]},
}
BANK = {
    "invoice_display_name": None,
    "properties": {"amount": "0.01"},
    "values": {"method": ["sepa", "wire"]},
}


def test_several_values_several_keys_and_a_priced_default(lago_clients, tenant_a, tenant_b):
    """A filter matches an event whose property is any of its values, for every one of its properties;
    the events that match no filter are priced with the charge's own properties."""
    a, b = lago_clients
    with time_machine.travel(at("2026-10-01 00:00"), tick=True):
        for client in (a, b):
            metric = _metric(client, countries=True)
            plan = _plan(client, metric.lago_id, [EU_CARDS, BANK], {"amount": "0.05"})
            _subscribe(client)
        [charge] = plan.charges.__root__
        # the plan reads back as sent: the default properties, each filter with its values
        assert charge.properties == {"amount": "0.05"}
        assert [(f.invoice_display_name, f.properties, f.values) for f in charge.filters.__root__] == [
            ("Cards EU", {"amount": "0.02"}, {"country": ["FR", "DE"], "method": ["card"]}),
            (None, {"amount": "0.01"}, {"method": ["sepa", "wire"]}),
        ]
        # the metric list shows the metric only
        assert [m.code for m in a.billable_metrics.find_all()["billable_metrics"]] == ["payments"]
    with time_machine.travel(at("2026-10-20 12:00"), tick=True):
        a.events.batch_create(
            _events(
                [
                    ("100", "card", "FR"),  # Cards EU
                    ("50", "card", "DE"),  # Cards EU
                    ("300", "card", "US"),  # a card outside the EU: no filter
                    ("200", "sepa", "FR"),  # Bank
                    ("1000", "wire", None),  # Bank (the filter names no country)
                    ("10", None, "FR"),  # no method: no filter
                    ("40", "card", None),  # a card without a country: no filter
                ]
            )
        )
        b.events.batch_create(_events([("1000", "card", "FR"), ("7", "wire", "US")], extra="b"))
        [usage] = a.customers.current_usage("cust-1", "sub-1").charges_usage
        # Cards EU: 150 x 0.02 = 3.00; Bank: 1200 x 0.01 = 12.00; no filter: 350 x 0.05 = 17.50; 32.50
        assert (usage.units, usage.events_count, usage.amount_cents) == ("1700", 7, 3250)
        assert [
            (f.invoice_display_name, f.values, f.units, f.events_count, f.amount_cents) for f in usage.filters
        ] == [
            ("Cards EU", {"country": ["FR", "DE"], "method": ["card"]}, "150", 2, 300),
            (None, {"method": ["sepa", "wire"]}, "1200", 2, 1200),
            (None, {}, "350", 3, 1750),
        ]
        [b_usage] = b.customers.current_usage("cust-1", "sub-1").charges_usage
        # B: 1000 x 0.02 = 20.00; 7 x 0.01 = 0.07
        assert [(f.units, f.amount_cents) for f in b_usage.filters] == [("1000", 2000), ("7", 7), ("0", 0)]

        # a priced default needs usage that adds up (the rest of the meter); nothing stored
        from lago_python_client.exceptions import LagoApiError

        peak = _metric(a, code="peak", aggregation="max_agg")
        with pytest.raises(LagoApiError) as exc:
            _plan(a, peak.lago_id, [CARDS], {"amount": "0.5"}, code="peak_plan")
        assert (exc.value.status_code, exc.value.response["error_details"]) == (
            422,
            {"charges[0].properties": ["not_supported"]},
        )
        assert [p.code for p in a.plans.find_all()["plans"]] == ["payments"]

    with time_machine.travel(at("2026-11-01 01:00"), tick=True):
        invoice_clock()
        [invoice] = a.invoices.find_all({"external_customer_id": "cust-1"})["invoices"]
        assert invoice.total_amount_cents == 3250
        fees = a.invoices.find(invoice.lago_id).fees.__root__
        assert sorted(
            (f.item.code, f.item.filter_invoice_display_name or "", f.units, f.amount_cents) for f in fees
        ) == [
            ("payments", "", "350", 1750),  # the default: no filter
            ("payments", "Cards EU", "150", 300),
            ("payments", "payments (method: sepa, wire)", "1200", 1200),
        ]
        [b_invoice] = b.invoices.find_all()["invoices"]
        assert b_invoice.total_amount_cents == 2007
