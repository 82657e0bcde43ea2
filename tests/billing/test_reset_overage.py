"""Issue 12, story 11: `issueAfterReset` with `preserveOverageAtReset` pays the carried overage from the
new period's balance at the reset instant (billing/grants_engine.py docstring), in the pure engine, in the
value endpoint, and when the value resumes from a stored snapshot. Tenant B's entitlement never leaks."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing import grants_engine as engine
from billing import services
from billing.entitlements.snapshots import entitlement_snapshot_refresh
from billing.models import BalanceSnapshot, Entitlement

MAR = datetime(2026, 3, 1, tzinfo=UTC)
APR = datetime(2026, 4, 1, tzinfo=UTC)
MAY = datetime(2026, 5, 1, tzinfo=UTC)


def d(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


# --- the pure engine ------------------------------------------------------------------------------
ISSUE = engine.Grant(  # what billing.entitlements.burn builds for issueAfterReset 100: amount = min = max rollover
    id="issue", amount=D(100), effective_at=MAR, priority=1, min_rollover=D(100), max_rollover=D(100)
)


def burn(events: list[tuple[datetime, int]], end: datetime, *, preserve: bool = True, state=None):
    def usage(a: datetime, b: datetime) -> D:
        return sum((D(v) for t, v in events if a <= t < b), D(0))

    return engine.burn_down(
        grants=[ISSUE],
        resets=[APR, MAY],
        state=state or engine.initial_state(at=MAR),
        end=end,
        usage=usage,
        preserve_overage_at_reset=preserve,
    )


def test_engine_usage_150_next_period_balance_50_overage_0():
    events = [(d(2026, 3, 10), 150)]
    # March: 150 used against 100 granted → balance 0, overage 150 - 100 = 50
    march = burn(events, d(2026, 3, 31))
    assert (march.balance, march.usage, march.overage, march.total_available) == (D(0), D(150), D(50), D(100))
    # April 1: the grant rolls over to min(100, max(0, 100)) = 100; the carried 50 is paid from it:
    # balance 100 - 50 = 50, overage 50 - 50 = 0, usage restarts at 0; available this period 100 - 50 = 50
    april = burn(events, d(2026, 4, 2))
    assert (april.balance, april.usage, april.overage, april.total_available) == (D(50), D(0), D(0), D(50))
    assert april.grant_balances == {"issue": D(50)}
    # usage 30 on April 5: balance 50 - 30 = 20, overage 0
    later = burn([*events, (d(2026, 4, 5), 30)], d(2026, 4, 6))
    assert (later.balance, later.usage, later.overage) == (D(20), D(30), D(0))
    # without preserveOverageAtReset the overage is dropped at the reset: balance 100, overage 0
    dropped = burn(events, d(2026, 4, 2), preserve=False)
    assert (dropped.balance, dropped.usage, dropped.overage) == (D(100), D(0), D(0))


def test_engine_usage_250_next_period_balance_0_overage_50_carried():
    events = [(d(2026, 3, 10), 250)]
    # March: overage 250 - 100 = 150
    assert burn(events, d(2026, 3, 31)).overage == D(150)
    # April 1: rollover 100 pays 100 of the 150 → balance 0, overage 150 - 100 = 50 still carried,
    # nothing left for April (available 100 - 100 = 0)
    april = burn(events, d(2026, 4, 2))
    assert (april.balance, april.usage, april.overage, april.total_available) == (D(0), D(0), D(50), D(0))
    # May 1 (no April usage): rollover 100 pays the remaining 50 → balance 50, overage 0
    may = burn(events, d(2026, 5, 2))
    assert (may.balance, may.usage, may.overage, may.total_available) == (D(50), D(0), D(0), D(50))
    # resuming from the state saved on April 2 gives the same May answer
    resumed = burn(events, d(2026, 5, 2), state=april.state)
    assert (resumed.balance, resumed.usage, resumed.overage) == (D(50), D(0), D(0))
    assert burn(events, d(2026, 4, 20), state=april.state).total_available == D(0)


# --- the value endpoint -------------------------------------------------------------------------------
@pytest.fixture
def setup(tenant_a, tenant_b, catalog):
    for t in (tenant_a, tenant_b):
        catalog.add_feature(t.org, "tokens", meter="tokens_total")
        services.customer_create(organization=t.org, name="Acme", key="acme", subject_keys=["s-1"])
    return catalog


def create(tenant) -> dict:
    body = {
        "type": "metered",
        "featureKey": "tokens",
        "usagePeriod": {"interval": "MONTH", "anchor": "2026-03-01T00:00:00Z"},
        "measureUsageFrom": "CURRENT_PERIOD_START",
        "issueAfterReset": "100",
        "preserveOverageAtReset": True,
    }
    r = tenant.client().post("/api/v2/customers/acme/entitlements", body, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def value(tenant) -> dict:
    v1 = tenant.client("read").get("/api/v1/customers/acme/entitlements/tokens/value").json()
    v2 = tenant.client("read").get("/api/v2/customers/acme/entitlements/tokens/value").json()
    assert {k: v2[k] for k in v1} == v1
    return v1


def test_value_endpoint_pays_carried_overage_at_reset(tenant_a, tenant_b, setup):
    with time_machine.travel(d(2026, 3, 1, 12), tick=False):
        create(tenant_a)
        create(tenant_b)
    setup.usage(tenant_a.org, "tokens_total", "s-1", d(2026, 3, 10), 150)
    setup.usage(tenant_b.org, "tokens_total", "s-1", d(2026, 3, 10), 250)  # B: the second story

    with time_machine.travel(d(2026, 3, 31), tick=False):
        # A: 150 used of 100 → balance 0, overage 50; B: 250 used of 100 → overage 150
        assert value(tenant_a) == {
            "hasAccess": False,
            "balance": 0,
            "usage": 150,
            "overage": 50,
            "totalAvailableGrantAmount": 100,
        }
        assert value(tenant_b)["overage"] == 150

    expected_a = {  # rollover 100 - carried 50 = 50; the overage is paid
        "hasAccess": True,
        "balance": 50,
        "usage": 0,
        "overage": 0,
        "totalAvailableGrantAmount": 50,
    }
    expected_b = {  # rollover 100 pays 100 of 150: balance 0, 50 still carried
        "hasAccess": False,
        "balance": 0,
        "usage": 0,
        "overage": 50,
        "totalAvailableGrantAmount": 0,
    }
    with time_machine.travel(d(2026, 4, 2), tick=False):
        assert value(tenant_a) == expected_a
        assert value(tenant_b) == expected_b
        # the same answers when the read resumes from a stored snapshot (taken 2 minutes before now)
        for t in (tenant_a, tenant_b):
            ent = Entitlement.objects.get(organization=t.org, feature_key="tokens")
            snap = entitlement_snapshot_refresh(organization=t.org, entitlement_id=ent.id)
            assert snap is not None and snap.period_start == APR
        assert BalanceSnapshot.objects.filter(organization=tenant_a.org).count() == 1
        assert value(tenant_a) == expected_a
        assert value(tenant_b) == expected_b

    setup.usage(tenant_a.org, "tokens_total", "s-1", d(2026, 4, 5), 30)
    with time_machine.travel(d(2026, 4, 6), tick=False):
        # A: 50 - 30 = 20 left; B's April usage is 0 and its events never reach A
        assert value(tenant_a) == {
            "hasAccess": True,
            "balance": 20,
            "usage": 30,
            "overage": 0,
            "totalAvailableGrantAmount": 50,
        }
        assert value(tenant_b) == expected_b
    with time_machine.travel(d(2026, 5, 2), tick=False):
        # B, May 1: rollover 100 pays the last 50 → balance 50, overage 0
        assert value(tenant_b) == {
            **expected_b,
            "hasAccess": True,
            "balance": 50,
            "overage": 0,
            "totalAvailableGrantAmount": 50,
        }
