"""Hourly rollups (`metering_rollup`) and their watermarks (`metering_rollupstate`).

Every transaction that stores events takes a shared advisory lock; the rollup takes the same lock
exclusively for an instant to read a *safe horizon* (max seq) such that every seq <= horizon is committed.
Rollups advance by seq (ingestion order), so late events (old `time`) are always caught.
"""

# SQL here is assembled from fixed fragments; every value is a bound parameter.
# ruff: noqa: S608
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection, transaction

from metering.store.events import INGEST_LOCK_KEY, SEQUENCE
from metering.store.meters import MeterSpec, group_values_sql, value_sql

ROLLUP_CHUNK = 2_000_000  # max events folded into rollups per transaction


def safe_horizon() -> int:
    """The greatest seq such that every event with seq <= it is committed.

    Ingest transactions hold the advisory lock in shared mode from before they draw seq values
    until they commit; holding it exclusively for an instant therefore means no ingest is in
    flight, and any later ingest draws larger seq values.
    """
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", [INGEST_LOCK_KEY])
        try:
            # the last seq drawn: every smaller one is committed or rolled back (a gap), and reading the
            # sequence costs nothing where max(seq) over every partition would
            cur.execute("SELECT coalesce(pg_sequence_last_value(%s), 0)", [SEQUENCE])
            return int(cur.fetchone()[0])
        finally:
            cur.execute("SELECT pg_advisory_unlock(%s)", [INGEST_LOCK_KEY])


def watermark_get(*, meter_id: str) -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT watermark FROM metering_rollupstate WHERE meter_id = %s", [meter_id])
        row = cur.fetchone()
    return int(row[0]) if row else 0


Flush = Callable[[int], object]  # drains the organization's inbox up to the given batch id


def watermarks_with_flush(
    organization_id: str, meter_ids: Sequence[str], flush: Flush | None
) -> dict[str, int]:
    """The meters' watermarks, after storing the organization's accepted batches when `flush` is given.

    One statement in the usual case: the watermarks and the newest pending inbox batch are read together;
    only when something is pending does `flush(batch id)` run (it drains up to that batch) and the
    watermarks are read again (the drain does not move them, but a rollup may have meanwhile)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT (SELECT max(id) FROM metering_inboxbatch WHERE organization_id = %s AND failed_at IS NULL), "
            "(SELECT array_agg(meter_id) FROM metering_rollupstate WHERE meter_id = ANY(%s)), "
            "(SELECT array_agg(watermark) FROM metering_rollupstate WHERE meter_id = ANY(%s))",
            [organization_id, list(meter_ids), list(meter_ids)],
        )
        pending, ids, marks = cur.fetchone()
    if pending is not None and flush is not None:
        flush(int(pending))
        return watermarks_read(meter_ids)
    return {mid: int(w) for mid, w in zip(ids or [], marks or [], strict=True)}


def rollup_reset(*, meter_id: str) -> None:
    """Forget a meter's rollups (after its group-by changed); the next run rebuilds them from seq 0."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT watermark FROM metering_rollupstate WHERE meter_id = %s FOR UPDATE", [meter_id])
        cur.execute("DELETE FROM metering_rollup WHERE meter_id = %s", [meter_id])
        cur.execute(
            "UPDATE metering_rollupstate SET watermark = 0, updated_at = now() WHERE meter_id = %s",
            [meter_id],
        )


def _watermark_set(cur, meter_id: str, watermark: int) -> None:
    cur.execute(
        "UPDATE metering_rollupstate SET watermark = %s, updated_at = now() WHERE meter_id = %s",
        [watermark, meter_id],
    )


