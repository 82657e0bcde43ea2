"""The ingest inbox: a request is accepted durably as one row, a drain stores its events (dedup, acceptance
order, listeners), reads see accepted events at once, and nothing is lost or counted twice on a crash."""

from __future__ import annotations

import io
import json
import os
import re
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from metering import drain, hooks, services, store
from metering import tasks as metering_tasks
from metering.models import Event, InboxBatch, RejectedEvent
from metering.selectors import meter_query
from metering.store import events as events_store
from metering.store import inbox as store_inbox  # the module whose private step is made to fail
from tests.metering.conftest import ce

pytestmark = pytest.mark.django_db
URL = "/api/v1/events"
BATCH = "application/cloudevents-batch+json"


def accept(client, events) -> None:
    """POST without draining: the batch stays in the inbox."""
    r = client.post(URL, data=json.dumps(events), content_type=BATCH)
    assert r.status_code == 204, r.content


def tokens(org, meter) -> Decimal:
    rows = meter_query(organization=org, meter=meter)
    return sum((r.value for r in rows), Decimal(0))


def test_accepted_batch_is_one_row_and_a_read_sees_it(tenant_a, tenant_b, tokens_meter, tokens_meter_b):
    accept(tenant_a.client("ingest"), [ce(f"a{i}", data={"tokens": 2, "model": "m"}) for i in range(5)])
    accept(tenant_b.client("ingest"), [ce("b0", data={"tokens": 100, "model": "m"})])
    assert list(InboxBatch.objects.values_list("organization_id", "event_count").order_by("id")) == [
        (tenant_a.org.id, 5),
        (tenant_b.org.id, 1),
    ]
    assert not Event.objects.exists()

    # read-your-writes: the query stores the organization's pending batches first
    assert tokens(tenant_a.org, tokens_meter) == Decimal(10)
    assert Event.objects.filter(organization=tenant_a.org).count() == 5
    # ... and only its own: tenant B's batch is still waiting, and never counted for A
    assert list(InboxBatch.objects.values_list("organization_id", flat=True)) == [tenant_b.org.id]
    assert tokens(tenant_b.org, tokens_meter_b) == Decimal(100)
    assert not InboxBatch.objects.exists()
    assert tokens(tenant_a.org, tokens_meter) == Decimal(10)


def test_event_list_api_shows_accepted_events(tenant_a, tenant_b):
    accept(tenant_a.client("ingest"), [ce("seen", data={"tokens": 1})])
    accept(tenant_b.client("ingest"), [ce("other", data={"tokens": 1})])
    r = tenant_a.client("read").get(URL)
    assert r.status_code == 200
    assert [e["event"]["id"] for e in r.json()] == ["seen"]


def test_pending_batches_keep_acceptance_order_first_accepted_wins(tenant_a, tokens_meter):
    c = tenant_a.client("ingest")
    accept(c, [ce("dup", data={"tokens": 1, "model": "m"})])
    accept(c, [ce("dup", data={"tokens": 7, "model": "m"}), ce("new", data={"tokens": 3, "model": "m"})])
    accept(c, [ce("dup", data={"tokens": 1, "model": "m"})])  # an identical resend: dropped silently
    [result] = drain.events_drain(organization_id=tenant_a.org.id)
    assert (result.batches, result.received, result.inserted, result.conflicts) == (3, 4, 2, 1)
    assert Event.objects.get(event_id="dup").data == {"tokens": 1, "model": "m"}
    rej = RejectedEvent.objects.get(organization=tenant_a.org)
    assert (rej.event_id, rej.reason, rej.data) == ("dup", "duplicate_conflict", {"tokens": 7, "model": "m"})
    assert tokens(tenant_a.org, tokens_meter) == Decimal(4)


def test_stored_event_wins_over_every_differing_copy_in_a_later_chunk(tenant_a, tenant_b, tokens_meter):
    c = tenant_a.client("ingest")
    accept(c, [ce("k", data={"tokens": 1, "model": "m"})])
    drain.events_drain(organization_id=tenant_a.org.id)
    accept(
        tenant_b.client("ingest"), [ce("k", data={"tokens": 9, "model": "m"})]
    )  # B's own, never a conflict
    accept(c, [ce("k", data={"tokens": 7, "model": "m"}), ce("k", data={"tokens": 1, "model": "m"})])
    accept(c, [ce("k", data={"tokens": 7, "model": "m"})])
    [result] = drain.events_drain(organization_id=tenant_a.org.id)
    assert (result.received, result.inserted, result.conflicts) == (3, 0, 2)
    assert Event.objects.get(organization=tenant_a.org, event_id="k").data == {"tokens": 1, "model": "m"}
    logged = RejectedEvent.objects.filter(organization=tenant_a.org).values_list("data", flat=True)
    assert list(logged) == [{"tokens": 7, "model": "m"}] * 2
    assert tokens(tenant_a.org, tokens_meter) == Decimal(1)
    drain.events_drain(organization_id=tenant_b.org.id)
    assert not RejectedEvent.objects.filter(organization=tenant_b.org).exists()


