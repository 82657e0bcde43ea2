"""Subscriptions API: change (immediate / next cycle), migrate, add-ons, errors, scopes, isolation."""

from datetime import UTC, datetime

import pytest
import time_machine

from billing import services
from billing.models import Subscription
from billing.sources import AddonSpec, RateCardSpec
from core.models import AuditLog
from tests.billing.conftest import flat, pro_plan

pytestmark = pytest.mark.django_db


def d(*a):
    return datetime(*a, tzinfo=UTC)


@pytest.fixture
def sub(tenant_a, tenant_b, catalog):
    pro_plan(tenant_a.org, catalog)
    pro_plan(tenant_a.org, catalog, key="business", fee="99")
    pro_plan(tenant_b.org, catalog)
    catalog.add_addon(
        tenant_a.org,
        AddonSpec(
            id="01ADDON0000000000000000000",
            key="seats",
            version=1,
            name="Seats",
            rate_cards=(RateCardSpec(key="seat", name="Seat", price=flat("5")),),
        ),
    )
    services.customer_create(organization=tenant_a.org, name="Acme", key="acme", subject_keys=["s"])
    r = tenant_a.client().post(
        "/api/v1/subscriptions",
        {"customerKey": "acme", "plan": {"key": "pro"}, "activeFrom": "2026-04-01T00:00:00Z"},
        format="json",
    )
    assert r.status_code == 201, r.content
    return r.json()


def test_change_immediately_and_next_cycle(tenant_a, sub):
    with time_machine.travel(d(2026, 4, 16), tick=False):
        r = tenant_a.client().post(
            f"/api/v1/subscriptions/{sub['id']}/change",
            {"plan": {"key": "business"}, "timing": "immediate"},
            format="json",
        )
        assert r.status_code == 200, r.content
        body = r.json()
        assert body["current"]["activeTo"] == "2026-04-16T00:00:00Z"
        assert (
            body["next"]["plan"]["key"] == "business" and body["next"]["activeFrom"] == "2026-04-16T00:00:00Z"
        )
        assert body["next"]["previousSubscriptionId"] == sub["id"]
        new_id = body["next"]["id"]
        r = tenant_a.client().post(
            f"/api/v1/subscriptions/{new_id}/change",
            {"plan": {"key": "pro"}, "timing": "next_billing_cycle"},
            format="json",
        )
        assert r.status_code == 200 and r.json()["next"]["activeFrom"] == "2026-05-01T00:00:00Z"
        # a second scheduled change of the same subscription is a conflict
        r = tenant_a.client().post(
            f"/api/v1/subscriptions/{new_id}/change", {"plan": {"key": "business"}}, format="json"
        )
        assert r.status_code == 409 and r["Content-Type"].startswith("application/problem+json")
        r = tenant_a.client().post(
            f"/api/v1/subscriptions/{new_id}/change",
            {"plan": {"key": "pro"}, "timing": "someday"},
            format="json",
        )
        assert r.status_code == 400 and r.json()["invalid_params"][0]["name"] == "timing"
    assert Subscription.objects.filter(organization=tenant_a.org).count() == 3


def test_migrate_and_addons(tenant_a, catalog, sub):
    pro_plan(tenant_a.org, catalog, version=2, fee="40")
    with time_machine.travel(d(2026, 4, 10), tick=False):
        r = tenant_a.client().post(
            f"/api/v1/subscriptions/{sub['id']}/addons",
            {"addon": {"key": "seats"}, "quantity": 3},
            format="json",
        )
        assert r.status_code == 200, r.content
        assert [(a["addon"]["key"], a["quantity"]) for a in r.json()["addons"]] == [("seats", 3)]
        r = tenant_a.client().post(
            f"/api/v1/subscriptions/{sub['id']}/migrate", {"timing": "next_billing_cycle"}, format="json"
        )
        assert r.status_code == 200, r.content
        nxt = r.json()["next"]
        assert nxt["plan"]["version"] == 2 and nxt["activeFrom"] == "2026-05-01T00:00:00Z"
        assert [(a["addon"]["key"], a["quantity"]) for a in nxt["addons"]] == [("seats", 3)]  # carried over
        r = tenant_a.client().post(f"/api/v1/subscriptions/{nxt['id']}/migrate", {}, format="json")
        assert r.status_code == 400  # already on the latest version
    assert AuditLog.objects.filter(action="subscription.addon_changed").count() == 1


def test_errors_scopes_isolation(tenant_a, tenant_b, sub):
    assert (
        tenant_a.client("read")
        .post(f"/api/v1/subscriptions/{sub['id']}/cancel", {}, format="json")
        .status_code
        == 403
    )
    assert (
        tenant_b.client().post(f"/api/v1/subscriptions/{sub['id']}/cancel", {}, format="json").status_code
        == 404
    )
    assert tenant_b.client("read").get(f"/api/v1/subscriptions/{sub['id']}").status_code == 404
    r = tenant_a.client().post(
        "/api/v1/subscriptions", {"customerKey": "acme", "plan": {"key": "pro"}}, format="json"
    )
    assert r.status_code == 409  # already subscribed
    r = tenant_a.client().post("/api/v1/subscriptions", {"plan": {"key": "pro"}}, format="json")
    assert r.status_code == 400 and r.json()["invalid_params"][0]["name"] == "customerId"
    r = tenant_b.client().post(
        "/api/v1/subscriptions", {"customerKey": "acme", "plan": {"key": "pro"}}, format="json"
    )
    assert r.status_code == 404  # B has no customer "acme"
    assert Subscription.objects.filter(organization=tenant_b.org).count() == 0
    body = tenant_a.client("read").get("/api/v1/subscriptions?status=active").json()
    assert body["totalCount"] == 1 and body["items"][0]["id"] == sub["id"]
