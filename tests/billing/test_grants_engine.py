"""Grant burn-down engine: worked examples and a property test against a brute-force model."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.grants_engine import Grant, burn_down, initial_state
from tests.billing.grant_model import brute_force

T0 = datetime(2026, 1, 1, tzinfo=UTC)
D = Decimal


def h(n):
    return T0 + timedelta(hours=n)


def usage_from(events):
    def usage(a, b):
        return sum((amt for t, amt in events if a <= t < b), D(0))

    return usage


def run(grants, events, end, resets=(), state=None, **kw):
    return burn_down(
        grants=grants,
        resets=resets,
        state=state or initial_state(at=T0),
        end=end,
        usage=usage_from(events),
        **kw,
    )


def test_burn_order_priority_then_expiry_then_oldest():
    grants = [
        Grant(id="late-exp", amount=D(10), effective_at=T0, priority=1, expires_at=h(100), created_seq=1),
        Grant(id="soon-exp", amount=D(10), effective_at=T0, priority=1, expires_at=h(50), created_seq=2),
        Grant(id="prio0", amount=D(10), effective_at=T0, priority=0, created_seq=3),
        Grant(id="no-exp-old", amount=D(10), effective_at=T0, priority=2, created_seq=4),
        Grant(id="no-exp-new", amount=D(10), effective_at=h(1), priority=2, created_seq=5),
    ]
    r = run(grants, [(h(2), D(25))], h(3))
    assert r.grant_balances == {"prio0": 0, "soon-exp": 0, "late-exp": 5, "no-exp-old": 10, "no-exp-new": 10}
    r = run(grants, [(h(2), D(41))], h(3))
    assert r.grant_balances == {"prio0": 0, "soon-exp": 0, "late-exp": 0, "no-exp-old": 0, "no-exp-new": 9}
    assert (r.balance, r.usage, r.overage) == (D(9), D(41), D(0))


def test_overage_and_has_access_and_payback_by_new_grant():
    grants = [Grant(id="g", amount=D(80), effective_at=T0)]
    r = run(grants, [(h(1), D(100))], h(2))
    assert (r.balance, r.usage, r.overage) == (D(0), D(100), D(20))
    assert not r.has_access(is_soft_limit=False) and r.has_access(is_soft_limit=True)
    grants.append(Grant(id="topup", amount=D(50), effective_at=h(3)))
    r = run(grants, [(h(1), D(100))], h(4))
    assert (r.balance, r.usage, r.overage) == (D(30), D(100), D(0))
    assert r.total_available == D(130)


def test_expiry_drops_remaining_balance():
    grants = [
        Grant(id="g", amount=D(100), effective_at=T0, expires_at=h(10)),
        Grant(id="h", amount=D(5), effective_at=T0, priority=9),
    ]
    r = run(grants, [(h(1), D(30)), (h(11), D(3))], h(12))
    assert r.grant_balances == {"h": D(2)} and r.balance == D(2)


def test_rollover_at_reset():
    grants = [
        Grant(id="monthly", amount=D(100), effective_at=T0, min_rollover=D(100), max_rollover=D(100)),
        Grant(id="capped", amount=D(50), effective_at=T0, priority=1, max_rollover=D(20), min_rollover=D(0)),
        Grant(id="floor", amount=D(10), effective_at=T0, priority=2, min_rollover=D(5), max_rollover=D(1000)),
        Grant(id="none", amount=D(10), effective_at=T0, priority=3),
    ]
    r = run(grants, [(h(1), D(160))], h(24), resets=[h(24)])
    # before reset: monthly 0, capped 0, floor 0, none 10 -> after: 100, 0, 5, 0
    assert r.grant_balances == {"monthly": D(100), "capped": D(0), "floor": D(5), "none": D(0)}
    assert (r.usage, r.overage) == (D(0), D(0))
    r = run(grants, [(h(1), D(10))], h(25), resets=[h(24)])
    assert r.grant_balances["capped"] == D(20) and r.grant_balances["floor"] == D(10)


def test_voided_grant_stops_counting():
    grants = [Grant(id="g", amount=D(100), effective_at=T0, voided_at=h(5))]
    r = run(grants, [(h(1), D(30)), (h(6), D(1))], h(7))
    assert (r.balance, r.overage, r.usage) == (D(0), D(1), D(31))


def test_recurring_grant_refills():
    grants = [Grant(id="g", amount=D(10), effective_at=T0, recurrence_anchor=T0, recurrence_interval="PT1H")]
    r = run(
        grants,
        [(h(0) + timedelta(minutes=5), D(4)), (h(1) + timedelta(minutes=5), D(3))],
        h(
            1,
        )
        + timedelta(minutes=30),
    )
    assert r.balance == D(7)


def test_resume_from_snapshot_equals_one_pass():
    grants = [
        Grant(id="a", amount=D(50), effective_at=T0, max_rollover=D(30)),
        Grant(id="b", amount=D(20), effective_at=h(30), priority=0, expires_at=h(60)),
    ]
    events = [(h(i), D(i % 7)) for i in range(0, 90, 3)]
    resets = [h(24), h(48), h(72)]
    full = run(grants, events, h(90), resets=resets)
    mid = run(grants, events, h(40), resets=resets)
    resumed = run(grants, events, h(90), resets=resets, state=mid.state)
    assert resumed.grant_balances == full.grant_balances
    assert (resumed.usage, resumed.overage, resumed.state.period_start) == (full.usage, full.overage, h(72))


@st.composite
def scenarios(draw):
    n = draw(st.integers(0, 5))
    grants = []
    for i in range(n):
        eff = h(draw(st.integers(0, 60)))
        exp = draw(st.one_of(st.none(), st.integers(1, 80)))
        void = draw(st.one_of(st.none(), st.integers(0, 90)))
        mn = D(draw(st.integers(0, 20)))
        mx = mn + D(draw(st.integers(0, 40)))
        grants.append(
            Grant(
                id=f"g{i}",
                amount=D(draw(st.integers(1, 60))),
                effective_at=eff,
                priority=draw(st.integers(0, 2)),
                expires_at=eff + timedelta(hours=exp) if exp else None,
                voided_at=h(void) if void is not None else None,
                min_rollover=mn,
                max_rollover=mx,
                created_seq=i,
            )
        )
    events = [
        (
            h(draw(st.integers(0, 95))) + timedelta(minutes=draw(st.integers(0, 59))),
            D(draw(st.integers(0, 30))),
        )
        for _ in range(draw(st.integers(0, 25)))
    ]
    period = draw(st.sampled_from([12, 24, 1000]))
    resets = [h(k) for k in range(period, 97, period)]
    cut = h(draw(st.integers(0, 96)))
    return grants, events, resets, cut, draw(st.booleans())


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_engine_matches_brute_force(scenario):
    grants, events, resets, cut, preserve = scenario
    end = h(96)
    r = run(grants, events, end, resets=resets, preserve_overage_at_reset=preserve)
    balances, usage, overage = brute_force(
        grants=grants, events=events, resets=set(resets), start=T0, end=end, preserve_overage=preserve
    )
    assert r.grant_balances == balances
    assert (r.usage, r.overage) == (usage, overage)
    assert r.balance >= 0 and all(v >= 0 for v in r.grant_balances.values())
    # resuming from any intermediate snapshot gives the same answer
    mid = run(grants, events, cut, resets=resets, preserve_overage_at_reset=preserve)
    resumed = run(grants, events, end, resets=resets, state=mid.state, preserve_overage_at_reset=preserve)
    assert resumed.grant_balances == r.grant_balances and (resumed.usage, resumed.overage) == (
        r.usage,
        r.overage,
    )
