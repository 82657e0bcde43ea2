"""Portal fixtures: a customer in each tenant (same key on purpose, to catch lookups by key across orgs)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from billing.services import customer_create
from portal.services import portal_token_create


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
    import json

    from metering.services import events_ingest, rollups_advance

    events = [
        ("test", f"{tenant.org.slug}-{i}-{subject}-{t.isoformat()}", etype, subject, t, json.dumps(data))
        for i, (subject, t, data, etype) in enumerate(rows)
    ]
    events_ingest(organization=tenant.org, events=events)
    rollups_advance(organization_id=tenant.org.id)


def make_token_meter(tenant):
    from metering.services import meter_create

    return meter_create(
        organization=tenant.org,
        slug="tokens",
        event_type="prompt",
        aggregation="SUM",
        value_property="$.tokens",
        group_by={"model": "$.model", "type": "$.type"},
        name="AI tokens",
    )
