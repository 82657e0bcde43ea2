"""Plan updates, upgrades, downgrades, termination, drafts finalized, wallet top-ups and termination, customer
deletion: through the real `lago-python-client` against the live server. Organization B runs the same story
keys with its own amounts and never sees A's objects."""

from __future__ import annotations

from decimal import Decimal

import pytest
import time_machine

from invoicing.services import invoicing_settings_update
from invoicing.tasks import invoice_clock
from tests.lago.conftest import at, build

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal


def _plans(client, fees: dict[str, int]) -> None:
    from lago_python_client.models import BillableMetric, Charge, Plan
    from lago_python_client.models.charge import Charges

    metric = client.billable_metrics.create(
        build(BillableMetric, name="Calls", code="calls", aggregation_type="count_agg")
    )
    for code, cents in fees.items():
        client.plans.create(
            build(
                Plan,
                name=code.title(),
                code=code,
                interval="monthly",
                amount_cents=cents,
                amount_currency="USD",
                pay_in_advance=True,
                charges=build(
                    Charges,
                    __root__=[
                        build(
                            Charge,
                            billable_metric_id=metric.lago_id,
                            charge_model="standard",
                            properties={"amount": "0.10"},
                        )
                    ],
                ),
            )
        )


def _subscribe(client, customer: str, plan: str, sub: str) -> None:
    from lago_python_client.models import Customer, Subscription

    client.customers.create(build(Customer, external_id=customer, name=customer.title(), currency="USD"))
    client.subscriptions.create(
        build(
            Subscription,
            external_customer_id=customer,
            plan_code=plan,
            external_id=sub,
            subscription_at="2026-10-01T00:00:00Z",
        )
    )


def test_plan_changes_termination_and_drafts(lago_clients, tenant_a, tenant_b):
    from lago_python_client.exceptions import LagoApiError
    from lago_python_client.models import Customer, Plan, Subscription

    a, b = lago_clients
    invoicing_settings_update(organization=tenant_a.org, auto_advance=False)  # A's invoices wait as drafts
    with time_machine.travel(at("2026-10-01 00:00"), tick=True):
        _plans(a, {"basic": 3100, "pro": 6200, "mini": 1550})
        _plans(b, {"basic": 100, "pro": 200, "mini": 50})
        _subscribe(a, "cust-1", "basic", "sub-1")
        _subscribe(a, "cust-2", "pro", "sub-2")
        _subscribe(b, "cust-1", "basic", "sub-1")

    with time_machine.travel(at("2026-10-01 00:05"), tick=True):
        invoice_clock()
        drafts = a.invoices.find_all({"status": "draft"})["invoices"]
        # The start invoices: October's fees in advance, 31.00 (basic) and 62.00 (pro), not numbered yet.
        assert sorted((i.total_amount_cents, i.status, i.number) for i in drafts) == [
            (3100, "draft", ""),
            (6200, "draft", ""),
        ]
        assert a.invoices.find_all({"status": "finalized"})["invoices"] == []
        start = {i.customer.external_id: i for i in drafts}
        refreshed = a.invoices.refresh(start["cust-1"].lago_id)
        assert (refreshed.lago_id, refreshed.status) == (start["cust-1"].lago_id, "draft")
        final = a.invoices.finalize(start["cust-1"].lago_id)
        assert final.status == "finalized" and final.number.startswith("ACME-2026-")
        assert final.total_amount_cents == 3100
        assert [i.lago_id for i in a.invoices.find_all({"status": "finalized"})["invoices"]] == [
            final.lago_id
        ]
        # cust-2's start invoice voided: it no longer counts as billed (its next invoice bills October again).
        voided = a.invoices.void(start["cust-2"].lago_id)
        assert (voided.status, voided.voided_at is not None, voided.total_amount_cents) == (
            "voided",
            True,
            6200,
        )
        with pytest.raises(LagoApiError) as exc:
            a.invoices.void(start["cust-2"].lago_id)
        assert exc.value.response["error_details"] == {"invoice": ["not_voidable"]}
        assert [i.lago_id for i in a.invoices.find_all({"status": "voided"})["invoices"]] == [voided.lago_id]
        # B's invoices are B's own (issued at once: B kept auto-advance): 1.00.
        assert [(i.total_amount_cents, i.status) for i in b.invoices.find_all()["invoices"]] == [
            (100, "finalized")
        ]

    with time_machine.travel(at("2026-10-16 00:00"), tick=True):
        # An upgrade (62.00 > 31.00) applies now.
        upgraded = a.subscriptions.create(
            build(Subscription, external_customer_id="cust-1", plan_code="pro", external_id="sub-1")
        )
        assert (upgraded.plan_code, upgraded.previous_plan_code, upgraded.status) == (
            "pro",
            "basic",
            "active",
        )
        assert upgraded.subscription_at == "2026-10-16T00:00:00Z"
        # A downgrade (15.50 < 62.00) waits for the end of the period.
        kept = a.subscriptions.create(
            build(Subscription, external_customer_id="cust-2", plan_code="mini", external_id="sub-2")
        )
        assert (kept.plan_code, kept.next_plan_code, kept.downgrade_plan_date) == (
            "pro",
            "mini",
            "2026-11-01T00:00:00Z",
        )
        assert a.subscriptions.find("sub-2").next_plan_code == "mini"
        # The plan's next version: new subscriptions pay 35.00; running ones keep their version.
        updated = a.plans.update(build(Plan, name="Basic", amount_cents=3500), "basic")
        assert (updated.code, updated.amount_cents, len(updated.charges.__root__)) == ("basic", 3500, 1)
        assert b.plans.find("basic").amount_cents == 100

    with time_machine.travel(at("2026-10-16 01:05"), tick=True):
        invoice_clock()
        # The upgrade's invoice: basic's unused half month back, 31 x 16/31 = -16.00 (15 of 31 days used,
        # 31.00 billed), pro from Oct 16 to Nov 1, 62 x 16/31 = +32.00: 16.00 in all.
        new = a.invoices.find_all({"status": "draft", "external_customer_id": "cust-1"})["invoices"]
        assert sum(i.total_amount_cents for i in new) == 1600

    with time_machine.travel(at("2026-10-20 00:00"), tick=True):
        ended = a.subscriptions.destroy("sub-1")
        assert (ended.status, ended.terminated_at, ended.plan_code) == (
            "terminated",
            "2026-10-20T00:00:00Z",
            "pro",
        )
        with pytest.raises(LagoApiError) as exc:
            a.subscriptions.destroy("sub-1")
        assert exc.value.status_code == 422
        assert exc.value.response["error_details"] == {"subscription": ["not_active"]}
        with pytest.raises(LagoApiError) as exc:
            a.subscriptions.destroy("sub-2")  # a scheduled downgrade blocks it
        assert exc.value.response["error_details"] == {"subscription": ["pending_plan_change"]}
        active = a.subscriptions.find_all({"status[]": "active"})["subscriptions"]
        assert [(s.external_id, s.plan_code) for s in active] == [("sub-2", "pro")]
        terminated = a.subscriptions.find_all({"status[]": "terminated"})["subscriptions"]
        assert [(s.external_id, s.plan_code) for s in terminated] == [("sub-1", "pro")]
        # B's sub-1 runs on.
        assert [(s.external_id, s.status) for s in b.subscriptions.find_all()["subscriptions"]] == [
            ("sub-1", "active")
        ]

        # A subscription with an end date, then moved earlier (our cancel at that instant).
        a.customers.create(build(Customer, external_id="cust-3", currency="USD"))
        ending = a.subscriptions.create(
            build(
                Subscription,
                external_customer_id="cust-3",
                plan_code="basic",
                external_id="sub-3",
                ending_at="2026-12-01T00:00:00Z",
            )
        )
        assert (ending.status, ending.ending_at, ending.plan_code) == (
            "active",
            "2026-12-01T00:00:00Z",
            "basic",
        )
        moved = a.subscriptions.update(build(Subscription, ending_at="2026-11-15T00:00:00Z"), "sub-3")
        assert (moved.status, moved.ending_at) == ("active", "2026-11-15T00:00:00Z")
        with pytest.raises(LagoApiError) as exc:
            a.subscriptions.update(build(Subscription, ending_at="2026-10-01T00:00:00Z"), "sub-3")
        assert exc.value.response["error_details"] == {"ending_at": ["invalid_date"]}
        assert a.subscriptions.find("sub-3").ending_at == "2026-11-15T00:00:00Z"


