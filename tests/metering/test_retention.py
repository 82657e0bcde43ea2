"""Event retention per organization: validated and audited; the job drops a month's partition only when
every organization in it is expired, deletes only the expired organization's rows (and dedup keys) in a
month shared with an organization that keeps its events, never touches an organization without a
retention, and a second run changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.errors import ValidationFailed
from core.models import AuditLog
from metering import retention, services, store, tasks
from metering.models import Event, EventKey, EventRetention, InboxBatch, Rollup
from metering.selectors import meter_query

pytestmark = pytest.mark.django_db

NOW = datetime(2031, 6, 15, 12, tzinfo=UTC)  # 40 days before: 2031-05-06 -> months up to April expire


def ev(i: str, t: datetime, tokens: int = 1):
    return ("app", i, "prompt", "cust-1", t, json.dumps({"tokens": tokens, "model": "m"}))


def months(*names: str) -> set[str]:
    return {f"metering_event_p{n.replace('-', '')}" for n in names}


def present() -> set[str]:
    return {store.partitions.partition_name(m) for m in store.partitions_list()}


def test_retention_setting_is_validated_and_audited(tenant_a, tenant_b):
    assert retention.event_retention_get(organization=tenant_a.org) is None  # default: forever
    for bad in (34, 0, -5, 36_501, True, "40", 40.5):
        with pytest.raises(ValidationFailed) as exc:
            retention.event_retention_set(organization=tenant_a.org, days=bad)  # type: ignore[arg-type]
        assert exc.value.field == "days"
    assert not EventRetention.objects.exists()
    assert not AuditLog.objects.filter(action="metering.event_retention.set").exists()
    retention.event_retention_set(organization=tenant_a.org, days=40, actor="test")
    assert retention.event_retention_get(organization=tenant_a.org) == 40
    assert retention.event_retention_get(organization=tenant_b.org) is None
    retention.event_retention_set(organization=tenant_a.org, days=None, actor="test")
    assert retention.event_retention_get(organization=tenant_a.org) is None
    audits = AuditLog.objects.filter(organization=tenant_a.org, action="metering.event_retention.set")
    assert [(a.before, a.after) for a in audits.order_by("id")] == [
        ({"days": None}, {"days": 40}),
        ({"days": 40}, {"days": None}),
    ]
    assert not AuditLog.objects.filter(
        organization=tenant_b.org, action="metering.event_retention.set"
    ).exists()


def test_expire_drops_whole_months_and_deletes_rows_only_where_shared(tenant_a, tenant_b, tokens_meter):
    store.partitions_ensure(now=datetime(2031, 3, 10, tzinfo=UTC))  # 2031-02 .. 2031-06
    a_only = [
        ev("a-feb", datetime(2031, 2, 3, tzinfo=UTC), 2),
        ev("a-feb2", datetime(2031, 2, 20, tzinfo=UTC), 3),
    ]
    shared_a = [ev("a-mar", datetime(2031, 3, 5, tzinfo=UTC), 5)]
    recent_a = [ev("a-may", datetime(2031, 5, 20, tzinfo=UTC), 7)]
    default_a = [ev("a-old", datetime(1960, 1, 1, tzinfo=UTC), 11)]  # not countable: default partition
    retention.event_retention_set(organization=tenant_a.org, days=40)
    services.events_ingest(organization=tenant_a.org, events=a_only + shared_a + recent_a + default_a)
    services.events_ingest(
        organization=tenant_b.org,
        events=[
            ev("b-mar", datetime(2031, 3, 6, tzinfo=UTC), 100),
            ev("b-old", datetime(1960, 1, 2, tzinfo=UTC)),
        ],
    )
    b_before = sorted(Event.objects.filter(organization=tenant_b.org).values_list("seq", "event_id"))

    result = retention.events_expire(now=NOW)
    assert result.dropped == ("metering_event_p203102",)  # only tenant A had events in February
    assert result.deleted == 2  # A's March event (month shared with B) and A's default-partition event
    assert "metering_event_p203102" not in present()
    assert months("2031-03", "2031-04", "2031-05", "2031-06") <= present()
    left_a = set(Event.objects.filter(organization=tenant_a.org).values_list("event_id", flat=True))
    assert left_a == {"a-may"}
    assert set(EventKey.objects.filter(organization=tenant_a.org).values_list("event_id", flat=True)) == {
        "a-may"
    }
    # tenant B keeps everything, with its keys
    assert sorted(Event.objects.filter(organization=tenant_b.org).values_list("seq", "event_id")) == b_before
    assert EventKey.objects.filter(organization=tenant_b.org).count() == 2
    rows = meter_query(organization=tenant_a.org, meter=tokens_meter, use_rollups=False)
    assert sum((r.value for r in rows), Decimal(0)) == Decimal(7)

    # idempotent: nothing more to do
    again = retention.events_expire(now=NOW)
    assert (again.dropped, again.deleted) == ((), 0)
    # a retained event's key is still there; an expired event's key went with it (dedup window = retention)
    r = services.events_ingest(
        organization=tenant_a.org, events=[ev("a-may", datetime(2031, 5, 20, tzinfo=UTC), 7)]
    )
    assert r.inserted == 0
    r = services.events_ingest(
        organization=tenant_a.org, events=[ev("a-feb", datetime(2031, 2, 3, tzinfo=UTC), 2)]
    )
    assert r.inserted == 1


def test_no_retention_no_removal_and_the_task_runs(tenant_a, tenant_b):
    store.partitions_ensure(now=datetime(2031, 2, 10, tzinfo=UTC))
    services.events_ingest(organization=tenant_a.org, events=[ev("a", datetime(2031, 2, 3, tzinfo=UTC))])
    services.events_ingest(organization=tenant_b.org, events=[ev("b", datetime(2031, 2, 3, tzinfo=UTC))])
    assert retention.events_expire(now=NOW) == store.ExpireResult((), 0)
    tasks.events_expire()  # the Celery task (now: nothing expired yet for any organization)
    tasks.event_partitions_maintain()
    assert Event.objects.count() == 2


def test_partitions_are_left_alone_with_the_clickhouse_store(tenant_a, tenant_b, settings):
    before = store.partitions_list()
    settings.METERING_STORE = "clickhouse"
    assert retention.event_partitions_maintain(now=datetime(2033, 6, 1, tzinfo=UTC)) == []
    settings.METERING_STORE = "postgres"
    assert store.partitions_list() == before
    created = retention.event_partitions_maintain(now=datetime(2033, 6, 1, tzinfo=UTC))
    assert "metering_event_p203306" in created
    assert not Event.objects.filter(organization__in=[tenant_a.org, tenant_b.org]).exists()


def test_retention_command(tenant_a, tenant_b, capsys):
    call_command("event_retention", tenant_a.org.slug, "60")
    assert retention.event_retention_get(organization=tenant_a.org) == 60
    call_command("event_retention", tenant_a.org.slug, "forever")
    assert retention.event_retention_get(organization=tenant_a.org) is None
    with pytest.raises(CommandError, match="days"):
        call_command("event_retention", tenant_a.org.slug, "10")
    assert retention.event_retention_get(organization=tenant_a.org) is None
    assert retention.event_retention_get(organization=tenant_b.org) is None


def test_purging_an_organization_removes_its_events_keys_rollups_and_inbox_only(
    tenant_a, tenant_b, tokens_meter, tokens_meter_b
):
    t = datetime(2031, 5, 1, tzinfo=UTC)
    for tenant in (tenant_a, tenant_b):
        # the same source and ids in both: the key is per organization
        services.events_ingest(organization=tenant.org, events=[ev("e1", t), ev("e2", t, 3)])
    services.events_accept(organization=tenant_a.org, body=json.dumps([]).encode(), event_count=0)
    services.rollups_advance()
    assert Rollup.objects.filter(organization_id=tenant_a.org.id).exists()
    assert store.events_purge(organization_id=tenant_a.org.id) == 2
    assert not Rollup.objects.filter(organization_id=tenant_a.org.id).exists()
    assert Rollup.objects.filter(organization_id=tenant_b.org.id).exists()
    assert not Event.objects.filter(organization=tenant_a.org).exists()
    assert not EventKey.objects.filter(organization=tenant_a.org).exists()
    assert not InboxBatch.objects.filter(organization=tenant_a.org).exists()
    assert sorted(EventKey.objects.filter(organization=tenant_b.org).values_list("event_id", flat=True)) == [
        "e1",
        "e2",
    ]
    assert Event.objects.filter(organization=tenant_b.org).count() == 2
    assert store.events_purge(organization_id=tenant_a.org.id) == 0


def test_the_dedup_key_index_leads_with_the_event_id_in_byte_order(tenant_a, tenant_b):
    """metering.models.EventKey: each comparison of an insert's descent is settled by the id, with memcmp."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT a.attname, coalesce(c.collname, '') FROM pg_index i "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "LEFT JOIN pg_collation c ON c.oid = a.attcollation "
            "WHERE i.indexrelid = 'metering_eventkey_pkey'::regclass "
            "ORDER BY array_position(i.indkey::int2[], a.attnum)"
        )
        assert cur.fetchall() == [("event_id", "C"), ("source", "C"), ("organization_id", "default")]
