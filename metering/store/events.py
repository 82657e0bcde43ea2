"""Stored events: the direct write path (`events_insert`, for in-process loaders), conflicts and rejected
events, purge, and the event log (`events_list`).

`metering_event` holds one row per stored event; `seq` (identity) is the ingestion order. The unique index
(organization_id, source, event_id) is the dedup key: first write wins; a duplicate with a different
payload is logged in `metering_rejectedevent` (reason `duplicate_conflict`) and never counted.
"""

# SQL here is assembled from fixed fragments; every value is a bound parameter.
# ruff: noqa: S608
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from django.db import IntegrityError, connection, transaction

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


# --- ingest ------------------------------------------------------------------------------------


def events_insert(
    *, organization_id: str, events: Sequence[EventTuple], received_at: datetime
) -> InsertResult:
    """Store a batch atomically; duplicates (same organization, source, id) are dropped by the database.

    Up to SMALL_BATCH events: one statement (lock + insert), a single round trip in autocommit.
    Larger batches: one transaction (lock, COPY into a temp table, INSERT ... SELECT).
    """
    if not events:
        return InsertResult(0, 0, 0)
    if len(events) <= SMALL_BATCH:
        with connection.cursor() as cur:
            inserted = _insert_values(cur, organization_id, events, received_at)
            conflicts = 0
            if inserted < len(events):
                conflicts = _record_conflicts_values(cur, organization_id, events, received_at)
        return InsertResult(len(events), inserted, conflicts)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", [INGEST_LOCK_KEY])
        if _copy_direct(cur, organization_id, events, received_at):
            return InsertResult(len(events), len(events), 0)
        inserted = _insert_copy(cur, organization_id, events, received_at)
        conflicts = 0
        if inserted < len(events):
            conflicts = _record_conflicts_tmp(cur, organization_id, received_at)
        # ON COMMIT DROP covers the usual case; drop now too, in case we run inside an outer
        # transaction (the next batch on this connection must be able to create it again).
        cur.execute("DROP TABLE metering_ingest_tmp")
    return InsertResult(len(events), inserted, conflicts)


INSERT_COLS = "organization_id, source, event_id, type, subject, time, data, stored_at"


def _insert_values(cur, org: str, events: Sequence[EventTuple], received_at: datetime) -> int:
    # The lock subquery is joined in, so it is taken before any row (and its seq default) is produced:
    # one statement, one round trip, and still ordered against the rollup's horizon read.
    row = "(%s::int, %s::text, %s::text, %s::text, %s::text, %s::timestamptz, %s::jsonb)"
    params: list[Any] = [org, received_at, INGEST_LOCK_KEY]
    for i, ev in enumerate(events):
        params.extend((i, *ev))
    cur.execute(
        f"INSERT INTO metering_event ({INSERT_COLS}) "
        "SELECT %s, v.source, v.event_id, v.type, v.subject, v.time, v.data, %s "
        "FROM (SELECT pg_advisory_xact_lock_shared(%s)) AS l, "
        f"(VALUES {', '.join([row] * len(events))}) AS v(ord, source, event_id, type, subject, time, data) "
        "ORDER BY v.ord ON CONFLICT (organization_id, source, event_id) DO NOTHING",
        params,
    )
    return cur.rowcount


def _copy_direct(cur, org: str, events: Sequence[EventTuple], received_at: datetime) -> bool:
    """Optimistic fast path: COPY straight into metering_event inside a savepoint. Any duplicate makes
    the unique index reject the COPY as a whole; the savepoint is rolled back (nothing of it stays)
    and the caller takes the dedup path. Fresh batches, the common case, skip the staging table."""
    try:
        with (
            transaction.atomic(),
            cur.cursor.copy(
                "COPY metering_event (organization_id, source, event_id, type, subject, time, data, stored_at) "
                "FROM STDIN"
            ) as copy,
        ):
            for ev in events:
                copy.write_row((org, *ev, received_at))
    except (IntegrityError, psycopg.errors.UniqueViolation):
        return False
    return True


