"""Console dashboards: exact figures, CSV exports, viewer access, and no data from the other tenant."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from analytics.revenue import monthly_factor
from billing.models import Subscription, SubscriptionItem
from tests.catalog.factories import make_feature
from tests.conftest import PASSWORD
from tests.portal.conftest import ingest, make_portal_customer, make_token_meter

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def seed(tenant, scale: int):
    from invoicing.models import Invoice, InvoiceLine

    make_token_meter(tenant)
    make_feature(tenant, key="gpt_in", meter="tokens", filters={"model": "gpt-4o", "type": "input"})
    pc = make_portal_customer(tenant, key="big", subjects=("a",))
    ended = make_portal_customer(tenant, key="gone", subjects=("g",))
    ingest(
        tenant,
        [
            (
                f"{tenant.org.slug}-a",
                NOW - timedelta(days=2),
                {"tokens": 100 * scale, "model": "gpt-4o", "type": "input"},
                "prompt",
            ),
            (
                f"{tenant.org.slug}-a",
                NOW - timedelta(days=2),
                {"tokens": 40 * scale, "model": "gpt-4o", "type": "output"},
                "prompt",
            ),
            (
                f"{tenant.org.slug}-g",
                NOW - timedelta(days=3),
                {"tokens": 5 * scale, "model": "mini", "type": "input"},
                "prompt",
            ),
        ],
    )
    for customer, plan, amount, cadence, active_to in (
        (pc.customer, "pro", "120", "P1Y", None),
        (ended.customer, "basic", "10", "P1M", NOW - timedelta(days=10)),
    ):
        sub = Subscription.objects.create(
            organization=tenant.org,
            customer=customer,
            plan_key=plan,
            plan_version=1,
            name=plan,
            currency="USD",
            billing_anchor=NOW - timedelta(days=90),
            active_from=NOW - timedelta(days=90),
            active_to=active_to,
        )
        SubscriptionItem.objects.create(
            organization=tenant.org,
            subscription=sub,
            key="base",
            name="Base",
            price={"type": "flat", "amount": amount},
            billing_cadence=cadence,
            active_from=NOW - timedelta(days=90),
        )
    inv = Invoice.objects.create(
        organization=tenant.org,
        customer=pc.customer,
        currency="USD",
        status="paid",
        number="1",
        period_start=datetime(2026, 10, 1, tzinfo=UTC),
        period_end=datetime(2026, 11, 1, tzinfo=UTC),
        issued_at=datetime(2026, 11, 1, 1, tzinfo=UTC),
        total=Decimal(scale * 10),
    )
    InvoiceLine.objects.create(
        organization=tenant.org,
        invoice=inv,
        type="usage",
        description="tokens",
        feature_key="gpt_in",
        quantity=Decimal(100),
        amount=Decimal(scale * 10),
        period_start=NOW - timedelta(days=20),
        period_end=NOW - timedelta(days=1),
    )


@pytest.fixture
def logged_in(client, tenant_a, tenant_b, time_machine):
    time_machine.move_to(NOW, tick=False)
    seed(tenant_a, 1)
    seed(tenant_b, 1000)
    client.login(username=tenant_a.user.username, password=PASSWORD)
    return client


def rows(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_monthly_factor():
    assert monthly_factor("P1M") == 1 and monthly_factor("P1Y") * 12 == 1 and monthly_factor("") is None


def test_revenue_dashboard_figures_and_csv(logged_in):
    html = logged_in.get("/console/dashboards/").content.decode()
    assert "Billed per month" in html and "<svg" in html and "Globex" not in html
    assert rows(logged_in.get("/console/dashboards/?chart=billed&format=csv")) == [
        ["Month", "Currency", "Invoices", "Billed"],
        ["2026-10", "USD", "1", "10.00"],  # the October invoice (issued November 1) counts in October
    ]
    assert rows(logged_in.get("/console/dashboards/?chart=mrr&format=csv"))[1:] == [
        ["pro", "USD", "1", "10.00"]
    ]
    churn = rows(logged_in.get("/console/dashboards/?chart=churn&format=csv"))
    assert churn[-1] == ["2026-11", "1"] and sum(int(r[1]) for r in churn[1:]) == 1
    top = rows(logged_in.get("/console/dashboards/?chart=top-customers&format=csv"))
    assert top[1:] == [["acme customer big", "big", "USD", "10.00"]]
    assert logged_in.get("/console/dashboards/?chart=nope&format=csv").status_code == 404


def test_usage_dashboard_showback_and_chargeback(logged_in):
    page = logged_in.get("/console/dashboards/usage/").content.decode()
    assert ">AI tokens (tokens)</option>" in page  # meters named alike stay apart in the picker
    base = "/console/dashboards/usage/usage/?meter=tokens&period=last_30_days"
    by_customer = rows(logged_in.get(base + "&chart=usage-by-customer&format=csv"))
    assert by_customer[1:] == [["acme customer big", "big", "140"], ["acme customer gone", "gone", "5"]]
    assert rows(logged_in.get(base + "&chart=usage-by-feature&format=csv"))[1:] == [
        ["gpt_in", "model=gpt-4o, type=input", "100"]
    ]
    assert rows(logged_in.get(base + "&chart=ai-usage&format=csv"))[1:] == [
        ["acme customer big", "gpt-4o", "input", "100"],
        ["acme customer big", "gpt-4o", "output", "40"],
        ["acme customer gone", "mini", "input", "5"],
    ]
    html = logged_in.get(base, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html and "AI usage by customer" in html and "100000" not in html
    charge = rows(
        logged_in.get("/console/dashboards/usage/chargeback/?period=last_30_days&chart=chargeback&format=csv")
    )
    assert charge[1:] == [["acme customer big", "gpt_in", "USD", "100", "10.00"]]


def test_csv_cells_cannot_inject_formulas(logged_in, tenant_a):
    from billing.models import Customer

    Customer.objects.filter(organization=tenant_a.org, key="big").update(name="=HYPERLINK(1)")
    top = rows(logged_in.get("/console/dashboards/?chart=top-customers&format=csv"))
    assert top[1][0] == "'=HYPERLINK(1)"


def test_dashboards_need_login(client):
    assert client.get("/console/dashboards/").status_code == 302


def test_revenue_headline_equals_the_database(logged_in, tenant_b):
    """MRR 10 (a 120/year plan), ARR 120, 1 active customer (the other ended on Nov 15), October's churn
    0 of 2; tenant B's extra 999/month subscription never counts."""
    from django.db.models import Q

    other = make_portal_customer(tenant_b, key="extra", subjects=("x",))
    sub = Subscription.objects.create(
        organization=tenant_b.org,
        customer=other.customer,
        plan_key="whale",
        plan_version=1,
        name="Whale",
        currency="USD",
        billing_anchor=NOW - timedelta(days=5),
        active_from=NOW - timedelta(days=5),
    )
    SubscriptionItem.objects.create(
        organization=tenant_b.org,
        subscription=sub,
        key="base",
        name="Base",
        price={"type": "flat", "amount": "999"},
        billing_cadence="P1M",
        active_from=NOW - timedelta(days=5),
    )
    html = logged_in.get("/console/dashboards/").content.decode()
    assert 'id="headline-mrr">10.00 USD<' in html and 'id="headline-arr">120.00 USD<' in html
    assert 'id="headline-customers">1<' in html and 'id="headline-churn">0.0 %<' in html
    assert "Churn rate, October 2026" in html
    assert 'id="headline-nrr">—<' in html  # nobody paid 12 months ago
    trend = rows(logged_in.get("/console/dashboards/?chart=mrr-trend&format=csv"))
    assert trend[0] == ["Month", "Currency", "MRR"] and len(trend) == 14
    # both plans from Aug 27 (10 + 10 a month), the monthly one ended on Nov 15
    assert trend[-5:] == [
        ["2026-08", "USD", "0.00"],
        ["2026-09", "USD", "20.00"],
        ["2026-10", "USD", "20.00"],
        ["2026-11", "USD", "20.00"],
        ["now", "USD", "10.00"],
    ]
    # the same figures straight from the database
    active = Subscription.objects.filter(organization__slug="acme", active_from__lte=NOW).filter(
        Q(active_to__isnull=True) | Q(active_to__gt=NOW)
    )
    assert active.values("customer").distinct().count() == 1
    assert rows(logged_in.get("/console/dashboards/?chart=mrr&format=csv"))[1:] == [
        ["pro", "USD", "1", "10.00"]
    ]


