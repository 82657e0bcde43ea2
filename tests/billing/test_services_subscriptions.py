"""Subscription scenarios with frozen time: a year on a plan anchored Jan 31, trial then paid, upgrade
with proration, cancel at period end, add-on quantity change, migrate, isolation."""

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
import time_machine

from billing import selectors, services
from billing.models import Entitlement, Subscription, SubscriptionItem
from billing.sources import AddonSpec, RateCardSpec
from billing.subscriptions.schedule import SubscriptionNotActive
from core.errors import Conflict, ValidationFailed
from core.models import AuditLog
from tests.billing.conftest import flat, pro_plan

pytestmark = pytest.mark.django_db


def d(*a):
    return datetime(*a, tzinfo=UTC)


def customer(tenant, key="acme", subjects=("s-1",)):
    return services.customer_create(
        organization=tenant.org, name=key.title(), key=key, currency="USD", subject_keys=list(subjects)
    )


def base_amounts(org, cust, start, end):
    return [
        (i.key, i.span_start.date().isoformat(), i.span_end.date().isoformat(), i.flat_amount())
        for i in selectors.billable_items(organization=org, customer=cust, period_start=start, period_end=end)
        if i.flat_amount() is not None
    ]


def test_a_year_on_a_monthly_plan_anchored_jan_31(tenant_a, tenant_b, catalog):
    pro_plan(tenant_a.org, catalog)
    cust = customer(tenant_a)
    with time_machine.travel(d(2026, 1, 31, 9), tick=False):
        sub = services.subscription_create(
            organization=tenant_a.org,
            customer=cust,
            plan_key="pro",
            active_from=d(2026, 1, 31),
            billing_anchor=d(2026, 1, 31),
        )
    items = selectors.billable_items(
        organization=tenant_a.org, customer=cust, period_start=d(2026, 1, 31), period_end=d(2027, 1, 31)
    )
    base = [i for i in items if i.key == "base"]
    assert [i.period_start.date().isoformat() for i in base] == [
        "2026-01-31",
        "2026-02-28",
        "2026-03-31",
        "2026-04-30",
        "2026-05-31",
        "2026-06-30",
        "2026-07-31",
        "2026-08-31",
        "2026-09-30",
        "2026-10-31",
        "2026-11-30",
        "2026-12-31",
    ]
    assert all(i.proration == 1 and i.flat_amount() == Decimal("30.00") for i in base)
    assert sum(i.flat_amount() for i in base) == Decimal("360.00")
    # the tokens allowance resets on the same days
    ent = Entitlement.objects.get(subscription=sub, feature_key="tokens")
    catalog.usage(tenant_a.org, "tokens_total", "s-1", d(2026, 2, 27, 12), 900)
    catalog.usage(tenant_a.org, "tokens_total", "s-1", d(2026, 2, 28, 1), 50)
    v = selectors.entitlement_value(organization=tenant_a.org, entitlement=ent, at=d(2026, 2, 28, 2))
    assert (v.balance, v.usage, v.period_start) == (Decimal(950), Decimal(50), d(2026, 2, 28))
    # tenant B sees nothing of it
    assert selectors.subscription_list(organization=tenant_b.org).count() == 0
    assert not selectors.billable_items(
        organization=tenant_b.org, customer=cust, period_start=d(2026, 1, 1), period_end=d(2027, 1, 1)
    )


