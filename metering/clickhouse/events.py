"""Writing and listing raw events in ClickHouse: `events_insert`, `inbox_drain`, `events_list`, `events_purge`.

The inbox stays in PostgreSQL (acceptance is durable there). A drain, in one PostgreSQL transaction under the
organization's drain lock: reads the oldest pending batches, parses them, stores their events in ClickHouse,
logs conflicts in `metering_rejectedevent` and deletes the batches. A crash after the ClickHouse insert and
before the commit redoes the chunk: its keys are then found in `metering_event_key` with the same payload
fingerprint and nothing is inserted twice (first write wins; a different payload is a conflict, logged and
never stored). Inserts of one organization are serialised by that lock (drains and `events_insert` alike),
so the probe-then-insert cannot race with itself.
"""

# SQL here is assembled from fixed fragments and checked identifiers; values are bound parameters or
# escaped literals (connection.literal) in view definitions, which cannot take parameters.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import threading
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Unpack

from django.db import connection, transaction

from metering import store
from metering.clickhouse import schema
from metering.clickhouse.schema import client
from metering.ingest import dumps, loads, parse_time

# Taken shared by every transaction that inserts events into ClickHouse, exclusively while a meter's rollup
# view is created and its history folded in (rollups.py): no insert is then half-way.
CH_INGEST_LOCK = 0x6D657465726368  # "meterch"
_EVENT_COLUMNS = (
    "organization_id",
    "source",
    "event_id",
    "type",
    "subject",
    "time",
    "data",
    "stored_at",
    "seq",
    "fp",
    "doc",
)


@dataclass(frozen=True)
class _Event:
    source: str
    event_id: str
    type: str
    subject: str
    time: datetime
    data: Any  # parsed JSON object (exact numbers) or None
    received_at: datetime
    text: str  # data as JSON text, or ""
    seq: int = 0  # ingestion order when known (copied history keeps PostgreSQL's); 0: assigned on insert

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.event_id)


def _canonical(value: Any) -> Any:
    """A stable form for payload comparison (key order and number spelling do not matter, as in jsonb)."""
    if isinstance(value, dict):
        return {k: _canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, (Decimal, int)) and not isinstance(value, bool):
        return format(Decimal(value).normalize(), "f")
    return value


def _fingerprint(ev: _Event) -> int:
    blob = repr((ev.type, ev.subject, ev.time.astimezone(UTC).isoformat(), _canonical(ev.data))).encode()
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "big")


def _quoted_numbers(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _quoted_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_quoted_numbers(v) for v in value]
    if isinstance(value, (Decimal, int)) and not isinstance(value, bool):
        return format(Decimal(value), "f")  # as PostgreSQL prints a jsonb number: no exponent
    return value


def doc_text(data: Any) -> str:
    """The data as ClickHouse reads values from it: numbers written as strings. ClickHouse's JSON functions
    read numbers as doubles (17 digits); as strings their every digit reaches `toDecimal256`. A meter
    counts numeric strings like numbers, so nothing a meter reads changes."""
    return dumps(_quoted_numbers(data)) if data is not None else ""


