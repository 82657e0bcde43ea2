"""The official `openmeter` SDK against a live server: customers, entitlements v2, grants, ingest, value,
access — with the real metering and catalog apps (no fakes)."""

from datetime import UTC, datetime, timedelta

import pytest

from catalog import services as catalog_services
from metering import services as metering_services

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sdk(live_server, tenant_a, tenant_b):
    import openmeter

    for t in (tenant_a, tenant_b):
        metering_services.meter_create(
            organization=t.org,
            slug="tokens_total",
            event_type="prompt",
            aggregation="SUM",
            value_property="$.tokens",
        )
        catalog_services.feature_create(
            organization=t.org, key="gpt_tokens", name="GPT tokens", meter_slug="tokens_total"
        )
        catalog_services.feature_create(organization=t.org, key="sso", name="SSO")
    client = openmeter.Client(endpoint=live_server.url, token=tenant_a.keys["admin"])
    client_b = openmeter.Client(endpoint=live_server.url, token=tenant_b.keys["admin"])
    yield client, client_b
    client.close()
    client_b.close()


def test_sdk_entitlement_value_and_access(sdk):
    client, client_b = sdk
    now = datetime.now(UTC)
    created = client.customers.create(
        {
            "name": "ACME",
            "key": "acme",
            "usageAttribution": {"subjectKeys": ["customer-1"]},
            "primaryEmail": "billing@acme.test",
            "currency": "USD",
        }
    )
    assert created.key == "acme" and created.usage_attribution.subject_keys == ["customer-1"]
    client_b.customers.create(
        {"name": "Other", "key": "acme", "usageAttribution": {"subjectKeys": ["customer-1"]}}
    )
    ent = client.customer_entitlements_v2.post(
        "acme",
        {
            "type": "metered",
            "featureKey": "gpt_tokens",
            "isSoftLimit": False,
            "usagePeriod": {
                "interval": "MONTH",
                "anchor": now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).isoformat(),
            },
            "grants": [
                {
                    "amount": 1000,
                    "priority": 1,
                    "effectiveAt": (now - timedelta(days=1)).isoformat(),
                    "expiration": {"duration": "YEAR", "count": 1},
                }
            ],
        },
    )
    # the SDK returns union-typed responses (EntitlementV2) as plain dicts
    assert ent["featureKey"] == "gpt_tokens" and ent["type"] == "metered"
    client.customer_entitlements_v2.post("acme", {"type": "boolean", "featureKey": "sso"})
    grant = client.customer_entitlement_v2.create_customer_entitlement_grant(
        "acme",
        "gpt_tokens",
        {
            "amount": 50,
            "priority": 0,
            "effectiveAt": (now - timedelta(days=1)).isoformat(),
            "expiration": {"duration": "MONTH", "count": 1},
        },
    )
    assert grant.amount == 50
    t = (now - timedelta(minutes=5)).replace(microsecond=0)
    client.events.ingest_events(
        [
            {
                "id": "evt-1",
                "source": "app",
                "specversion": "1.0",
                "type": "prompt",
                "subject": "customer-1",
                "time": t.isoformat().replace("+00:00", "Z"),
                "data": {"tokens": 100},
            },
            {
                "id": "evt-2",
                "source": "app",
                "specversion": "1.0",
                "type": "prompt",
                "subject": "customer-1",
                "time": t.isoformat().replace("+00:00", "Z"),
                "data": {"tokens": 30},
            },
        ]
    )
    v1 = client.customer_entitlement.get_customer_entitlement_value("acme", "gpt_tokens")
    assert (v1.has_access, v1.balance, v1.usage, v1.overage, v1.total_available_grant_amount) == (
        True,
        920,
        130,
        0,
        1050,
    )
    v2 = client.customer_entitlement_v2.get_customer_entitlement_value("acme", "gpt_tokens")
    assert v2.balance == 920 and v2.grant_balances[grant.id] == 0
    access = client.customer.get_customer_access("acme")
    assert access.entitlements["gpt_tokens"].balance == 920
    assert access.entitlements["sso"].has_access is True
    # tenant B's customer "acme" has nothing, and B's key cannot read A's entitlement by id
    assert dict(client_b.customer.get_customer_access("acme").entitlements) == {}
    from corehttp.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError):
        client_b.customer_entitlement_v2.get_customer_entitlement_value("acme", ent["id"])
