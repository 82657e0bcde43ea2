"""Subscriptions from plans published with the real catalog app (no fakes): entitlements from templates,
billable items, and the subscriptions API."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing import selectors, services
from billing.models import Entitlement
from tests.billing.real_catalog import publish_pro_plan

pytestmark = pytest.mark.django_db


def test_subscribe_to_real_catalog_plan_via_api(tenant_a, tenant_b):
    publish_pro_plan(tenant_a.org)
    publish_pro_plan(tenant_b.org, fee="99")
    services.customer_create(organization=tenant_a.org, name="Acme", key="acme", subject_keys=["s-1"])
    r = tenant_a.client().post(
        "/api/v1/subscriptions",
        {"customerKey": "acme", "plan": {"key": "pro"}, "activeFrom": "2026-01-31T00:00:00Z"},
        format="json",
    )
    assert r.status_code == 201, r.content
    sub = r.json()
    assert (
        sub["plan"]["version"] == 1
        and sub["status"] == "active"
        and sub["billingAnchor"] == "2026-01-31T00:00:00Z"
    )
    assert [i["key"] for i in sub["phases"][0]["items"]] == ["base", "setup", "sso", "tokens"]
    assert tenant_b.client().get(f"/api/v1/subscriptions/{sub['id']}").status_code == 404
    assert tenant_b.client().get("/api/v1/subscriptions").json()["totalCount"] == 0
    assert tenant_a.client("read").get("/api/v1/subscriptions?customerId=acme").json()["totalCount"] == 1
    assert tenant_a.client("read").post(f"/api/v1/subscriptions/{sub['id']}/cancel", {}).status_code == 403
    cust = selectors.customer_get(organization=tenant_a.org, id_or_key="acme")
    ents = {e.feature_key: e for e in Entitlement.objects.filter(customer=cust)}
    assert ents["tokens"].issue_after_reset == Decimal(1000) and ents["sso"].type == "boolean"
    items = selectors.billable_items(
        organization=tenant_a.org,
        customer=cust,
        period_start=datetime(2026, 2, 1, tzinfo=UTC),
        period_end=datetime(2026, 3, 1, tzinfo=UTC),
    )
    base = [i for i in items if i.key == "base"]
    assert [(i.period_start.day, i.period_end.day, i.flat_amount()) for i in base] == [
        (31, 28, Decimal("30.00")),
        (28, 31, Decimal("30.00")),
    ]
    first = selectors.billable_items(
        organization=tenant_a.org,
        customer=cust,
        period_start=datetime(2026, 1, 31, tzinfo=UTC),
        period_end=datetime(2026, 2, 28, tzinfo=UTC),
    )
    assert [(i.key, i.one_time, i.flat_amount()) for i in first if i.key in ("setup", "base")] == [
        ("base", False, Decimal("30.00")),
        ("setup", True, Decimal("100.00")),
    ]
    assert not [i for i in items if i.key == "setup"]  # one-time: only in the first window
    access = tenant_a.client("read").get("/api/v1/customers/acme/access").json()["entitlements"]
    assert access["sso"] == {"hasAccess": True} and access["tokens"]["balance"] == 1000
    r = tenant_a.client().post(
        f"/api/v1/subscriptions/{sub['id']}/cancel", {"timing": "next_billing_cycle"}, format="json"
    )
    assert r.status_code == 200 and r.json()["status"] == "canceled" and r.json()["activeTo"]
    r = tenant_a.client().post(f"/api/v1/subscriptions/{sub['id']}/unschedule-cancelation")
    assert r.status_code == 200 and r.json()["activeTo"] is None
    r = tenant_a.client().post(
        f"/api/v1/subscriptions/{sub['id']}/change", {"plan": {"key": "nope"}}, format="json"
    )
    assert r.status_code == 404
