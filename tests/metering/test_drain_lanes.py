"""Drain lanes: background drainers store one organization's accepted batches side by side, lane j taking
the events whose dedup key hashes to j. A batch is split by lane when accepted, so each lane parses only
its own events. Each event is stored once, first accepted still wins, a batch is deleted only when every
lane stored its share, a share PostgreSQL cannot read keeps the batch for an operator, and a full drain (a
read) finishes whatever the lanes left. Batches accepted whole with several lanes (before the split) are
still drained by PostgreSQL's hash of the key, and fail in every lane before any share counts."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from metering import drain, store
from metering.models import Event, EventKey, InboxBatch, RejectedEvent
from metering.selectors import meter_query
from tests.metering.conftest import ce

pytestmark = pytest.mark.django_db
LANE_0, LANE_1 = store.DrainLane(0, 2), store.DrainLane(1, 2)


def lane_of(event_id: str, lanes: int = 2, source: str = "app") -> int:
    """The lane of a key in a batch split at accept."""
    return store.lane_of(source, event_id, lanes)


def legacy_lane_of(event_id: str, lanes: int = 2, source: str = "app") -> int:
    """The lane PostgreSQL assigns to a key in a batch accepted whole (the drain's own expression)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT ((hashtextextended(%s || chr(31) || %s, 0) & 2147483647) %% %s)::int",
            [source, event_id, lanes],
        )
        return int(cur.fetchone()[0])


def ids_in(lane: int, n: int, prefix: str = "e", of=lane_of) -> list[str]:
    found: list[str] = []
    i = 0
    while len(found) < n:
        if of(f"{prefix}{i}") == lane:
            found.append(f"{prefix}{i}")
        i += 1
    return found


def append(tenant, events: list[dict], lanes: int = 2) -> int:
    return store.inbox_append(
        organization_id=tenant.org.id,
        body=json.dumps(events).encode(),
        event_count=len(events),
        received_at=datetime.now(UTC),
        lanes=lanes,
    )


def append_whole(tenant, events: list[dict], lanes: int = 2) -> int:
    """A batch accepted whole for `lanes` lanes (as before batches were split at accept)."""
    bid = append(tenant, events, lanes=1)
    InboxBatch.objects.filter(pk=bid).update(lanes=lanes)
    return bid


def tokens(org, meter) -> Decimal:
    return sum((r.value for r in meter_query(organization=org, meter=meter)), Decimal(0))


def stored(tenant) -> dict[str, int]:
    return {e.event_id: e.data["tokens"] for e in Event.objects.filter(organization=tenant.org)}


def test_each_lane_stores_its_share_and_the_last_one_deletes_the_batch(tenant_a, tenant_b, tokens_meter):
    zeros, ones = ids_in(0, 3), ids_in(1, 3)
    bid = append(tenant_a, [ce(i, data={"tokens": 1, "model": "m"}) for i in zeros + ones])
    append(tenant_b, [ce(zeros[0], data={"tokens": 7, "model": "m"})])  # B's own, same id

    [result] = drain.events_drain(organization_id=tenant_a.org.id, lane=LANE_1)
    assert (result.batches, result.received, result.inserted, result.batch_events) == (1, 3, 3, 6)
    assert sorted(stored(tenant_a)) == sorted(ones)
    batch = InboxBatch.objects.get(pk=bid)
    assert (batch.lanes, batch.lanes_done) == (2, 0b10)  # kept: lane 0's share is still to store
    assert drain.events_drain(organization_id=tenant_a.org.id, lane=LANE_1) == []  # nothing more of its own

    [result] = drain.events_drain(organization_id=tenant_a.org.id, lane=LANE_0)
    assert (result.received, result.inserted) == (3, 3)
    assert sorted(stored(tenant_a)) == sorted(zeros + ones)
    assert not InboxBatch.objects.filter(organization=tenant_a.org).exists()
    assert tokens(tenant_a.org, tokens_meter) == Decimal(6)
    # tenant B's batch was never touched by A's lanes
    assert InboxBatch.objects.get(organization=tenant_b.org).lanes_done == 0
    assert not Event.objects.filter(organization=tenant_b.org).exists()


