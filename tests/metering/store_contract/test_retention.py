"""Event retention, one contract on both stores: a month where every organization present is expired goes
whole, a month shared with an organization that keeps its events loses only the expired organization's
rows, an organization without a retention is never touched, keys go with their events, a second run changes
nothing; afterwards meter queries give the same answers on PostgreSQL and ClickHouse (hourly rollups kept;
raw-only answers, UNIQUE_COUNT among them, count the retained events only)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from metering import retention, selectors, services, store
from metering.clickhouse import retention as ch_retention

pytestmark = pytest.mark.django_db
D = Decimal
NOW = datetime(2031, 6, 15, 12, tzinfo=UTC)  # 40 days before: 2031-05-06, so months up to April expire
FEB, MAR, MAY = (datetime(2031, m, 1, tzinfo=UTC) for m in (2, 3, 5))


def ev(i: str, t: datetime, tokens: int, model: str = "m"):
    return ("app", i, "prompt", "cust-1", t, json.dumps({"tokens": tokens, "model": model}))


A_EVENTS = [
    ev("a-feb", FEB + timedelta(days=2, hours=10), 2),
    ev("a-feb2", FEB + timedelta(days=19, hours=10, minutes=30), 3),
    ev("a-mar", MAR + timedelta(days=4, hours=10), 5, "m2"),  # March is shared with B
    ev("a-may", MAY + timedelta(days=19), 7),  # after the cutoff's month: kept
    ev("a-old", datetime(1960, 1, 1, tzinfo=UTC), 11),  # outside the countable range (PostgreSQL's default)
]
B_EVENTS = [
    ev("b-mar", MAR + timedelta(days=5), 100, "b"),
    ev("b-old", datetime(1960, 1, 2, tzinfo=UTC), 1000, "b"),
]


def _meters(org):
    def make(slug, aggregation, value):
        return services.meter_create(
            organization=org,
            slug=slug,
            event_type="prompt",
            aggregation=aggregation,
            value_property=value,
            group_by={"model": "$.model"},
        )

    return {
        "sum": make("sum", "SUM", "$.tokens"),
        "count": make("count", "COUNT", None),
        "models": make("models", "UNIQUE_COUNT", "$.model"),
        "latest": make("latest", "LATEST", "$.tokens"),
    }


def _world(tenant_a, tenant_b):
    store.partitions_ensure(now=datetime(2031, 3, 10, tzinfo=UTC))  # PostgreSQL: 2031-02 .. 2031-06
    meters_a, meters_b = _meters(tenant_a.org), _meters(tenant_b.org)
    services.events_ingest(organization=tenant_a.org, events=A_EVENTS)
    services.events_ingest(organization=tenant_b.org, events=B_EVENTS)
    services.rollups_advance()  # PostgreSQL folds rollups here (ClickHouse has them on insert)
    retention.event_retention_set(organization=tenant_a.org, days=40)
    return tenant_a.org, meters_a, tenant_b.org, meters_b


@pytest.fixture
def world(store_kind, tenant_a, tenant_b):
    return _world(tenant_a, tenant_b)


def total(org, meter, **kw):
    rows = selectors.meter_query(organization=org, meter=meter, **kw)
    assert len(rows) <= 1
    return rows[0].value if rows else None


def ids(org) -> set[str]:
    return {e.event["id"] for e in selectors.events_list(organization=org, limit=100)}


def answers(org, m) -> dict[str, object]:
    """What meter queries say about A: through rollups, raw only, partial hours, windows, UNIQUE_COUNT."""
    partial = {"from_": FEB + timedelta(days=19, hours=10, minutes=15), "to": MAR}
    days = selectors.meter_query(
        organization=org, meter=m["count"], window_size="DAY", from_=FEB, to=datetime(2031, 7, 1, tzinfo=UTC)
    )
    return {
        "sum": total(org, m["sum"]),
        "sum raw": total(org, m["sum"], use_rollups=False),
        "sum partial hour": total(org, m["sum"], **partial),
        "latest Feb-Mar": total(org, m["latest"], from_=FEB, to=MAY),
        "models": total(org, m["models"]),
        "models Feb-Mar": total(org, m["models"], from_=FEB, to=MAY),
        "count by day": [(r.window_start.date().isoformat(), r.value) for r in days],
        "sum by minute": [
            (r.window_start, r.value)
            for r in selectors.meter_query(
                organization=org,
                meter=m["sum"],
                window_size="MINUTE",
                from_=FEB,
                to=datetime(2031, 6, 1, tzinfo=UTC),
            )
        ],
    }


def test_expire_drops_whole_months_deletes_shared_rows_and_answers_alike(world, tenant_a, tenant_b):
    org, m, org_b, mb = world
    before = answers(org, m)
    assert before["sum"] == D(17)  # 2 + 3 + 5 + 7 (the 1960 event is outside the countable range)
    assert before["sum partial hour"] == D(3)
    assert before["models"] == D(2)
    b_sum, b_log = total(org_b, mb["sum"]), ids(org_b)

    result = retention.events_expire(now=NOW)
    assert result == store.ExpireResult(("metering_event_p203102",), 2)  # Feb whole; a-mar and a-old by row

    assert ids(org) == {"a-may"}
    after = answers(org, m)
    assert after == {
        "sum": D(17),  # hourly rollups are kept on both stores
        "sum raw": D(7),
        "sum partial hour": None,  # the partial hour is read from raw events: a-feb2 is gone
        "latest Feb-Mar": D(5),
        "models": D(1),  # UNIQUE_COUNT counts the retained events only
        "models Feb-Mar": None,
        "count by day": [
            ("2031-02-03", D(1)),
            ("2031-02-20", D(1)),
            ("2031-03-05", D(1)),
            ("2031-05-20", D(1)),
        ],
        "sum by minute": [(MAY + timedelta(days=19), D(7))],  # MINUTE windows read raw events
    }
    # B has no retention: nothing of it changed
    assert (total(org_b, mb["sum"]), ids(org_b)) == (b_sum, b_log) == (D(100), {"b-mar", "b-old"})
    assert total(org_b, mb["models"]) == D(1)

    # a second run changes nothing
    assert retention.events_expire(now=NOW) == store.ExpireResult((), 0)
    assert answers(org, m) == after

    # keys went with their events: a retained event's resend is a duplicate, an expired one's is new
    assert services.events_ingest(organization=tenant_a.org, events=[A_EVENTS[3]]).inserted == 0
    assert services.events_ingest(organization=tenant_a.org, events=A_EVENTS[:1]).inserted == 1
    assert services.events_ingest(organization=tenant_b.org, events=B_EVENTS).inserted == 0
    assert total(org, m["sum"], use_rollups=False) == D(9)

    # a rollup rebuilt from raw events (a changed group-by) counts the retained events only
    services.meter_update(organization=org, id_or_slug="sum", group_by={})
    services.rollups_advance()
    assert total(org, selectors.meter_get(organization=org, id_or_slug="sum")) == D(9)
    assert total(org_b, mb["sum"]) == D(100)


def test_a_month_goes_whole_when_every_organization_in_it_is_expired(world, tenant_b):
    org, m, org_b, mb = world
    retention.event_retention_set(organization=tenant_b.org, days=100)  # cutoff 2031-03-07: Feb only
    assert retention.events_expire(now=NOW) == store.ExpireResult(("metering_event_p203102",), 3)
    retention.event_retention_set(organization=tenant_b.org, days=40)
    assert retention.events_expire(now=NOW) == store.ExpireResult(("metering_event_p203103",), 0)
    assert ids(org) == {"a-may"} and ids(org_b) == set()
    assert total(org_b, mb["sum"]) == D(100)  # rollups kept
    assert total(org_b, mb["sum"], use_rollups=False) is None
    assert total(org_b, mb["models"]) is None
    assert total(org, m["models"]) == D(1)


def test_no_retention_changes_nothing(world, tenant_a):
    org, m, org_b, _ = world
    retention.event_retention_set(organization=tenant_a.org, days=None)
    before = answers(org, m)
    assert retention.events_expire(now=NOW) == store.ExpireResult((), 0)
    assert answers(org, m) == before
    assert len(ids(org)) == 5 and len(ids(org_b)) == 2


def test_clickhouse_an_interrupted_run_is_finished_by_the_next(
    use_clickhouse, tenant_a, tenant_b, monkeypatch
):
    """ClickHouse only (PostgreSQL removes an event and its key in one transaction): events go before their
    keys, so a run stopped between the two never lets a resend be stored twice, and the next run deletes the
    keys it left."""
    org, m, *_ = _world(tenant_a, tenant_b)
    real = ch_retention._keys_forget
    calls = []

    def stop_after_the_events_went(ch):
        calls.append(1)
        if len(calls) == 2:  # the first call finishes earlier runs; the second would forget February's keys
            raise RuntimeError("the worker stopped")
        real(ch)

    monkeypatch.setattr(ch_retention, "_keys_forget", stop_after_the_events_went)
    with pytest.raises(RuntimeError):
        retention.events_expire(now=NOW)
    monkeypatch.undo()
    assert "a-feb" not in ids(org)
    # the key is still there: a resend is refused as a duplicate, never stored twice
    assert services.events_ingest(organization=tenant_a.org, events=A_EVENTS[:1]).inserted == 0
    assert retention.events_expire(now=NOW) == store.ExpireResult((), 2)  # March and 1960, as in one run
    assert services.events_ingest(organization=tenant_a.org, events=A_EVENTS[:1]).inserted == 1
    assert total(org, m["models"], from_=FEB, to=MAY) == D(1)  # only the resent a-feb counts