def test_trial_then_paid_phase_switches_at_period_boundary(tenant_a, catalog):
    pro_plan(tenant_a.org, catalog, trial="P14D")
    cust = customer(tenant_a)
    with time_machine.travel(d(2026, 3, 10), tick=False):
        sub = services.subscription_create(
            organization=tenant_a.org, customer=cust, plan_key="pro", billing_anchor=d(2026, 3, 1)
        )
    phases = list(sub.phases.order_by("starts_at"))
    # 14 days from Mar 10 is Mar 24: rounded up to the next period boundary (Apr 1)
    assert [(p.key, p.starts_at, p.ends_at) for p in phases] == [
        ("trial", d(2026, 3, 10), d(2026, 4, 1)),
        ("default", d(2026, 4, 1), None),
    ]
    assert base_amounts(tenant_a.org, cust, d(2026, 3, 1), d(2026, 5, 1)) == [
        ("base", "2026-04-01", "2026-05-01", Decimal("30.00"))
    ]
    trial_ent = Entitlement.objects.get(subscription=sub, feature_key="tokens", active_to=d(2026, 4, 1))
    paid_ent = Entitlement.objects.get(subscription=sub, feature_key="tokens", active_to__isnull=True)
    assert (
        selectors.entitlement_value(
            organization=tenant_a.org, entitlement=trial_ent, at=d(2026, 3, 20)
        ).balance
        == 100
    )
    assert (
        selectors.entitlement_value(organization=tenant_a.org, entitlement=paid_ent, at=d(2026, 4, 2)).balance
        == 1000
    )
    assert (
        selectors.entitlement_get(
            organization=tenant_a.org, customer=cust, id_or_feature_key="tokens", at=d(2026, 3, 20)
        ).id
        == trial_ent.id
    )
    assert (
        selectors.entitlement_get(
            organization=tenant_a.org, customer=cust, id_or_feature_key="tokens", at=d(2026, 4, 20)
        ).id
        == paid_ent.id
    )
    # starting directly in the paid phase
    cust2 = customer(tenant_a, "beta", ("s-2",))
    sub2 = services.subscription_create(
        organization=tenant_a.org,
        customer=cust2,
        plan_key="pro",
        starting_phase="default",
        active_from=d(2026, 3, 10),
    )
    assert [p.key for p in sub2.phases.all()] == ["default"]


def test_upgrade_mid_period_prorates_flat_fees(tenant_a, catalog):
    pro_plan(tenant_a.org, catalog, fee="10")
    pro_plan(tenant_a.org, catalog, fee="20", key="business", tokens=5000)
    cust = customer(tenant_a)
    sub = services.subscription_create(
        organization=tenant_a.org, customer=cust, plan_key="pro", active_from=d(2026, 4, 1)
    )
    with time_machine.travel(d(2026, 4, 16), tick=False):  # halfway through April (30 days)
        old, new = services.subscription_change(
            organization=tenant_a.org,
            subscription=sub,
            plan_key="business",
            timing="immediate",
            actor=tenant_a.user,
        )
    assert old.active_to == d(2026, 4, 16) and new.active_from == d(2026, 4, 16) and new.previous_id == old.id
    assert base_amounts(tenant_a.org, cust, d(2026, 4, 1), d(2026, 5, 1)) == [
        ("base", "2026-04-01", "2026-04-16", Decimal("5.00")),  # 10 * 15/30
        ("base", "2026-04-16", "2026-05-01", Decimal("10.00")),  # 20 * 15/30
    ]
    items = selectors.billable_items(
        organization=tenant_a.org, customer=cust, period_start=d(2026, 4, 1), period_end=d(2026, 5, 1)
    )
    assert [i.proration for i in items if i.key == "base"] == [Fraction(1, 2), Fraction(1, 2)]
    tokens = Entitlement.objects.filter(customer=cust, feature_key="tokens").order_by("active_from")
    assert [(e.subscription_id, e.active_to) for e in tokens] == [(old.id, d(2026, 4, 16)), (new.id, None)]
    assert AuditLog.objects.filter(action="subscription.changed", object_id=old.id).count() == 1
    # a second change of the ended subscription is refused
    with time_machine.travel(d(2026, 4, 17), tick=False), pytest.raises(SubscriptionNotActive):
        services.subscription_change(organization=tenant_a.org, subscription=old, plan_key="pro")


def test_change_at_next_billing_cycle(tenant_a, catalog):
    pro_plan(tenant_a.org, catalog)
    pro_plan(tenant_a.org, catalog, key="business", fee="99")
    cust = customer(tenant_a)
    sub = services.subscription_create(
        organization=tenant_a.org, customer=cust, plan_key="pro", active_from=d(2026, 1, 31)
    )
    with time_machine.travel(d(2026, 2, 10), tick=False):
        old, new = services.subscription_change(
            organization=tenant_a.org, subscription=sub, plan_key="business", timing="next_billing_cycle"
        )
    assert old.active_to == d(2026, 2, 28) == new.active_from
    assert base_amounts(tenant_a.org, cust, d(2026, 1, 31), d(2026, 3, 31)) == [
        ("base", "2026-01-31", "2026-02-28", Decimal("30.00")),
        ("base", "2026-02-28", "2026-03-31", Decimal("99.00")),
    ]


