"""Whole billing periods on the real usage path: meters and features (metering, catalog services), a
published plan, customers and subscriptions (billing services), events ingested through
`POST /api/v1/events`, rollups, and the real invoice job (`invoicing.tasks.invoice_clock`, Celery eager:
the clock fans out batch tasks that run inline). No usage provider is replaced. Two tenants with the same
meter slugs, feature keys and even subject keys: nothing of one shows up on the other's invoices.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import time_machine

from billing.services import customer_create
from billing.subscriptions.create import subscription_create
from catalog import services as catalog
from catalog.pricing import parse_price, rate
from core.money import quantize
from invoicing.models import Invoice, InvoiceLine
from invoicing.services import tax_rate_create
from invoicing.tasks import invoice_clock
from metering import services as metering
from metering.selectors import meter_get, meter_query

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)
CLOCK_NOV = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)  # Oct is due: cutoff = now - 1 h collection delay
D = Decimal

GRADUATED_MIN = {
    "type": "tiered",
    "mode": "graduated",
    "tiers": [
        {"upToAmount": "1000", "unitPrice": {"type": "unit", "amount": "0.10"}},
        {"upToAmount": "5000", "unitPrice": {"type": "unit", "amount": "0.05"}},
        {"upToAmount": None, "unitPrice": {"type": "unit", "amount": "0.01"}},
    ],
    "minimumAmount": "150",
}


# --- helpers ------------------------------------------------------------------------------------
def ingest(tenant, events: list[tuple[str, str, str, dict]], *, etype: str) -> None:
    """(id, subject, RFC 3339 time, data) through the real ingest API; 204 expected."""
    body = [
        {"id": i, "source": "app", "specversion": "1.0", "type": etype, "subject": s, "time": t, "data": d}
        for i, s, t, d in events
    ]
    r = tenant.client("ingest").post(
        "/api/v1/events", data=json.dumps(body), content_type="application/cloudevents-batch+json"
    )
    assert r.status_code == 204, r.content


def publish(org, key: str, rate_cards: list[dict]) -> None:
    plan = catalog.plan_create(
        organization=org,
        key=key,
        data={
            "key": key,
            "name": key.title(),
            "currency": "USD",
            "billingCadence": "P1M",
            "phases": [{"key": "default", "name": "Default", "duration": None, "rateCards": rate_cards}],
        },
    )
    catalog.plan_publish(organization=org, plan_id=plan.id)


def subscribe(org, key: str, subjects: list[str], plan_key: str):
    customer = customer_create(
        organization=org, name=f"{key.title()} Inc", key=key, currency="USD", subject_keys=subjects
    )
    subscription_create(
        organization=org, customer=customer, plan_key=plan_key, active_from=OCT, billing_anchor=OCT
    )
    return customer


def usage_card(key: str, feature: str, price: dict) -> dict:
    return {
        "type": "usage_based",
        "key": key,
        "name": key.replace("_", " ").title(),
        "featureKey": feature,
        "billingCadence": "P1M",
        "price": price,
    }


BASE_FEE = {
    "type": "flat_fee",
    "key": "base",
    "name": "Base fee",
    "billingCadence": "P1M",
    "price": {"type": "flat", "amount": "20", "paymentTerm": "in_advance"},
}


def api_plan(org, *, base: bool = True) -> None:
    metering.meter_create(
        organization=org, slug="api_calls", event_type="api", aggregation="SUM", value_property="$.calls"
    )
    catalog.feature_create(organization=org, key="api_calls", name="API calls", meter_slug="api_calls")
    publish(
        org, "growth", ([BASE_FEE] if base else []) + [usage_card("api_calls", "api_calls", GRADUATED_MIN)]
    )


def run_clock(at: datetime) -> int:
    with time_machine.travel(at, tick=False):
        return invoice_clock()


def invoice_of(customer) -> Invoice:
    return Invoice.objects.get(customer=customer, kind="period", period_start=OCT, period_end=NOV)


def lines(invoice: Invoice) -> list[tuple[str, str, Decimal]]:
    return [
        (x.type, x.description, x.amount)
        for x in InvoiceLine.objects.filter(invoice=invoice).order_by("position", "id")
    ]


# --- 1. graduated tiers with a minimum commitment -------------------------------------------------
def test_graduated_tiers_with_minimum_commitment_from_ingested_events(tenant_a, tenant_b):
    with time_machine.travel(OCT, tick=False):
        for t in (tenant_a, tenant_b):
            api_plan(t.org)
        tax_rate_create(organization=tenant_a.org, name="Sales tax", percentage="10", is_default=True)
        initech = subscribe(tenant_a.org, "initech", ["initech-prod", "initech-staging"], "growth")
        hooli = subscribe(tenant_a.org, "hooli", ["hooli-prod"], "growth")
        # tenant B: the same slugs, keys and even the same subject key, its own usage
        b_cust = subscribe(tenant_b.org, "initech", ["initech-prod"], "growth")
    with time_machine.travel(datetime(2026, 10, 20, tzinfo=UTC), tick=False):
        ingest(
            tenant_a,
            [
                ("a1", "initech-prod", "2026-10-02T10:00:00Z", {"calls": 600}),
                ("a2", "initech-staging", "2026-10-09T11:30:00Z", {"calls": 900}),
                ("a3", "initech-prod", "2026-10-19T23:59:59Z", {"calls": 2000}),
                ("h1", "hooli-prod", "2026-10-05T08:00:00Z", {"calls": 300}),
                ("x1", "nobody", "2026-10-05T08:00:00Z", {"calls": 99999}),  # no customer: billed to no one
            ],
            etype="api",
        )
        ingest(
            tenant_a, [("a1", "initech-prod", "2026-10-02T10:00:00Z", {"calls": 600})], etype="api"
        )  # resent
        ingest(tenant_b, [("a1", "initech-prod", "2026-10-03T10:00:00Z", {"calls": 40000})], etype="api")
    with time_machine.travel(datetime(2026, 11, 1, 0, 20, tzinfo=UTC), tick=False):
        ingest(
            tenant_a,
            [
                ("a4", "initech-prod", "2026-10-31T23:59:59Z", {"calls": 0}),  # late, inside the delay; 0
                (
                    "a5",
                    "initech-prod",
                    "2026-11-01T00:00:00Z",
                    {"calls": 777},
                ),  # November: not on this invoice
            ],
            etype="api",
        )

    # each subscription's start invoice bills October's base fee (in advance) at once
    assert run_clock(datetime(2026, 10, 1, 0, 5, tzinfo=UTC)) == 3
    assert run_clock(datetime(2026, 11, 1, 0, 30, tzinfo=UTC)) == 0  # still inside the collection delay
    assert run_clock(CLOCK_NOV) == 3
    assert run_clock(CLOCK_NOV) == 0  # idempotent

    # initech: 600 + 900 + 2000 = 3500 calls (the resent a1 counts once; subjects summed per customer)
    #   tier 1: 1000 x 0.10 = 100.00; tier 2: 2500 x 0.05 = 125.00 -> 225.00 >= minimum 150: no top-up
    #   November's base fee 20.00 (in advance) -> amount 245.00; tax 10% 24.50; total 269.50
    inv = invoice_of(initech)
    assert inv.status == "issued"
    assert lines(inv) == [  # items in rate card key order
        ("usage", "Api Calls", D("225.00")),
        ("flat_fee", "Base fee", D("20.00")),
        ("tax", "Sales tax 10% (added)", D("24.50")),
    ]
    usage_line = InvoiceLine.objects.get(invoice=inv, type="usage")
    assert usage_line.quantity == D("3500")
    assert [(d["tier"], d["quantity"], d["amount"]) for d in usage_line.detail] == [
        (1, "1000", "100"),
        (2, "2500", "125"),
    ]
    assert (inv.amount, inv.taxes_total, inv.total) == (D("245.00"), D("24.50"), D("269.50"))

    # hooli: 300 calls -> 300 x 0.10 = 30.00, below the minimum 150 -> top-up 120.00
    #   amount 20 + 30 + 120 = 170.00; tax 17.00; total 187.00
    inv = invoice_of(hooli)
    assert sorted(Invoice.objects.filter(organization=tenant_a.org).values_list("number", flat=True)) == [
        f"ACME-2026-{n:06d}" for n in range(1, 5)
    ]
    assert lines(inv) == [
        ("usage", "Api Calls", D("30.00")),
        ("commitment", "Api Calls: minimum commitment top-up (minimum 150)", D("120.00")),
        ("flat_fee", "Base fee", D("20.00")),
        ("tax", "Sales tax 10% (added)", D("17.00")),
    ]
    assert inv.total == D("187.00")

    # tenant B: only its own 40000 calls (no tax rate): 100 + 4000 x 0.05 = 200 + 35000 x 0.01 = 350
    #   -> 650.00 + base 20.00 = 670.00; its own numbering
    inv = invoice_of(b_cust)
    assert (inv.number, inv.total) == ("GLOBEX-2026-000002", D("670.00"))
    assert InvoiceLine.objects.get(invoice=inv, type="usage").quantity == D("40000")
    assert Invoice.objects.filter(organization=tenant_b.org).count() == 2  # start + October
    assert Invoice.objects.filter(organization=tenant_a.org).count() == 4
    # B's API sees only B's invoice
    r = tenant_b.client("read").get("/api/v1/billing/invoices")
    assert r.status_code == 200
    assert sorted(i["id"] for i in r.json()["items"]) == sorted(
        Invoice.objects.filter(organization=tenant_b.org).values_list("id", flat=True)
    )
    assert inv.id in [i["id"] for i in r.json()["items"]]


# --- 2. the AI example: input/output tokens per million, two features on one meter -----------------
def ai_plan(org) -> None:
    metering.meter_create(
        organization=org,
        slug="llm_tokens",
        event_type="llm",
        aggregation="SUM",
        value_property="$.tokens",
        group_by={"model": "$.model", "type": "$.type"},
    )
    for kind in ("input", "output"):
        catalog.feature_create(
            organization=org,
            key=f"gpt4o_{kind}",
            name=f"GPT-4o {kind} tokens",
            meter_slug="llm_tokens",
            meter_group_by_filters={"model": "gpt-4o", "type": kind},
        )
    publish(
        org,
        "ai",
        [
            usage_card("gpt4o_input", "gpt4o_input", {"type": "unit", "amount": "0.0000025"}),  # $2.50 / M
            usage_card("gpt4o_output", "gpt4o_output", {"type": "unit", "amount": "0.00001"}),  # $10 / M
        ],
    )


def test_ai_tokens_priced_per_million_by_model_and_type(tenant_a, tenant_b):
    with time_machine.travel(OCT, tick=False):
        ai_plan(tenant_a.org)
        ai_plan(tenant_b.org)
        acme_ai = subscribe(tenant_a.org, "startup", ["svc-chat", "svc-batch"], "ai")
        globex_ai = subscribe(tenant_b.org, "startup", ["svc-chat"], "ai")
    with time_machine.travel(datetime(2026, 10, 31, tzinfo=UTC), tick=False):
        ingest(
            tenant_a,
            [
                (
                    "c1",
                    "svc-chat",
                    "2026-10-03T09:00:00Z",
                    {"tokens": 1200000, "model": "gpt-4o", "type": "input"},
                ),
                (
                    "c2",
                    "svc-batch",
                    "2026-10-14T09:00:00Z",
                    {"tokens": 800000, "model": "gpt-4o", "type": "input"},
                ),
                (
                    "c3",
                    "svc-chat",
                    "2026-10-03T09:00:05Z",
                    {"tokens": 350000, "model": "gpt-4o", "type": "output"},
                ),
                # another model: on no rate card of this plan
                (
                    "c4",
                    "svc-chat",
                    "2026-10-04T09:00:00Z",
                    {"tokens": 5000000, "model": "gpt-4o-mini", "type": "input"},
                ),
                (
                    "c5",
                    "svc-chat",
                    "2026-10-04T09:00:01Z",
                    {"tokens": 900000, "model": "gpt-4o-mini", "type": "output"},
                ),
            ],
            etype="llm",
        )
        ingest(
            tenant_b,
            [
                (
                    "c1",
                    "svc-chat",
                    "2026-10-03T09:00:00Z",
                    {"tokens": 10000000, "model": "gpt-4o", "type": "input"},
                ),
                (
                    "c3",
                    "svc-chat",
                    "2026-10-03T09:00:05Z",
                    {"tokens": 1000000, "model": "gpt-4o", "type": "output"},
                ),
            ],
            etype="llm",
        )
    assert run_clock(CLOCK_NOV) == 2

    # A: input 1,200,000 + 800,000 = 2,000,000 x 2.50 / M = 5.00
    #    output 350,000 x 10 / M = 3.50 -> total 8.50 (gpt-4o-mini tokens are not billed)
    inv = invoice_of(acme_ai)
    assert lines(inv) == [
        ("usage", "Gpt4O Input", D("5.00")),
        ("usage", "Gpt4O Output", D("3.50")),
    ]
    assert {x.feature_key: x.quantity for x in InvoiceLine.objects.filter(invoice=inv)} == {
        "gpt4o_input": D("2000000"),
        "gpt4o_output": D("350000"),
    }
    assert inv.total == D("8.50")
    # B: 10 M input = 25.00, 1 M output = 10.00 -> 35.00; none of A's tokens
    inv = invoice_of(globex_ai)
    assert inv.total == D("35.00")
    assert inv.number == "GLOBEX-2026-000001"


# --- 3. rollups before invoicing, late events after: the invoice equals brute force ----------------
def test_rollups_then_late_events_invoice_equals_brute_force(tenant_a, tenant_b):
    with time_machine.travel(OCT, tick=False):
        api_plan(tenant_a.org, base=False)
        api_plan(tenant_b.org, base=False)
        cust = subscribe(tenant_a.org, "umbrella", ["u-1", "u-2"], "growth")
        subscribe(tenant_b.org, "umbrella", ["u-1"], "growth")
    events = [
        (f"e{i}", f"u-{1 + i % 2}", f"2026-10-{1 + i % 28:02d}T{i % 24:02d}:15:00Z", {"calls": 37 * i % 400})
        for i in range(60)
    ]
    with time_machine.travel(datetime(2026, 10, 30, tzinfo=UTC), tick=False):
        ingest(tenant_a, events, etype="api")
        ingest(tenant_b, [("b1", "u-1", "2026-10-10T12:00:00Z", {"calls": 100000})], etype="api")
        metering.rollups_advance()  # the beat's rollup task: everything so far is in hourly rollups
    meter = meter_get(organization=tenant_a.org, id_or_slug="api_calls")
    from metering.store import watermark_get

    assert watermark_get(meter_id=meter.id) > 0
    late = [
        ("l1", "u-1", "2026-10-10T12:45:00Z", {"calls": 321}),  # into an hour bucket already rolled up
        ("l2", "u-2", "2026-10-31T23:50:00Z", {"calls": 1234}),  # the last minutes of the period
        ("l3", "u-2", "2026-10-01T00:00:00Z", {"calls": 5}),  # the first instant (half-open [Oct 1, Nov 1))
        ("l4", "u-1", "2026-11-01T00:00:00Z", {"calls": 999}),  # the next period's first instant: not here
    ]
    with time_machine.travel(datetime(2026, 11, 1, 0, 40, tzinfo=UTC), tick=False):
        ingest(tenant_a, late, etype="api")
    assert run_clock(CLOCK_NOV) == 2

    # brute force: sum the events of [Oct 1, Nov 1) by hand, rate with the engine, round once
    def in_october(t: str) -> bool:
        return "2026-10-01T00:00:00Z" <= t < "2026-11-01T00:00:00Z"

    quantity = sum(D(d["calls"]) for _i, _s, t, d in events + late if in_october(t))
    assert quantity == sum(D(37 * i % 400) for i in range(60)) + 321 + 1234 + 5
    # and metering agrees without its rollups (raw events only)
    [row] = meter_query(
        organization=tenant_a.org,
        meter=meter,
        from_=OCT,
        to=NOV,
        subjects=None,
        use_rollups=False,
        customers={cust.id: ["u-1", "u-2"]},
    )
    assert row.value == quantity
    expected = quantize(rate(parse_price(GRADUATED_MIN), quantity).amount, "USD")
    inv = invoice_of(cust)
    usage_line = InvoiceLine.objects.get(invoice=inv, type="usage")
    assert usage_line.quantity == quantity
    assert inv.total == expected
    # quantity is 13,050 by hand: 1000 x 0.10 + 4000 x 0.05 + 8050 x 0.01 = 100 + 200 + 80.50 = 380.50
    assert (quantity, inv.total) == (D("13050"), D("380.50"))

    # an event for October arriving after the invoice was issued: the next invoice adds the difference
    with time_machine.travel(datetime(2026, 11, 3, tzinfo=UTC), tick=False):
        ingest(tenant_a, [("l5", "u-1", "2026-10-20T10:00:00Z", {"calls": 1000})], etype="api")
    assert run_clock(datetime(2026, 12, 1, 1, tzinfo=UTC)) == 2
    nov = Invoice.objects.get(customer=cust, period_start=NOV)
    [adj] = InvoiceLine.objects.filter(invoice=nov, type="adjustment")
    # 14,050 calls -> 100 + 200 + 9050 x 0.01 = 390.50; already billed 380.50 -> +10.00 (1000 x 0.01)
    assert (adj.quantity, adj.amount) == (D("1000"), D("10.00"))
    # November: only l4 (999 x 0.10 = 99.90) -> below the minimum 150 -> top-up 50.10
    assert nov.total == D("10.00") + D("99.90") + D("50.10")
    assert inv.status == "issued" and Invoice.objects.get(id=inv.id).total == D("380.50")  # never edited
