"""The event store partitioned by event month: events land in their month's partition (or the default
one), months move out of the default partition with their seq, keys and counts intact, dedup stays exact
across months (the key table), the drain keeps acceptance order, and the migration converts an existing
table keeping its rows. Every test has a second organization whose events must never move or vanish."""

from __future__ import annotations

import importlib
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from metering import services, store
from metering.models import Event, EventKey, RejectedEvent
from metering.selectors import meter_query
from tests.metering.conftest import ce

pytestmark = pytest.mark.django_db
migration = importlib.import_module("metering.migrations.0005_event_partitions")

T_OLD = datetime(2024, 3, 10, 12, tzinfo=UTC)  # a month with no partition: the default partition
T_OLD2 = datetime(2024, 4, 5, 8, tzinfo=UTC)


def ev(i: str, t: datetime, *, tokens: int = 1, subject: str = "cust-1", source: str = "app"):
    return (source, i, "prompt", subject, t, json.dumps({"tokens": tokens, "model": "m"}))


def where(seq: int) -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT tableoid::regclass::text FROM metering_event WHERE seq = %s", [seq])
        return cur.fetchone()[0]


def total(org, meter, frm=None, to=None) -> Decimal:
    return sum((r.value for r in meter_query(organization=org, meter=meter, from_=frm, to=to)), Decimal(0))


def test_events_land_in_their_month_and_move_out_of_the_default_partition(
    tenant_a, tenant_b, tokens_meter, tokens_meter_b
):
    now = datetime.now(UTC)
    services.events_ingest(
        organization=tenant_a.org, events=[ev("a1", T_OLD, tokens=2), ev("a2", now, tokens=3)]
    )
    services.events_ingest(organization=tenant_b.org, events=[ev("b1", T_OLD, tokens=5)])
    seqs = dict(Event.objects.values_list("event_id", "seq").filter(organization=tenant_a.org))
    b_seq = Event.objects.get(organization=tenant_b.org).seq
    assert where(seqs["a1"]) == "metering_event_default"
    assert where(seqs["a2"]) == f"metering_event_p{now:%Y%m}"  # created ahead by the migration
    before = (total(tenant_a.org, tokens_meter), total(tenant_b.org, tokens_meter_b))
    assert before == (Decimal(5), Decimal(5))

    created = store.partitions_ensure(now=now)
    assert "metering_event_p202403" in created
    assert where(seqs["a1"]) == "metering_event_p202403"  # moved, same seq
    assert where(b_seq) == "metering_event_p202403"  # the other organization's event too, intact
    assert (total(tenant_a.org, tokens_meter), total(tenant_b.org, tokens_meter_b)) == before
    assert EventKey.objects.filter(organization=tenant_a.org).count() == 2
    assert EventKey.objects.get(organization=tenant_b.org, event_id="b1").seq == b_seq
    assert store.partitions_ensure(now=now) == []  # idempotent
    # the key still finds the moved event: a resend is dropped, a changed resend is a conflict
    result = services.events_ingest(
        organization=tenant_a.org, events=[ev("a1", T_OLD, tokens=2), ev("a1", T_OLD, tokens=9)]
    )
    assert (result.inserted, result.conflicts) == (0, 1)
    assert total(tenant_a.org, tokens_meter) == Decimal(5)


def test_partitions_ahead_and_behind_exist(tenant_a):
    store.partitions_ensure(now=datetime(2031, 1, 15, tzinfo=UTC))
    months = store.partitions_list()
    for m in ("2030-12", "2031-01", "2031-02", "2031-03", "2031-04"):
        assert datetime.strptime(m, "%Y-%m").replace(tzinfo=UTC) in months
    # an event of a far month with no partition is still stored (default partition)
    services.events_ingest(organization=tenant_a.org, events=[ev("far", datetime(2040, 6, 1, tzinfo=UTC))])
    assert where(Event.objects.get(event_id="far").seq) == "metering_event_default"


def test_dedup_is_exact_across_months(tenant_a, tenant_b, tokens_meter):
    """The same (source, id) with a time in another month is the same event: dropped and logged as a
    conflict, never stored twice (the key is not partitioned)."""
    services.events_ingest(organization=tenant_a.org, events=[ev("x", T_OLD, tokens=2)])
    r = services.events_ingest(organization=tenant_a.org, events=[ev("x", T_OLD2, tokens=2)])
    assert (r.inserted, r.conflicts) == (0, 1)
    r = services.events_ingest(organization=tenant_a.org, events=[ev("x", T_OLD, tokens=2)])  # identical
    assert (r.inserted, r.conflicts) == (0, 0)
    r = services.events_ingest(organization=tenant_b.org, events=[ev("x", T_OLD2, tokens=7)])
    assert (r.inserted, r.conflicts) == (1, 0)  # another organization's key
    assert Event.objects.filter(organization=tenant_a.org).count() == 1
    assert RejectedEvent.objects.filter(organization=tenant_a.org, reason="duplicate_conflict").count() == 1
    assert not RejectedEvent.objects.filter(organization=tenant_b.org).exists()
    # through the API and the drain: same rule
    client = tenant_a.client("ingest")
    body = [ce("x", time="2024-05-01T00:00:00Z", data={"tokens": 2}), ce("y", data={"tokens": 1})]
    assert (
        client.post(
            "/api/v1/events", data=json.dumps(body), content_type="application/cloudevents-batch+json"
        ).status_code
        == 204
    )
    services.events_drain_all()
    assert sorted(Event.objects.filter(organization=tenant_a.org).values_list("event_id", flat=True)) == [
        "x",
        "y",
    ]
    assert RejectedEvent.objects.filter(organization=tenant_a.org, reason="duplicate_conflict").count() == 2
    assert total(tenant_a.org, tokens_meter) == Decimal(3)


