"""The inbox: accepted requests waiting to be stored (`metering_inboxbatch`, one row per request, its events
as received), and the drain that moves their events into `metering_event` in acceptance order.

Lanes: a batch accepted with `lanes` = N > 1 is stored by N background drainers side by side. Lane j owns
the events whose dedup key (source, id) hashes to j (`lane_of`), so one key always has one writer, which
takes the batches in acceptance order: first accepted still wins, and conflicts are still seen. The web
worker splits such a batch when it accepts it (`lane_split`): the body holds N JSON arrays back to back,
lane j's events in the j-th, in acceptance order, and `lane_ends` says where each ends, so each lane parses
only its own events. A lane's drain holds the organization's lock shared and its lane's lock exclusive;
every other writer of the organization's events (a full drain, `events_insert`) holds the organization's
lock exclusive and so waits for the lanes' open chunks. Each lane stores its share and sets its bit in
`lanes_done`; the lane that completes the mask deletes the row. A full drain (reads of one's own writes,
`manage.py events_drain`) stores whatever share is not done yet. A share PostgreSQL refuses marks the
batch failed (kept for an operator, listed among the rejected events): the shares other lanes stored
count, the others wait with it until an operator puts it back in line (`inbox_failed_retry`).

Batches accepted whole with N > 1 lanes (`lane_ends` NULL: before batches were split at accept) are still
drained: every lane parses the whole batch and keeps the events whose key PostgreSQL's hash puts in its
lane (`_LEGACY_LANE`)."""

# SQL here is assembled from fixed fragments; every value is a bound parameter.
# ruff: noqa: S608
from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import msgspec
import psycopg
from django.db import DatabaseError, connection, transaction

from core import rls
from metering.store.events import (
    CONFLICT_INSERT,
    ORG_LOCK_CLASS,
    StoreCounts,
    and_given,
    store_locks,
    store_rows,
)

# pg_advisory_xact_lock(DRAIN_LOCK_CLASS, hashtext(org)): the organization's writer lock (`store_locks`),
# held exclusive by a full drain and shared by drain lanes; the ClickHouse drain takes it exclusive
DRAIN_LOCK_CLASS = ORG_LOCK_CLASS
# events per drain transaction (several batches; at least one): short transactions. A lane stores about
# 1/N of each batch it reads (N lanes), so it reads batches of up to N times this many events.
DRAIN_MAX_EVENTS = 5_000
MAX_LANES = 8  # lanes_done is a smallint bit mask
UNPROCESSABLE_REASON = "unprocessable_batch"


@dataclass(frozen=True)
class DrainLane:
    """Background drainer `slot` of `of`: it stores lane `slot`'s share of each batch; the last slot also
    takes the lanes beyond it (batches accepted while more lanes were configured)."""

    slot: int
    of: int

    def __post_init__(self) -> None:
        if not 0 <= self.slot < self.of <= MAX_LANES:
            raise ValueError(f"drain lane {self.slot} of {self.of}: expected 0 <= slot < of <= {MAX_LANES}")

    def params(self) -> dict[str, int]:
        return {"slot": self.slot, "last": self.of - 1}


@dataclass(frozen=True)
class DrainResult:
    """One drain transaction of one organization's inbox."""

    organization_id: str
    batches: int
    received: int  # events this drain handled: those not stored yet by another lane (for a lane, its share)
    inserted: int
    conflicts: int
    failed: int
    batch_events: int  # events of the batches read (what a chunk's size is measured in)
    subjects: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    earliest_event_time: datetime | None = None

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted


class _Key(msgspec.Struct):
    source: str
    id: str


_RAW_EVENTS = msgspec.json.Decoder(list[msgspec.Raw])
_EVENT_KEYS = msgspec.json.Decoder(list[_Key])


def lane_of(source: str, event_id: str, lanes: int) -> int:
    """The lane of a dedup key in a batch split at accept: CRC-32 of source, U+001F and id (UTF-8), modulo
    `lanes`; the same in every process and release, so a key keeps its lane from batch to batch."""
    return _lane(_source_crc(source), event_id, lanes)


def _source_crc(source: str) -> int:
    """CRC-32 of the key's first part (source and U+001F): CRC-32 continues over the id from there."""
    return zlib.crc32(source.encode() + b"\x1f")


def _lane(source_crc: int, event_id: str, lanes: int) -> int:
    return zlib.crc32(event_id.encode(), source_crc) % lanes