def test_one_chunk_judges_each_repeated_key_against_the_copy_that_counts(tenant_a, tenant_b, tokens_meter):
    """A chunk mixing new keys, keys stored before and a key repeated within it: only the repeated keys are
    judged, each against the stored copy, else its first accepted one; every new key is stored as is."""

    def ev(key: str, n: int) -> dict:
        return ce(key, data={"tokens": n, "model": "m"})

    c = tenant_a.client("ingest")
    accept(c, [ev("old-same", 1), ev("old-diff", 2)])
    drain.events_drain(organization_id=tenant_a.org.id)
    accept(tenant_b.client("ingest"), [ev("twice", 5)])  # B's key of the same name is B's own
    accept(c, [ev("new1", 10), ev("old-same", 1), ev("old-diff", 20), ev("twice", 3)])
    accept(c, [ev("twice", 30), ev("new2", 100), ev("twice", 3)])
    [result] = drain.events_drain(organization_id=tenant_a.org.id)
    assert (result.batches, result.received, result.inserted, result.conflicts) == (2, 7, 3, 2)
    rejected = RejectedEvent.objects.filter(organization=tenant_a.org)
    assert sorted((r.event_id, r.data["tokens"]) for r in rejected) == [("old-diff", 20), ("twice", 30)]
    assert tokens(tenant_a.org, tokens_meter) == Decimal(1 + 2 + 10 + 3 + 100)
    drain.events_drain(organization_id=tenant_b.org.id)
    assert Event.objects.get(organization=tenant_b.org, event_id="twice").data["tokens"] == 5
    assert not RejectedEvent.objects.filter(organization=tenant_b.org).exists()


def test_drain_that_crashes_midway_is_redone_without_double_counting(tenant_a, tokens_meter, monkeypatch):
    c = tenant_a.client("ingest")
    accept(c, [ce(f"x{i}", data={"tokens": 1, "model": "m"}) for i in range(10)])
    accept(c, [ce(f"y{i}", data={"tokens": 1, "model": "m"}) for i in range(10)])
    real = store_inbox._drain_rows

    def crash_after_insert(cur, org, ids, slot):
        real(cur, org, ids, slot)  # events are inserted ...
        raise RuntimeError("worker killed")  # ... and the process dies before the batches are deleted

    monkeypatch.setattr(store_inbox, "_drain_rows", crash_after_insert)
    with pytest.raises(RuntimeError):
        drain.events_drain(organization_id=tenant_a.org.id)
    assert not Event.objects.exists()  # the whole chunk rolled back
    assert InboxBatch.objects.count() == 2  # still pending, nothing lost
    monkeypatch.setattr(store_inbox, "_drain_rows", real)
    drain.events_drain(organization_id=tenant_a.org.id)
    drain.events_drain(organization_id=tenant_a.org.id)  # running it again changes nothing
    assert Event.objects.count() == 20
    assert not InboxBatch.objects.exists()
    assert tokens(tenant_a.org, tokens_meter) == Decimal(20)