def rollup_advance(
    *, spec: MeterSpec, horizon: int | None = None, chunk: int = ROLLUP_CHUNK
) -> tuple[int, int]:
    """Fold events with watermark < seq <= min(horizon, watermark + chunk) into hourly rollups.

    Upsert and watermark move happen in one transaction under a row lock on the meter's state,
    so a crash redoes the whole chunk and two concurrent runs cannot both fold the same range.
    Returns (old watermark, new watermark).
    """
    if horizon is None:
        horizon = safe_horizon()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "INSERT INTO metering_rollupstate (meter_id, organization_id, watermark, updated_at) "
            "VALUES (%s, %s, 0, now()) ON CONFLICT (meter_id) DO NOTHING",
            [spec.id, spec.organization_id],
        )
        cur.execute("SELECT watermark FROM metering_rollupstate WHERE meter_id = %s FOR UPDATE", [spec.id])
        low = int(cur.fetchone()[0])
        high = min(horizon, low + chunk)
        if high <= low:
            return low, low
        params: dict[str, Any] = {
            "org": spec.organization_id,
            "meter": spec.id,
            "type": spec.event_type,
            "lo": low,
            "hi": high,
        }
        value = value_sql("e", params, spec)
        gv = group_values_sql("e", params, spec)
        event_from = ""
        if spec.event_from is not None:
            params["event_from"] = spec.event_from
            event_from = "AND e.time >= %(event_from)s"
        if spec.aggregation == "LATEST":
            latest = (
                "(array_agg(time ORDER BY time DESC, seq DESC) FILTER (WHERE v IS NOT NULL))[1], "
                "(array_agg(seq ORDER BY time DESC, seq DESC) FILTER (WHERE v IS NOT NULL))[1], "
                "(array_agg(v ORDER BY time DESC, seq DESC) FILTER (WHERE v IS NOT NULL))[1]"
            )
        else:
            latest = "NULL::timestamptz, NULL::bigint, NULL::numeric"
        cur.execute(
            "INSERT INTO metering_rollup AS r (organization_id, meter_id, subject, group_values, bucket, "
            "event_count, value_count, value_sum, value_min, value_max, latest_time, latest_seq, latest_value) "
            f"SELECT %(org)s, %(meter)s, subject, gv, bucket, count(*), count(v), sum(v), min(v), max(v), {latest} "
            f"FROM (SELECT e.subject, {gv} AS gv, date_trunc('hour', e.time) AS bucket, e.time, e.seq, {value} AS v "
            "      FROM metering_event e WHERE e.seq > %(lo)s AND e.seq <= %(hi)s "
            f"      AND e.organization_id = %(org)s AND e.type = %(type)s {event_from}) x "
            "GROUP BY subject, gv, bucket "
            "ON CONFLICT (organization_id, meter_id, subject, bucket, group_values) DO UPDATE SET "
            "event_count = r.event_count + EXCLUDED.event_count, "
            "value_count = r.value_count + EXCLUDED.value_count, "
            "value_sum = CASE WHEN r.value_sum IS NULL THEN EXCLUDED.value_sum "
            "  WHEN EXCLUDED.value_sum IS NULL THEN r.value_sum ELSE r.value_sum + EXCLUDED.value_sum END, "
            "value_min = LEAST(r.value_min, EXCLUDED.value_min), "
            "value_max = GREATEST(r.value_max, EXCLUDED.value_max), "
            "latest_time = CASE WHEN %(newer)s THEN EXCLUDED.latest_time ELSE r.latest_time END, "
            "latest_seq = CASE WHEN %(newer)s THEN EXCLUDED.latest_seq ELSE r.latest_seq END, "
            "latest_value = CASE WHEN %(newer)s THEN EXCLUDED.latest_value ELSE r.latest_value END".replace(
                "%(newer)s",
                "(EXCLUDED.latest_time IS NOT NULL AND (r.latest_time IS NULL OR "
                "(EXCLUDED.latest_time, EXCLUDED.latest_seq) > (r.latest_time, r.latest_seq)))",
            ),
            params,
        )
        _watermark_set(cur, spec.id, high)
    return low, high


def watermarks_read(meter_ids: Sequence[str]) -> dict[str, int]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT meter_id, watermark FROM metering_rollupstate WHERE meter_id = ANY(%s)",
            [sorted(set(meter_ids))],
        )
        return {mid: int(w) for mid, w in cur.fetchall()}