def lane_split(body: bytes, lanes: int) -> tuple[bytes, list[int]]:
    """A validated batch (a JSON array of events) as `lanes` JSON arrays back to back, lane j's events in
    the j-th in their order in the batch, each event's text as received; and the byte offset where each
    array ends. Two passes of msgspec's decoder (each event's raw text, then its key), no event built;
    `lane_of` per event, with each source's part of the CRC computed once (a batch has few sources)."""
    shares: list[list[msgspec.Raw]] = [[] for _ in range(lanes)]
    sources: dict[str, int] = {}
    for raw, key in zip(_RAW_EVENTS.decode(body), _EVENT_KEYS.decode(body), strict=True):
        if (seed := sources.get(key.source)) is None:
            seed = sources[key.source] = _source_crc(key.source)
        shares[_lane(seed, key.id, lanes)].append(raw)
    arrays = [b"[" + b",".join(share) + b"]" for share in shares]
    ends, end = [], 0
    for array in arrays:
        end += len(array)
        ends.append(end)
    return b"".join(arrays), ends


def inbox_segments(body: bytes, lane_ends: list[int] | None) -> list[bytes]:
    """The JSON arrays a stored body holds: one, or one per lane of a batch split at accept."""
    if not lane_ends:
        return [body]
    starts = [0, *lane_ends[:-1]]
    return [body[start:end] for start, end in zip(starts, lane_ends, strict=True)]


def inbox_append(
    *, organization_id: str, body: bytes, event_count: int, received_at: datetime, lanes: int = 1
) -> int:
    """Accept a validated request durably: one row, the body as received (a JSON array of events), to be
    stored by `lanes` drain lanes; with more than one, split by lane (`lane_split`).

    Uses a psycopg cursor with a binary parameter on Django's connection (same transaction): Django's
    client-side binding would inline the body as a hex literal in the SQL text, which made a 1000-event
    insert three times slower (6.4 vs 2.2 ms). The statement is therefore not in Django's query log, and
    goes through `rls.execute_raw` to run in the request's tenant scope."""
    lane_ends = None
    if lanes > 1:
        body, lane_ends = lane_split(body, lanes)

    def insert(raw: psycopg.Connection) -> psycopg.Cursor:
        cur = psycopg.Cursor(raw)
        cur.execute(
            "INSERT INTO metering_inboxbatch (organization_id, received_at, event_count, body, error, lanes, "
            "lanes_done, lane_ends) VALUES (%s, %s, %s, %b, '', %s, 0, %s) RETURNING id",
            [organization_id, received_at, event_count, body, lanes, lane_ends],
        )
        return cur

    # In a request's deferred tenant scope, one round trip with the scope's statements (core/rls.py).
    with rls.execute_raw(insert) as cur:
        row = cur.fetchone()
    assert row is not None
    return int(row[0])


def inbox_pending(
    *, organization_id: str | None = None, up_to_id: int | None = None
) -> list[tuple[str, int, int]]:
    """[(organization id, pending batches, pending events)] for batches not yet stored nor failed
    (only those with id <= `up_to_id` when given), oldest organization first."""
    where, params = and_given(("organization_id = %s", organization_id), ("id <= %s", up_to_id))
    with connection.cursor() as cur:
        cur.execute(
            "SELECT organization_id, count(*), coalesce(sum(event_count), 0) FROM metering_inboxbatch "
            f"WHERE failed_at IS NULL{where} GROUP BY organization_id ORDER BY min(id)",
            params,
        )
        return [(org, int(n), int(ev)) for org, n, ev in cur.fetchall()]


DRAIN_WORKER_CLASS = 0x6D6C6457  # session lock (DRAIN_WORKER_CLASS, slot): one background drainer per slot


@contextmanager
def drain_worker_slot(slot: int = 0) -> Iterator[bool]:
    """Try to become background drainer `slot` (a session-level advisory lock, released on exit). Yields
    False when another process holds it: that drainer keeps going until its lane is empty."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s, %s)", [DRAIN_WORKER_CLASS, slot])
        got = bool(cur.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s, %s)", [DRAIN_WORKER_CLASS, slot])


DRAIN_FOLLOWER_CLASS = DRAIN_WORKER_CLASS + 1  # shared session lock (class, 0) of each dedicated drainer


@contextmanager
def drain_follower() -> Iterator[None]:
    """Mark this process as a dedicated drainer (`events_drain --follow`) while the block runs: a shared
    session-level advisory lock, which PostgreSQL also releases when the process dies."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock_shared(%s, 0)", [DRAIN_FOLLOWER_CLASS])
    try:
        yield
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock_shared(%s, 0)", [DRAIN_FOLLOWER_CLASS])