class _Seq:
    """Ingestion order: microseconds since the epoch, strictly increasing in this process."""

    def __init__(self) -> None:
        self.last = 0
        self.lock = threading.Lock()

    def take(self, n: int) -> int:
        with self.lock:
            first = max(self.last + 1, _time.time_ns() // 1000)
            self.last = first + n - 1
            return first


_seq = _Seq()


@dataclass
class _Stored:
    inserted: list[_Event]
    conflicts: list[_Event]


def store_events(org: str, events: Sequence[_Event]) -> _Stored:
    """Insert the events whose (source, id) is new, first occurrence first; events whose key is stored (or
    earlier in the batch) with another payload are returned as conflicts. The caller holds the org's lock."""
    ch = client()
    first: dict[tuple[str, str], tuple[_Event, int]] = {}
    later: list[tuple[_Event, int]] = []
    for ev in events:
        fp = _fingerprint(ev)
        if ev.key in first:
            later.append((ev, fp))
        else:
            first[ev.key] = (ev, fp)
    stored: dict[tuple[str, str], int] = {}
    if first:
        found = ch.rows(
            f"SELECT source, event_id, any(fp) FROM {ch.database}.{schema.EVENT_KEY} "
            "WHERE organization_id = {org:String} AND (source, event_id) IN "
            "(SELECT tupleElement(p, 1), tupleElement(p, 2) FROM "
            "(SELECT arrayJoin(arrayZip({src:Array(String)}, {ids:Array(String)})) AS p)) "
            "GROUP BY source, event_id",
            {"org": org, "src": [k[0] for k in first], "ids": [k[1] for k in first]},
        )
        stored = {(s, i): int(fp) for s, i, fp in found}
    fresh = [(ev, fp) for key, (ev, fp) in first.items() if key not in stored]
    conflicts = [ev for key, (ev, fp) in first.items() if key in stored and stored[key] != fp]
    winners = {**stored, **{ev.key: fp for ev, fp in fresh}}
    conflicts += [ev for ev, fp in later if winners[ev.key] != fp]
    if fresh:
        seq = _seq.take(len(fresh))
        rows = [
            (
                org,
                *ev.key,
                ev.type,
                ev.subject,
                ev.time,
                ev.text,
                ev.received_at,
                ev.seq or seq + i,
                fp,
                doc_text(ev.data),
            )
            for i, (ev, fp) in enumerate(fresh)
        ]
        token = hashlib.blake2b(repr((org, [ev.key for ev, _ in fresh])).encode(), digest_size=16).hexdigest()
        ch.insert(f"{ch.database}.{schema.EVENT}", _EVENT_COLUMNS, rows, token)
    return _Stored([ev for ev, _ in fresh], conflicts)


def _log_conflicts(org: str, conflicts: Sequence[_Event]) -> None:
    by_time: dict[datetime, list[dict[str, Any]]] = {}
    for ev in conflicts:
        by_time.setdefault(ev.received_at, []).append(
            {
                "source": ev.source,
                "event_id": ev.event_id,
                "type": ev.type,
                "subject": ev.subject,
                "time": ev.time,
                "data": ev.data,
                "reason": store.CONFLICT_REASON,
                "detail": store.CONFLICT_DETAIL,
            }
        )
    for received_at, rows in by_time.items():
        store.rejected_insert(organization_id=org, rows=rows, received_at=received_at)


def lock_organization(cur: Any, org: str) -> None:
    cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [store.DRAIN_LOCK_CLASS, org])
    cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", [CH_INGEST_LOCK])


def _from_tuple(ev: store.EventTuple, received_at: datetime) -> _Event:
    source, event_id, type_, subject, time, data_json = ev
    data = loads(data_json) if data_json is not None else None
    return _Event(source, event_id, type_, subject, time, data, received_at, data_json or "")


def events_insert(
    *, organization_id: str, events: Sequence[store.EventTuple], received_at: datetime
) -> store.InsertResult:
    """Store a batch (as the PostgreSQL store's `events_insert`): duplicates dropped, conflicts logged."""
    if not events:
        return store.InsertResult(0, 0, 0)
    parsed = [_from_tuple(ev, received_at) for ev in events]
    with transaction.atomic(), connection.cursor() as cur:
        lock_organization(cur, organization_id)
        result = store_events(organization_id, parsed)
        _log_conflicts(organization_id, result.conflicts)
    return store.InsertResult(len(events), len(result.inserted), len(result.conflicts))


def _parse_batch(body: bytes, received_at: datetime) -> list[_Event]:
    """The events of one accepted request (validated at accept time; anything else raises ValueError)."""
    payload = loads(body)
    if not isinstance(payload, list):
        raise ValueError("an inbox batch is a JSON array of events")
    out = []
    for e in payload:
        data = e.get("data")
        if isinstance(data, str):
            data = loads(data)
        if data is not None and not isinstance(data, dict):
            raise ValueError("event data must be an object")
        when = parse_time(e["time"]) if e.get("time") is not None else received_at
        for name in ("source", "id", "type", "subject"):
            if not isinstance(e.get(name), str):
                raise ValueError(f"event {name} must be a string")
        text = dumps(data) if data is not None else ""
        out.append(_Event(e["source"], e["id"], e["type"], e["subject"], when, data, received_at, text))
    return out


