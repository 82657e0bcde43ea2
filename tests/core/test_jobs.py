"""core/jobs.py in billing's background tasks: an entitlement whose balance snapshot fails is recorded and
quarantined; every other entitlement (of this and other organizations) is still refreshed."""

from __future__ import annotations

import pytest

from billing import services as billing_services
from billing.models import BalanceSnapshot, Entitlement
from billing.tasks import entitlement_snapshots_refresh
from core import jobs
from core.models import JobFailure
from tests.billing.real_catalog import publish_pro_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def entitlements(tenant_a, tenant_b):
    out = {}
    for tenant in (tenant_a, tenant_b):
        publish_pro_plan(tenant.org)
        billing_services.customer_create(
            organization=tenant.org, name="Acme", key="acme", subject_keys=["s-1"]
        )
        r = tenant.client().post(
            "/api/v1/subscriptions",
            {"customerKey": "acme", "plan": {"key": "pro"}, "activeFrom": "2026-01-01T00:00:00Z"},
            format="json",
        )
        assert r.status_code == 201, r.content
        out[tenant.org.slug] = Entitlement.objects.get(organization=tenant.org, feature_key="tokens")
    return out


def test_a_failing_snapshot_is_quarantined_and_the_others_refresh(
    tenant_a, tenant_b, entitlements, monkeypatch
):
    real = billing_services.entitlement_snapshot_refresh
    poisoned = entitlements["acme"].id

    def failing_for_a(*, organization, entitlement_id, **kwargs):
        if entitlement_id == poisoned:
            raise ArithmeticError("balance overflow")
        return real(organization=organization, entitlement_id=entitlement_id, **kwargs)

    monkeypatch.setattr(billing_services, "entitlement_snapshot_refresh", failing_for_a)
    assert entitlement_snapshots_refresh() == 2
    assert BalanceSnapshot.objects.filter(organization=tenant_b.org).exists()
    assert not BalanceSnapshot.objects.filter(organization=tenant_a.org).exists()
    failure = JobFailure.objects.get()
    assert (failure.job, failure.object_type, failure.object_id, failure.organization_id, failure.error) == (
        "entitlement_snapshot_refresh",
        "entitlement",
        poisoned,
        tenant_a.org.id,
        "ArithmeticError: balance overflow",
    )
    assert entitlement_snapshots_refresh() == 1  # quarantined: only B's is queued
    assert [f.id for f in jobs.job_failures_open(organization=tenant_b.org)] == []
    monkeypatch.setattr(billing_services, "entitlement_snapshot_refresh", real)
    assert jobs.job_failures_retry(organization=tenant_a.org) == 1
    assert entitlement_snapshots_refresh() == 2
    assert BalanceSnapshot.objects.filter(organization=tenant_a.org).exists()
    assert not jobs.job_failures_open()