def drain_follower_running() -> bool:
    """Whether a dedicated drainer (`drain_follower`) is running on this database."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid = %s AND objid = 0 AND objsubid = 2)",
            [DRAIN_FOLLOWER_CLASS],
        )
        return bool(cur.fetchone()[0])


def inbox_failed_retry() -> int:
    """Put batches kept as unprocessable back in line (after the cause was fixed); returns how many."""
    with connection.cursor() as cur:
        cur.execute("UPDATE metering_inboxbatch SET failed_at = NULL, error = '' WHERE failed_at IS NOT NULL")
        return cur.rowcount


def inbox_pending_events() -> int:
    """Events accepted and not yet stored, all organizations (the inbox is small: a scan of its rows).
    The backlog is global, so the ingest request reading it declares the cross-tenant read (core/rls.py)."""
    with rls.unscoped(), connection.cursor() as cur:
        cur.execute("SELECT coalesce(sum(event_count), 0) FROM metering_inboxbatch WHERE failed_at IS NULL")
        return int(cur.fetchone()[0])


def inbox_arrivals(*, after_id: int) -> tuple[int | None, int]:
    """(newest pending batch id or None, events in the pending batches accepted after batch `after_id`),
    all organizations: what arrived since a drainer last looked. One range scan of the newest rows."""
    with rls.unscoped(), connection.cursor() as cur:
        cur.execute(
            "SELECT max(id), coalesce(sum(event_count), 0) FROM metering_inboxbatch "
            "WHERE failed_at IS NULL AND id > %s",
            [after_id],
        )
        newest, events = cur.fetchone()
    return (None if newest is None else int(newest)), int(events)


def inbox_last_pending(*, organization_id: str | None = None) -> int | None:
    """The newest pending batch id of an organization, or of all (None: nothing pending). One index probe."""
    where, params = and_given(("organization_id = %s", organization_id))
    with connection.cursor() as cur:
        cur.execute(f"SELECT max(id) FROM metering_inboxbatch WHERE failed_at IS NULL{where}", params)
        found = cur.fetchone()[0]
    return None if found is None else int(found)


# The events of the given inbox rows, in acceptance order, that are still to be stored: those of lanes
# not done yet, and with a lane slot (%(slot)s not NULL), only that slot's. Validation at accept time
# (metering.ingest) guarantees the casts succeed; a row that still fails is isolated by `inbox_drain`.
# `s`: the JSON arrays to read of each row: of a batch split at accept, only the arrays of the lanes wanted
# (bytes lane_ends[l] to lane_ends[l + 1], arrays being 1-based); of a batch stored whole, its body, whose
# events are then kept by the lane PostgreSQL's hash gives their key (`_LEGACY_LANE`; OFFSET 0 keeps that
# filter out of the parsing subquery, so every event of such a batch is cast whichever lane reads it).
# `ord` orders a batch's events: by lane, then by position in the lane's array (a key has one lane, so
# its occurrences keep their order).
_LEGACY_LANE = (
    "CASE WHEN r.lanes = 1 THEN 0 ELSE "
    "((hashtextextended(r.source || chr(31) || r.event_id, 0) & 2147483647) %% r.lanes)::int END"
)
_WANTED = "(%(slot)s::int IS NULL OR least({lane}, %(last)s::int) = %(slot)s::int)"
_SEGMENTS = (
    "SELECT NULL::int AS lane, b.body WHERE b.lane_ends IS NULL "
    "UNION ALL SELECT g.l, substring(b.body FROM coalesce(b.lane_ends[g.l], 0) + 1 "
    "  FOR b.lane_ends[g.l + 1] - coalesce(b.lane_ends[g.l], 0)) "
    "FROM generate_series(0, b.lanes - 1) AS g(l) "
    f"WHERE b.lane_ends IS NOT NULL AND (b.lanes_done >> g.l) & 1 = 0 AND {_WANTED.format(lane='g.l')}"
)
_INBOX_EVENTS = (
    "SELECT r.bid, r.ord, r.received_at, r.source, r.event_id, r.type, r.subject, r.time, r.data FROM ("
    "  SELECT b.id AS bid, s.lane AS split_lane, (coalesce(s.lane, 0)::bigint << 32) + x.ord AS ord, "
    "  b.received_at, b.lanes, b.lanes_done, x.e ->> 'source' AS source, "
    "  x.e ->> 'id' AS event_id, x.e ->> 'type' AS type, x.e ->> 'subject' AS subject, "
    "  coalesce((x.e ->> 'time')::timestamptz, b.received_at) AS time, "
    "  CASE jsonb_typeof(x.e -> 'data') WHEN 'object' THEN x.e -> 'data' "
    "    WHEN 'string' THEN (x.e ->> 'data')::jsonb END AS data "
    f"  FROM metering_inboxbatch b CROSS JOIN LATERAL ({_SEGMENTS}) s "
    "  CROSS JOIN LATERAL jsonb_array_elements(convert_from(s.body, 'UTF8')::jsonb) WITH ORDINALITY AS x(e, ord) "
    "  WHERE b.id = ANY(%(ids)s) OFFSET 0) r, "
    f"LATERAL (SELECT coalesce(r.split_lane, {_LEGACY_LANE}) AS lane) l "
    f"WHERE (r.lanes_done >> l.lane) & 1 = 0 AND {_WANTED.format(lane='l.lane')}"
)
# The bits of `lanes_done` a lane slot stores (its own lane; the last slot also every lane beyond it).
_SLOT_MASK = "(CASE WHEN %(slot)s < %(last)s THEN 1 << %(slot)s ELSE (1 << lanes) - (1 << %(slot)s) END)"


def inbox_drain(
    *,
    organization_id: str,
    up_to_id: int | None = None,
    max_events: int = DRAIN_MAX_EVENTS,
    lane: DrainLane | None = None,
) -> DrainResult | None:
    """Move the oldest pending batches of one organization (up to `max_events` events, at least one
    batch; a lane of N, batches of up to N times that, about `max_events` of them its own) into
    `metering_event`, in acceptance order, and delete them: one transaction, so a crash
    redoes the whole chunk and the dedup keys keep every event counted once. Drains of the same
    organization are serialised by an advisory lock (first write wins stays first accepted wins).
    `up_to_id` leaves batches accepted after that id alone. With a `lane`, only that lane slot's share of
    each batch is stored (lanes of one organization run side by side; see the module's docstring) and a
    batch is deleted once every lane stored its share. Returns None when nothing was pending.

    A chunk PostgreSQL refuses as a whole is rolled back and redone batch by batch in a new transaction
    (`_drain_one_by_one`), so the usual chunk needs no savepoint: every statement is a round trip, and a
    background drainer's round trips wait for a CPU that the requests have first claim on.

    The commit does not wait for its WAL to reach the disk (`store_locks(commit_async=True)`) when the
    drain is its own transaction: the accepted batches it deletes were made durable when accepted, so a
    crash that loses the last drains' commits puts their batches back in line and the drain redoes them
    (dedup keeps each event once). Anything that read the drain's result and committed after it flushed
    its WAL too (WAL is flushed in order), so nothing durable ever depends on a lost drain. The
    single-event requests committing meanwhile then never queue behind a chunk's WAL flush. Inside a
    caller's transaction, the caller's commit keeps its own durability."""
    chunk = partial(
        _drain_chunk,
        organization_id,
        up_to_id=up_to_id,
        max_events=max_events,
        lane=lane,
        commit_async=not connection.in_atomic_block,
    )
    try:
        return chunk(_drain_rows)
    except (DatabaseError, psycopg.Error) as exc:
        if _transient(exc):
            raise  # a lock timeout or deadlock says nothing about the batches: the next drain redoes them
    return chunk(_drain_one_by_one)


# stores the events of the given inbox rows (cursor, organization, batch ids, lane slot); returns what it
# stored and the ids of the batches it kept as unprocessable: `_drain_rows` or `_drain_one_by_one`
StoreBatches = Callable[[Any, str, list[int], dict[str, int | None]], tuple[list[StoreCounts], list[int]]]


def _drain_chunk(
    organization_id: str,
    store_batches: StoreBatches,
    *,
    up_to_id: int | None,
    max_events: int,
    lane: DrainLane | None,
    commit_async: bool,
) -> DrainResult | None:
    """One drain transaction (see `inbox_drain`): the locks, the oldest pending batches, `store_batches`
    over them, and their deletion."""
    slot: dict[str, int | None] = {"slot": None, "last": 0} if lane is None else {**lane.params()}
    mine = f" AND lanes > %(slot)s AND lanes_done & {_SLOT_MASK} <> {_SLOT_MASK}" if lane is not None else ""
    with transaction.atomic(), connection.cursor() as cur:
        store_locks(cur, organization_id, lane=None if lane is None else lane.slot, commit_async=commit_async)
        cur.execute(
            "SELECT id, event_count FROM metering_inboxbatch WHERE organization_id = %(org)s "
            f"AND failed_at IS NULL AND id <= %(up_to)s{mine} ORDER BY id LIMIT 1000",
            {"org": organization_id, "up_to": up_to_id if up_to_id is not None else 2**63 - 1, **slot},
        )
        ids: list[int] = []
        batch_events = 0
        budget = max_events * (lane.of if lane is not None else 1)  # a lane stores about 1/of of a batch
        for bid, count in cur.fetchall():
            if ids and batch_events + count > budget:
                break
            ids.append(int(bid))
            batch_events += int(count)
        if not ids:
            return None
        stored, failed = store_batches(cur, organization_id, ids, slot)
        done = {"ids": ids, **slot}
        if lane is not None:
            cur.execute(
                f"UPDATE metering_inboxbatch SET lanes_done = lanes_done | {_SLOT_MASK} "
                "WHERE id = ANY(%(ids)s) AND failed_at IS NULL",
                done,
            )
        cur.execute(
            "DELETE FROM metering_inboxbatch WHERE id = ANY(%(ids)s) AND failed_at IS NULL"
            + (" AND lanes_done = (1 << lanes) - 1" if lane is not None else ""),
            done,
        )
    times = [r.earliest_time for r in stored if r.earliest_time is not None]
    return DrainResult(
        organization_id=organization_id,
        batches=len(ids),
        received=sum(r.received for r in stored),
        inserted=sum(r.inserted for r in stored),
        conflicts=sum(r.conflicts for r in stored),
        failed=len(failed),
        batch_events=batch_events,
        subjects=tuple(sorted({s for r in stored for s in r.subjects})),
        event_types=tuple(sorted({t for r in stored for t in r.event_types})),
        earliest_event_time=min(times) if times else None,
    )


# SQLSTATE classes of failures that come from the moment, not from the data: serialization failure and
# deadlock (40), lock not available (55P03), query cancelled or server shutting down (57), connection (08).
_TRANSIENT = ("40", "55P03", "57", "08")


def _transient(exc: BaseException) -> bool:
    cause = exc if isinstance(exc, psycopg.Error) else exc.__cause__
    state = getattr(cause, "sqlstate", None) or ""
    return state.startswith(_TRANSIENT)


def _drain_rows(
    cur, org: str, ids: list[int], slot: dict[str, int | None]
) -> tuple[list[StoreCounts], list[int]]:
    """The whole chunk in one statement."""
    return [store_rows(cur, org, _INBOX_EVENTS, {"ids": ids, **slot})], []


def _drain_one_by_one(
    cur, org: str, ids: list[int], slot: dict[str, int | None]
) -> tuple[list[StoreCounts], list[int]]:
    """A chunk PostgreSQL refused as a whole: store batch by batch, each in a savepoint; mark the ones
    that fail (kept, with the error, and listed among the organization's rejected events) so they never
    block the inbox."""
    stored: list[StoreCounts] = []
    failed: list[int] = []
    for bid in ids:
        try:
            with transaction.atomic():
                stored.extend(_drain_rows(cur, org, [bid], slot)[0])
        except (DatabaseError, psycopg.Error) as exc:
            if _transient(exc):
                raise
            failed.append(bid)
            error = str(exc).splitlines()[0][:500]
            cur.execute(
                "UPDATE metering_inboxbatch SET failed_at = now(), error = %s WHERE id = %s", [error, bid]
            )
            cur.execute(
                CONFLICT_INSERT + "SELECT organization_id, '', '', '', '', NULL, NULL, %s, "
                "'Accepted request (inbox batch ' || id || ', ' || event_count || ' events) could not be "
                "stored: ' || %s || '. It is kept for an operator; ' || CASE WHEN lanes_done = 0 THEN "
                "'none of its events count.' ELSE 'what other drain lanes stored of it before counts, the rest "
                "does not.' END, received_at FROM metering_inboxbatch WHERE id = %s",
                [UNPROCESSABLE_REASON, error, bid],
            )
    return stored, failed
