"""Stored events: the one statement that stores a batch (`STORE_SQL`, used by the inbox drain and by
`events_insert` for in-process loaders), conflicts and rejected events, purge, and the event log.

`metering_event` is partitioned by event month (`partitions.py`) and has no unique index; the dedup key
(organization_id, source, event_id) is the primary key of `metering_eventkey`, one row per stored event,
written in the same statement. First write wins; a duplicate with a different payload is logged in
`metering_rejectedevent` (reason `duplicate_conflict`) and never counted. `seq` is the ingestion order.
"""

# SQL here is assembled from fixed fragments; every value is a bound parameter.
# ruff: noqa: S608
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict, Unpack

from django.db import connection, transaction

from metering.models import RejectedEvent

INGEST_LOCK_KEY = 0x6D65746572  # "meter": shared by ingest transactions, exclusive for the horizon read
SMALL_BATCH = 32  # up to this many events: a multi-row INSERT; above it: COPY into a temp table
CONFLICT_REASON = "duplicate_conflict"
CONFLICT_DETAIL = (
    "An event with this source and id was already stored with a different payload; the first write wins "
    "and this one is not counted."
)

# (source, event_id, type, subject, time, data_json_or_None)
EventTuple = tuple[str, str, str, str, datetime, str | None]


@dataclass(frozen=True)
class InsertResult:
    received: int
    inserted: int
    conflicts: int

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted


def events_insert(
    *, organization_id: str, events: Sequence[EventTuple], received_at: datetime
) -> InsertResult:
    """Store a batch atomically; duplicates (same organization, source, id) are dropped by the database.

    One transaction: the organization's lock (serialised with its drains, so first write wins and
    conflicts are seen), the shared ingest lock, then `STORE_SQL` over the batch: passed as arrays up to
    SMALL_BATCH events, COPied into a temp table above.
    """
    if not events:
        return InsertResult(0, 0, 0)
    params: dict[str, Any] = {"received_at": received_at}
    staged = len(events) > SMALL_BATCH
    with transaction.atomic(), connection.cursor() as cur:
        store_locks(cur, organization_id)
        if staged:
            _copy_tmp(cur, events)
        else:
            for i, col in enumerate(("src", "eid", "typ", "sub", "tim", "dat")):
                params[col] = [ev[i] for ev in events]
        counts = store_rows(cur, organization_id, _TMP_SOURCE if staged else _ARRAY_SOURCE, params)
        if staged:
            # ON COMMIT DROP covers the usual case; drop now too, in case we run inside an outer
            # transaction (the next batch on this connection must be able to create it again).
            cur.execute("DROP TABLE metering_ingest_tmp")
    return InsertResult(len(events), counts.inserted, counts.conflicts)


ORG_LOCK_CLASS = 0x6D6C6472  # pg_advisory_xact_lock(ORG_LOCK_CLASS, hashtext(org)): one writer per org


# pg_advisory_xact_lock(LANE_LOCK_CLASS + lane, hashtext(org)): one drainer per lane of an organization
LANE_LOCK_CLASS = 0x6D6C6C00


def store_locks(cur, org: str, lane: int | None = None, *, commit_async: bool = False) -> None:
    """The locks every transaction that stores events takes first, in this order: the organization's
    (one writer at a time: first accepted stays first stored), then the shared ingest lock (before any
    seq is drawn; see `rollups.safe_horizon` and `partitions`). A drain lane (`inbox.DrainLane`) holds the
    organization's lock shared and its lane's exclusive: lanes run side by side, each key has one lane,
    and every other writer waits for them.

    One statement (each is a round trip, and a drainer's round trips wait for a CPU the requests have
    first claim on): the organization's locks in a subquery, so they are taken before the ingest lock,
    and the transaction's settings. JIT compilation is off for the transaction: the planner's row
    estimate for the inbox's JSON arrays (100 rows a batch) makes a chunk of many single-event batches look
    large enough to compile, which cost a server built with LLVM ~150 ms a chunk, several times the
    statement's own work. `commit_async`: the commit does not wait for the WAL to reach the disk
    (`synchronous_commit = off`, this transaction only): for drains, whose batches were made durable when
    accepted (`inbox.inbox_drain`)."""
    if lane is None:
        org_locks, params = "pg_advisory_xact_lock(%s, hashtext(%s))", [ORG_LOCK_CLASS, org]
    else:
        org_locks = "pg_advisory_xact_lock_shared(%s, hashtext(%s)), pg_advisory_xact_lock(%s, hashtext(%s))"
        params = [ORG_LOCK_CLASS, org, LANE_LOCK_CLASS + lane, org]
    no_wait = ", set_config('synchronous_commit', 'off', true)" if commit_async else ""
    cur.execute(
        f"SELECT pg_advisory_xact_lock_shared(%s), set_config('jit', 'off', true){no_wait} "
        f"FROM (SELECT {org_locks} OFFSET 0) AS organization_locks",
        [INGEST_LOCK_KEY, *params],
    )


