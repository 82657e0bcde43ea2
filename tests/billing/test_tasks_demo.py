"""Tasks (take ids, call one service, idempotent) and the demo loader (idempotent)."""

from datetime import UTC, datetime
from unittest import mock

import pytest
import time_machine

from billing import services, tasks
from billing.models import BalanceSnapshot, Customer

pytestmark = pytest.mark.django_db


def test_snapshot_tasks_are_idempotent(tenant_a, tenant_b, catalog):
    catalog.add_feature(tenant_a.org, "tokens", meter="tokens_total")
    cust = services.customer_create(organization=tenant_a.org, name="A", key="a", subject_keys=["s"])
    with time_machine.travel(datetime(2026, 1, 1, tzinfo=UTC), tick=False):
        ent = services.entitlement_create(
            organization=tenant_a.org,
            customer=cust,
            feature_key="tokens",
            type="metered",
            usage_period_interval="MONTH",
            issue_after_reset=10,
        )
    catalog.usage(tenant_a.org, "tokens_total", "s", datetime(2026, 1, 2, tzinfo=UTC), 3)
    with mock.patch.object(tasks.entitlement_snapshot_refresh, "apply_async") as enqueue:
        assert tasks.entitlement_snapshots_refresh() == 1
    enqueue.assert_called_once_with((tenant_a.org.id, ent.id), queue="billing", expires=55)
    with time_machine.travel(datetime(2026, 1, 3, tzinfo=UTC), tick=False):
        tasks.entitlement_snapshot_refresh(tenant_a.org.id, ent.id)
        tasks.entitlement_snapshot_refresh(tenant_a.org.id, ent.id)
    snap = BalanceSnapshot.objects.get(entitlement=ent)
    assert (snap.usage, snap.organization_id) == (3, tenant_a.org.id)
    # the usage-landed task drops snapshots after a late event
    tasks.usage_landed(tenant_a.org.id, ["s"], "2026-01-01T12:00:00+00:00")
    assert not BalanceSnapshot.objects.exists()
    tasks.usage_landed(tenant_b.org.id, ["s"], "2026-01-01T12:00:00+00:00")  # other tenant: nothing to do


def test_demo_loader_is_idempotent(db):
    from core.demo import demo_load

    info = demo_load()
    demo_load()
    assert Customer.objects.filter(organization=info.organization, key="acme").count() == 1
