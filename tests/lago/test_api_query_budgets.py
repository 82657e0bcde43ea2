"""Lists on the Lago path cost the same number of queries whatever the number of rows; B's rows (as many
again) change nothing for A."""

from __future__ import annotations

import json

import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from invoicing.tasks import invoice_clock
from tests.lago.conftest import at

V1 = "/lago/api/v1"
LISTS = ("billable_metrics", "plans", "customers", "subscriptions", "invoices")
# Queries per list (the key's `last_used_at` update, at most once a minute, left out):
# billable_metrics: key, count, features, meters
# plans: key, count, published versions, features (for billable_metric_id)
# customers: key, count, customers, their subjects (prefetched by billing's selector)
# subscriptions: key, external ids with subscriptions and customers, scheduled next subscriptions
# invoices: key, count, invoices with customers
BUDGETS = {"billable_metrics": 4, "plans": 4, "customers": 4, "subscriptions": 3, "invoices": 3}


def post(client, path: str, body: dict) -> dict:
    r = client.post(f"{V1}/{path}", data=json.dumps(body), content_type="application/json")
    assert r.status_code == 200, r.content
    return r.json()


def build(tenant, numbers: range) -> None:
    c = tenant.client()
    for i in numbers:
        metric = post(
            c,
            "billable_metrics",
            {"billable_metric": {"name": f"M{i}", "code": f"m{i}", "aggregation_type": "count_agg"}},
        )
        charge = {
            "billable_metric_id": metric["billable_metric"]["lago_id"],
            "charge_model": "standard",
            "properties": {"amount": "1"},
        }
        post(
            c,
            "plans",
            {
                "plan": {
                    "name": f"P{i}",
                    "code": f"p{i}",
                    "interval": "monthly",
                    "amount_cents": 100 * (i + 1),
                    "amount_currency": "USD",
                    "pay_in_advance": True,
                    "charges": [charge],
                }
            },
        )
        post(c, "customers", {"customer": {"external_id": f"c{i}", "currency": "USD"}})
        post(
            c,
            "subscriptions",
            {
                "subscription": {
                    "external_customer_id": f"c{i}",
                    "plan_code": f"p{i}",
                    "external_id": f"s{i}",
                    "subscription_at": "2026-10-01T00:00:00Z",
                }
            },
        )


def costs(tenant) -> dict[str, tuple[int, int]]:
    """(queries, rows) per list."""
    client = tenant.client("read")
    out = {}
    for name in LISTS:
        with CaptureQueriesContext(connection) as ctx:
            r = client.get(f"{V1}/{name}")
        assert r.status_code == 200, r.content
        reads = [q for q in ctx.captured_queries if not q["sql"].startswith('UPDATE "core_apikey"')]
        out[name] = (len(reads), len(r.json()[name]))
    return out


def test_list_queries_constant_in_rows(tenant_a, tenant_b):
    with time_machine.travel(at("2026-10-01 00:00"), tick=False):
        build(tenant_a, range(1))
        build(tenant_b, range(5))
    with time_machine.travel(at("2026-10-01 00:05"), tick=False):
        invoice_clock()
        one = costs(tenant_a)
    with time_machine.travel(at("2026-10-01 00:00"), tick=False):
        build(tenant_a, range(1, 4))
    with time_machine.travel(at("2026-10-01 00:10"), tick=False):
        invoice_clock()
        four = costs(tenant_a)
    assert {k: v[1] for k, v in one.items()} == dict.fromkeys(LISTS, 1)
    assert {k: v[1] for k, v in four.items()} == dict.fromkeys(LISTS, 4)
    assert {k: v[0] for k, v in one.items()} == BUDGETS
    assert {k: v[0] for k, v in four.items()} == BUDGETS