_ARRAY_SOURCE = (
    "SELECT 0 AS bid, u.ord, %(received_at)s::timestamptz AS received_at, u.source, u.event_id, u.type, "
    "u.subject, u.time, u.data FROM unnest(%(src)s::text[], %(eid)s::text[], %(typ)s::text[], %(sub)s::text[], "
    "%(tim)s::timestamptz[], %(dat)s::jsonb[]) WITH ORDINALITY AS u(source, event_id, type, subject, time, data, ord)"
)
_TMP_SOURCE = (
    "SELECT 0 AS bid, ord, %(received_at)s::timestamptz AS received_at, source, event_id, type, subject, time, "
    "data FROM metering_ingest_tmp"
)


def _copy_tmp(cur, events: Sequence[EventTuple]) -> None:
    cur.execute(
        "CREATE TEMP TABLE metering_ingest_tmp (ord int, source text, event_id text, type text, subject text, "
        "time timestamptz, data jsonb) ON COMMIT DROP"
    )
    with cur.cursor.copy(
        "COPY metering_ingest_tmp (ord, source, event_id, type, subject, time, data) FROM STDIN"
    ) as copy:
        for i, ev in enumerate(events):
            copy.write_row((i, *ev))


SEQUENCE = "metering_event_ingest_seq"  # seq values, drawn in acceptance order
CONFLICT_INSERT = (
    "INSERT INTO metering_rejectedevent (organization_id, source, event_id, type, subject, time, data, reason, "
    "detail, received_at) "
)

# The payload fingerprint kept with each key: a 64-bit hash of (type, subject, time, data), independent of
# the session's time zone (epoch seconds) and of jsonb key order (jsonb text is canonical).
PAYLOAD_HASH = (
    "hashtextextended(concat_ws(chr(31), {a}type, {a}subject, extract(epoch FROM {a}time)::text, "
    "coalesce({a}data::text, chr(30))), 0)"
)

