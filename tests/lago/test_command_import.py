"""`manage.py lago_import`: organization B's objects, exported through the Lago API as a Lago user would
export them from Lago, imported into organization A with the same events, and verified: A's current usage
equals the exported one charge by charge. B is untouched."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command

from billing.models import Customer
from catalog.models import PlanVersion
from invoicing.models import CustomerCredit
from tests.lago.conftest import at, unix

V1 = "/lago/api/v1"


def post(client, path: str, body: dict):
    r = client.post(f"{V1}/{path}", data=json.dumps(body), content_type="application/json")
    assert r.status_code == 200, r.content
    return r.json()


def test_export_import_verify(tenant_a, tenant_b, tmp_path):
    b = tenant_b.client()
    events = [
        {
            "transaction_id": f"r{i}",
            "external_subscription_id": "sub-1",
            "code": "calls",
            "timestamp": unix("2026-10-05 10:00"),
            "properties": {},
        }
        for i in range(25)
    ] + [
        {
            "transaction_id": "g1",
            "external_subscription_id": "sub-1",
            "code": "gb",
            "timestamp": unix("2026-10-06 10:00", ".25"),
            "properties": {"gb": "12.5"},
        },
    ]
    with time_machine.travel(at("2026-10-01 00:00"), tick=False):
        calls = post(
            b,
            "billable_metrics",
            {"billable_metric": {"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}},
        )
        gb = post(
            b,
            "billable_metrics",
            {
                "billable_metric": {
                    "name": "GB",
                    "code": "gb",
                    "aggregation_type": "max_agg",
                    "field_name": "gb",
                }
            },
        )
        graduated = {
            "graduated_ranges": [
                {"from_value": 0, "to_value": 20, "per_unit_amount": "0.1", "flat_amount": "0"},
                {"from_value": 21, "to_value": None, "per_unit_amount": "0.05", "flat_amount": "2"},
            ]
        }
        plan = {
            "name": "Team",
            "code": "team",
            "interval": "monthly",
            "amount_cents": 2500,
            "amount_currency": "USD",
            "pay_in_advance": True,
            "charges": [
                {
                    "billable_metric_id": calls["billable_metric"]["lago_id"],
                    "charge_model": "graduated",
                    "properties": graduated,
                },
                {
                    "billable_metric_id": gb["billable_metric"]["lago_id"],
                    "charge_model": "standard",
                    "properties": {"amount": "0.4"},
                },
            ],
        }
        post(b, "plans", {"plan": plan})
        post(
            b,
            "customers",
            {"customer": {"external_id": "cust-1", "name": "Initech", "currency": "USD", "city": "Austin"}},
        )
        post(
            b,
            "subscriptions",
            {
                "subscription": {
                    "external_customer_id": "cust-1",
                    "plan_code": "team",
                    "external_id": "sub-1",
                    "subscription_at": "2026-08-15T00:00:00Z",  # its current period: Sep 15 - Oct 15
                    "billing_time": "anniversary",
                }
            },
        )
        post(b, "wallets", {"wallet": {"external_customer_id": "cust-1", "granted_credits": "7.5"}})
    with time_machine.travel(at("2026-10-10 00:00"), tick=False):
        post(b, "events/batch", {"events": events})
        # The export: what Lago's list endpoints answer.
        for name in ("billable_metrics", "plans", "customers", "subscriptions"):
            (tmp_path / f"{name}.json").write_text(json.dumps(b.get(f"{V1}/{name}").json()))
        (tmp_path / "wallets.json").write_text(
            json.dumps(b.get(f"{V1}/wallets?external_customer_id=cust-1").json())
        )
        # Events through Lago's GET /events, page by page (newest first), as the recipe exports them.
        first = b.get(f"{V1}/events", {"per_page": 20}).json()
        assert first["meta"] == {
            "current_page": 1,
            "next_page": 2,
            "prev_page": None,
            "total_pages": 2,
            "total_count": 26,
        }
        second = b.get(f"{V1}/events", {"per_page": 20, "page": 2}).json()
        exported = first["events"] + second["events"]
        assert sorted(e["transaction_id"] for e in exported) == sorted(e["transaction_id"] for e in events)
        gb_only = b.get(f"{V1}/events", {"code": "gb", "timestamp_from": "2026-10-06T00:00:00Z"}).json()[
            "events"
        ]
        assert [(e["transaction_id"], e["timestamp"], e["properties"]) for e in gb_only] == [
            ("g1", "2026-10-06T10:00:00Z", {"gb": "12.5"})
        ]
        assert (
            b.get(f"{V1}/events", {"code": "gb", "timestamp_to": "2026-10-06T00:00:00Z"}).json()["events"]
            == []
        )
        assert tenant_a.client().get(f"{V1}/events").json()["events"] == []  # A has none of B's
        (tmp_path / "events.json").write_text(json.dumps(exported))
        usage = b.get(f"{V1}/customers/cust-1/current_usage?external_subscription_id=sub-1").json()[
            "customer_usage"
        ]
        # calls: 25 -> 20 x 0.10 = 2.00 + 5 x 0.05 = 0.25 + flat 2.00 = 4.25; gb: max 12.5 x 0.40 = 5.00.
        assert [
            (c["billable_metric"]["code"], c["units"], c["amount_cents"]) for c in usage["charges_usage"]
        ] == [
            ("calls", "25", 425),
            ("gb", "12.5", 500),
        ]
        (tmp_path / "current_usage.json").write_text(
            json.dumps(
                [
                    {
                        "external_customer_id": "cust-1",
                        "external_subscription_id": "sub-1",
                        "customer_usage": usage,
                    }
                ]
            )
        )
        out = StringIO()
        call_command("lago_import", str(tmp_path), organization=tenant_a.org.slug, verify=True, stdout=out)
        assert out.getvalue().splitlines() == [
            "billable_metrics: 2 imported, 0 skipped",
            "plans: 1 imported, 0 skipped",
            "customers: 1 imported, 0 skipped",
            "subscriptions: 1 imported, 0 skipped",
            "wallets: 1 imported, 0 skipped",
            "events: 26 imported, 0 skipped",
            "sub-1 calls: Lago 25 units 425 cents, here 25 units 425 cents",
            "sub-1 gb: Lago 12.5 units 500 cents, here 12.5 units 500 cents",
            "sub-1 total: Lago 925 cents, here 925 cents",
        ]
        a = tenant_a.client()
        assert a.get(f"{V1}/customers/cust-1").json()["customer"]["city"] == "Austin"
        # Imported from the start of its current period (Lago invoiced the months before), same anniversary.
        sub = a.get(f"{V1}/subscriptions/sub-1").json()["subscription"]
        assert (sub["subscription_at"], sub["billing_time"], sub["current_billing_period_ending_at"]) == (
            "2026-09-15T00:00:00Z",
            "anniversary",
            "2026-10-15T00:00:00Z",
        )
        wallet = a.get(f"{V1}/wallets?external_customer_id=cust-1").json()["wallets"]
        assert [w["balance_cents"] for w in wallet] == [750]
        # Lago invoiced the Sep 15 - Oct 15 base fee (25.00, in advance) at Sep 15: recorded as billed there,
        # so our run does not bill it again (the next fee is due Oct 15)
        from invoicing.models import Invoice

        (external,) = Invoice.objects.filter(organization=tenant_a.org, kind="external")
        assert (external.status, external.number, external.total) == ("paid", "", Decimal("25.00"))
        from invoicing.runs import invoice_run_item_process, invoice_runs_schedule

        for item_id in invoice_runs_schedule(now=at("2026-10-10 00:00"), organization=tenant_a.org):
            assert invoice_run_item_process(item_id=item_id, now=at("2026-10-10 00:00")) is None

        # Run again: everything exists (skipped), events deduplicated; a wrong total fails the verification.
        usage["charges_usage"][0]["amount_cents"] = 426
        (tmp_path / "current_usage.json").write_text(
            json.dumps(
                [
                    {
                        "external_customer_id": "cust-1",
                        "external_subscription_id": "sub-1",
                        "customer_usage": usage,
                    }
                ]
            )
        )
        again = StringIO()
        with pytest.raises(CommandError, match="1 usage total"):
            call_command(
                "lago_import",
                str(tmp_path),
                organization=tenant_a.org.slug,
                verify=True,
                stdout=again,
                stderr=StringIO(),
            )
        assert again.getvalue().splitlines()[:6] == [
            "billable_metrics: 0 imported, 2 skipped",
            "plans: 0 imported, 1 skipped",
            "customers: 0 imported, 1 skipped",
            "subscriptions: 1 imported, 0 skipped",  # the same plan for the same id: answered unchanged
            "wallets: 0 imported, 1 skipped",
            "events: 26 imported, 0 skipped",  # accepted again, stored once (deduplicated)
        ]
        assert (
            "sub-1 calls: Lago 25 units 426 cents, here 25 units 425 cents  <-- differs" in again.getvalue()
        )
    assert PlanVersion.objects.filter(organization=tenant_b.org).count() == 1
    assert Customer.objects.filter(organization=tenant_b.org).count() == 1
    assert CustomerCredit.objects.filter(organization=tenant_b.org).count() == 1
    assert CustomerCredit.objects.filter(organization=tenant_a.org).count() == 1