def test_a_batch_postgres_refuses_is_kept_and_reported_not_blocking(tenant_a, tenant_b, tokens_meter):
    now = datetime.now(UTC)
    good = json.dumps([ce("g1", data={"tokens": 1, "model": "m"})]).encode()
    # 1e999999 passes JSON parsing in Python's exact path but overflows PostgreSQL's numeric: a batch
    # the API refuses (see the next test), written here directly to exercise the drain's isolation.
    bad = b'[{"id":"b1","source":"app","specversion":"1.0","type":"prompt","subject":"c","data":{"n":1e999999}}]'
    for body in (good, bad, good.replace(b"g1", b"g2")):
        store.inbox_append(organization_id=tenant_a.org.id, body=body, event_count=1, received_at=now)
    store.inbox_append(organization_id=tenant_b.org.id, body=bad, event_count=1, received_at=now)

    [result] = drain.events_drain(organization_id=tenant_a.org.id)
    assert (result.batches, result.inserted, result.failed) == (3, 2, 1)
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["g1", "g2"]
    failed = InboxBatch.objects.get(organization=tenant_a.org)
    assert failed.failed_at is not None and "numeric" in failed.error
    assert drain.events_drain(organization_id=tenant_a.org.id) == []  # skipped from now on
    assert tokens(tenant_a.org, tokens_meter) == Decimal(2)

    r = tenant_a.client("read").get(URL, {"hasError": "true"})
    [item] = r.json()
    assert item["validationError"].startswith("unprocessable_batch: Accepted request (inbox batch")
    assert "1 events" in item["validationError"]
    assert InboxBatch.objects.filter(organization=tenant_b.org, failed_at__isnull=True).count() == 1

    # an operator retries after fixing the cause: here it still fails, and is kept again, not lost
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("events_drain", "--retry-failed", stdout=out)
    assert out.getvalue().startswith("1 unprocessable batches put back in line")
    assert InboxBatch.objects.filter(failed_at__isnull=False).count() == 2  # A's again, and B's
    assert Event.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_refused_chunk_of_its_own_transaction_is_redone_batch_by_batch(tenant_a, tenant_b):
    """Outside any caller's transaction a chunk has no savepoint: PostgreSQL's refusal rolls the whole chunk
    back, and a new transaction stores it batch by batch, keeping the bad batch for an operator."""
    now = datetime.now(UTC)
    bad = b'[{"id":"b1","source":"app","specversion":"1.0","type":"prompt","subject":"c","data":{"n":1e999999}}]'
    for body in (json.dumps([ce("g1")]).encode(), bad, json.dumps([ce("g2")]).encode()):
        store.inbox_append(organization_id=tenant_a.org.id, body=body, event_count=1, received_at=now)
    store.inbox_append(
        organization_id=tenant_b.org.id, body=json.dumps([ce("g1")]).encode(), event_count=1, received_at=now
    )
    assert not connection.in_atomic_block
    [result] = drain.events_drain(organization_id=tenant_a.org.id)
    assert (result.batches, result.inserted, result.failed) == (3, 2, 1)
    assert sorted(Event.objects.filter(organization=tenant_a.org).values_list("event_id", flat=True)) == [
        "g1",
        "g2",
    ]
    kept = InboxBatch.objects.get(organization=tenant_a.org)
    assert kept.failed_at is not None and "numeric" in kept.error
    assert (
        RejectedEvent.objects.filter(organization=tenant_a.org, reason=store.UNPROCESSABLE_REASON).count()
        == 1
    )
    assert not Event.objects.filter(organization=tenant_b.org).exists()
    assert InboxBatch.objects.filter(organization=tenant_b.org, failed_at__isnull=True).count() == 1


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (
            b'{"id":"a","source":"s","specversion":"1.0","type":"t","subject":"u","data":{"n":1e999999}}',
            "body",
            "out of range",
        ),
        (
            b'{"id":"a","source":"s","specversion":"1.0","type":"t","subject":"u","data":{"n":1e400}}',
            "data.n",
            "less than 1e20",
        ),
        (json.dumps(ce("a", time="2025-01-01T12:00Z")).encode(), "time", "with seconds"),
        (json.dumps(ce("a", time="2025-01-01T12:00:00+16:00")).encode(), "time", "offset"),
        (json.dumps(ce("a", time="2025-02-30T12:00:00Z")).encode(), "time", "RFC 3339"),
        (json.dumps(ce("a", data='{"x": 1')).encode(), "data", "JSON object"),
    ],
)
def test_what_postgres_could_not_store_is_refused_at_the_door(tenant_a, body, field, reason):
    r = tenant_a.client("ingest").post(URL, data=body, content_type="application/cloudevents+json")
    assert r.status_code == 400, r.content
    [param] = r.json()["invalid_params"]
    assert param["name"] == field
    assert reason in param["reason"] or reason in r.json()["detail"]
    assert not InboxBatch.objects.exists()


def test_big_numbers_are_accepted_and_stored_digit_for_digit(tenant_a):
    body = b'{"id":"n","source":"s","specversion":"1.0","type":"t","subject":"u","data":{"big":9.9e19,"i":12345678901234567890}}'
    r = tenant_a.client("ingest").post(URL, data=body, content_type="application/cloudevents+json")
    assert r.status_code == 204, r.content
    drain.events_flush(organization_id=tenant_a.org.id)
    data = Event.objects.get().data
    assert Decimal(str(data["big"])) == Decimal("9.9e19")
    assert data["i"] == 12345678901234567890


def test_listeners_run_when_the_drain_stores_events_not_when_accepted(
    tenant_a, django_capture_on_commit_callbacks
):
    calls = []

    def listener(**kw):
        calls.append(kw)

    hooks.add_ingest_listener(listener)
    try:
        accept(tenant_a.client("ingest"), [ce("l1", subject="s1", time="2025-03-01T10:00:00Z")])
        assert calls == []  # accepted, not stored yet
        with django_capture_on_commit_callbacks(execute=True):
            drain.events_flush(organization_id=tenant_a.org.id)
        [call] = calls
        assert call["organization"] == tenant_a.org
        assert call["subjects"] == ["s1"]
        assert call["event_types"] == ["prompt"]
        assert call["earliest_event_time"] == datetime(2025, 3, 1, 10, tzinfo=UTC)
        with django_capture_on_commit_callbacks(execute=True):
            accept(tenant_a.client("ingest"), [ce("l1", subject="s1")])  # a duplicate: nothing new
            drain.events_flush(organization_id=tenant_a.org.id)
        assert len(calls) == 1
    finally:
        hooks.remove_ingest_listener(listener)