# One statement stores the events of `{source}` (columns bid, ord, received_at, source, event_id, type,
# subject, time, data; (bid, ord) is the acceptance order) for organization %(org)s and logs conflicts:
# - `n`: every incoming event with its seq, drawn in acceptance order (PostgreSQL evaluates the volatile
#   nextval after the sort);
# - `k`: the dedup keys with the payload hash, inserted in key order and, for one key, in seq order: the
#   first accepted occurrence of a key is inserted and every later one (in this chunk, or stored before) is
#   skipped by ON CONFLICT DO NOTHING, so first accepted wins without a separate DISTINCT ON sort;
# - `dup`: the events whose key was not inserted; `ins`: the others, inserted in the query index's order
#   (type, subject, time); both test membership with hashed `NOT IN` subplans, never a join the planner
#   could turn into a nested loop (the row estimates of CTEs are guesses);
# - `old`: the stored payload hash of each key seen before: one primary-key probe each (a lateral lookup
#   with LIMIT 1, which the planner cannot flatten into a join: as a join it may hash all of the
#   organization's keys whenever its statistics underestimate them, a fixed cost of every chunk that held a
#   resend; never a read of the event either); it reads the statement's snapshot, so a key first inserted
#   by `k` finds nothing;
# - `judged`/`rej`: per key, the payload that counts is the stored one, else the first occurrence (one
#   window over the stored and incoming rows, no join); every incoming event that differs is a conflict.
#   Only computed when some event lost (`dup` not empty): a chunk of new events skips the sort entirely;
#   and only over the incoming rows of the keys in `dup` (a hashed subplan in a select list, which the
#   planner never turns into a join; OFFSET 0 keeps it there), so a chunk with one resent batch sorts
#   that batch's keys, not the whole chunk.
# Sorts, windows and DISTINCTs over identifiers compare bytes (COLLATE "C"): ids and subjects have no
# language order, and a database collation such as C.UTF-8 compares through strcoll (about 3 µs of ~25 per
# event, docs/scaling.md). Byte order is also the order of a C or C.UTF-8 index, so inserts still arrive in index order
# (the key's index is (event_id, source, organization_id) in `C`: metering.models.EventKey).
STORE_SQL = (
    "WITH v AS (SELECT s.*, " + PAYLOAD_HASH.format(a="s.") + " AS h FROM ({source}) s), "
    f"n AS (SELECT nextval('{SEQUENCE}') AS seq, v.* FROM v ORDER BY bid, ord), "
    "k AS (INSERT INTO metering_eventkey (organization_id, source, event_id, seq, time, payload_hash) "
    '  SELECT %(org)s, source, event_id, seq, time, h FROM n ORDER BY event_id COLLATE "C", source COLLATE "C", seq '
    "  ON CONFLICT DO NOTHING RETURNING seq), "
    "dup AS MATERIALIZED (SELECT n.seq, n.source, n.event_id FROM n WHERE n.seq NOT IN (SELECT seq FROM k)), "
    "ins AS (INSERT INTO metering_event (seq, organization_id, source, event_id, type, subject, time, data, "
    "  stored_at) SELECT n.seq, %(org)s, n.source, n.event_id, n.type, n.subject, n.time, n.data, n.received_at "
    '  FROM n WHERE n.seq NOT IN (SELECT seq FROM dup) ORDER BY n.type COLLATE "C", n.subject COLLATE "C", n.time '
    "  RETURNING subject, type, time), "
    "old AS (SELECT d.source, d.event_id, s.payload_hash AS h FROM dup d CROSS JOIN LATERAL "
    "  (SELECT ek.payload_hash FROM metering_eventkey ek WHERE ek.organization_id = %(org)s "
    "   AND ek.source = d.source AND ek.event_id = d.event_id LIMIT 1) s), "
    "judged AS (SELECT c.*, first_value(c.h) OVER w AS w_h FROM ("
    "    SELECT source, event_id, h, NULL::text AS type, NULL::text AS subject, NULL::timestamptz AS time, "
    "    NULL::jsonb AS data, 0 AS prio, 0::bigint AS bid, 0::bigint AS ord, NULL::timestamptz AS received_at "
    "    FROM old UNION ALL "
    "    SELECT source, event_id, h, type, subject, time, data, 1, bid, ord, received_at FROM ("
    "      SELECT v.*, (source, event_id) IN (SELECT source, event_id FROM dup) AS resent FROM v OFFSET 0) r "
    "    WHERE resent) c "
    "  WHERE EXISTS (SELECT 1 FROM dup) "
    '  WINDOW w AS (PARTITION BY source COLLATE "C", event_id COLLATE "C" ORDER BY prio, bid, ord)), '
    f"rej AS ({CONFLICT_INSERT}SELECT %(org)s, source, event_id, type, subject, time, data, %(reason)s, "
    "  %(detail)s, received_at FROM judged WHERE prio = 1 AND w_h <> h RETURNING 1) "
    "SELECT (SELECT count(*) FROM v), count(*), "
    """coalesce(array_agg(DISTINCT subject COLLATE "C"), '{}'), coalesce(array_agg(DISTINCT type COLLATE "C"), '{}'), """
    "min(time), (SELECT count(*) FROM rej) FROM ins"
)


@dataclass(frozen=True)
class StoreCounts:
    received: int
    inserted: int
    conflicts: int
    subjects: tuple[str, ...]
    event_types: tuple[str, ...]
    earliest_time: datetime | None