def test_a_lanes_chunk_is_sized_in_the_events_it_stores(tenant_a, tenant_b):
    """A lane stores about half of each batch (two lanes): its chunk reads batches of up to twice
    `max_events`, so a transaction stores about `max_events` events whether it is a lane's or a full
    drain's; a paced lane sizes its next chunk from the events it stored."""
    zeros, ones = ids_in(0, 6), ids_in(1, 6)
    for k in range(3):  # three batches of 4 events, 2 in each lane
        pair = zeros[2 * k : 2 * k + 2] + ones[2 * k : 2 * k + 2]
        append(tenant_a, [ce(i, data={"tokens": 1, "model": "m"}) for i in pair])
    append(tenant_b, [ce(zeros[0], data={"tokens": 1, "model": "m"})])
    lane_0 = store.inbox_drain(organization_id=tenant_a.org.id, lane=LANE_0, max_events=4)
    assert lane_0 is not None
    assert (lane_0.batches, lane_0.batch_events, lane_0.received) == (2, 8, 4)
    full = store.inbox_drain(organization_id=tenant_a.org.id, max_events=4)
    assert full is not None
    assert (full.batches, full.batch_events, full.received) == (1, 4, 2)  # lane 1's share of batch 1
    assert InboxBatch.objects.filter(organization=tenant_b.org).get().lanes_done == 0

    pace = drain.Pace(chunk_seconds=0.1, rest_ratio=0, lanes=2)
    pace.after_chunk(1600, 0.1)  # read 1,600 batch events, stored 800 of them in 0.1 s
    assert pace.events == 800


def test_first_accepted_wins_and_conflicts_are_logged_with_lanes(tenant_a, tenant_b, tokens_meter):
    [x] = ids_in(1, 1, prefix="x")
    others = ids_in(0, 2, prefix="o")
    append(
        tenant_a, [ce(x, data={"tokens": 1, "model": "m"}), ce(others[0], data={"tokens": 2, "model": "m"})]
    )
    append(
        tenant_a, [ce(x, data={"tokens": 50, "model": "m"}), ce(others[1], data={"tokens": 3, "model": "m"})]
    )
    append(tenant_a, [ce(x, data={"tokens": 1, "model": "m"})])  # an identical resend: a plain duplicate
    append(tenant_b, [ce(x, data={"tokens": 9, "model": "m"})])

    lane0 = drain.events_drain(organization_id=tenant_a.org.id, lane=LANE_0)
    lane1 = drain.events_drain(organization_id=tenant_a.org.id, lane=LANE_1)
    assert sum(r.inserted for r in lane0) == 2 and sum(r.conflicts for r in lane0) == 0
    assert sum(r.received for r in lane1) == 3 and sum(r.inserted for r in lane1) == 1
    assert sum(r.conflicts for r in lane1) == 1
    assert stored(tenant_a) == {x: 1, others[0]: 2, others[1]: 3}
    [conflict] = RejectedEvent.objects.filter(organization=tenant_a.org)
    assert (conflict.event_id, conflict.data["tokens"]) == (x, 50)
    assert tokens(tenant_a.org, tokens_meter) == Decimal(6)
    assert not InboxBatch.objects.filter(organization=tenant_a.org).exists()
    assert not RejectedEvent.objects.filter(organization=tenant_b.org).exists()


def test_a_full_drain_stores_what_the_lanes_left_exactly_once(tenant_a, tenant_b, tokens_meter):
    zeros, ones = ids_in(0, 4), ids_in(1, 4)
    append(tenant_a, [ce(i, data={"tokens": 1, "model": "m"}) for i in zeros + ones])
    append(tenant_a, [ce(i, data={"tokens": 1, "model": "m"}) for i in ids_in(1, 2, prefix="n")])
    append(tenant_b, [ce("b", data={"tokens": 5, "model": "m"})])
    drain.events_drain(organization_id=tenant_a.org.id, lane=LANE_0)  # lane 0's share of both batches
    assert Event.objects.filter(organization=tenant_a.org).count() == 4

    # a read stores the rest first (read-your-writes): lane 1's share only, nothing twice
    assert tokens(tenant_a.org, tokens_meter) == Decimal(10)
    assert Event.objects.filter(organization=tenant_a.org).count() == 10
    assert EventKey.objects.filter(organization=tenant_a.org).count() == 10
    assert not RejectedEvent.objects.exists()
    assert not InboxBatch.objects.filter(organization=tenant_a.org).exists()
    assert InboxBatch.objects.filter(organization=tenant_b.org).count() == 1