def test_accepting_schedules_a_drain_after_commit(tenant_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        accept(tenant_a.client("ingest"), [ce("t1")])
    # the eager Celery task ran on commit: stored without any read
    assert not InboxBatch.objects.exists()
    assert Event.objects.filter(event_id="t1").exists()


def test_outside_tests_accepting_only_pokes_the_background_publisher(tenant_a, monkeypatch):
    """No broker round trip in the request: the drain task is published by a daemon thread, coalesced."""
    from config.celery import app

    app.conf.task_always_eager = False
    published, pokes = [], []
    monkeypatch.setattr(metering_tasks.events_drain, "apply_async", lambda *a, **kw: published.append(kw))
    monkeypatch.setattr(drain._drain_requests, "poke", lambda: pokes.append(1))
    drain.drain_soon()
    drain.drain_soon()
    assert (len(pokes), published) == (2, [])
    drain._drain_requests.flush()  # what the thread does after its window: one task for both
    assert published == [{}]


def test_coalescer_flushes_once_for_pokes_inside_its_window():
    import threading

    from core.background import Coalescer

    flushed = threading.Event()
    calls = []

    def flush():
        calls.append(1)
        flushed.set()

    c = Coalescer("test-coalescer", flush, 0.2)
    for _ in range(5):
        c.poke()
    assert flushed.wait(5)
    time.sleep(0.4)
    assert calls == [1]


def test_rollups_store_pending_batches_first(tenant_a, tokens_meter):
    accept(tenant_a.client("ingest"), [ce(f"r{i}", data={"tokens": 5, "model": "m"}) for i in range(3)])
    services.rollups_advance()
    assert not InboxBatch.objects.exists()
    assert tokens(tenant_a.org, tokens_meter) == Decimal(15)


def test_events_drain_command_stores_the_backlog_with_progress(tenant_a, tenant_b):
    from io import StringIO

    from django.core.management import call_command

    accept(tenant_a.client("ingest"), [ce(f"c{i}") for i in range(3)])
    accept(tenant_a.client("ingest"), [ce("c0")])  # a duplicate
    accept(tenant_b.client("ingest"), [ce("c0")])  # same id, other tenant: its own event
    out = StringIO()
    call_command("events_drain", stdout=out)
    text = out.getvalue()
    assert text.startswith("5 events pending in 3 batches")
    assert "done: stored 4 events, dropped 1 duplicates, 0 batches kept as unprocessable" in text
    assert Event.objects.filter(organization=tenant_a.org).count() == 3
    assert Event.objects.filter(organization=tenant_b.org).count() == 1
    assert not InboxBatch.objects.exists()


def test_usage_reads_probe_the_inbox_inside_the_watermark_statement(tenant_a, tokens_meter):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    accept(tenant_a.client("ingest"), [ce("p1", data={"tokens": 4, "model": "m"})])
    with CaptureQueriesContext(connection) as ctx:
        assert tokens(tenant_a.org, tokens_meter) == Decimal(4)  # pending: drained, then counted
    assert any("INSERT INTO metering_event" in q["sql"] for q in ctx.captured_queries)
    with CaptureQueriesContext(connection) as ctx:
        assert tokens(tenant_a.org, tokens_meter) == Decimal(4)
    sqls = [q["sql"] for q in ctx.captured_queries]
    assert len(sqls) == 3  # watermarks + inbox probe, the query, watermark re-read
    assert "metering_inboxbatch" in sqls[0] and "metering_rollupstate" in sqls[0]


@pytest.mark.django_db(transaction=True)
def test_one_background_drainer_at_a_time(tenant_a, tenant_b):
    """A drain task that finds another worker draining returns at once instead of queueing behind it."""
    import threading

    from django.db import connection as default_connection

    # appended directly: with a transactional database, accepting through the API drains on commit
    for tenant in (tenant_a, tenant_b):
        body = json.dumps([ce("q1")]).encode()
        store.inbox_append(
            organization_id=tenant.org.id, body=body, event_count=1, received_at=datetime.now(UTC)
        )
    holding, release = threading.Event(), threading.Event()

    def other_worker():
        with store.drain_worker_slot() as mine:
            assert mine
            holding.set()
            release.wait(10)
        default_connection.close()

    t = threading.Thread(target=other_worker)
    t.start()
    assert holding.wait(10)
    assert drain.events_drain_background(seconds=5) == []  # someone else is draining
    assert InboxBatch.objects.count() == 2
    release.set()
    t.join()
    assert sum(r.inserted for r in drain.events_drain_background(seconds=5)) == 2  # both tenants' batches
    assert not InboxBatch.objects.exists()
    assert Event.objects.filter(organization=tenant_b.org).count() == 1


def test_a_full_backlog_answers_503_with_retry_after_and_stores_nothing(
    tenant_a, tenant_b, settings, monkeypatch
):
    settings.INGEST_BACKLOG_MAX_EVENTS = 3
    monkeypatch.setattr(services._backlog, "ttl", 0)  # read the count on every request
    accept(tenant_a.client("ingest"), [ce(f"f{i}") for i in range(4)])  # 0 pending: accepted
    r = tenant_b.client("ingest").post(URL, data=json.dumps([ce("g1")]), content_type=BATCH)
    assert r.status_code == 503
    assert r["Retry-After"] == "5"
    assert r["Content-Type"] == "application/problem+json"
    body = r.json()
    assert (body["pending"], body["limit"]) == (4, 3)
    assert "INGEST_BACKLOG_MAX_EVENTS" in body["detail"]
    assert InboxBatch.objects.filter(organization=tenant_b.org).count() == 0  # nothing of it stored
    drain.events_drain_all()
    accept(tenant_b.client("ingest"), [ce("g1")])  # drained: accepted again
    assert InboxBatch.objects.filter(organization=tenant_b.org).count() == 1


# --- the background drain's bounded share ------------------------------------------------------------


def _append(tenant, ids: list[str], tokens_each: int = 1) -> int:
    body = json.dumps([ce(i, data={"tokens": tokens_each, "model": "m"}) for i in ids]).encode()
    return store.inbox_append(
        organization_id=tenant.org.id, body=body, event_count=len(ids), received_at=datetime.now(UTC)
    )


def test_a_paced_drain_stores_in_chunks_of_its_size_in_acceptance_order(
    tenant_a, tenant_b, tokens_meter, monkeypatch
):
    rests: list[float] = []
    monkeypatch.setattr(drain.time, "sleep", rests.append)
    for b in range(6):  # 6 batches of 300 events; one id resent later with another payload
        _append(tenant_a, [f"e{b}-{i}" for i in range(300)])
    _append(tenant_a, ["e0-0"], tokens_each=50)
    _append(tenant_b, ["e0-0"], tokens_each=9)  # B's own, never drained with A's
    pace = drain.Pace(chunk_seconds=1e-9)  # a tiny budget: every chunk is the minimum size
    results = drain.events_drain(organization_id=tenant_a.org.id, pace=pace)
    # chunks of at most 500 events (whole batches, at least one): 2 batches of 300 exceed it
    assert [r.received for r in results] == [300] * 5 + [301]  # the last two batches fit 500 together
    assert sum(r.inserted for r in results) == 1800 and results[-1].conflicts == 1
    assert pace.events == drain.DRAIN_MIN_EVENTS
    assert rests == []  # nothing arrived while it drained: no rest
    assert tokens(tenant_a.org, tokens_meter) == Decimal(1800)
    seqs = Event.objects.filter(organization=tenant_a.org, event_id__in=["e0-0", "e5-299"])
    assert [e.event_id for e in seqs.order_by("seq")] == ["e0-0", "e5-299"]
    assert InboxBatch.objects.get().organization_id == tenant_b.org.id


def test_a_drain_request_is_published_again_once_after_a_failed_publish(monkeypatch, caplog):
    calls: list[str] = []

    def flaky(name):
        calls.append(name)
        if len(calls) == 1:  # as kombu's SQLAlchemy transport when another process created the queue first
            raise RuntimeError("duplicate key value violates unique constraint")

    monkeypatch.setattr(drain, "enqueue", flaky)
    monkeypatch.setattr(drain._follower, "read", lambda: False)  # no dedicated drainer
    drain._follower.expire()
    drain._request_drain()
    assert calls == [drain.DRAIN_TASK] * 2
    assert "could not queue" not in caplog.text

    def down(name):
        calls.append(name)
        raise ConnectionError("broker unreachable")

    calls.clear()
    monkeypatch.setattr(drain, "enqueue", down)
    drain._request_drain()  # never raises into the publisher thread: logged, beat's drain catches up
    assert calls == [drain.DRAIN_TASK] * 2
    assert "could not queue metering.tasks.events_drain" in caplog.text


def test_with_several_lanes_each_rests_its_siblings_turn_while_requests_arrive():
    """Two lanes that work 80 ms chunks rest 25% of it plus one chunk for the other lane: together they
    take about one drainer's share while requests arrive."""
    one = drain.Pace(chunk_seconds=0.1, rest_ratio=0.25, rest_max=0.05, lanes=1)
    two = drain.Pace(chunk_seconds=0.1, rest_ratio=0.25, rest_max=0.05, lanes=2)
    assert one.rest_after(0.08) == pytest.approx(0.02)
    assert two.rest_after(0.08) == pytest.approx(0.1)  # 0.08 * (0.25 + 1)
    assert two.rest_after(1.0) == pytest.approx(0.15)  # capped: the rest's maximum plus one chunk
    assert drain.Pace(rest_ratio=0, lanes=2).rest_after(0.08) == 0  # DRAIN_REST_PERCENT=0: never rests


def test_a_paced_drain_sizes_chunks_from_its_rate_and_rests_only_when_requests_arrive(
    tenant_a, tenant_b, monkeypatch
):
    rests: list[float] = []
    monkeypatch.setattr(drain.time, "sleep", rests.append)
    pace = drain.Pace(chunk_seconds=0.1, rest_ratio=0.25, rest_max=0.05)
    first = _append(tenant_a, ["a"])
    pace.after_chunk(1000, 0.01)  # 100k events/s: 10,000 fit 0.1 s, capped at the maximum
    assert (pace.events, pace.newest, rests) == (store.DRAIN_MAX_EVENTS, first, [])
    pace.after_chunk(1000, 1.0)  # 1,000 events/s: 100 fit, raised to the minimum
    assert (pace.events, rests) == (drain.DRAIN_MIN_EVENTS, [])
    _append(tenant_a, ["b"])  # a request arrived during the chunk: rest a quarter of its time
    pace.after_chunk(1000, 0.08)
    assert rests == [pytest.approx(0.02)] and pace.events == 1250
    _append(tenant_a, ["c"])
    pace.after_chunk(1000, 1.0)  # never more than rest_max
    assert rests[-1] == pytest.approx(0.05)
    # falling behind: more events arrived since the last chunk than this chunk covered, so no rest
    _append(tenant_a, [f"d{i}" for i in range(600)])
    _append(tenant_b, [f"d{i}" for i in range(600)])  # every organization's arrivals count
    pace.after_chunk(1000, 0.08)
    assert len(rests) == 2
    pace.after_chunk(1000, 0.08)  # nothing new arrived: nothing to give way to
    assert len(rests) == 2


@pytest.mark.django_db(transaction=True)
def test_a_background_chunk_takes_four_statements_and_tells_listeners_once_per_organization(
    tenant_a, tenant_b, monkeypatch
):
    """Every statement is a round trip, and a drainer's round trips wait for a CPU the requests have first
    claim on: a chunk is the locks (with the transaction's settings), the batch ids, the store statement
    and the deletion; a pace that never rests does not look for arrivals; the organization the listeners
    are given is looked up once per drain, not once per chunk."""
    told: list[str] = []
    # this listener alone (the apps' own listeners queue their work; with eager tasks they would query)
    monkeypatch.setattr(
        hooks, "_ingest_listeners", [lambda *, organization, **_: told.append(organization.id)]
    )
    for b in range(3):
        _append(tenant_a, [f"c{b}-{i}" for i in range(300)])
    _append(tenant_b, ["other"])
    pace = drain.Pace(chunk_seconds=1e-9, rest_ratio=0)  # chunks of the minimum size: one batch each
    with CaptureQueriesContext(connection) as queries:
        results = drain.events_drain(organization_id=tenant_a.org.id, pace=pace)
    assert [r.inserted for r in results] == [300, 300, 300]
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    # per chunk: BEGIN, the locks, the ids, the store statement (WITH), the deletion, COMMIT; then the
    # look that found nothing left (BEGIN, locks, ids, COMMIT); one organization lookup for the listeners
    chunk = ["BEGIN", "SELECT", "SELECT", "WITH", "DELETE", "COMMIT"]
    assert statements == chunk + ["SELECT"] + chunk * 2 + ["BEGIN", "SELECT", "SELECT", "COMMIT"], statements
    assert told == [tenant_a.org.id] * 3
    assert InboxBatch.objects.get().organization_id == tenant_b.org.id


@pytest.mark.django_db(transaction=True)
def test_a_drain_commits_without_waiting_for_the_wal_unless_inside_a_callers_transaction(
    tenant_a, monkeypatch
):
    seen: list[str] = []
    real = store_inbox._drain_rows

    def spy(cur, org, ids, slot):
        cur.execute("SHOW synchronous_commit")
        seen.append(cur.fetchone()[0])
        return real(cur, org, ids, slot)

    monkeypatch.setattr(store_inbox, "_drain_rows", spy)
    _append(tenant_a, ["s1", "s2"])
    [result] = drain.events_drain(organization_id=tenant_a.org.id)
    assert result.inserted == 2 and seen == ["off"]
    with connection.cursor() as cur:  # for that transaction only
        cur.execute("SHOW synchronous_commit")
        assert cur.fetchone()[0] == "on"
    # a caller's transaction that drains (a read inside a write) keeps its durable commit
    _append(tenant_a, ["s3"])
    with transaction.atomic():
        [result] = drain.events_drain(organization_id=tenant_a.org.id)
        with connection.cursor() as cur:
            cur.execute("SHOW synchronous_commit")
            assert cur.fetchone()[0] == "on"
    assert result.inserted == 1 and seen == ["off", "on"]


@pytest.mark.django_db(transaction=True)
def test_a_store_takes_the_organizations_lock_before_the_ingest_lock(tenant_a, tenant_b):
    """`store_locks` takes both in one statement; the organization's comes first (its subquery), so a writer
    waiting for the ingest lock (held exclusive by the rollup horizon's read) already holds its
    organization's, and never holds the ingest lock while waiting for an organization."""
    import threading

    other = connection.get_new_connection(connection.get_connection_params())  # a second session, same DB
    other.autocommit = True
    other.execute("SELECT pg_advisory_lock(%s)", [events_store.INGEST_LOCK_KEY])  # the horizon's read
    started = threading.Event()
    pid: list[int] = []

    def writer() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                pid.append(cur.fetchone()[0])
                started.set()
                events_store.store_locks(cur, tenant_a.org.id)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    started.wait(10)
    held: list[tuple] = []
    for _ in range(200):  # until the writer waits on the ingest lock
        held = other.execute(
            "SELECT classid, objid, mode, granted FROM pg_locks WHERE locktype = 'advisory' AND pid = %s "
            "ORDER BY granted DESC",
            [pid[0]],
        ).fetchall()
        if any(not granted for *_, granted in held):
            break
        time.sleep(0.02)
    other.execute("SELECT pg_advisory_unlock(%s)", [events_store.INGEST_LOCK_KEY])
    thread.join(10)
    other.close()
    granted = [(mode, g) for _c, _o, mode, g in held]
    assert granted == [("ExclusiveLock", True), ("ShareLock", False)], (
        held
    )  # organization's held, ingest waited
    assert held[0][0] == events_store.ORG_LOCK_CLASS


def test_the_store_statement_runs_without_jit(tenant_a, tenant_b):
    """Many single-event batches look large to the planner (100 rows a JSON array); JIT compiling the
    statement for them cost more than the statement itself on a server built with LLVM."""
    seen: list[str] = []

    def spy(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith("WITH v AS"):
            with context["connection"].cursor() as cur:
                cur.execute("SELECT current_setting('jit')")
                seen.append(cur.fetchone()[0])
        return result

    for i in range(3):
        _append(tenant_a, [f"single-{i}"])
    _append(tenant_b, ["b-single"])
    with connection.execute_wrapper(spy):
        [result] = drain.events_drain(organization_id=tenant_a.org.id)
    assert (result.batches, result.inserted) == (3, 3) and seen == ["off"]
    assert Event.objects.filter(organization=tenant_b.org).count() == 0  # B's batch left alone


def test_a_resent_key_is_looked_up_by_its_key_whatever_the_planner_prefers(tenant_a, tenant_b):
    """The stored payload of each resent key is one primary-key probe: never a scan of all the
    organization's keys (which the planner picks for a join when its statistics underestimate them)."""
    _append(tenant_a, [f"k{i}" for i in range(50)])
    _append(tenant_b, [f"k{i}" for i in range(50)])
    drain.events_drain(organization_id=tenant_a.org.id)
    drain.events_drain(organization_id=tenant_b.org.id)
    bid = _append(tenant_a, [f"k{i}" for i in range(10)])
    sql = events_store.STORE_SQL.replace("{source}", store_inbox._INBOX_EVENTS)
    params = {"org": tenant_a.org.id, "reason": "r", "detail": "d", "ids": [bid], "slot": None, "last": 0}
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL enable_nestloop = off")  # what makes a join over the keys look cheaper
        cur.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cur.fetchone()[0]
        transaction.set_rollback(True)

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    key_reads = [n for n in nodes(plan[0]["Plan"]) if n.get("Relation Name") == "metering_eventkey"]
    reads = [n for n in key_reads if n["Node Type"] != "ModifyTable"]
    assert reads, key_reads
    for n in reads:
        assert n["Node Type"] in ("Index Scan", "Index Only Scan"), n["Node Type"]
        assert "event_id" in n["Index Cond"], n["Index Cond"]


def test_the_store_statement_tests_key_membership_by_hash_never_by_a_loop(tenant_a, tenant_b):
    """Which keys were inserted, which lost and which incoming rows are judged are each one hashed
    subplan: the row estimates of CTE scans are guesses (one row), so a join the planner could choose
    instead might be a nested loop over thousands of rows."""
    _append(tenant_a, ["x"])
    bid = _append(tenant_a, ["x"])
    _append(tenant_b, ["x"])
    sql = events_store.STORE_SQL.replace("{source}", store_inbox._INBOX_EVENTS)
    params = {"org": tenant_a.org.id, "reason": "r", "detail": "d", "ids": [bid], "slot": None, "last": 0}
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("EXPLAIN (VERBOSE, FORMAT JSON) " + sql, params)
        plan = json.dumps(cur.fetchone()[0])
        transaction.set_rollback(True)
    used = set(re.findall(r"(?<!hashed )SubPlan (\d+)\)", plan))
    hashed = set(re.findall(r"\(hashed SubPlan (\d+)\)", plan))
    assert len(hashed) == 3 and not used - hashed, (hashed, used)


def test_a_dedicated_drainer_lowers_only_its_own_priority_on_a_server_elsewhere(settings, monkeypatch):
    calls: list[tuple] = []
    monkeypatch.setattr(drain.os, "nice", lambda n: calls.append(("nice", n)))
    monkeypatch.setattr(drain.os, "setpriority", lambda *a: calls.append(("setpriority", *a)))
    assert drain.drainer_priority_lower(0) is False
    assert calls == []
    settings.EMBEDDED_DATABASE = False  # DATABASE_URL: the server's processes are not ours to touch
    assert drain.drainer_priority_lower(10) is False  # its database work still competes: keep resting
    assert calls == [("nice", 10)]


def test_a_drainer_thread_at_idle_priority_runs_in_the_idle_class_and_so_does_its_database_process(
    settings, monkeypatch
):
    """The default: the drainer thread really enters the idle scheduling class (in a thread of its own,
    as in `events_drain --follow`; the test's own thread keeps its class), and on the embedded server its
    database process is asked to enter it too; a server elsewhere is left alone."""
    if not hasattr(os, "SCHED_IDLE"):
        pytest.skip("no idle scheduling class on this operating system")
    seen: dict[str, object] = {}
    settings.EMBEDDED_DATABASE = False

    def drainer() -> None:
        seen["lowered"] = drain.drainer_priority_lower()
        seen["class"] = os.sched_getscheduler(0)

    thread = threading.Thread(target=drainer)
    thread.start()
    thread.join()
    assert seen == {"lowered": False, "class": os.SCHED_IDLE}
    assert os.sched_getscheduler(0) != os.SCHED_IDLE

    calls: list[tuple] = []
    monkeypatch.setattr(drain.os, "sched_setscheduler", lambda pid, *a: calls.append((pid, *a)))
    settings.EMBEDDED_DATABASE = True
    assert drain.drainer_priority_lower("idle") is True
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = cur.fetchone()[0]
    assert [(pid, policy) for pid, policy, _param in calls] == [(0, os.SCHED_IDLE), (backend, os.SCHED_IDLE)]


def test_the_drainer_priority_option_takes_idle_or_a_niceness():
    out = io.StringIO()
    with pytest.raises(CommandError, match="expected 'idle' or a number from 0 to 19, not 'low'"):
        call_command("events_drain", "--follow", "--nice", "low", stdout=out)


def test_a_drainer_whose_database_process_was_lowered_takes_no_rests(settings, monkeypatch):
    """On the embedded server the drain's database process is lowered too: the scheduler already gives the
    requests the cores they want, so the pace takes no rests; when the server refuses, the rests stay."""
    calls: list[tuple] = []
    monkeypatch.setattr(drain.os, "nice", lambda n: calls.append(("nice", n)))
    monkeypatch.setattr(drain.os, "getpriority", lambda *a: 0)
    monkeypatch.setattr(drain.os, "setpriority", lambda *a: calls.append(("setpriority", *a)))
    settings.EMBEDDED_DATABASE = True
    settings.DRAIN_REST_PERCENT = 25
    lowered = drain.drainer_priority_lower(10)
    assert lowered is True and calls[0] == ("nice", 10) and calls[1][0] == "setpriority"
    assert calls[1][-1] == 10
    assert drain.Pace.from_settings(yields=lowered).rest_after(0.08) == 0
    assert drain.Pace.from_settings().rest_after(0.08) == pytest.approx(0.02)

    def refused(*a):
        raise PermissionError("not permitted")

    monkeypatch.setattr(drain.os, "setpriority", refused)
    assert drain.drainer_priority_lower(10) is False


def test_no_drain_task_is_published_while_a_dedicated_drainer_runs(tenant_a, tenant_b, monkeypatch):
    """`events_drain --follow` finds new batches itself: while one runs (its lock held), the web processes'
    publisher sends no task that would only find every lane taken. Seen again once the check expires."""
    published: list[str] = []
    monkeypatch.setattr(drain, "enqueue", published.append)
    follower = drain._follower
    monkeypatch.setattr(follower, "ttl", 0)
    follower.expire()
    drain._request_drain()
    assert published == [drain.DRAIN_TASK]
    with store.drain_follower():
        assert store.drain_follower_running()
        drain._request_drain()
        assert published == [drain.DRAIN_TASK]
        follower.ttl = 3600  # the answer is kept for ttl seconds
        drain._request_drain()
    assert not store.drain_follower_running()
    drain._request_drain()
    assert published == [drain.DRAIN_TASK]  # still the kept answer
    follower.expire()
    drain._request_drain()
    assert published == [drain.DRAIN_TASK] * 2
