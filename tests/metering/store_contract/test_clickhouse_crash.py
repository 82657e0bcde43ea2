"""ClickHouse-only guarantees behind the contract: a crash between the ClickHouse insert and the inbox's
commit in PostgreSQL never loses nor double counts, and a retried insert block (a client that lost the
answer) is dropped by the events table and by the rollup views it feeds. Tenant B's events never count
for A."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from metering import selectors, services, store
from metering.clickhouse import events as ch_events
from metering.clickhouse import schema
from metering.clickhouse.schema import client
from metering.models import InboxBatch
from tests.metering.conftest import ce

pytestmark = pytest.mark.django_db
T0 = datetime(2025, 6, 1, tzinfo=UTC)


def _sum(org, meter):
    rows = selectors.meter_query(organization=org, meter=meter, from_=T0, to=T0 + timedelta(days=1))
    return rows[0].value if rows else None


@pytest.fixture
def meters(use_clickhouse, tenant_a, tenant_b):
    return [
        services.meter_create(
            organization=t.org,
            slug="tokens",
            event_type="prompt",
            aggregation="SUM",
            value_property="$.tokens",
        )
        for t in (tenant_a, tenant_b)
    ]


def test_a_crash_after_the_clickhouse_insert_is_redone_once(meters, tenant_a, tenant_b, monkeypatch):
    meter, meter_b = meters
    assert _sum(tenant_a.org, meter) is None  # the meter's view exists before the events arrive
    body = [ce(f"e{i}", time=f"2025-06-01T0{i}:30:00Z", data={"tokens": 10 * i}) for i in range(1, 6)]
    r = tenant_a.client("ingest").post(
        "/api/v1/events", data=json.dumps(body), content_type="application/cloudevents-batch+json"
    )
    assert r.status_code == 204
    services.events_ingest(
        organization=tenant_b.org,
        events=[("app", "e1", "prompt", "cust-1", T0 + timedelta(hours=1), json.dumps({"tokens": 5000}))],
    )

    def crash(*args, **kwargs):
        raise RuntimeError("the process died after ClickHouse stored the chunk")

    monkeypatch.setattr(ch_events, "_log_conflicts", crash)
    with pytest.raises(RuntimeError):
        store.inbox_drain(organization_id=tenant_a.org.id)
    assert InboxBatch.objects.filter(organization=tenant_a.org).count() == 1  # still accepted, not stored
    ch = client()
    db = ch.database
    stored = ch.rows(
        f"SELECT count() FROM {db}.{schema.EVENT} WHERE organization_id = {{o:String}}",
        {"o": tenant_a.org.id},
    )
    assert stored == [(5,)]  # ClickHouse has the chunk already
    monkeypatch.undo()
    result = store.inbox_drain(organization_id=tenant_a.org.id)
    assert result is not None and (result.received, result.inserted, result.conflicts) == (5, 0, 0)
    assert not InboxBatch.objects.filter(organization=tenant_a.org).exists()
    assert _sum(tenant_a.org, meter) == Decimal(150)  # 10 + 20 + 30 + 40 + 50, once
    assert _sum(tenant_b.org, meter_b) == Decimal(5000)
    assert len(selectors.events_list(organization=tenant_a.org, limit=50)) == 5


def test_a_retried_insert_block_is_dropped_by_the_table_and_the_views(meters, tenant_a, tenant_b):
    meter, meter_b = meters
    assert _sum(tenant_a.org, meter) is None
    ev = ch_events._Event(
        "app", "r1", "prompt", "cust-1", T0 + timedelta(hours=2), {"tokens": 7}, T0, '{"tokens":7}'
    )
    ch = client()
    row = (
        tenant_a.org.id,
        *ev.key,
        ev.type,
        ev.subject,
        ev.time,
        ev.text,
        T0,
        1,
        99,
        ch_events.doc_text(ev.data),
    )
    for _ in range(2):  # the same block, the same token: a client retrying after a lost answer
        ch.insert(f"{ch.database}.{schema.EVENT}", ch_events._EVENT_COLUMNS, [row], "retry-token-1")
    assert _sum(tenant_a.org, meter) == Decimal(7)
    assert _sum(tenant_b.org, meter_b) is None


def test_a_batch_split_by_lane_before_the_switch_is_stored_whole(meters, tenant_a, tenant_b):
    """Batches accepted while the PostgreSQL store ran drain lanes, still waiting when ClickHouse was
    selected: every lane's share is stored, once."""
    meter, meter_b = meters
    body = [ce(f"s{i}", time=f"2025-06-01T0{i}:30:00Z", data={"tokens": i}) for i in range(1, 9)]
    for org, events in ((tenant_a.org, body), (tenant_b.org, body[:1])):
        store.inbox_append(
            organization_id=org.id,
            body=json.dumps(events).encode(),
            event_count=len(events),
            received_at=T0,
            lanes=3,
        )
    assert InboxBatch.objects.get(organization=tenant_a.org).lane_ends is not None
    result = store.inbox_drain(organization_id=tenant_a.org.id)
    assert result is not None and (result.received, result.inserted, result.failed) == (8, 8, 0)
    assert _sum(tenant_a.org, meter) == Decimal(36)  # 1 + 2 + ... + 8
    assert not InboxBatch.objects.filter(organization=tenant_a.org).exists()
    assert _sum(tenant_b.org, meter_b) == Decimal(1)  # B's own, drained by its read