def test_a_batch_is_split_by_lane_when_accepted(tenant_a, tenant_b, settings):
    settings.DRAIN_LANES = 3
    ids = [f"k{i}" for i in range(30)] + ["k0"]  # a key twice: both in the same lane, in order
    events = [ce(i, data={"tokens": n}) for n, i in enumerate(ids)]
    services_accept(tenant_a, events)
    services_accept(tenant_b, [ce("k0")])
    batch = InboxBatch.objects.get(organization=tenant_a.org)
    assert (batch.lanes, batch.event_count, len(batch.lane_ends)) == (3, 31, 3)
    arrays = store.inbox_segments(bytes(batch.body), batch.lane_ends)
    for lane, array in enumerate(arrays):  # lane j's events, in their order in the request, as sent
        assert json.loads(array) == [e for e in events if lane_of(e["id"], 3) == lane]
    assert sum(len(json.loads(a)) for a in arrays) == 31
    assert InboxBatch.objects.get(organization=tenant_b.org).lanes == 3


def test_a_share_postgresql_cannot_read_keeps_the_batch_for_an_operator(tenant_a, tenant_b):
    [good] = ids_in(0, 1, prefix="g")
    [bad] = ids_in(1, 1, prefix="b")
    # February 30th passes no validation at accept time only when written directly, as here; PostgreSQL
    # refuses the cast. Lane 0 stores its share first; lane 1's share fails.
    body = [ce(good, data={"tokens": 1}), ce(bad, time="2025-02-30T00:00:00Z", data={"tokens": 1})]
    bid = append(tenant_a, body)
    append(tenant_a, [ce(i, data={"tokens": 1}) for i in ids_in(1, 2, prefix="after")])
    append(tenant_b, [ce("b1", data={"tokens": 1})])

    [first] = drain.events_drain(organization_id=tenant_a.org.id, lane=LANE_0, pace=drain.Pace())
    assert (first.batches, first.inserted) == (2, 1)  # its share of the first batch, none of the second
    results = drain.events_drain(organization_id=tenant_a.org.id, lane=LANE_1)
    assert sum(r.failed for r in results) == 1 and sum(r.inserted for r in results) == 2
    failed = InboxBatch.objects.get(pk=bid)
    assert failed.failed_at is not None and "out of range" in failed.error
    assert failed.lanes_done == 0b01
    assert set(stored(tenant_a)) == {good, *ids_in(1, 2, prefix="after")}
    [logged] = RejectedEvent.objects.filter(organization=tenant_a.org, reason=store.UNPROCESSABLE_REASON)
    assert "what other drain lanes stored of it before counts" in logged.detail
    # put back in line, only the share not stored is tried again (and still fails): nothing twice
    assert store.inbox_failed_retry() == 1
    assert drain.events_drain(organization_id=tenant_a.org.id, lane=LANE_0) == []
    [again] = drain.events_drain(organization_id=tenant_a.org.id, lane=LANE_1)
    assert (again.failed, again.inserted) == (1, 0)
    assert Event.objects.filter(organization=tenant_a.org).count() == 3
    assert not Event.objects.filter(organization=tenant_b.org).exists()


def test_a_batch_accepted_whole_is_drained_by_postgresqls_hash_in_every_lane(tenant_a, tenant_b):
    zeros, ones = ids_in(0, 3, prefix="w", of=legacy_lane_of), ids_in(1, 3, prefix="w", of=legacy_lane_of)
    bid = append_whole(tenant_a, [ce(i, data={"tokens": 1}) for i in zeros + ones])
    append_whole(tenant_b, [ce(zeros[0], data={"tokens": 1})])
    [one] = drain.events_drain(organization_id=tenant_a.org.id, lane=LANE_1)
    assert (one.received, one.inserted, one.batch_events) == (3, 3, 6)
    assert sorted(stored(tenant_a)) == sorted(ones)
    assert InboxBatch.objects.get(pk=bid).lanes_done == 0b10
    [zero] = drain.events_drain(organization_id=tenant_a.org.id, lane=LANE_0)
    assert (zero.received, zero.inserted) == (3, 3)
    assert sorted(stored(tenant_a)) == sorted(zeros + ones)
    assert not InboxBatch.objects.filter(organization=tenant_a.org).exists()
    assert not Event.objects.filter(organization=tenant_b.org).exists()


