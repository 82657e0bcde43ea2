"""Portal fixtures: a customer in each tenant (same key on purpose, to catch lookups by key across orgs)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from billing.services import customer_create
from metering.services import events_ingest, rollups_advance
from portal.services import portal_token_create
from tests.factories import MeterFactory, SubscriptionFactory, SubscriptionItemFactory


@dataclass
class PortalCustomer:
    tenant: object
    customer: object
    token: str
    token_id: str


def make_portal_customer(tenant, *, key: str = "cust-1", subjects=("subj-1",)) -> PortalCustomer:
    customer = customer_create(
        organization=tenant.org,
        name=f"{tenant.org.slug} customer {key}",
        key=key,
        currency="USD",
        subject_keys=[f"{tenant.org.slug}-{s}" for s in subjects],
    )
    row, token = portal_token_create(organization=tenant.org, customer=customer.id)
    return PortalCustomer(tenant=tenant, customer=customer, token=token, token_id=row.id)


@pytest.fixture
def cust_a(tenant_a) -> PortalCustomer:
    return make_portal_customer(tenant_a)


@pytest.fixture
def cust_b(tenant_b) -> PortalCustomer:
    return make_portal_customer(tenant_b)


def ingest(tenant, rows) -> None:
    """rows: (subject, time, data dict, event type) → stored events, then rollups advanced."""
    events = [
        ("test", f"{tenant.org.slug}-{i}-{subject}-{t.isoformat()}", etype, subject, t, json.dumps(data))
        for i, (subject, t, data, etype) in enumerate(rows)
    ]
    events_ingest(organization=tenant.org, events=events)
    rollups_advance(organization_id=tenant.org.id)


def make_token_meter(tenant):
    return MeterFactory(
        organization=tenant.org,
        slug="tokens",
        group_by={"model": "$.model", "type": "$.type"},
        name="AI tokens",
    )


def subscribe(tenant, customer, *, feature_keys=(), addon_feature_keys=(), since=None, plan_key="pro"):
    """An active subscription of `customer` whose plan items bill `feature_keys` (and add-on items
    `addon_feature_keys`), stored directly (what billing materializes from a plan), active since `since`."""
    since = since or datetime(2026, 1, 1, tzinfo=UTC)
    sub = SubscriptionFactory(
        customer=customer, plan_key=plan_key, billing_anchor=since, currency="USD", plan_snapshot={}
    )
    for key, addon in [*((k, "") for k in feature_keys), *((k, "extra") for k in addon_feature_keys)]:
        SubscriptionItemFactory(
            subscription=sub,
            key=key,
            name=key,
            feature_key=key,
            addon_key=addon,
            price={"type": "unit", "amount": "0.01"},
        )
    return sub
