"""Builders for catalog tests (meters belong to metering; tests create them directly)."""

from __future__ import annotations

import json

from metering.models import Meter


def make_meter(org, slug="llm_tokens", group_by=None):
    return Meter.objects.create(
        organization=org,
        slug=slug,
        name=slug,
        event_type="prompt",
        aggregation="SUM",
        value_property="$.tokens",
        group_by=group_by if group_by is not None else {"model": "$.model", "type": "$.type"},
    )


def api(client, method, url, body=None):
    kwargs = {"content_type": "application/json"}
    if body is not None:
        kwargs["data"] = json.dumps(body)
    return getattr(client, method)(url, **kwargs)


GRADUATED = {
    "type": "tiered",
    "mode": "graduated",
    "tiers": [
        {"upToAmount": "1000", "unitPrice": {"type": "unit", "amount": "0.01"}},
        {
            "upToAmount": "10000",
            "unitPrice": {"type": "unit", "amount": "0.005"},
            "flatPrice": {"type": "flat", "amount": "2"},
        },
        {"upToAmount": None, "unitPrice": {"type": "unit", "amount": "0.001"}},
    ],
}


def plan_body(key="pro", feature_key="tokens", **overrides):
    body = {
        "key": key,
        "name": "Pro",
        "currency": "USD",
        "billingCadence": "P1M",
        "phases": [
            {
                "key": "trial",
                "name": "Trial",
                "duration": "P14D",
                "rateCards": [
                    {
                        "type": "flat_fee",
                        "key": "base",
                        "name": "Base fee",
                        "price": {"type": "flat", "amount": "0"},
                        "billingCadence": None,
                    },
                ],
            },
            {
                "key": "standard",
                "name": "Standard",
                "duration": None,
                "rateCards": [
                    {
                        "type": "flat_fee",
                        "key": "base",
                        "name": "Base fee",
                        "billingCadence": "P1M",
                        "price": {"type": "flat", "amount": "49", "paymentTerm": "in_advance"},
                    },
                    {
                        "type": "usage_based",
                        "key": "tokens",
                        "name": "Tokens",
                        "featureKey": feature_key,
                        "billingCadence": "P1M",
                        "price": GRADUATED,
                        "discounts": {"usage": {"quantity": "100"}},
                        "entitlementTemplate": {"type": "metered", "usagePeriod": "P1M", "isSoftLimit": True},
                    },
                ],
            },
        ],
    }
    body.update(overrides)
    return body


def make_feature(tenant, key="tokens", meter="llm_tokens", filters=None):
    response = api(
        tenant.client("admin"),
        "post",
        "/api/v1/features",
        {"key": key, "name": key.title(), "meterSlug": meter, "meterGroupByFilters": filters or {}},
    )
    assert response.status_code == 201, response.content
    return response.json()