def store_rows(cur, org: str, source: str, params: Mapping[str, Any]) -> StoreCounts:
    """Run `STORE_SQL` over `source` (inside a transaction that took `store_locks`)."""
    cur.execute(
        STORE_SQL.replace("{source}", source),
        {**params, "org": org, "reason": CONFLICT_REASON, "detail": CONFLICT_DETAIL},
    )
    received, inserted, subjects, types, earliest, conflicts = cur.fetchone()
    return StoreCounts(int(received), int(inserted), int(conflicts), tuple(subjects), tuple(types), earliest)


def rejected_insert(
    *, organization_id: str, rows: Sequence[Mapping[str, Any]], received_at: datetime
) -> None:
    """Log events we refused (kept small: only conflicts and explicit rejections land here)."""
    RejectedEvent.objects.bulk_create(
        [RejectedEvent(organization_id=organization_id, received_at=received_at, **row) for row in rows]
    )


def events_purge(*, organization_id: str) -> int:
    """Delete an organization's raw events, their keys and rollups (used when an organization is deleted)."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("DELETE FROM metering_rollup WHERE organization_id = %s", [organization_id])
        # the keys through the events: the key's index leads with the event id, not the organization
        cur.execute(
            "WITH gone AS (DELETE FROM metering_event WHERE organization_id = %s RETURNING source, event_id), "
            "keys AS (DELETE FROM metering_eventkey k USING gone g WHERE k.event_id = g.event_id "
            "AND k.source = g.source AND k.organization_id = %s) SELECT count(*) FROM gone",
            [organization_id, organization_id],
        )
        deleted = cur.fetchone()[0]
        cur.execute("DELETE FROM metering_inboxbatch WHERE organization_id = %s", [organization_id])
        return deleted


# --- listing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    source: str
    id: str
    type: str
    subject: str
    time: datetime
    data: Any
    stored_at: datetime


class EventFilters(TypedDict, total=False):
    """The event log's filters (`events_list` of either store): each one given narrows the list."""

    subject: str | None
    type: str | None
    id: str | None
    time_from: datetime | None  # event time, inclusive
    time_to: datetime | None  # exclusive
    stored_from: datetime | None  # when stored, inclusive
    stored_to: datetime | None  # exclusive


_FILTER_COLUMNS = {
    "subject": ("subject", "="),
    "type": ("type", "="),
    "id": ("event_id", "="),
    "time_from": ("time", ">="),
    "time_to": ("time", "<"),
    "stored_from": ("stored_at", ">="),
    "stored_to": ("stored_at", "<"),
}


def event_conditions(filters: EventFilters) -> list[tuple[str, str, Any]]:
    """The given filters as (column, operator, value): the same for both stores, each binds the values
    its own way."""
    return [(*_FILTER_COLUMNS[name], value) for name, value in filters.items() if value is not None]


def and_given(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """The optional conditions of a WHERE clause: for each (SQL condition with one %s, value) whose value
    is not None, " AND condition", joined; and the values to bind, in the same order."""
    given = [(sql, value) for sql, value in conditions if value is not None]
    return "".join(f" AND {sql}" for sql, _ in given), [value for _, value in given]


def events_list(
    *, organization_id: str, limit: int = 100, **filters: Unpack[EventFilters]
) -> list[StoredEvent]:
    """Most recently ingested first."""
    where, params = and_given(
        *((f"{column} {op} %s", value) for column, op, value in event_conditions(filters))
    )
    with connection.cursor() as cur:
        cur.execute(
            "SELECT seq, source, event_id, type, subject, time, data, stored_at FROM metering_event "
            f"WHERE organization_id = %s{where} ORDER BY seq DESC LIMIT %s",
            [organization_id, *params, limit],
        )
        rows = cur.fetchall()
    return [StoredEvent(r[0], r[1], r[2], r[3], r[4], r[5], _json(r[6]), r[7]) for r in rows]


# What a stored row's data reads as when it is too deeply nested to decode (rows stored before the ingest
# limits): the row is still listed, with this text in place of its data, and counts for no meter.
TOO_DEEP = "(nested too deep to show)"


def _json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value, parse_float=Decimal)
    except RecursionError:  # how deep decoding may go depends on the caller's stack, so never fail a page
        return TOO_DEEP
