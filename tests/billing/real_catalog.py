"""Helpers that build plans with the real catalog app (for integration and browser tests)."""

from __future__ import annotations

from catalog import services as catalog_services
from metering import services as metering_services


def publish_pro_plan(org, *, key: str = "pro", name: str = "Pro", fee: str = "30", tokens: str = "1000"):
    metering_services.meter_create(
        organization=org,
        slug="tokens_total",
        event_type="prompt",
        aggregation="SUM",
        value_property="$.tokens",
    )
    catalog_services.feature_create(organization=org, key="tokens", name="Tokens", meter_slug="tokens_total")
    catalog_services.feature_create(organization=org, key="sso", name="SSO")
    data = {
        "key": key,
        "name": name,
        "currency": "USD",
        "billingCadence": "P1M",
        "phases": [
            {
                "key": "default",
                "name": "Default",
                "duration": None,
                "rateCards": [
                    {
                        "type": "flat_fee",
                        "key": "setup",
                        "name": "Setup fee",
                        "billingCadence": None,
                        "price": {"type": "flat", "amount": "100", "paymentTerm": "in_advance"},
                    },
                    {
                        "type": "flat_fee",
                        "key": "base",
                        "name": "Base fee",
                        "billingCadence": "P1M",
                        "price": {"type": "flat", "amount": fee, "paymentTerm": "in_advance"},
                    },
                    {
                        "type": "usage_based",
                        "key": "tokens",
                        "name": "Tokens",
                        "featureKey": "tokens",
                        "billingCadence": "P1M",
                        "price": {"type": "unit", "amount": "0.001"},
                        "entitlementTemplate": {
                            "type": "metered",
                            "usagePeriod": "P1M",
                            "issueAfterReset": tokens,
                        },
                    },
                    {
                        "type": "flat_fee",
                        "key": "sso",
                        "name": "SSO",
                        "featureKey": "sso",
                        "billingCadence": "P1M",
                        "price": {"type": "flat", "amount": "0", "paymentTerm": "in_advance"},
                        "entitlementTemplate": {"type": "boolean"},
                    },
                ],
            }
        ],
    }
    plan = catalog_services.plan_create(organization=org, key=key, data=data)
    return catalog_services.plan_publish(organization=org, plan_id=plan.id)
