"""Reading an organization's stored events out of PostgreSQL in ingestion order, in pages: what
`manage.py events_copy_clickhouse` copies (it reads this store whichever store METERING_STORE selects)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection


@dataclass(frozen=True)
class ExportedEvent:
    seq: int
    source: str
    event_id: str
    type: str
    subject: str
    time: datetime
    data_json: str | None  # jsonb as text: numbers with every digit
    stored_at: datetime


def events_export(*, organization_id: str, after_seq: int = 0, limit: int = 50_000) -> list[ExportedEvent]:
    """Up to `limit` events of the organization with seq > `after_seq`, oldest ingested first."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT seq, source, event_id, type, subject, time, data::text, stored_at FROM metering_event "
            "WHERE organization_id = %s AND seq > %s ORDER BY seq LIMIT %s",
            [organization_id, after_seq, limit],
        )
        return [ExportedEvent(*row) for row in cur.fetchall()]


def events_count(*, organization_id: str) -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM metering_event WHERE organization_id = %s", [organization_id])
        return int(cur.fetchone()[0])
