"""Moving an organization to the ClickHouse store: copy its stored events from PostgreSQL (ingestion order
and original `stored_at` and `seq` kept, so the event log and LATEST ties read the same), then compare every
live meter's totals per UTC day on both stores. Copying again is harmless: keys already in ClickHouse are
skipped (dedup), so an interrupted copy is resumed by running it again."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction

from metering import store
from metering.clickhouse import events as ch_events
from metering.clickhouse import query as ch_query
from metering.ingest import loads
from metering.store import export
from metering.store import usage as pg_usage


@dataclass(frozen=True)
class CopyResult:
    read: int
    inserted: int
    already_there: int
    conflicts: int  # keys ClickHouse holds with another payload (reported, not overwritten)


def copy_organization(
    *, organization_id: str, batch: int = 50_000, progress: Callable[[int, int, float], None] | None = None
) -> CopyResult:
    total = export.events_count(organization_id=organization_id)
    started = time.monotonic()
    after = read = inserted = conflicts = 0
    while rows := export.events_export(organization_id=organization_id, after_seq=after, limit=batch):
        events = [
            ch_events._Event(
                r.source,
                r.event_id,
                r.type,
                r.subject,
                r.time,
                loads(r.data_json) if r.data_json is not None else None,
                r.stored_at,
                r.data_json or "",
                r.seq,
            )
            for r in rows
        ]
        with transaction.atomic(), connection.cursor() as cur:
            ch_events.lock_organization(cur, organization_id)
            stored = ch_events.store_events(organization_id, events)
        after = rows[-1].seq
        read += len(rows)
        inserted += len(stored.inserted)
        conflicts += len(stored.conflicts)
        if progress is not None:
            progress(read, total, time.monotonic() - started)
    return CopyResult(read, inserted, read - inserted - conflicts, conflicts)


@dataclass(frozen=True)
class DayMismatch:
    meter: str
    day: datetime
    postgres: Decimal | None
    clickhouse: Decimal | None


def verify_organization(
    *, specs: Sequence[tuple[str, store.MeterSpec]], report: Callable[[str, int, int], None] | None = None
) -> list[DayMismatch]:
    """Every meter's totals per UTC day on both stores; the days that differ. `specs`: (name, spec)."""
    out: list[DayMismatch] = []
    for name, spec in specs:
        by_day = store.UsageQuery(spec=spec, time_from=None, time_to=None, window_size="DAY")
        rows = pg_usage.usage_query(by_day)
        pg = {r.window_start: r.value for r in rows}
        rows = ch_query.usage_query(by_day)
        ch = {r.window_start: r.value for r in rows}
        days = sorted(set(pg) | set(ch))
        bad = [DayMismatch(name, d, pg.get(d), ch.get(d)) for d in days if pg.get(d) != ch.get(d)]
        out += bad
        if report is not None:
            report(name, len(days), len(bad))
    return out