def inbox_drain(
    *, organization_id: str, up_to_id: int | None = None, max_events: int = store.DRAIN_MAX_EVENTS
) -> store.DrainResult | None:
    """Move the oldest pending batches of one organization (up to `max_events` events, at least one batch)
    into ClickHouse and delete them, as the PostgreSQL store's `inbox_drain`. A batch that cannot be parsed
    is kept, marked failed, and listed among the rejected events."""
    with transaction.atomic(), connection.cursor() as cur:
        lock_organization(cur, organization_id)
        cur.execute(
            "SELECT id, event_count, received_at, body, lane_ends FROM metering_inboxbatch WHERE organization_id = %s "
            "AND failed_at IS NULL AND id <= %s ORDER BY id LIMIT 1000",
            [organization_id, up_to_id if up_to_id is not None else 2**63 - 1],
        )
        events: list[_Event] = []
        ids: list[int] = []
        received = 0
        failed = 0
        for bid, count, received_at, body, lane_ends in cur.fetchall():
            if ids and received + count > max_events:
                break
            ids.append(int(bid))
            received += int(count)
            try:  # every array of the body: one, or one per lane (accepted while the PostgreSQL store ran lanes)
                arrays = store.inbox_segments(bytes(body), lane_ends)
                parsed = [e for array in arrays for e in _parse_batch(array, received_at)]  # all, or none
                events.extend(parsed)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                failed += 1
                _mark_failed(
                    cur, int(bid), str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
                )
        if not ids:
            return None
        result = store_events(organization_id, events)
        _log_conflicts(organization_id, result.conflicts)
        cur.execute("DELETE FROM metering_inboxbatch WHERE id = ANY(%s) AND failed_at IS NULL", [ids])
    new = result.inserted
    return store.DrainResult(
        organization_id=organization_id,
        batches=len(ids),
        received=received,
        inserted=len(new),
        conflicts=len(result.conflicts),
        failed=failed,
        batch_events=received,
        subjects=tuple(sorted({e.subject for e in new})),
        event_types=tuple(sorted({e.type for e in new})),
        earliest_event_time=min((e.time for e in new), default=None),
    )


def _mark_failed(cur: Any, bid: int, error: str) -> None:
    cur.execute("UPDATE metering_inboxbatch SET failed_at = now(), error = %s WHERE id = %s", [error, bid])
    cur.execute(
        "INSERT INTO metering_rejectedevent (organization_id, source, event_id, type, subject, time, data, "
        "reason, detail, received_at) SELECT organization_id, '', '', '', '', NULL, NULL, %s, "
        "'Accepted request (inbox batch ' || id || ', ' || event_count || ' events) could not be "
        "stored: ' || %s || '. It is kept for an operator; none of its events count.', received_at "
        "FROM metering_inboxbatch WHERE id = %s",
        [store.UNPROCESSABLE_REASON, error, bid],
    )


def events_list(
    *, organization_id: str, limit: int = 100, **filters: Unpack[store.EventFilters]
) -> list[store.StoredEvent]:
    """Most recently ingested first, filtered as the PostgreSQL store's `events_list` (the same keyword
    arguments, through `store.event_conditions`)."""
    ch = client()
    where = ["organization_id = {org:String}"]
    params: dict[str, Any] = {"org": organization_id, "limit": int(limit)}
    for i, (column, op, value) in enumerate(store.event_conditions(filters)):
        kind = "DateTime64(6, 'UTC')" if column in ("time", "stored_at") else "String"
        where.append(f"{column} {op} {{f{i}:{kind}}}")
        params[f"f{i}"] = value
    rows = ch.rows(
        "SELECT toInt64(seq), source, event_id, type, subject, time, data, stored_at "
        f"FROM {ch.database}.{schema.EVENT} FINAL WHERE {' AND '.join(where)} "
        "ORDER BY seq DESC LIMIT {limit:UInt64}",
        params,
    )
    return [
        store.StoredEvent(seq, src, eid, typ, subj, t, loads(data) if data else None, stored_at)
        for seq, src, eid, typ, subj, t, data, stored_at in rows
    ]


def events_purge(*, organization_id: str) -> int:
    """Delete an organization's events and rollups (its organization is being deleted), and its inbox."""
    ch = client()
    params = {"org": organization_id}
    (count,) = ch.rows(
        f"SELECT count() FROM {ch.database}.{schema.EVENT} FINAL WHERE organization_id = {{org:String}}",
        params,
    )[0]
    for table in (schema.EVENT, schema.EVENT_KEY, schema.ROLLUP):
        ch.command(
            f"ALTER TABLE {ch.database}.{table} DELETE WHERE organization_id = {{org:String}} "
            "SETTINGS mutations_sync = 1",
            params,
        )
    with connection.cursor() as cur:
        cur.execute("DELETE FROM metering_inboxbatch WHERE organization_id = %s", [organization_id])
    return int(count)
