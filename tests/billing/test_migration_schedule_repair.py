"""billing.0004 repairs subscription schedules saved with absurd timings before times were validated:
migrate back, write the rows the old code wrote (the service still writes them when called without the
API's validation), migrate forward, and check the pending change is canceled, the clipped rows reopen,
an audit row says what happened, and another tenant's legitimate scheduled change is untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from billing import services
from billing.models import Entitlement, Subscription, SubscriptionItem, SubscriptionPhase
from core.models import AuditLog
from tests.billing.conftest import pro_plan

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("billing", "0003_subscriptionitem_commitments")
REPAIR = ("billing", "0004_repair_out_of_range_schedules")
ABSURD = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def migrate(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


@pytest.fixture
def before_repair():
    migrate(BEFORE)
    yield
    executor = MigrationExecutor(connection)
    migrate(executor.loader.graph.leaf_nodes("billing")[0])


def subscribe(tenant, catalog, key: str):
    pro_plan(tenant.org, catalog)
    pro_plan(tenant.org, catalog, key="max", fee="90")
    cust = services.customer_create(
        organization=tenant.org, name=key.title(), key=key, currency="USD", subject_keys=[f"{key}-1"]
    )
    return cust, services.subscription_create(organization=tenant.org, customer=cust, plan_key="pro")


def test_a_change_scheduled_for_9999_is_canceled_and_the_old_plan_reopened(
    before_repair, tenant_a, tenant_b, catalog
):
    cust_a, old_a = subscribe(tenant_a, catalog, "acme")
    _, new_a = services.subscription_change(
        organization=tenant_a.org, subscription=old_a, plan_key="max", timing=ABSURD
    )
    cust_b, old_b = subscribe(tenant_b, catalog, "globex")
    soon = timezone.now() + timedelta(days=3)
    _, new_b = services.subscription_change(
        organization=tenant_b.org, subscription=old_b, plan_key="max", timing=soon
    )
    clipped_a = SubscriptionItem.objects.filter(subscription=old_a, active_to=ABSURD).count()
    assert clipped_a == 3  # the old code's write: base, tokens, sso ended in year 9999
    assert Entitlement.objects.filter(subscription=new_a).count() == 2
    b_rows = sorted(
        SubscriptionItem.objects.filter(organization=tenant_b.org).values_list(
            "id", "active_from", "active_to"
        )
    )

    migrate(REPAIR)

    # tenant A: the pending change is gone, the old subscription and everything clipped is open-ended again
    assert list(Subscription.objects.filter(organization=tenant_a.org).values_list("id", flat=True)) == [
        old_a.id
    ]
    old_a.refresh_from_db()
    assert (old_a.active_to, old_a.cancel_requested_at) == (None, None)
    assert (
        list(SubscriptionItem.objects.filter(subscription=old_a).values_list("active_to", flat=True))
        == [None] * 3
    )
    assert list(SubscriptionPhase.objects.filter(subscription=old_a).values_list("ends_at", flat=True)) == [
        None
    ]
    live = Entitlement.objects.filter(customer=cust_a, deleted_at=None)
    assert sorted(live.values_list("feature_key", "subscription_id", "active_to")) == [
        ("sso", old_a.id, None),
        ("tokens", old_a.id, None),
    ]
    assert not SubscriptionPhase.objects.filter(subscription_id=new_a.id).exists()
    entry = AuditLog.objects.get(organization=tenant_a.org, action="subscription.schedule_repaired")
    assert entry.object_id == old_a.id
    assert entry.after["deleted"]["subscription"] == [new_a.id]
    assert len(entry.after["deleted"]["entitlement"]) == 2
    assert len(entry.after["reopened"]["item"]) == 3
    assert entry.after["reopened"]["subscription"] == [old_a.id]

    # tenant B: a legitimate change three days out is untouched, and no audit row is written for it
    assert set(Subscription.objects.filter(organization=tenant_b.org).values_list("id", flat=True)) == {
        old_b.id,
        new_b.id,
    }
    old_b.refresh_from_db()
    assert old_b.active_to == soon
    assert (
        sorted(
            SubscriptionItem.objects.filter(organization=tenant_b.org).values_list(
                "id", "active_from", "active_to"
            )
        )
        == b_rows
    )
    assert Entitlement.objects.filter(customer=cust_b, deleted_at=None).count() == 4
    assert not AuditLog.objects.filter(
        organization=tenant_b.org, action="subscription.schedule_repaired"
    ).exists()


def test_a_cancelation_scheduled_for_9999_is_unscheduled(before_repair, tenant_a, catalog):
    cust, sub = subscribe(tenant_a, catalog, "acme")
    services.subscription_cancel(organization=tenant_a.org, subscription=sub, timing=ABSURD)
    sub.refresh_from_db()
    assert sub.active_to == ABSURD and sub.cancel_requested_at is not None

    migrate(REPAIR)

    sub.refresh_from_db()
    assert (sub.active_to, sub.cancel_requested_at) == (None, None)
    assert not SubscriptionItem.objects.filter(subscription=sub).exclude(active_to=None).exists()
    assert Entitlement.objects.filter(customer=cust, deleted_at=None, active_to=None).count() == 2
    entry = AuditLog.objects.get(action="subscription.schedule_repaired")
    assert entry.after["deleted"] == {}
    assert entry.after["reopened"]["subscription"] == [sub.id]