def test_cancel_at_period_end_and_unschedule(tenant_a, catalog):
    pro_plan(tenant_a.org, catalog, trial="P1M")
    cust = customer(tenant_a)
    sub = services.subscription_create(
        organization=tenant_a.org, customer=cust, plan_key="pro", active_from=d(2026, 1, 1)
    )
    with time_machine.travel(d(2026, 1, 20), tick=False):
        services.subscription_cancel(organization=tenant_a.org, subscription=sub, timing="next_billing_cycle")
        sub.refresh_from_db()
        assert sub.active_to == d(2026, 2, 1) and selectors.subscription_status(sub) == "canceled"
        assert not SubscriptionItem.objects.filter(subscription=sub, active_from__gte=d(2026, 2, 1)).exists()
        ent = Entitlement.objects.get(subscription=sub, feature_key="tokens", deleted_at__isnull=True)
        assert ent.active_to == d(2026, 2, 1)
        assert base_amounts(tenant_a.org, cust, d(2026, 1, 1), d(2026, 4, 1)) == []
        services.subscription_unschedule_cancelation(organization=tenant_a.org, subscription=sub)
        sub.refresh_from_db()
        assert sub.active_to is None
        assert [(p.key, p.ends_at) for p in sub.phases.order_by("starts_at")] == [
            ("trial", d(2026, 2, 1)),
            ("default", None),
        ]
        assert base_amounts(tenant_a.org, cust, d(2026, 1, 1), d(2026, 3, 1)) == [
            ("base", "2026-02-01", "2026-03-01", Decimal("30.00"))
        ]
        with pytest.raises(Conflict):
            services.subscription_unschedule_cancelation(organization=tenant_a.org, subscription=sub)
    with time_machine.travel(d(2026, 3, 10), tick=False):
        services.subscription_cancel(organization=tenant_a.org, subscription=sub, timing="immediate")
    sub.refresh_from_db()
    assert sub.active_to == d(2026, 3, 10)
    assert base_amounts(tenant_a.org, cust, d(2026, 3, 1), d(2026, 4, 1)) == [
        ("base", "2026-03-01", "2026-03-10", Decimal("8.71"))
    ]  # 30 * 9/31
    assert [a.action for a in AuditLog.objects.filter(object_id=sub.id).order_by("id")] == [
        "subscription.created",
        "subscription.canceled",
        "subscription.cancelation_unscheduled",
        "subscription.canceled",
    ]


def test_addon_quantity_change_prorates_each_quantity(tenant_a, catalog):
    pro_plan(tenant_a.org, catalog)
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
    cust = customer(tenant_a)
    sub = services.subscription_create(
        organization=tenant_a.org, customer=cust, plan_key="pro", active_from=d(2026, 6, 1)
    )
    with time_machine.travel(d(2026, 6, 1), tick=False):
        services.subscription_addon_set(
            organization=tenant_a.org, subscription=sub, addon_key="seats", quantity=2
        )
    with time_machine.travel(d(2026, 6, 16), tick=False):
        services.subscription_addon_set(
            organization=tenant_a.org, subscription=sub, addon_key="seats", quantity=5
        )
    assert [a for a in base_amounts(tenant_a.org, cust, d(2026, 6, 1), d(2026, 7, 1)) if a[0] != "base"] == [
        ("seats:seat", "2026-06-01", "2026-06-16", Decimal("5.00")),  # 2 * 5 * 15/30
        ("seats:seat", "2026-06-16", "2026-07-01", Decimal("12.50")),  # 5 * 5 * 15/30
    ]
    assert [(a.quantity, a.active_to) for a in sub.addons.order_by("active_from")] == [
        (2, d(2026, 6, 16)),
        (5, None),
    ]
    with pytest.raises(ValidationFailed):
        services.subscription_addon_set(
            organization=tenant_a.org, subscription=sub, addon_key="seats", quantity=-1
        )


