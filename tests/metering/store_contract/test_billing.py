"""Billing, entitlements and invoicing are unchanged by the event store: the same events give the same
invoice lines and the same entitlement balance on PostgreSQL and on ClickHouse (chdb), through the normal
services (ingest API, the invoice clock, the customer access API). Tenant B, with the same meter, feature and
subject keys and much more usage, never shows up on A's invoice or balance."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from billing import services as billing
from invoicing.models import InvoiceLine
from tests.billing.real_catalog import publish_pro_plan
from tests.invoicing.test_scenarios_real_usage import (
    CLOCK_NOV,
    api_plan,
    ingest,
    invoice_of,
    lines,
    run_clock,
    subscribe,
)

pytestmark = pytest.mark.django_db
D = Decimal


def test_the_invoice_is_the_same_on_either_store(store_kind, tenant_a, tenant_b):
    for tenant in (tenant_a, tenant_b):
        api_plan(tenant.org)
    acme = subscribe(tenant_a.org, "acme", ["s-1", "s-2"], "growth")
    subscribe(tenant_b.org, "acme", ["s-1", "s-2"], "growth")
    with time_machine.travel(datetime(2026, 11, 1, 0, 10, tzinfo=UTC), tick=False):
        ingest(
            tenant_a,
            [
                ("a1", "s-1", "2026-10-03T10:00:00Z", {"calls": 1800}),
                ("a2", "s-2", "2026-10-20T23:59:59Z", {"calls": 1200}),
                ("a1", "s-1", "2026-10-03T10:00:00Z", {"calls": 1800}),  # resent: counts once
                ("a3", "s-3", "2026-10-05T00:00:00Z", {"calls": 9000}),  # nobody's subject
                ("a4", "s-1", "2026-11-01T00:00:00Z", {"calls": 500}),  # November
            ],
            etype="api",
        )
        ingest(tenant_b, [("a1", "s-1", "2026-10-03T10:00:00Z", {"calls": 70000})], etype="api")
    run_clock(datetime(2026, 10, 1, 0, 5, tzinfo=UTC))
    run_clock(CLOCK_NOV)
    # 3000 calls: 1000 x 0.10 + 2000 x 0.05 = 200.00 (above the minimum 150); November's base fee 20.00
    inv = invoice_of(acme)
    assert lines(inv) == [("usage", "Api Calls", D("200.00")), ("flat_fee", "Base fee", D("20.00"))]
    assert InvoiceLine.objects.get(invoice=inv, type="usage").quantity == D(3000)
    assert inv.amount == D("220.00")


def test_the_entitlement_balance_is_the_same_on_either_store(store_kind, tenant_a, tenant_b):
    for tenant, fee in ((tenant_a, "30"), (tenant_b, "99")):
        publish_pro_plan(tenant.org, fee=fee)
        billing.customer_create(organization=tenant.org, name="Acme", key="acme", subject_keys=["s-1", "s-2"])
        r = tenant.client().post(
            "/api/v1/subscriptions",
            {"customerKey": "acme", "plan": {"key": "pro"}, "activeFrom": "2026-01-01T00:00:00Z"},
            format="json",
        )
        assert r.status_code == 201, r.content
    with time_machine.travel(datetime(2026, 1, 20, tzinfo=UTC), tick=False):
        ingest(
            tenant_a,
            [
                ("t1", "s-1", "2026-01-05T10:00:00Z", {"tokens": 300}),
                ("t2", "s-2", "2026-01-10T10:30:00Z", {"tokens": "250.5"}),
                ("t3", "s-3", "2026-01-10T10:30:00Z", {"tokens": 999}),  # nobody's subject
            ],
            etype="prompt",
        )
        ingest(tenant_b, [("t1", "s-1", "2026-01-05T10:00:00Z", {"tokens": 900})], etype="prompt")
        access = tenant_a.client("read").get("/api/v1/customers/acme/access").json()["entitlements"]
        access_b = tenant_b.client("read").get("/api/v1/customers/acme/access").json()["entitlements"]
    # 1000 issued at reset; 300 + 250.5 used
    assert D(str(access["tokens"]["balance"])) == D("449.5")
    assert D(str(access["tokens"]["usage"])) == D("550.5")
    assert access["tokens"]["hasAccess"] is True
    assert D(str(access_b["tokens"]["balance"])) == D(100)
