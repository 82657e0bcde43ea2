"""Entitlement balances through the services: priorities and expiries, rollover at reset, late events,
snapshots, and the value API against a brute-force recomputation (hypothesis)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import selectors, services
from billing.grants_engine import Grant as EngineGrant
from billing.models import BalanceSnapshot
from tests.billing.grant_model import brute_force

pytestmark = pytest.mark.django_db
D = Decimal


def d(*a):
    return datetime(*a, tzinfo=UTC)


@pytest.fixture
def acme(tenant_a, tenant_b, catalog):
    for t in (tenant_a, tenant_b):
        catalog.add_feature(t.org, "tokens", meter="tokens_total")
    cust = services.customer_create(
        organization=tenant_a.org, name="Acme", key="acme", subject_keys=["s-1", "s-2"]
    )
    other = services.customer_create(
        organization=tenant_b.org, name="Acme B", key="acme", subject_keys=["s-1"]
    )
    return cust, other


def metered(org, cust, **kw):
    with time_machine.travel(d(2026, 1, 1), tick=False):
        return services.entitlement_create(
            organization=org,
            customer=cust,
            feature_key="tokens",
            type="metered",
            usage_period_interval="MONTH",
            usage_period_anchor=d(2026, 1, 1),
            **kw,
        )


def value(org, ent, at):
    return selectors.entitlement_value(organization=org, entitlement=ent, at=at)


def test_grants_burn_by_priority_then_expiry_then_age(tenant_a, tenant_b, catalog, acme):
    cust, other = acme
    ent = metered(tenant_a.org, cust)
    g_late = services.grant_create(
        organization=tenant_a.org, entitlement=ent, amount=D(100), priority=5, effective_at=d(2026, 1, 1)
    )
    g_exp = services.grant_create(
        organization=tenant_a.org,
        entitlement=ent,
        amount=D(100),
        priority=5,
        effective_at=d(2026, 1, 1),
        expiration={"duration": "DAY", "count": 10},
    )
    g_first = services.grant_create(
        organization=tenant_a.org, entitlement=ent, amount=D(30), priority=1, effective_at=d(2026, 1, 2)
    )
    catalog.usage(tenant_a.org, "tokens_total", "s-1", d(2026, 1, 3), 50)
    catalog.usage(tenant_a.org, "tokens_total", "s-2", d(2026, 1, 4), 40)
    catalog.usage(tenant_b.org, "tokens_total", "s-1", d(2026, 1, 4), 9999)  # other tenant's subject
    v = value(tenant_a.org, ent, d(2026, 1, 5))
    assert v.grant_balances == {g_first.id: 0, g_exp.id: 40, g_late.id: 100}
    assert (v.balance, v.usage, v.overage, v.has_access) == (D(140), D(90), D(0), True)
    # the expiring grant's 40 are gone after Jan 11
    v = value(tenant_a.org, ent, d(2026, 1, 12))
    assert v.grant_balances == {g_first.id: 0, g_late.id: 100} and v.balance == 100
    assert selectors.entitlement_list(organization=tenant_b.org, customer=other).count() == 0


def test_rollover_at_reset_and_issue_after_reset(tenant_a, catalog, acme):
    cust, _ = acme
    ent = metered(tenant_a.org, cust, issue_after_reset=D(100), issue_after_reset_priority=0)
    credit = services.grant_create(
        organization=tenant_a.org,
        entitlement=ent,
        amount=D(500),
        priority=9,
        effective_at=d(2026, 1, 1),
        min_rollover=D(0),
        max_rollover=D(300),
    )
    catalog.usage(tenant_a.org, "tokens_total", "s-1", d(2026, 1, 20), 150)  # 100 allowance + 50 credits
    v = value(tenant_a.org, ent, d(2026, 1, 31))
    assert (v.balance, v.usage, v.grant_balances[credit.id]) == (D(450), D(150), D(450))
    v = value(tenant_a.org, ent, d(2026, 2, 1))  # reset: allowance refills to 100, credit capped at 300
    assert (v.balance, v.usage, v.period_start, v.grant_balances[credit.id]) == (
        D(400),
        D(0),
        d(2026, 2, 1),
        D(300),
    )
    assert v.total_available == D(400)


def test_late_event_changes_a_past_period_and_snapshot_is_dropped(tenant_a, catalog, acme):
    cust, _ = acme
    ent = metered(tenant_a.org, cust)
    services.grant_create(
        organization=tenant_a.org,
        entitlement=ent,
        amount=D(100),
        effective_at=d(2026, 1, 1),
        max_rollover=D(100),
    )
    catalog.usage(tenant_a.org, "tokens_total", "s-1", d(2026, 1, 10), 30)
    with time_machine.travel(d(2026, 2, 10), tick=False):
        snap = services.entitlement_snapshot_refresh(organization=tenant_a.org, entitlement_id=ent.id)
        assert (
            snap.grant_balances == {ent.grants.get().id: "70.000000000000"}
            or D(next(iter(snap.grant_balances.values()))) == 70
        )
        assert value(tenant_a.org, ent, d(2026, 2, 10)).balance == 70
        # a late event in January arrives: the January balance (and the rollover into February) change
        catalog.usage(tenant_a.org, "tokens_total", "s-1", d(2026, 1, 20), 50)
        services.entitlements_usage_landed(
            organization=tenant_a.org, subject_keys=["s-1"], earliest_event_time=d(2026, 1, 20)
        )
        assert not BalanceSnapshot.objects.filter(entitlement=ent).exists()
        assert value(tenant_a.org, ent, d(2026, 2, 10)).balance == 20
        assert value(tenant_a.org, ent, d(2026, 1, 31)).usage == 80
        # without the hook, the next refresh recomputes in full and picks the late event up too
        services.entitlement_snapshot_refresh(organization=tenant_a.org, entitlement_id=ent.id)
        catalog.usage(tenant_a.org, "tokens_total", "s-1", d(2026, 1, 25), 20)
        services.entitlement_snapshot_refresh(organization=tenant_a.org, entitlement_id=ent.id)
        assert value(tenant_a.org, ent, d(2026, 2, 10)).balance == 0


def test_value_reads_tail_after_snapshot(tenant_a, catalog, acme):
    cust, _ = acme
    ent = metered(tenant_a.org, cust, issue_after_reset=D(1000))
    catalog.usage(tenant_a.org, "tokens_total", "s-1", d(2026, 1, 5), 100)
    with time_machine.travel(d(2026, 1, 10), tick=False):
        snap = services.entitlement_snapshot_refresh(organization=tenant_a.org, entitlement_id=ent.id)
    assert snap.at == d(2026, 1, 9, 23, 58) and snap.usage == 100
    catalog.usage(tenant_a.org, "tokens_total", "s-1", d(2026, 1, 10), 5)
    calls = []
    from billing import sources

    real = sources._PROVIDERS["usage"]

    def spy(**kw):
        calls.append((kw["start"], kw["end"]))
        return real(**kw)

    sources.set_provider("usage", spy)
    try:
        v = value(tenant_a.org, ent, d(2026, 1, 10, 0, 1))
    finally:
        sources.set_provider("usage", real)
    assert (v.balance, v.usage) == (D(895), D(105))
    assert calls == [(d(2026, 1, 9, 23, 58), d(2026, 1, 10, 0, 1))]  # only the tail is read


@st.composite
def histories(draw):
    grants = []
    for _ in range(draw(st.integers(0, 4))):
        eff = d(2026, 1, 1) + timedelta(days=draw(st.integers(0, 50)))
        exp = draw(st.one_of(st.none(), st.integers(1, 60)))
        mn = draw(st.integers(0, 20))
        grants.append(
            dict(
                amount=D(draw(st.integers(1, 80))),
                priority=draw(st.integers(0, 2)),
                effective_at=eff,
                expiration={"duration": "DAY", "count": exp} if exp else None,
                min_rollover=D(mn),
                max_rollover=D(mn + draw(st.integers(0, 50))),
            )
        )
    events = [
        (d(2026, 1, 1) + timedelta(hours=draw(st.integers(0, 24 * 80))), D(draw(st.integers(0, 40))))
        for _ in range(draw(st.integers(0, 20)))
    ]
    at = d(2026, 1, 1) + timedelta(hours=draw(st.integers(1, 24 * 80)))
    snap_at = d(2026, 1, 1) + timedelta(hours=draw(st.integers(1, 24 * 80)))
    return grants, events, at, snap_at


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_value_api_equals_brute_force(tenant_a, catalog, acme, history):
    grants, events, at, snap_at = history
    cust, _ = acme
    services.entitlement_delete(
        organization=tenant_a.org,
        entitlement=selectors.entitlement_list(organization=tenant_a.org, customer=cust).first(),
    ) if selectors.entitlement_list(organization=tenant_a.org, customer=cust).exists() else None
    catalog.events.clear()
    ent = metered(tenant_a.org, cust, measure_usage_from=d(2026, 1, 1))
    made = [services.grant_create(organization=tenant_a.org, entitlement=ent, **g) for g in grants]
    for t, v in events:
        catalog.usage(tenant_a.org, "tokens_total", "s-1", t, v)
    if snap_at < at:  # a snapshot somewhere before the read must not change the answer
        with time_machine.travel(snap_at + timedelta(minutes=2), tick=False):
            services.entitlement_snapshot_refresh(organization=tenant_a.org, entitlement_id=ent.id)
    body = (
        tenant_a.client("read")
        .get(
            f"/api/v2/customers/acme/entitlements/{ent.id}/value",
            {"time": at.isoformat().replace("+00:00", "Z")},
        )
        .json()
    )
    model_grants = [
        EngineGrant(
            id=g.id,
            amount=g.amount,
            effective_at=g.effective_at,
            priority=g.priority,
            expires_at=g.expires_at,
            min_rollover=g.min_rollover,
            max_rollover=g.max_rollover,
        )
        for g in made
    ]
    resets = {d(2026, m, 1) for m in range(2, 5)}
    balances, usage, overage = brute_force(
        grants=model_grants, events=[e for e in events], resets=resets, start=d(2026, 1, 1), end=at
    )
    assert D(str(body["balance"])) == sum(balances.values(), D(0))
    assert (D(str(body["usage"])), D(str(body["overage"]))) == (usage, overage)
    assert {k: D(str(v)) for k, v in body["grantBalances"].items()} == balances
    assert body["hasAccess"] == (sum(balances.values(), D(0)) > 0)