def test_wallet_top_ups_and_termination(lago_clients):
    from lago_python_client.models import Customer, Wallet, WalletTransaction

    a, b = lago_clients
    with time_machine.travel(at("2026-10-01 00:00"), tick=True):
        a.customers.create(build(Customer, external_id="cust-1", name="Acme", currency="EUR"))
        b.customers.create(build(Customer, external_id="cust-1", name="Other", currency="EUR"))
        b.wallets.create(build(Wallet, external_customer_id="cust-1", granted_credits="999"))
        assert a.wallets.find_all({"external_customer_id": "cust-1"})["wallets"] == []
        wallet = a.wallets.create(
            build(
                Wallet,
                external_customer_id="cust-1",
                paid_credits="10.50",
                granted_credits="5",
                currency="EUR",
            )
        )
        assert (wallet.currency, wallet.balance_cents, wallet.credits_balance) == ("EUR", 1550, "15.5")
        moves = a.wallet_transactions.create(
            build(WalletTransaction, wallet_id=wallet.lago_id, granted_credits="2.25")
        )
        assert [
            (t.transaction_type, t.transaction_status, t.amount) for t in moves["wallet_transactions"]
        ] == [("inbound", "granted", "2.25")]
        assert a.wallets.find(wallet.lago_id).balance_cents == 1775  # 10.50 + 5 + 2.25
        listed = a.wallet_transactions.find_all(wallet.lago_id)["wallet_transactions"]
        assert sorted((t.transaction_status, t.amount) for t in listed) == [
            ("granted", "2.25"),
            ("granted", "5"),
            ("purchased", "10.5"),
        ]
        done = a.wallets.destroy(wallet.lago_id)
        assert (done.status, done.balance_cents) == ("terminated", 0)
        assert b.wallets.find_all({"external_customer_id": "cust-1"})["wallets"][0].balance_cents == 99900

        # A customer goes away; B's namesake stays.
        gone = a.customers.destroy("cust-1")
        assert gone.external_id == "cust-1"
        assert a.customers.find_all()["customers"] == []
        assert [c.name for c in b.customers.find_all()["customers"]] == ["Other"]