def test_a_batch_accepted_whole_fails_in_every_lane_before_any_share_counts(tenant_a, tenant_b):
    [good] = ids_in(0, 1, prefix="g", of=legacy_lane_of)
    [bad] = ids_in(1, 1, prefix="b", of=legacy_lane_of)
    # the bad event is lane 1's; lane 0 reads the whole batch first and must refuse it too
    body = [ce(good, data={"tokens": 1}), ce(bad, time="2025-02-30T00:00:00Z", data={"tokens": 1})]
    bid = append_whole(tenant_a, body)
    append(tenant_a, [ce(i, data={"tokens": 1}) for i in ids_in(0, 2, prefix="after")])
    append(tenant_b, [ce("b1", data={"tokens": 1})])

    results = drain.events_drain(organization_id=tenant_a.org.id, lane=LANE_0)
    assert sum(r.failed for r in results) == 1 and sum(r.inserted for r in results) == 2
    failed = InboxBatch.objects.get(pk=bid)
    assert failed.failed_at is not None and "out of range" in failed.error
    assert failed.lanes_done == 0
    assert not Event.objects.filter(organization=tenant_a.org, event_id__in=[good, bad]).exists()
    # lane 1 skips the failed batch (kept for an operator) and completes the next one (its share is empty)
    [rest] = drain.events_drain(organization_id=tenant_a.org.id, lane=LANE_1)
    assert (rest.batches, rest.received, rest.inserted) == (1, 0, 0)
    assert list(InboxBatch.objects.filter(organization=tenant_a.org).values_list("pk", flat=True)) == [bid]
    [logged] = RejectedEvent.objects.filter(organization=tenant_a.org, reason=store.UNPROCESSABLE_REASON)
    assert "none of its events count" in logged.detail
    assert not Event.objects.filter(organization=tenant_b.org).exists()


def test_the_last_slot_takes_the_lanes_beyond_it_after_the_lane_count_shrinks(tenant_a, tenant_b):
    """Batches accepted with 4 lanes, drained after DRAIN_LANES became 2: slot 1 of 2 takes lanes 1-3."""
    ids = [f"s{i}" for i in range(40)]
    bid = append(tenant_a, [ce(i, data={"tokens": 1}) for i in ids], lanes=4)
    append(tenant_b, [ce("s0", data={"tokens": 1})], lanes=4)
    [first] = drain.events_drain(organization_id=tenant_a.org.id, lane=store.DrainLane(0, 4))
    assert InboxBatch.objects.get(pk=bid).lanes_done == 0b0001
    [rest] = drain.events_drain(organization_id=tenant_a.org.id, lane=LANE_1)
    assert first.inserted + rest.inserted == 40
    assert sorted(stored(tenant_a)) == sorted(ids)
    assert not InboxBatch.objects.filter(organization=tenant_a.org).exists()
    assert InboxBatch.objects.filter(organization=tenant_b.org, lanes_done=0).count() == 1


def test_a_lane_slot_outside_its_lane_count_is_refused():
    with pytest.raises(ValueError, match="drain lane 2 of 2"):
        store.DrainLane(2, 2)
    with pytest.raises(ValueError, match="<= 8"):
        store.DrainLane(0, store.MAX_LANES + 1)


def test_a_lone_background_worker_takes_every_lane_in_turn(tenant_a, tenant_b, tokens_meter, settings):
    settings.DRAIN_LANES = 3
    for b in range(4):
        append(tenant_a, [ce(f"w{b}-{i}", data={"tokens": 1, "model": "m"}) for i in range(25)], lanes=3)
    append(tenant_b, [ce("w0-0", data={"tokens": 1, "model": "m"})], lanes=3)
    results = drain.events_drain_background(seconds=30)
    assert sum(r.inserted for r in results) == 101
    assert not InboxBatch.objects.exists()
    assert tokens(tenant_a.org, tokens_meter) == Decimal(100)
    assert Event.objects.filter(organization=tenant_b.org).count() == 1


def test_the_clickhouse_store_drains_whole_batches(settings):
    settings.DRAIN_LANES = 3
    assert drain.drain_lanes() == 3
    settings.METERING_STORE = "clickhouse"  # its drain stores whole batches: one lane, whatever is set
    assert drain.drain_lanes() == 1
    assert drain.Pace.from_settings().lanes == 1


