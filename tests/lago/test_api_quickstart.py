"""Lago's quick-start through the real `lago-python-client` against the live server: a billable metric, a
plan with a graduated and a package charge, a customer, a subscription, single and batch events (with a
resent `transaction_id`), the current usage worked out by hand, a wallet with granted credits, the period
billed by our invoice clock and the invoice downloaded. The same usage through the OpenMeter SDK gives the
same totals. Organization B has the same codes and ids with data of its own and never sees A's."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import time_machine

from invoicing.models import Invoice
from invoicing.tasks import invoice_clock
from tests.lago.conftest import at, build, unix

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal

GRADUATED = {
    "graduated_ranges": [
        {"from_value": 0, "to_value": 10, "per_unit_amount": "0", "flat_amount": "0"},
        {"from_value": 11, "to_value": 100, "per_unit_amount": "0.5", "flat_amount": "1"},
        {"from_value": 101, "to_value": None, "per_unit_amount": "0.25", "flat_amount": "0"},
    ]
}
PACKAGE = {"amount": "2", "package_size": 1000, "free_units": 500}


def _catalog(client, *, fee_cents: int = 4900) -> None:
    """Lago's quick-start objects: two metrics, a monthly plan, customer `cust-1` on it as `sub-1`."""
    from lago_python_client.models import BillableMetric, Charge, Customer, Plan, Subscription
    from lago_python_client.models.charge import Charges

    requests = client.billable_metrics.create(
        build(BillableMetric, name="API requests", code="api_requests", aggregation_type="count_agg")
    )
    tokens = client.billable_metrics.create(
        build(BillableMetric, name="Tokens", code="tokens", aggregation_type="sum_agg", field_name="tokens")
    )
    assert (requests.code, requests.aggregation_type, requests.field_name) == (
        "api_requests",
        "count_agg",
        None,
    )
    assert (tokens.code, tokens.aggregation_type, tokens.field_name) == ("tokens", "sum_agg", "tokens")
    plan = client.plans.create(
        build(
            Plan,
            name="Startup",
            code="startup",
            interval="monthly",
            amount_cents=fee_cents,
            amount_currency="USD",
            pay_in_advance=True,
            charges=build(
                Charges,
                __root__=[
                    build(
                        Charge,
                        billable_metric_id=requests.lago_id,
                        charge_model="graduated",
                        properties=GRADUATED,
                    ),
                    build(
                        Charge, billable_metric_id=tokens.lago_id, charge_model="package", properties=PACKAGE
                    ),
                ],
            ),
        )
    )
    assert (plan.code, plan.interval, plan.amount_cents, plan.amount_currency) == (
        "startup",
        "monthly",
        fee_cents,
        "USD",
    )
    charges = {c.billable_metric_code: c for c in plan.charges.__root__}
    assert charges["api_requests"].charge_model == "graduated"
    assert charges["api_requests"].properties == GRADUATED  # read back exactly as written
    assert charges["tokens"].charge_model == "package"
    assert charges["tokens"].properties == PACKAGE
    customer = client.customers.create(
        build(
            Customer,
            external_id="cust-1",
            name="Acme Corp",
            currency="USD",
            email="billing@acme.test",
            country="FR",
        )
    )
    assert (customer.external_id, customer.currency, customer.country) == ("cust-1", "USD", "FR")
    sub = client.subscriptions.create(
        build(
            Subscription,
            external_customer_id="cust-1",
            plan_code="startup",
            external_id="sub-1",
            subscription_at="2026-10-01T00:00:00Z",
            billing_time="calendar",
        )
    )
    assert (sub.external_id, sub.plan_code, sub.status, sub.billing_time) == (
        "sub-1",
        "startup",
        "active",
        "calendar",
    )
    assert (sub.current_billing_period_started_at, sub.current_billing_period_ending_at) == (
        "2026-10-01T00:00:00Z",
        "2026-11-01T00:00:00Z",
    )


