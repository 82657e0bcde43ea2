"""Query budgets: every portal and dashboard page ≤ 10 queries, the same count for 3 or 30 customers
(with their events, subscriptions, invoices and lines). The queries per page are listed in docs/portal.md and docs/analytics.md."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.services import simulation_run_start
from billing.entitlements.lifecycle import entitlement_create
from billing.models import Subscription, SubscriptionItem
from catalog.services import plan_create, plan_publish
from portal.services import portal_settings_update
from tests.catalog.factories import make_feature, plan_body
from tests.conftest import PASSWORD
from tests.portal.conftest import ingest, make_portal_customer, make_token_meter

pytestmark = pytest.mark.django_db

BUDGET = 10


def build(tenant, size: int, prefix: str):
    """`size` customers with a month of usage, an active subscription, 2 issued invoices of 3 lines each;
    the first one also has a gathering invoice, 3 metered entitlements (2 on the tokens meter, one with
    model/type filters, and 1 on the requests meter; the first with 2 grants) and a portal token."""
    from invoicing.models import Invoice, InvoiceLine

    now = timezone.now()
    org = tenant.org
    first = None
    events = []
    for i in range(size):
        pc = make_portal_customer(tenant, key=f"{prefix}c{i}", subjects=(f"{prefix}s{i}",))
        first = first or pc
        for d in range(30):
            t = now - timedelta(days=d, hours=1)
            for model, kind in (("gpt-4o", "input"), ("gpt-4o", "output"), ("mini", "input")):
                events.append(
                    (
                        f"{org.slug}-{prefix}s{i}",
                        t,
                        {"tokens": 10 + d, "model": model, "type": kind},
                        "prompt",
                    )
                )
            events.append((f"{org.slug}-{prefix}s{i}", t, {"path": "/v1/chat"}, "request"))
        sub = Subscription.objects.create(
            organization=org,
            customer=pc.customer,
            plan_key="pro" if i % 2 else "basic",
            plan_version=1,
            plan_snapshot={"key": "pro" if i % 2 else "basic", "version": 1, "phases": []},
            name="Pro",
            currency="USD",
            billing_anchor=now - timedelta(days=40),
            active_from=now - timedelta(days=40),
        )
        SubscriptionItem.objects.create(
            organization=org,
            subscription=sub,
            key="base",
            name="Base",
            price={"type": "flat", "amount": "49"},
            billing_cadence="P1M",
            active_from=now - timedelta(days=40),
        )
        for m in (1, 2):
            inv = Invoice.objects.create(
                organization=org,
                customer=pc.customer,
                currency="USD",
                status="paid" if m == 2 else "issued",
                period_start=now - timedelta(days=30 * m + 30),
                period_end=now - timedelta(days=30 * m),
                issued_at=now - timedelta(days=30 * m),
                number=f"INV-{prefix}{i}-{m}",
                total=Decimal("60.00"),
            )
            for j, (kind, amount) in enumerate((("flat_fee", "49"), ("usage", "11"), ("tax", "0"))):
                InvoiceLine.objects.create(
                    organization=org,
                    invoice=inv,
                    type=kind,
                    position=j,
                    description=kind,
                    amount=Decimal(amount),
                    feature_key="tokens" if kind == "usage" else "",
                    quantity=Decimal(1000),
                    period_start=inv.period_start,
                    period_end=inv.period_end,
                )
    ingest(tenant, events)
    gathering = Invoice.objects.create(
        organization=org,
        customer=first.customer,
        currency="USD",
        status="gathering",
        period_start=now - timedelta(days=10),
        period_end=now + timedelta(days=20),
        total=Decimal("61.50"),
    )
    for j in range(3):
        InvoiceLine.objects.create(
            organization=org,
            invoice=gathering,
            type="usage",
            position=j,
            description=f"line {j}",
            amount=Decimal("20.50"),
        )
    ent = entitlement_create(
        organization=org,
        customer=first.customer,
        feature_key="tokens",
        type="metered",
        usage_period_interval="MONTH",
        usage_period_anchor=now - timedelta(days=10),
        grants=[
            {
                "amount": Decimal(5000),
                "effective_at": now - timedelta(days=10),
                "expiration": {"duration": "MONTH", "count": 1},
            },
            {
                "amount": Decimal(100),
                "priority": 2,
                "effective_at": now - timedelta(days=10),
                "expiration": {"duration": "YEAR", "count": 1},
            },
        ],
    )
    assert ent.grants.count() == 2
    others = [
        entitlement_create(
            organization=org,
            customer=first.customer,
            feature_key=key,
            type="metered",
            usage_period_interval="MONTH",
            usage_period_anchor=now - timedelta(days=10),
            issue_after_reset=Decimal(limit),
        )
        for key, limit in (("gpt4o_output", 1000), ("requests", 500))
    ]
    # What billing's beat task does every minute: a balance snapshot, so a value read burns only the tail.
    from billing import sources as billing_sources
    from billing.entitlements.snapshots import entitlement_snapshot_refresh

    for e in (ent, *others):
        entitlement_snapshot_refresh(organization=org, entitlement_id=e.id, now=now)
    # The bulk read (one metering query per meter, filters split in memory) equals the one-by-one values.
    from billing.entitlements.values import customer_entitlement_values, entitlement_value

    bulk = {
        r.entitlement.id: r.value
        for r in customer_entitlement_values(organization=org, customer=first.customer)
    }
    assert len(bulk) == 3
    for e in (ent, *others):
        one = entitlement_value(organization=org, entitlement=e, at=now + timedelta(seconds=1))
        assert (bulk[e.id].usage, bulk[e.id].balance) == (one.usage, one.balance), e.feature_key
    assert bulk[others[0].id].usage == sum(10 + d for d in range(10))  # gpt-4o output only, this period
    billing_sources._meter_cache.clear()  # count the cold-cache worst case every time
    return first


@pytest.fixture
def setup_org(tenant_a):
    make_token_meter(tenant_a)
    make_feature(tenant_a, key="tokens", meter="tokens")
    make_feature(tenant_a, key="gpt4o_output", meter="tokens", filters={"model": "gpt-4o", "type": "output"})
    from metering.services import meter_create

    meter_create(
        organization=tenant_a.org,
        slug="requests",
        event_type="request",
        aggregation="COUNT",
        name="API requests",
    )
    make_feature(tenant_a, key="requests", meter="requests")
    pro = plan_create(organization=tenant_a.org, key="pro", data=plan_body(key="pro", feature_key="tokens"))
    plan_publish(organization=tenant_a.org, plan_id=pro.id)
    # self-service on: the plan page lists "pro" to the customers on "basic"
    portal_settings_update(organization=tenant_a.org, self_service=True, plan_keys=["pro"])
    return tenant_a


PORTAL_URLS = [
    "/portal/",
    "/portal/usage/tokens/?window=day&feature=tokens",
    "/portal/usage/tokens/?window=week&feature=gpt4o_output",
    "/portal/usage/tokens/?window=month&feature=tokens",
    "/portal/usage/requests/?window=week&feature=requests",
    "/portal/estimate/",
    "/portal/balances/",
    "/portal/invoices/",
    "/portal/plan/",
]
CONSOLE_URLS = [
    "/console/dashboards/",
    "/console/dashboards/?chart=billed&format=csv",
    "/console/dashboards/usage/?meter=tokens",
    "/console/dashboards/usage/usage/?meter=tokens",
    "/console/dashboards/usage/usage/?meter=tokens&chart=ai-usage&format=csv",
    "/console/dashboards/usage/chargeback/?period=last_30_days",
    "/console/dashboards/usage/trend/?meter=tokens",
    "/console/simulations/",
    "/console/portal/settings/",
]


def counts(client, urls, htmx=True) -> dict[str, int]:
    out = {}
    for url in urls:
        with CaptureQueriesContext(connection) as ctx:
            r = client.get(url, **({"HTTP_HX_REQUEST": "true"} if htmx and url != "/portal/" else {}))
        assert r.status_code == 200, (url, r.status_code)
        out[url] = len(ctx.captured_queries)
        if out[url] > BUDGET:
            print(url, *(q["sql"][:200] for q in ctx.captured_queries), sep="\n   ")
    return out


def measure(client, tenant, size, prefix):
    first = build(tenant, size, prefix)
    portal = client.__class__()
    portal.get(f"/portal/{first.token}")
    portal_counts = counts(portal, PORTAL_URLS)
    plan_page = portal.get("/portal/plan/").content.decode()
    assert 'id="plan-pro"' in plan_page and "Upgrade: applies now" in plan_page, plan_page
    page = portal.get("/portal/balances/", HTTP_HX_REQUEST="true").content.decode()
    assert all(f'id="ent-{k}"' in page for k in ("tokens", "gpt4o_output", "requests")), page
    client.login(username=tenant.user.username, password=PASSWORD)
    client.get("/console/")  # the first console request stores the organization in the session
    run = simulation_run_start(
        organization=tenant.org,
        plan_key="pro",
        plan_version=1,
        period_start=timezone.now() - timedelta(days=30),
        period_end=timezone.now(),
        all_on_plan="pro",
    )
    console_counts = counts(client, [*CONSOLE_URLS, f"/console/simulations/{run.id}/"], htmx=False)
    return portal_counts, console_counts


def test_pages_stay_within_budget_and_constant_in_rows(
    client, setup_org, tenant_b, django_assert_max_num_queries
):
    small_portal, small_console = measure(client, setup_org, 3, "a")
    # 27 more customers (with events, subscriptions, invoices) on top: the same number of queries.
    big_portal, big_console = measure(client, setup_org, 27, "b")
    for url, n in {**big_portal, **big_console}.items():
        assert n <= BUDGET, (url, n, big_portal, big_console)
    assert list(big_portal.values()) == list(small_portal.values()), (small_portal, big_portal)
    assert list(big_console.values()) == list(small_console.values()), (small_console, big_console)
    with django_assert_max_num_queries(BUDGET):
        client.get("/console/dashboards/usage/usage/?meter=tokens&period=last_month", HTTP_HX_REQUEST="true")


def test_balances_with_three_meters_constant_queries(client, setup_org, tenant_b):
    """3 metered entitlements on 3 different meters: metering answers them in one bulk call (constant in
    meters), so the balances page stays within budget and the same as events and customers grow."""
    from billing import sources as billing_sources
    from billing.entitlements.snapshots import entitlement_snapshot_refresh
    from billing.entitlements.values import entitlement_value
    from metering.services import meter_create

    org = setup_org.org
    meter_create(
        organization=org,
        slug="storage",
        event_type="storage",
        aggregation="SUM",
        value_property="$.gb",
        name="Storage",
    )
    make_feature(setup_org, key="storage", meter="storage")
    now = timezone.now()
    pc = make_portal_customer(setup_org, key="three", subjects=("three-s",))
    subject = f"{org.slug}-three-s"
    ents = [
        entitlement_create(
            organization=org,
            customer=pc.customer,
            feature_key=key,
            type="metered",
            usage_period_interval="MONTH",
            usage_period_anchor=now - timedelta(days=10),
            issue_after_reset=Decimal(10**6),
        )
        for key in ("tokens", "requests", "storage")
    ]
    portal = client.__class__()
    portal.get(f"/portal/{pc.token}")

    def grow(n: int, prefix: str) -> None:
        rows = []
        for i in range(n):
            t = now - timedelta(days=i % 9, hours=1, minutes=i % 50, seconds=len(prefix))
            rows += [
                (subject, t, {"tokens": i, "model": "gpt-4o", "type": "input"}, "prompt"),
                (subject, t, {"path": "/v1"}, "request"),
                (subject, t, {"gb": 2}, "storage"),
            ]
        for c in range(n // 10):  # other customers with events too
            other = make_portal_customer(setup_org, key=f"{prefix}o{c}", subjects=(f"{prefix}o{c}",))
            rows.append((f"{org.slug}-{prefix}o{c}", now - timedelta(hours=2), {"gb": 1}, "storage"))
            assert other.customer.id != pc.customer.id
        ingest(setup_org, rows)
        for e in ents:
            entitlement_snapshot_refresh(organization=org, entitlement_id=e.id, now=now)
        # a little fresh tail after the snapshot, above the rollup watermark
        from metering.services import events_ingest

        events_ingest(
            organization=org,
            events=[
                ("test", f"{prefix}-tail-{k}", etype, subject, timezone.now(), data)
                for k, (etype, data) in enumerate(
                    [("prompt", '{"tokens": 7, "model": "mini", "type": "input"}'), ("storage", '{"gb": 3}')]
                )
            ],
        )

    def balances() -> tuple[int, str]:
        billing_sources._meter_cache.clear()
        with CaptureQueriesContext(connection) as ctx:
            r = portal.get("/portal/balances/", HTTP_HX_REQUEST="true")
        assert r.status_code == 200
        return len(ctx.captured_queries), r.content.decode()

    grow(10, "s")
    small, page = balances()
    assert all(f'id="ent-{k}"' in page for k in ("tokens", "requests", "storage")), page
    grow(100, "bb")
    big, _ = balances()
    assert small == big <= BUDGET, (small, big)
    # the numbers behind the page equal the one-by-one values
    from billing.entitlements.values import customer_entitlement_values

    at = timezone.now() + timedelta(seconds=1)
    bulk = {
        r.entitlement.id: r.value.usage
        for r in customer_entitlement_values(organization=org, customer=pc.customer, at=at)
    }
    for e in ents:
        assert bulk[e.id] == entitlement_value(organization=org, entitlement=e, at=at).usage, e.feature_key
    assert bulk[ents[2].id] == 2 * 110 + 3 + 3  # storage: 2 GB per row, plus the two tails