def test_migrate_to_newer_version_grandfathering(tenant_a, catalog):
    pro_plan(tenant_a.org, catalog, fee="30")
    cust = customer(tenant_a)
    sub = services.subscription_create(
        organization=tenant_a.org, customer=cust, plan_key="pro", active_from=d(2026, 1, 1)
    )
    pro_plan(tenant_a.org, catalog, fee="40", version=2)
    other = customer(tenant_a, "late", ("s-9",))
    late = services.subscription_create(
        organization=tenant_a.org, customer=other, plan_key="pro", active_from=d(2026, 1, 1)
    )
    assert (sub.plan_version, late.plan_version) == (1, 2)  # existing stays on v1
    with time_machine.travel(d(2026, 2, 15), tick=False):
        old, new = services.subscription_migrate(
            organization=tenant_a.org, subscription=sub, timing="next_billing_cycle"
        )
        with pytest.raises(ValidationFailed):
            services.subscription_migrate(organization=tenant_a.org, subscription=late)
    assert (old.active_to, new.plan_version, new.active_from) == (d(2026, 3, 1), 2, d(2026, 3, 1))
    assert AuditLog.objects.filter(action="subscription.migrated").count() == 1


def test_one_subscription_at_a_time_and_isolation(tenant_a, tenant_b, catalog):
    pro_plan(tenant_a.org, catalog)
    pro_plan(tenant_b.org, catalog)
    cust = customer(tenant_a)
    services.subscription_create(
        organization=tenant_a.org, customer=cust, plan_key="pro", active_from=d(2026, 1, 1)
    )
    with pytest.raises(Conflict):
        services.subscription_create(organization=tenant_a.org, customer=cust, plan_key="pro")
    assert Subscription.objects.count() == 1
    cust_b = customer(tenant_b)
    services.subscription_create(
        organization=tenant_b.org, customer=cust_b, plan_key="pro", active_from=d(2026, 1, 1)
    )
    assert [s.customer_id for s in selectors.subscription_list(organization=tenant_a.org)] == [cust.id]
    assert [s.customer_id for s in selectors.subscription_list(organization=tenant_b.org)] == [cust_b.id]


def test_deleting_customer_cancels_subscription(tenant_a, catalog):
    pro_plan(tenant_a.org, catalog)
    cust = customer(tenant_a)
    sub = services.subscription_create(
        organization=tenant_a.org, customer=cust, plan_key="pro", active_from=d(2026, 1, 1)
    )
    with time_machine.travel(d(2026, 1, 10), tick=False):
        services.customer_delete(organization=tenant_a.org, customer=cust)
    sub.refresh_from_db()
    assert sub.active_to == d(2026, 1, 10)
    assert not Entitlement.objects.filter(customer=cust, deleted_at__isnull=True).exists()


def test_periods_follow_the_customers_timezone_across_dst(tenant_a, catalog):
    from zoneinfo import ZoneInfo

    pro_plan(tenant_a.org, catalog)
    ny = ZoneInfo("America/New_York")
    cust = services.customer_create(
        organization=tenant_a.org, name="NY", key="ny", currency="USD", timezone_name="America/New_York"
    )
    start = datetime(2026, 3, 1, tzinfo=ny)  # local midnight
    sub = services.subscription_create(
        organization=tenant_a.org, customer=cust, plan_key="pro", active_from=start
    )
    assert sub.timezone == "America/New_York"
    items = [
        i
        for i in selectors.billable_items(
            organization=tenant_a.org,
            customer=cust,
            period_start=start,
            period_end=datetime(2026, 5, 1, tzinfo=ny),
        )
        if i.key == "base"
    ]
    assert [i.period_start.astimezone(ny).isoformat() for i in items] == [
        "2026-03-01T00:00:00-05:00",
        "2026-04-01T00:00:00-04:00",
    ]
    assert (items[0].period_end - items[0].period_start).total_seconds() == 31 * 86400 - 3600