def _insert_copy(cur, org: str, events: Sequence[EventTuple], received_at: datetime) -> int:
    cur.execute(
        "CREATE TEMP TABLE metering_ingest_tmp (ord int, source text, event_id text, type text, subject text, "
        "time timestamptz, data jsonb) ON COMMIT DROP"
    )
    with cur.cursor.copy(
        "COPY metering_ingest_tmp (ord, source, event_id, type, subject, time, data) FROM STDIN"
    ) as copy:
        for i, ev in enumerate(events):
            copy.write_row((i, *ev))
    cur.execute(
        f"INSERT INTO metering_event ({INSERT_COLS}) "
        "SELECT %s, source, event_id, type, subject, time, data, %s FROM metering_ingest_tmp ORDER BY ord "
        "ON CONFLICT (organization_id, source, event_id) DO NOTHING",
        [org, received_at],
    )
    return cur.rowcount


CONFLICT_INSERT = (
    "INSERT INTO metering_rejectedevent (organization_id, source, event_id, type, subject, time, data, reason, "
    "detail, received_at) "
)


def _record_conflicts_tmp(cur, org: str, received_at: datetime) -> int:
    cur.execute(
        CONFLICT_INSERT + "SELECT %s, t.source, t.event_id, t.type, t.subject, t.time, t.data, %s, %s, %s "
        "FROM metering_ingest_tmp t JOIN metering_event e ON e.organization_id = %s AND e.source = t.source "
        "AND e.event_id = t.event_id "
        "WHERE (e.type, e.subject, e.time, e.data) IS DISTINCT FROM (t.type, t.subject, t.time, t.data)",
        [org, CONFLICT_REASON, CONFLICT_DETAIL, received_at, org],
    )
    return cur.rowcount


def _record_conflicts_values(cur, org: str, events: Sequence[EventTuple], received_at: datetime) -> int:
    row = "(%s::text, %s::text, %s::text, %s::text, %s::timestamptz, %s::jsonb)"
    params: list[Any] = [org, CONFLICT_REASON, CONFLICT_DETAIL, received_at]
    for ev in events:
        params.extend(ev)
    params.append(org)
    cur.execute(
        CONFLICT_INSERT + "SELECT %s, t.source, t.event_id, t.type, t.subject, t.time, t.data, %s, %s, %s "
        f"FROM (VALUES {', '.join([row] * len(events))}) AS t(source, event_id, type, subject, time, data) "
        "JOIN metering_event e ON e.organization_id = %s AND e.source = t.source AND e.event_id = t.event_id "
        "WHERE (e.type, e.subject, e.time, e.data) IS DISTINCT FROM (t.type, t.subject, t.time, t.data)",
        params,
    )
    return cur.rowcount


def rejected_insert(
    *, organization_id: str, rows: Sequence[Mapping[str, Any]], received_at: datetime
) -> None:
    """Log events we refused (kept small: only conflicts and explicit rejections land here)."""
    RejectedEvent.objects.bulk_create(
        [RejectedEvent(organization_id=organization_id, received_at=received_at, **row) for row in rows]
    )


def events_purge(*, organization_id: str) -> int:
    """Delete an organization's raw events and rollups (used when an organization is deleted)."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("DELETE FROM metering_rollup WHERE organization_id = %s", [organization_id])
        cur.execute("DELETE FROM metering_event WHERE organization_id = %s", [organization_id])
        deleted = cur.rowcount
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


def events_list(
    *,
    organization_id: str,
    subject: str | None = None,
    type: str | None = None,
    id: str | None = None,
    time_from: datetime | None = None,
    time_to: datetime | None = None,
    stored_from: datetime | None = None,
    stored_to: datetime | None = None,
    limit: int = 100,
) -> list[StoredEvent]:
    """Most recently ingested first."""
    where = ["organization_id = %s"]
    params: list[Any] = [organization_id]
    for col, val in (("subject", subject), ("type", type), ("event_id", id)):
        if val is not None:
            where.append(f"{col} = %s")
            params.append(val)
    if time_from is not None:
        where.append("time >= %s")
        params.append(time_from)
    if time_to is not None:
        where.append("time < %s")
        params.append(time_to)
    if stored_from is not None:
        where.append("stored_at >= %s")
        params.append(stored_from)
    if stored_to is not None:
        where.append("stored_at < %s")
        params.append(stored_to)
    params.append(limit)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT seq, source, event_id, type, subject, time, data, stored_at FROM metering_event "
            f"WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT %s",
            params,
        )
        rows = cur.fetchall()
    return [StoredEvent(r[0], r[1], r[2], r[3], r[4], r[5], _json(r[6]), r[7]) for r in rows]


def _json(value: Any) -> Any:
    return json.loads(value, parse_float=Decimal) if isinstance(value, str) else value
