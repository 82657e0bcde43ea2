"""One contract, two stores: every aggregation, windows, time zones, group-by and filters, customers,
partial hours, subjects and group values, with the same hand-worked answers on PostgreSQL and ClickHouse.
Tenant A's events arrive through the API (inbox, drain); tenant B's, with the same ids and subjects and much
larger values, through `events_ingest`; B never shows up in A's answers nor A in B's."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from metering import selectors, services
from tests.metering.conftest import ce, post_events

pytestmark = pytest.mark.django_db
D = Decimal
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# (id, subject, time, data); e7 shares e1's time and arrives later (LATEST takes it); e5's value is no number
A_EVENTS = [
    ("e1", "s1", T0 + timedelta(minutes=10), {"tokens": 10, "model": "gpt", "region": "eu"}),
    ("e7", "s1", T0 + timedelta(minutes=10), {"tokens": 3, "model": "gpt"}),
    ("e2", "s1", T0 + timedelta(minutes=70), {"tokens": 5, "model": "llama", "region": "us"}),
    ("e3", "s2", T0 + timedelta(hours=2, minutes=30), {"tokens": "2.5", "model": "gpt", "region": "eu"}),
    ("e4", "s2", T0 + timedelta(days=1, hours=5), {"tokens": 7, "model": "gpt", "region": "us"}),
    ("e5", "s3", T0 + timedelta(days=1, hours=23, minutes=30), {"tokens": "x", "model": "llama"}),
    ("e6", "s1", T0 + timedelta(days=31), {"tokens": 100, "model": "gpt", "region": "eu"}),
]
AGGREGATIONS = {"SUM": "sum", "COUNT": "count", "AVG": "avg", "MIN": "min", "MAX": "max", "LATEST": "latest"}


def _meters(org):
    out = {}
    for agg, slug in AGGREGATIONS.items():
        out[slug] = services.meter_create(
            organization=org,
            slug=slug,
            event_type="prompt",
            aggregation=agg,
            value_property=None if agg == "COUNT" else "$.tokens",
            group_by={"model": "$.model", "region": "$.region"},
        )
    out["models"] = services.meter_create(
        organization=org,
        slug="models",
        event_type="prompt",
        aggregation="UNIQUE_COUNT",
        value_property="$.model",
    )
    return out


@pytest.fixture
def world(store_kind, tenant_a, tenant_b):
    meters_a, meters_b = _meters(tenant_a.org), _meters(tenant_b.org)
    body = [ce(i, subject=s, time=iso(t), data=d) for i, s, t, d in A_EVENTS]
    body.append(ce("r1", subject="s1", type_="request", time=iso(T0 + timedelta(minutes=5)), data={}))
    assert post_events(tenant_a.client("ingest"), body).status_code == 204
    services.events_ingest(
        organization=tenant_b.org,
        events=[
            ("app", i, "prompt", s, t, json.dumps({**d, "tokens": 1000, "model": "b-only"}))
            for i, s, t, d in A_EVENTS
        ],
    )
    services.rollups_advance()  # the PostgreSQL store folds rollups here; ClickHouse already has them
    return tenant_a.org, meters_a, tenant_b.org, meters_b


def q(org, meter, **kw):
    rows = selectors.meter_query(organization=org, meter=meter, **kw)
    return [(r.value, r.window_start, r.window_end, r.subject, r.customer_id, r.group_by) for r in rows]


def total(org, meter, **kw):
    rows = selectors.meter_query(organization=org, meter=meter, **kw)
    assert len(rows) <= 1
    return rows[0].value if rows else None


def test_every_aggregation_over_everything(world):
    org, m, org_b, mb = world
    expected = {"sum": D("127.5"), "count": D(7), "avg": D("21.25"), "min": D("2.5"), "max": D(100)}
    expected |= {"latest": D(100), "models": D(2)}
    for slug, value in expected.items():
        assert total(org, m[slug]) == value, slug
    # B: six counted values of 1000 (its e5 is a number there), one model
    assert total(org_b, mb["sum"]) == D(7000)
    assert total(org_b, mb["count"]) == D(7)
    assert total(org_b, mb["models"]) == D(1)
    assert total(org_b, mb["avg"]) == D(1000)


def test_latest_takes_the_newest_time_then_the_later_ingested(world):
    org, m, *_ = world
    assert total(org, m["latest"], from_=T0, to=T0 + timedelta(days=1)) == D("2.5")
    # e1 and e7 share a time: e7 arrived later
    assert total(org, m["latest"], from_=T0, to=T0 + timedelta(hours=1)) == D(3)


def test_avg_divides_as_postgresql_numeric(world):
    org, m, *_ = world
    # 10 + 3 + 5 = 18 over 3 events; (10 + 3 + 5 + 2.5) / 4 = 5.125
    assert total(org, m["avg"], from_=T0, to=T0 + timedelta(hours=2)) == D(6)
    assert total(org, m["avg"], from_=T0, to=T0 + timedelta(hours=3)) == D("5.125")
    assert str(total(org, m["avg"], from_=T0 + timedelta(minutes=30), to=T0 + timedelta(days=2))) == (
        "4.8333333333333333"  # (5 + 2.5 + 7) / 3, 16 significant digits
    )


def test_day_windows_in_utc_and_in_new_york(world):
    org, m, *_ = world
    span = {"from_": T0, "to": T0 + timedelta(days=3)}
    day = timedelta(days=1)
    assert q(org, m["sum"], window_size="DAY", **span) == [
        (D("20.5"), T0, T0 + day, None, None, {}),
        (D(7), T0 + day, T0 + 2 * day, None, None, {}),
    ]
    # New York is UTC-5 in early March: days start at 05:00 UTC; e1, e7, e2, e3 fall on Feb 28 there
    ny = timedelta(hours=5)
    assert q(org, m["sum"], window_size="DAY", window_tz="America/New_York", **span) == [
        (D("20.5"), T0 - day + ny, T0 + ny, None, None, {}),
        (D(7), T0 + day + ny, T0 + 2 * day + ny, None, None, {}),
    ]
    # COUNT counts e5 although its value is no number
    assert [r[0] for r in q(org, m["count"], window_size="DAY", **span)] == [D(4), D(2)]


def test_hour_windows_in_a_half_hour_zone_and_minute_and_month_windows(world):
    org, m, *_ = world
    h = timedelta(hours=1)
    half = timedelta(minutes=30)
    rows = q(org, m["sum"], window_size="HOUR", window_tz="Asia/Kolkata", from_=T0, to=T0 + 3 * h)
    assert rows == [
        (D(13), T0 - half, T0 + half, None, None, {}),
        (D(5), T0 + half, T0 + h + half, None, None, {}),
        (D("2.5"), T0 + 2 * h + half, T0 + 3 * h + half, None, None, {}),
    ]
    minute = T0 + timedelta(minutes=10)
    assert q(org, m["sum"], window_size="MINUTE", from_=T0, to=T0 + h) == [
        (D(13), minute, minute + timedelta(minutes=1), None, None, {})
    ]
    april = datetime(2025, 4, 1, tzinfo=UTC)
    assert q(org, m["sum"], window_size="MONTH", from_=T0, to=T0 + timedelta(days=40)) == [
        (D("27.5"), T0, april, None, None, {}),
        (D(100), april, datetime(2025, 5, 1, tzinfo=UTC), None, None, {}),
    ]


def test_partial_hours_at_both_ends(world):
    org, m, *_ = world
    assert total(org, m["sum"], from_=T0 + timedelta(minutes=5), to=T0 + timedelta(hours=2, minutes=40)) == D(
        "20.5"
    )
    assert total(org, m["sum"], from_=T0 + timedelta(minutes=15), to=T0 + timedelta(hours=2)) == D(5)
    assert total(org, m["sum"], from_=T0 + timedelta(minutes=11), to=T0 + timedelta(minutes=50)) is None
    assert total(org, m["models"], from_=T0 + timedelta(minutes=15), to=T0 + timedelta(hours=3)) == D(2)


def test_group_by_dimensions_subjects_and_filters(world):
    org, m, *_ = world
    rows = q(org, m["sum"], group_by=["model"])
    assert [(r[0], r[5]) for r in rows] == [(D("122.5"), {"model": "gpt"}), (D(5), {"model": "llama"})]
    rows = q(org, m["sum"], group_by=["region"])
    assert [(r[0], r[5]) for r in rows] == [
        (D("112.5"), {"region": "eu"}),  # rows by window start (the first hour counted), then group
        (D(3), {"region": None}),
        (D(12), {"region": "us"}),
    ]
    rows = q(org, m["sum"], group_by=["subject"], filter_group_by={"model": ["gpt"]})
    assert [(r[0], r[3]) for r in rows] == [(D(113), "s1"), (D("9.5"), "s2")]
    rows = q(org, m["sum"], subjects=["s2"], filter_group_by={"region": ["us", "eu"]})
    assert [(r[0], r[3]) for r in rows] == [(D("9.5"), "s2")]
    rows = q(
        org, m["max"], group_by=["model", "region"], window_size="DAY", from_=T0, to=T0 + timedelta(days=2)
    )
    assert [(r[0], r[1], r[5]) for r in rows] == [
        (D(10), T0, {"model": "gpt", "region": "eu"}),
        (D(3), T0, {"model": "gpt", "region": None}),
        (D(5), T0, {"model": "llama", "region": "us"}),
        (D(7), T0 + timedelta(days=1), {"model": "gpt", "region": "us"}),
    ]


def test_customers(world):
    org, m, *_ = world
    rows = q(org, m["sum"], customers={"cust-1": ["s1"], "cust-2": ["s2", "s3"]})
    assert [(r[0], r[4]) for r in rows] == [(D(118), "cust-1"), (D("9.5"), "cust-2")]


def test_totals_in_bulk_subjects_and_group_values(world):
    org, m, org_b, mb = world
    got = selectors.meter_usage_totals(
        organization=org,
        requests=[
            (m["sum"], None, None, None, None),
            (m["count"], ["s1"], T0, T0 + timedelta(days=1), None),
            ("sum", ["s1", "s2"], T0, T0 + timedelta(days=2), {"model": "gpt"}),
            (m["max"], None, None, None, {"model": ["llama"]}),
            (m["sum"], ["nobody"], None, None, None),
        ],
    )
    assert got == [D("127.5"), D(3), D("22.5"), D(5), D(0)]
    assert selectors.meters_usage_last_24h(organization=org, meters=[m["sum"]]) == {m["sum"].id: None}
    assert selectors.meter_subjects(organization=org, meter=m["sum"]) == ["s1", "s2", "s3"]
    assert selectors.meter_group_values(organization=org, meter=m["sum"], key="model") == ["gpt", "llama"]
    assert selectors.meter_group_values(organization=org_b, meter=mb["sum"], key="model") == ["b-only"]


def test_dedup_conflicts_and_late_events(world, tenant_a):
    org, m, org_b, _ = world
    client = tenant_a.client("ingest")
    resend = [ce(i, subject=s, time=iso(t), data=d) for i, s, t, d in A_EVENTS[:2]]
    changed = ce("e2", subject="s1", time=iso(T0 + timedelta(minutes=70)), data={"tokens": 500})
    late = ce(
        "late", subject="s9", time=iso(T0 + timedelta(minutes=20)), data={"tokens": 1000, "model": "gpt"}
    )
    assert post_events(client, [*resend, changed, late]).status_code == 204
    services.rollups_advance()
    assert total(org, m["sum"]) == D("1127.5")
    assert total(org, m["sum"], from_=T0, to=T0 + timedelta(hours=1)) == D(1013)
    assert total(org, m["count"]) == D(8)
    log = selectors.events_list(organization=org, limit=20)
    assert [e.event["id"] for e in log if e.validation_error is None][:1] == ["late"]
    conflicts = [e for e in log if e.validation_error and e.validation_error.startswith("duplicate_conflict")]
    assert [(e.event["id"], e.event["data"]) for e in conflicts] == [("e2", {"tokens": 500})]
    assert not [e for e in selectors.events_list(organization=org_b, limit=20) if e.validation_error]


def test_event_log(world):
    org, _m, org_b, _ = world
    log = selectors.events_list(organization=org, limit=3)
    assert {e.event["id"] for e in log} <= {"e1", "e7", "e2", "e3", "e4", "e5", "e6", "r1"}
    assert len(log) == 3
    log = selectors.events_list(organization=org, subject="s2", limit=10)
    assert sorted((e.event["id"], e.event["time"]) for e in log) == [
        ("e3", T0 + timedelta(hours=2, minutes=30)),
        ("e4", T0 + timedelta(days=1, hours=5)),
    ]
    e3 = next(e for e in log if e.event["id"] == "e3")
    assert e3.event["data"] == {"tokens": "2.5", "model": "gpt", "region": "eu"}
    assert e3.validation_error is None
    log = selectors.events_list(organization=org, id="e5", limit=10)
    assert [e.validation_error for e in log] == [
        "partly counted: "
        + "; ".join(
            f"meter {s}: $.tokens is not a number, not counted"
            for s in ("avg", "latest", "max", "min", "sum")
        )
    ]
    log_b = selectors.events_list(organization=org_b, limit=100)
    assert len(log_b) == 7 and all(e.event["data"]["model"] == "b-only" for e in log_b)
    assert (
        selectors.events_list(organization=org, from_=T0 + timedelta(days=30), limit=10)[0].event["id"]
        == "e6"
    )


def test_a_changed_group_by_rebuilds(world):
    org, *_ = world
    services.meter_update(organization=org, id_or_slug="sum", group_by={"model": "$.model"})
    m_sum = selectors.meter_get(organization=org, id_or_slug="sum")
    services.rollups_advance()
    rows = q(org, m_sum, group_by=["model"], from_=T0, to=T0 + timedelta(days=40))
    assert [(r[0], r[5]) for r in rows] == [(D("122.5"), {"model": "gpt"}), (D(5), {"model": "llama"})]