def _event(txn: str, code: str, when: str, **properties):
    from lago_python_client.models import Event

    return build(
        Event,
        transaction_id=txn,
        external_subscription_id="sub-1",
        code=code,
        timestamp=unix(when, ".5"),
        properties=properties,
    )


def test_quickstart_through_the_lago_client(
    lago_clients, live_server, tenant_a, tenant_b, tmp_path, monkeypatch
):
    from lago_python_client.models import BatchEvent, Wallet

    a, b = lago_clients
    with time_machine.travel(at("2026-10-01 00:00"), tick=True):
        _catalog(a)
        _catalog(b, fee_cents=9900)  # B: same codes and ids, another fee
    with time_machine.travel(at("2026-10-01 00:05"), tick=True):
        invoice_clock()  # the start invoice: October's fee in advance

    with time_machine.travel(at("2026-10-10 12:00"), tick=True):
        single = a.events.create(_event("req-1", "api_requests", "2026-10-02 09:00"))
        assert (single.transaction_id, single.code, single.external_subscription_id) == (
            "req-1",
            "api_requests",
            "sub-1",
        )
        assert single.timestamp == "2026-10-02T09:00:00Z"
        batch = [_event(f"req-{i}", "api_requests", "2026-10-05 10:00") for i in range(2, 16)]
        batch.append(_event("req-1", "api_requests", "2026-10-02 09:00"))  # resent: counted once
        batch += [
            _event("tok-1", "tokens", "2026-10-03 08:00", tokens="1200"),  # Lago sends numbers as strings too
            _event("tok-2", "tokens", "2026-10-04 08:00", tokens=800),
            _event("tok-3", "tokens", "2026-10-09 08:00", tokens=1500),
        ]
        a.events.batch_create(build(BatchEvent, events=batch))
        a.events.create(_event("req-1", "api_requests", "2026-10-02 09:00"))  # resent alone: still once
        # B: the same transaction ids with usage of its own (40 requests, 10,000 tokens).
        b.events.batch_create(
            build(
                BatchEvent,
                events=[_event(f"req-{i}", "api_requests", "2026-10-05 10:00") for i in range(1, 41)]
                + [_event("tok-1", "tokens", "2026-10-03 08:00", tokens=10000)],
            )
        )
        found = a.events.find("tok-1")
        assert (found.code, found.properties, found.timestamp) == (
            "tokens",
            {"tokens": "1200"},
            "2026-10-03T08:00:00Z",
        )

    with time_machine.travel(at("2026-10-20 12:00"), tick=True):
        usage = a.customers.current_usage("cust-1", "sub-1")
        # api_requests: 15 distinct transactions (req-1 sent three times). Graduated: 10 free units,
        #   then 5 x 0.50 = 2.50 + the tier's flat 1.00 = 3.50.
        # tokens: 1200 + 800 + 1500 = 3500; 500 free -> 3000 -> 3 packages of 1000 x 2.00 = 6.00.
        charges = {c.billable_metric.code: c for c in usage.charges_usage}
        assert (charges["api_requests"].units, charges["api_requests"].events_count) == ("15", 15)
        assert charges["api_requests"].amount_cents == 350
        assert charges["api_requests"].charge.charge_model == "graduated"
        assert (charges["tokens"].units, charges["tokens"].events_count) == ("3500", 3)
        assert charges["tokens"].amount_cents == 600
        assert (usage.amount_cents, usage.taxes_amount_cents, usage.total_amount_cents) == (950, 0, 950)
        assert (usage.from_datetime, usage.to_datetime, usage.currency) == (
            "2026-10-01T00:00:00Z",
            "2026-11-01T00:00:00Z",
            "USD",
        )
        # B: 40 requests -> 10 free + 30 x 0.50 + 1.00 = 16.00; 10,000 tokens -> 9,500 -> 10 packages = 20.00.
        other = {
            c.billable_metric.code: c.amount_cents
            for c in b.customers.current_usage("cust-1", "sub-1").charges_usage
        }
        assert other == {"api_requests": 1600, "tokens": 2000}

        wallet = a.wallets.create(
            build(Wallet, external_customer_id="cust-1", rate_amount="1", granted_credits="20.00")
        )
        assert (wallet.balance_cents, wallet.credits_balance, wallet.status) == (2000, "20", "active")
        # Lago's ongoing balance: 20.00 less the usage so far (9.50) = 10.50.
        assert (wallet.ongoing_usage_balance_cents, wallet.ongoing_balance_cents) == (950, 1050)

    with time_machine.travel(at("2026-11-01 01:00"), tick=True):
        invoice_clock()  # October closed (after the 1 h collection delay)
        invoices = a.invoices.find_all({"external_customer_id": "cust-1"})["invoices"]
        # Newest first: Nov 1 (October's usage 9.50 + November's fee 49.00 = 58.50, less the 20.00 credit),
        # then the start invoice of Oct 1 (October's fee, 49.00).
        assert [
            (i.fees_amount_cents, i.prepaid_credit_amount_cents, i.total_amount_cents) for i in invoices
        ] == [
            (5850, 2000, 3850),
            (4900, 0, 4900),
        ]
        assert {i.status for i in invoices} == {"finalized"}
        period = a.invoices.find(invoices[0].lago_id)
        fees = sorted((f.item.type, f.item.code, f.amount_cents) for f in period.fees.__root__)
        assert fees == [
            ("charge", "api_requests", 350),
            ("charge", "tokens", 600),
            ("subscription", "subscription_fee", 4900),
        ]
        downloaded = a.invoices.download(period.lago_id)
        pdf = httpx.get(downloaded.file_url)  # the signed link needs no key
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert httpx.get(downloaded.file_url[:-4] + "AAAA").status_code == 404  # a forged link
        spent = a.wallets.find(wallet.lago_id)
        assert (spent.balance_cents, spent.consumed_credits) == (0, "20")
        moves = a.wallet_transactions.find_all(wallet.lago_id)["wallet_transactions"]
        assert [(t.transaction_type, t.transaction_status, t.amount) for t in moves] == [
            ("inbound", "granted", "20"),
            ("outbound", "invoiced", "20"),
        ]

        # B's invoices hold B's amounts only: 99.00 at the start, then 36.00 of usage + 99.00.
        b_invoices = b.invoices.find_all()["invoices"]
        assert [i.total_amount_cents for i in b_invoices] == [13500, 9900]
        assert {i.lago_id for i in b_invoices}.isdisjoint({i.lago_id for i in invoices})
        assert Invoice.objects.filter(organization=tenant_b.org).count() == 2

    # The same usage through the OpenMeter SDK (subject = the Lago subscription's external id).
    monkeypatch.chdir(tmp_path)
    import openmeter

    om = openmeter.Client(endpoint=live_server.url, token=tenant_a.keys["admin"])
    window = {"from_parameter": at("2026-10-01"), "to": at("2026-11-01")}
    requests = om.meters.query_json("api_requests", subject=["sub-1"], **window)
    tokens = om.meters.query_json("tokens", subject=["sub-1"], **window)
    assert [r.value for r in requests.data] == [15.0]
    assert [r.value for r in tokens.data] == [3500.0]
    om.close()


def test_other_organization_sees_nothing(lago_clients):
    from lago_python_client.exceptions import LagoApiError

    a, b = lago_clients
    with time_machine.travel(at("2026-10-01 00:00"), tick=True):
        _catalog(a)
    assert b.customers.find_all()["customers"] == []
    assert b.plans.find_all()["plans"] == []
    assert b.billable_metrics.find_all()["billable_metrics"] == []
    assert b.subscriptions.find_all()["subscriptions"] == []
    for call in (
        lambda: b.customers.find("cust-1"),
        lambda: b.plans.find("startup"),
        lambda: b.billable_metrics.find("tokens"),
        lambda: b.subscriptions.find("sub-1"),
        lambda: b.customers.current_usage("cust-1", "sub-1"),
    ):
        with pytest.raises(LagoApiError) as exc:
            call()
        assert exc.value.status_code == 404
    assert [c.external_id for c in a.customers.find_all()["customers"]] == ["cust-1"]