def test_a_drain_starts_no_chunk_after_its_deadline(tenant_a, tenant_b):
    import time

    append(tenant_a, [ce("late1", data={"tokens": 1})])
    append(tenant_a, [ce("late2", data={"tokens": 1})])
    append(tenant_b, [ce("late1", data={"tokens": 1})])
    assert drain.events_drain(organization_id=tenant_a.org.id, deadline=time.monotonic()) == []
    assert InboxBatch.objects.filter(organization=tenant_a.org).count() == 2
    # a paced drain with time left stores chunk after chunk until its inbox is empty
    results = drain.events_drain(
        organization_id=tenant_a.org.id, pace=drain.Pace(), deadline=time.monotonic() + 30
    )
    assert sum(r.inserted for r in results) == 2
    assert InboxBatch.objects.filter(organization=tenant_b.org).count() == 1


def test_accepting_records_the_configured_lanes(tenant_a, tenant_b, settings):
    settings.DRAIN_LANES = 3
    services_accept(tenant_a, [ce("l1")])
    assert InboxBatch.objects.get(organization=tenant_a.org).lanes == 3
    assert not InboxBatch.objects.filter(organization=tenant_b.org).exists()


def services_accept(tenant, events: list[dict]) -> None:
    from metering import services

    services.events_accept(organization=tenant.org, body=json.dumps(events).encode(), event_count=len(events))


@pytest.mark.django_db(transaction=True)
def test_two_lanes_side_by_side_store_every_event_once(tenant_a, tenant_b):
    """Two drainer threads, one per lane, over batches with resends and conflicts: the totals are exact."""
    for b in range(30):
        events = [ce(f"p{b}-{i}", data={"tokens": 1}) for i in range(50)]
        if b % 3 == 0 and b:
            events += [ce(f"p{b - 1}-{i}", data={"tokens": 1}) for i in range(10)]  # identical resends
            events += [ce(f"p{b - 2}-0", data={"tokens": 99})]  # a conflict
        append(tenant_a, events)
    append(tenant_b, [ce("p0-0", data={"tokens": 1})])
    errors: list[BaseException] = []

    def lane(slot: int) -> None:
        try:
            drain.events_drain(
                organization_id=tenant_a.org.id, lane=store.DrainLane(slot, 2), pace=drain.Pace()
            )
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=lane, args=(slot,)) for slot in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert Event.objects.filter(organization=tenant_a.org).count() == 1500
    assert set(stored(tenant_a).values()) == {1}  # first accepted won every conflict
    assert RejectedEvent.objects.filter(organization=tenant_a.org).count() == 9
    assert not InboxBatch.objects.filter(organization=tenant_a.org).exists()
    assert InboxBatch.objects.filter(organization=tenant_b.org).count() == 1


@pytest.mark.django_db(transaction=True)
def test_events_drain_follow_runs_a_thread_per_lane_until_stopped(tenant_a, tenant_b, settings, monkeypatch):
    import time
    from io import StringIO

    from django.core.management import call_command

    from metering.management.commands.events_drain import Command

    settings.DRAIN_LANES = 2
    for b in range(5):
        append(tenant_a, [ce(f"f{b}-{i}", data={"tokens": 1}) for i in range(40)])
    append(tenant_a, [ce("f0-0", data={"tokens": 1})])  # a duplicate
    append(tenant_b, [ce("f0-0", data={"tokens": 1})])
    command, out = Command(), StringIO()
    # each thread's pace takes no rests when its priority (database process included) was lowered
    paces: list[drain.Pace] = []
    configured = drain.Pace.from_settings
    monkeypatch.setattr(drain, "drainer_priority_lower", lambda niceness: True)
    monkeypatch.setattr(drain.Pace, "from_settings", lambda **kw: paces.append(configured(**kw)) or paces[-1])

    def run() -> None:
        try:
            call_command(command, "--follow", "--nice", "0", "--idle", "0.01", stdout=out)
        finally:
            connection.close()  # this thread's own connection

    runner = threading.Thread(target=run)
    runner.start()
    deadline = time.monotonic() + 30
    while InboxBatch.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.drain_follower_running()  # web processes publish no drain task meanwhile
    command.stop.set()
    runner.join(30)
    assert not runner.is_alive()
    assert not store.drain_follower_running()
    assert not InboxBatch.objects.exists()
    assert Event.objects.filter(organization=tenant_a.org).count() == 200
    assert Event.objects.filter(organization=tenant_b.org).count() == 1
    text = out.getvalue()
    assert text.startswith("202 events pending in 7 batches")
    assert "done: stored 201 events, dropped 1 duplicates, 0 batches kept as unprocessable" in text
    assert [p.rest_ratio for p in paces] == [0, 0]
