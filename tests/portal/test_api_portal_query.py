"""The portal meter query against real metering data: forced to the token's customer, no leak."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from tests.portal.conftest import ingest, make_portal_customer, make_token_meter, subscribe

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 11, 20, tzinfo=UTC)


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def usage(tenant_a, tenant_b):
    for tenant in (tenant_a, tenant_b):
        make_token_meter(tenant)
    a = make_portal_customer(tenant_a, subjects=("subj-1", "subj-2"))
    a2 = make_portal_customer(tenant_a, key="cust-2", subjects=("other",))
    b = make_portal_customer(tenant_b)
    ingest(
        tenant_a,
        [
            ("acme-subj-1", DAY, {"tokens": 100, "model": "gpt-4o", "type": "input"}, "prompt"),
            (
                "acme-subj-2",
                DAY + timedelta(hours=2),
                {"tokens": 50, "model": "gpt-4o", "type": "output"},
                "prompt",
            ),
            (
                "acme-subj-1",
                DAY + timedelta(days=1),
                {"tokens": 7, "model": "mini", "type": "input"},
                "prompt",
            ),
            ("acme-other", DAY, {"tokens": 1000, "model": "gpt-4o", "type": "input"}, "prompt"),
        ],
    )
    ingest(
        tenant_b, [("globex-subj-1", DAY, {"tokens": 99999, "model": "gpt-4o", "type": "input"}, "prompt")]
    )
    return a, a2, b


def test_portal_query_sums_only_the_customers_subjects(usage):
    a, a2, b = usage
    r = bearer(a.token).get(
        "/api/v1/portal/meters/tokens/query",
        {"from": "2026-11-01T00:00:00Z", "to": "2026-11-30T00:00:00Z", "windowSize": "DAY"},
    )
    assert r.status_code == 200, r.content
    data = r.json()["data"]
    assert [(d["windowStart"], d["value"], d["customerId"]) for d in data] == [
        ("2026-11-20T00:00:00Z", 150.0, a.customer.id),
        ("2026-11-21T00:00:00Z", 7.0, a.customer.id),
    ]
    r = bearer(a.token).get("/api/v1/portal/meters/tokens/query", {"groupBy": ["model", "type"]})
    values = sorted((d["groupBy"]["model"], d["groupBy"]["type"], d["value"]) for d in r.json()["data"])
    assert values == [("gpt-4o", "input", 100.0), ("gpt-4o", "output", 50.0), ("mini", "input", 7.0)]
    # One of its own subjects is fine; the other customer's subject is refused.
    r = bearer(a.token).get("/api/v1/portal/meters/tokens/query", {"subject": "acme-subj-2"})
    assert [(d["subject"], d["value"]) for d in r.json()["data"]] == [("acme-subj-2", 50.0)]
    assert (
        bearer(a.token).get("/api/v1/portal/meters/tokens/query", {"subject": "acme-other"}).status_code
        == 403
    )
    # Tenant B's token sees only B's usage on B's meter of the same slug.
    r = bearer(b.token).get("/api/v1/portal/meters/tokens/query")
    assert [d["value"] for d in r.json()["data"]] == [99999.0]
    r = bearer(a2.token).get("/api/v1/portal/meters/tokens/query")
    assert [d["value"] for d in r.json()["data"]] == [1000.0]


def test_subject_token_sees_only_that_subject(tenant_a, usage):
    r = tenant_a.client("admin").post("/api/v1/portal/tokens", {"subject": "acme-subj-2"}, format="json")
    token = r.json()["token"]
    data = bearer(token).get("/api/v1/portal/meters/tokens/query").json()["data"]
    assert [(d["subject"], d["value"]) for d in data] == [("acme-subj-2", 50.0)]


def test_portal_usage_page_charts_the_customers_usage(client, tenant_a, usage, time_machine):
    from tests.catalog.factories import make_feature

    a, _, _ = usage
    make_feature(tenant_a, key="tokens", meter="tokens")
    subscribe(tenant_a, a.customer, feature_keys=["tokens"])
    time_machine.move_to(datetime(2026, 11, 25, 12, tzinfo=UTC), tick=False)
    client.get(f"/portal/{a.token}")
    html = client.get(
        "/portal/usage/tokens/?window=day&feature=tokens", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<svg" in html and "<title>Nov 20: 150</title>" in html and "<title>Nov 21: 7</title>" in html
    assert "99999" not in html and "1,000" not in html
    html = client.get(
        "/portal/usage/tokens/?window=week&feature=tokens", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<title>wk Nov 16: 157</title>" in html
    html = client.get(
        "/portal/usage/tokens/?window=month&feature=tokens", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<title>Nov 2026: 157</title>" in html
    assert 'class="period-total">157<' in html


def test_portal_feature_chart_applies_the_feature_filter(client, tenant_a, usage, time_machine):
    from tests.catalog.factories import make_feature

    a, _, _ = usage
    make_feature(tenant_a, key="gpt_out", meter="tokens", filters={"model": "gpt-4o", "type": "output"})
    subscribe(tenant_a, a.customer, feature_keys=["gpt_out"])
    time_machine.move_to(datetime(2026, 11, 25, 12, tzinfo=UTC), tick=False)
    client.get(f"/portal/{a.token}")
    home = client.get("/portal/").content.decode()
    assert "feature=gpt_out" in home
    html = client.get(
        "/portal/usage/tokens/?window=day&feature=gpt_out", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<title>Nov 20: 50</title>" in html and "<title>Nov 21: 0</title>" in html
    assert 'class="period-total">50<' in html
    r = client.get("/portal/usage/tokens/?feature=nope", HTTP_HX_REQUEST="true")
    assert "No such feature" in r.content.decode()