def test_drain_keeps_acceptance_order_in_seq(tenant_a, tenant_b):
    """Rows are inserted in the query index's order (type, subject, time) but seq, the ingestion order
    that rollups, LATEST and the event log rely on, follows acceptance; first accepted wins."""
    client = tenant_a.client("ingest")
    first = [ce(f"e{i}", subject=f"s{9 - i}", time=f"2024-0{1 + i % 3}-0{1 + i}T00:00:00Z") for i in range(6)]
    second = [ce("e0", subject="late-copy"), ce("z", subject="a")]
    for body in (first, second):
        r = client.post(
            "/api/v1/events", data=json.dumps(body), content_type="application/cloudevents-batch+json"
        )
        assert r.status_code == 204
    services.events_ingest(organization=tenant_b.org, events=[ev("e0", T_OLD)])
    services.events_drain_all()
    order = list(
        Event.objects.filter(organization=tenant_a.org).order_by("seq").values_list("event_id", "subject")
    )
    assert order == [
        ("e0", "s9"),
        ("e1", "s8"),
        ("e2", "s7"),
        ("e3", "s6"),
        ("e4", "s5"),
        ("e5", "s4"),
        ("z", "a"),
    ]
    assert Event.objects.filter(organization=tenant_b.org).count() == 1


class _Editor:
    def __init__(self, conn):
        self.connection = conn


def test_migration_converts_an_existing_table_keeping_its_rows(tenant_a, tenant_b):
    """The conversion of migration 0005, run on an unpartitioned table of the 0001 shape in a scratch
    schema (rolled back with the test's transaction)."""
    with connection.cursor() as cur:
        cur.execute("CREATE SCHEMA mig_scratch")
        cur.execute("SET LOCAL search_path = mig_scratch, public")
        cur.execute(
            "CREATE TABLE mig_scratch.metering_event (seq bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
            "organization_id varchar(26) NOT NULL, source text NOT NULL, event_id text NOT NULL, type text NOT NULL, "
            "subject text NOT NULL, time timestamptz NOT NULL, data jsonb, stored_at timestamptz NOT NULL, "
            "CONSTRAINT metering_event_dedup UNIQUE (organization_id, source, event_id))"
        )
        cur.execute(
            "CREATE INDEX metering_event_query ON mig_scratch.metering_event (organization_id, type, subject, time)"
        )
        cur.execute(
            "CREATE TABLE mig_scratch.metering_eventkey (LIKE public.metering_eventkey INCLUDING ALL)"
        )
        cur.execute("ALTER TABLE mig_scratch.metering_eventkey DROP COLUMN payload_hash")  # added by 0006
        rows = [
            (tenant_a.org.id, "a1", "2023-07-04T10:00:00Z"),
            (tenant_a.org.id, "a2", "2023-08-01T00:00:00Z"),
            (tenant_b.org.id, "a1", "2023-07-31T23:59:59Z"),
            (tenant_b.org.id, "b9", "1960-01-01T00:00:00Z"),  # outside the countable range: default partition
        ]
        for org, eid, t in rows:
            cur.execute(
                "INSERT INTO mig_scratch.metering_event (organization_id, source, event_id, type, subject, time, "
                "data, stored_at) VALUES (%s, 'app', %s, 'prompt', 'c', %s, '{\"tokens\": 1}', now())",
                [org, eid, t],
            )
        cur.execute("SELECT max(seq) FROM mig_scratch.metering_event")
        last = cur.fetchone()[0]
        migration.convert(None, _Editor(connection))
        cur.execute("SELECT relkind FROM pg_class WHERE oid = 'mig_scratch.metering_event'::regclass")
        assert cur.fetchone()[0] == "p"
        cur.execute(
            "SELECT organization_id, event_id, seq, tableoid::regclass::text FROM mig_scratch.metering_event ORDER BY seq"
        )
        moved = cur.fetchall()
        assert [(o, e) for o, e, _s, _t in moved] == [(o, e) for o, e, _t in rows]
        assert [s for _o, _e, s, _t in moved] == list(range(1, last + 1))  # seq kept
        assert [t.split(".")[-1] for *_x, t in moved] == [
            "metering_event_p202307",
            "metering_event_p202308",
            "metering_event_p202307",
            "metering_event_default",
        ]
        cur.execute("SELECT organization_id, event_id, seq FROM mig_scratch.metering_eventkey ORDER BY seq")
        assert cur.fetchall() == [(o, e, s) for o, e, s, _t in moved]
        cur.execute("SELECT nextval('mig_scratch.metering_event_ingest_seq')")
        assert cur.fetchone()[0] == last + 1  # the sequence continues after the copied rows
        cur.execute("SELECT to_regclass('mig_scratch.metering_event_unpartitioned')")
        assert cur.fetchone()[0] is None
