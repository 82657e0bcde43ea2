"""Entitlements and grants API (OpenMeter v2 customer-scoped paths), value/access, notifications, isolation."""

from datetime import UTC, datetime

import pytest
import time_machine

from billing import services
from billing.models import Entitlement, Grant, NotificationEvent
from core.models import AuditLog

pytestmark = pytest.mark.django_db
T = datetime(2026, 3, 1, tzinfo=UTC)


def d(*a):
    return datetime(*a, tzinfo=UTC)


@pytest.fixture
def setup(tenant_a, tenant_b, catalog):
    for t in (tenant_a, tenant_b):
        catalog.add_feature(t.org, "tokens", meter="tokens_total")
        catalog.add_feature(t.org, "sso")
        catalog.add_feature(t.org, "models")
        services.customer_create(organization=t.org, name="Acme", key="acme", subject_keys=["s-1"])
    return catalog


def create_metered(tenant, **extra):
    body = {
        "type": "metered",
        "featureKey": "tokens",
        "usagePeriod": {"interval": "MONTH", "anchor": "2026-03-01T00:00:00Z"},
        "isSoftLimit": False,
        **extra,
    }
    r = tenant.client().post("/api/v2/customers/acme/entitlements", body, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def test_metered_entitlement_grants_value_and_access(tenant_a, tenant_b, setup):
    with time_machine.travel(d(2026, 3, 2), tick=False):
        ent = create_metered(
            tenant_a,
            grants=[
                {
                    "amount": 1000,
                    "priority": 1,
                    "effectiveAt": "2026-03-01T00:00:00Z",
                    "expiration": {"duration": "YEAR", "count": 1},
                }
            ],
        )
        assert ent["usagePeriod"] == {"interval": "MONTH", "anchor": "2026-03-01T00:00:00Z"}
        assert ent["currentUsagePeriod"] == {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
        r = tenant_a.client().post(
            "/api/v2/customers/acme/entitlements/tokens/grants",
            {"amount": 50, "priority": 0, "effectiveAt": "2026-03-01T00:00:00Z"},
            format="json",
        )
        assert r.status_code == 201 and r.json()["priority"] == 0
        setup.usage(tenant_a.org, "tokens_total", "s-1", d(2026, 3, 1, 12), 80)
        setup.usage(tenant_b.org, "tokens_total", "s-1", d(2026, 3, 1, 12), 5000)  # B's usage must not count
        value = tenant_a.client("read").get("/api/v2/customers/acme/entitlements/tokens/value").json()
        assert value["hasAccess"] is True and value["balance"] == 970 and value["usage"] == 80
        assert value["overage"] == 0 and value["totalAvailableGrantAmount"] == 1050
        assert sorted(value["grantBalances"].values()) == [0, 970]
        v1 = tenant_a.client("read").get("/api/v1/customers/acme/entitlements/tokens/value").json()
        assert v1 == {
            "hasAccess": True,
            "balance": 970,
            "usage": 80,
            "overage": 0,
            "totalAvailableGrantAmount": 1050,
        }
        by_id = tenant_a.client("read").get(f"/api/v2/customers/acme/entitlements/{ent['id']}/value").json()
        assert by_id["balance"] == 970
        access = tenant_a.client("read").get("/api/v1/customers/acme/access").json()
        assert access == {"entitlements": {"tokens": v1}}
        # B has its own customer "acme" with no entitlements
        assert tenant_b.client("read").get("/api/v1/customers/acme/access").json() == {"entitlements": {}}
        assert (
            tenant_b.client("read").get(f"/api/v2/customers/acme/entitlements/{ent['id']}").status_code == 404
        )
        grants = tenant_a.client("read").get("/api/v2/customers/acme/entitlements/tokens/grants").json()
        assert grants["totalCount"] == 2
        assert tenant_b.client().delete(f"/api/v1/grants/{grants['items'][0]['id']}").status_code == 404
        assert tenant_a.client().delete(f"/api/v1/grants/{grants['items'][0]['id']}").status_code == 204
        assert Grant.objects.filter(voided_at__isnull=False).count() == 1


def test_duplicate_entitlement_is_409_and_override_replaces(tenant_a, setup):
    with time_machine.travel(d(2026, 3, 2), tick=False):
        first = create_metered(tenant_a)
        r = tenant_a.client().post(
            "/api/v2/customers/acme/entitlements", {"type": "boolean", "featureKey": "tokens"}, format="json"
        )
        assert r.status_code == 409 and r["Content-Type"].startswith("application/problem+json")
        r = tenant_a.client().put(
            "/api/v2/customers/acme/entitlements/tokens/override",
            {
                "type": "metered",
                "featureKey": "tokens",
                "usagePeriod": {"interval": "DAY"},
                "isSoftLimit": True,
            },
            format="json",
        )
        assert r.status_code == 201 and r.json()["isSoftLimit"] is True and r.json()["id"] != first["id"]
        assert Entitlement.objects.get(id=first["id"]).deleted_at is not None
        value = tenant_a.client().get("/api/v2/customers/acme/entitlements/tokens/value").json()
        assert value["hasAccess"] is True and value["balance"] == 0  # soft limit
        assert AuditLog.objects.filter(action="entitlement.overridden").count() == 1


def test_boolean_and_static(tenant_a, setup):
    r = tenant_a.client().post(
        "/api/v2/customers/acme/entitlements", {"type": "boolean", "featureKey": "sso"}, format="json"
    )
    assert r.status_code == 201
    r = tenant_a.client().post(
        "/api/v2/customers/acme/entitlements",
        {"type": "static", "featureKey": "models", "config": '{"allowed":["gpt-4o"]}'},
        format="json",
    )
    assert r.status_code == 201 and r.json()["config"] == '{"allowed":["gpt-4o"]}'
    access = tenant_a.client("read").get("/api/v1/customers/acme/access").json()["entitlements"]
    assert access == {
        "sso": {"hasAccess": True},
        "models": {"hasAccess": True, "config": '{"allowed":["gpt-4o"]}'},
    }
    r = tenant_a.client().post(
        "/api/v2/customers/acme/entitlements",
        {"type": "static", "featureKey": "x", "config": "{"},
        format="json",
    )
    assert r.status_code == 404  # unknown feature
    assert tenant_a.client().delete("/api/v2/customers/acme/entitlements/sso").status_code == 204
    assert tenant_a.client().get("/api/v2/customers/acme/entitlements/sso").status_code == 404


def test_scopes(tenant_a, setup):
    assert (
        tenant_a.client("read")
        .post("/api/v2/customers/acme/entitlements", {"type": "boolean", "featureKey": "sso"}, format="json")
        .status_code
        == 403
    )
    assert tenant_a.client("ingest").get("/api/v1/customers/acme/access").status_code == 403
    assert not Entitlement.objects.exists()


def test_reset_and_history(tenant_a, setup):
    with time_machine.travel(d(2026, 3, 10), tick=False):
        create_metered(
            tenant_a, grants=[{"amount": 100, "effectiveAt": "2026-03-01T00:00:00Z", "maxRolloverAmount": 30}]
        )
        setup.usage(tenant_a.org, "tokens_total", "s-1", d(2026, 3, 2), 60)
        setup.usage(tenant_a.org, "tokens_total", "s-1", d(2026, 3, 6), 10)
        r = tenant_a.client().post(
            "/api/v2/customers/acme/entitlements/tokens/reset",
            {"effectiveAt": "2026-03-05T00:00:00Z"},
            format="json",
        )
        assert r.status_code == 204
        value = tenant_a.client().get("/api/v2/customers/acme/entitlements/tokens/value").json()
        assert (value["balance"], value["usage"]) == (20, 10)  # 40 left -> rolled over capped at 30, minus 10
        hist = (
            tenant_a.client()
            .get(
                "/api/v2/customers/acme/entitlements/tokens/history"
                "?from=2026-03-01T00:00:00Z&to=2026-03-08T00:00:00Z&windowSize=DAY"
            )
            .json()
        )
        assert [w["usage"] for w in hist["windowedHistory"]] == [0, 60, 0, 0, 0, 10, 0]
        assert hist["burndownHistory"][0]["usage"] == 60


def test_threshold_notifications_fire_once_per_period(tenant_a, tenant_b, setup):
    r = tenant_a.client().post(
        "/api/v1/notification/rules",
        {
            "name": "75%",
            "featureKey": "tokens",
            "thresholds": [{"type": "PERCENT", "value": 75}, {"type": "PERCENT", "value": 100}],
        },
        format="json",
    )
    assert r.status_code == 201
    with time_machine.travel(d(2026, 3, 10), tick=False):
        create_metered(tenant_a, issueAfterReset=100)
        setup.usage(tenant_a.org, "tokens_total", "s-1", d(2026, 3, 9), 80)
        services.entitlements_usage_landed(
            organization=tenant_a.org, subject_keys=["s-1"], earliest_event_time=d(2026, 3, 9)
        )
        services.entitlements_usage_landed(
            organization=tenant_a.org, subject_keys=["s-1"], earliest_event_time=d(2026, 3, 9)
        )
    events = tenant_a.client("read").get("/api/v1/notification/events").json()
    assert events["totalCount"] == 1
    ev = events["items"][0]
    assert ev["type"] == "entitlements.balance.threshold"
    assert ev["payload"]["threshold"] == {"type": "PERCENT", "value": "75"}
    assert ev["payload"]["value"]["usage"] == 80 and ev["payload"]["customer"]["key"] == "acme"
    assert tenant_b.client("read").get("/api/v1/notification/events").json()["totalCount"] == 0
    assert NotificationEvent.objects.count() == 1


def test_admin_listings_are_tenant_scoped(tenant_a, tenant_b, setup):
    with time_machine.travel(d(2026, 3, 2), tick=False):
        create_metered(tenant_a, grants=[{"amount": 10, "effectiveAt": "2026-03-01T00:00:00Z"}])
        create_metered(tenant_b)
    a = tenant_a.client("read").get("/api/v2/entitlements").json()
    assert a["totalCount"] == 1 and a["items"][0]["customerKey"] == "acme"
    assert tenant_a.client("read").get("/api/v2/grants").json()["totalCount"] == 1
    assert tenant_b.client("read").get("/api/v2/grants").json()["totalCount"] == 0


def test_thresholds_also_fire_from_the_snapshot_refresh(tenant_a, setup):
    tenant_a.client().post(
        "/api/v1/notification/rules",
        {"name": "low", "featureKey": "tokens", "thresholds": [{"type": "BALANCE_VALUE", "value": 10}]},
        format="json",
    )
    with time_machine.travel(d(2026, 3, 10), tick=False):
        ent = create_metered(tenant_a, issueAfterReset=100)
        setup.usage(tenant_a.org, "tokens_total", "s-1", d(2026, 3, 9), 95)
        services.entitlement_snapshot_refresh(organization=tenant_a.org, entitlement_id=ent["id"])
        services.entitlement_snapshot_refresh(organization=tenant_a.org, entitlement_id=ent["id"])
    events = list(NotificationEvent.objects.filter(organization=tenant_a.org))
    assert len(events) == 1 and events[0].payload["value"]["balance"] == 5