def test_usage_trend_over_12_months(logged_in):
    html = logged_in.get("/console/dashboards/usage/").content.decode()
    assert "/console/dashboards/usage/trend/?meter=tokens" in html
    trend = rows(logged_in.get("/console/dashboards/usage/trend/?meter=tokens&chart=usage-trend&format=csv"))
    assert trend[0] == ["Month", "Usage"] and len(trend) == 13
    assert trend[-1] == ["2026-11", "145"] and all(r[1] == "0" for r in trend[1:-1])  # tenant B: 145,000
    section = logged_in.get("/console/dashboards/usage/trend/?meter=tokens", HTTP_HX_REQUEST="true")
    assert section.status_code == 200 and "<svg" in section.content.decode()


def test_empty_dashboards_say_what_will_appear_and_when(client, tenant_a, tenant_b, time_machine):
    """A new organization (nothing invoiced, no subscription, no usage) sees, in each empty table, what
    will appear and when; tenant B's data (seeded) fills none of them."""
    time_machine.move_to(NOW, tick=False)
    seed(tenant_b, 1000)
    client.login(username=tenant_a.user.username, password=PASSWORD)
    html = client.get("/console/dashboards/").content.decode()
    assert html.count('class="muted empty-state"') == 3  # billed, MRR by plan, top customers
    assert "No invoice issued in the last 12 months. An invoice counts here" in html
    assert "first billing period closes and the collection delay" in html
    assert "No active subscription with a recurring flat fee." in html
    assert "Customers appear here by the total of their issued invoices" in html
    assert "Globex" not in html and "No data yet." not in html
    charge = client.get("/console/dashboards/usage/chargeback/?period=this_month").content.decode()
    assert "Nothing invoiced for this period yet." in charge
