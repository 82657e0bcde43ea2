"""Hourly rollups kept by ClickHouse: one materialized view per meter definition into `metering_rollup`.

A meter's view is created the first time the meter is queried or its rollups advanced (`ensure`): under the
exclusive ingest lock (no insert is half-way), the view is created and the meter's history folded in from
`metering_event FINAL`; every insert after that feeds the view in the same insert. The view's key is the meter
id plus a hash of what the rollup depends on (event type, aggregation, value and group-by paths, event_from),
so a changed definition gets a new view; `rollup_reset` drops the meter's views and rows.

Folding the history of a new meter holds the ingest lock for as long as it takes (ingest keeps accepting into
the inbox meanwhile; drains wait): about a second per 10M events of the meter's type on a small machine.
"""

# SQL here is assembled from fixed fragments and checked identifiers; values are bound parameters or
# escaped literals (connection.literal) in view definitions, which cannot take parameters.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import json
import time

from django.db import connection

from core.limits import TIME_MAX, TIME_MIN
from metering import store
from metering.clickhouse import schema
from metering.clickhouse.connection import literal
from metering.clickhouse.events import CH_INGEST_LOCK
from metering.clickhouse.schema import client
from metering.jsonpath import NUMERIC_SQL_RE, compile_path

ZERO = "toDecimal256(0, 20)"


def meter_key(spec: store.MeterSpec) -> str:
    definition = json.dumps(
        [
            spec.event_type,
            spec.aggregation,
            spec.value_property,
            sorted(spec.group_by.items()),
            spec.event_from.isoformat() if spec.event_from else None,
        ]
    )
    return f"{spec.id.lower()}_{hashlib.blake2b(definition.encode(), digest_size=6).hexdigest()}"


def _view(key: str) -> str:
    return f"metering_rollup_mv_{key}"


def text_sql(keys: list[str], col: str = "doc") -> str:
    """ClickHouse for PostgreSQL's `data #>> path` over the `doc` column: a string's content, a number's
    digits (numbers are strings in `doc`), other JSON as text, NULL when missing or null. A digit key
    indexes an array (0-based, as `#>>`) or names an object key."""
    cur = col
    pending: list[str] = []
    for key in keys:
        if key.isdigit():
            if pending:
                cur = f"JSONExtractRaw({cur}, {', '.join(pending)})"
                pending = []
            cur = (
                f"if(JSONType({cur}) = 'Array', JSONExtractRaw({cur}, {int(key) + 1}), "
                f"JSONExtractRaw({cur}, {literal(key)}))"
            )
        else:
            pending.append(literal(key))
    args = "".join(f", {k}" for k in pending)
    return (
        f"multiIf(JSONType({cur}{args}) = 'String', CAST(JSONExtractString({cur}{args}), 'Nullable(String)'), "
        f"JSONType({cur}{args}) = 'Null', NULL, JSONExtractRaw({cur}{args}))"
    )


def value_sql(spec: store.MeterSpec) -> str:
    """The meter's numeric value (NULL when missing or not a number), Decimal(76, 20)."""
    if spec.value_path is None:
        return f"CAST(NULL, 'Nullable({schema.DECIMAL})')"
    text = text_sql(spec.value_path)
    return f"if(match(ifNull({text}, ''), {literal(NUMERIC_SQL_RE)}), toDecimal256OrNull({text}, 20), NULL)"


def unique_sql(spec: store.MeterSpec) -> str:
    if spec.aggregation == "UNIQUE_COUNT" and spec.value_path:
        return text_sql(spec.value_path)
    return "CAST(NULL, 'Nullable(String)')"


def dims(spec: store.MeterSpec) -> list[str]:
    """The meter's group-by dimensions in `group_key` order."""
    return sorted(spec.group_by)


def group_key_sql(spec: store.MeterSpec) -> str:
    if not spec.group_by:
        return "'[]'"
    parts = ", ".join(text_sql(compile_path(spec.group_by[d])) for d in dims(spec))
    return f"toJSONString([{parts}])"


def event_where(spec: store.MeterSpec) -> str:
    where = [
        f"organization_id = {literal(spec.organization_id)}",
        f"type = {literal(spec.event_type)}",
        f"time >= {literal(TIME_MIN)}",
        f"time < {literal(TIME_MAX)}",
    ]
    if spec.event_from is not None:
        where.append(f"time >= {literal(spec.event_from)}")
    return " AND ".join(where)


def _select(spec: store.MeterSpec, key: str, source: str) -> str:
    agg = spec.aggregation
    metrics = [
        "count() AS event_count",
        ("countIf(uv IS NOT NULL)" if agg == "UNIQUE_COUNT" else "countIf(v IS NOT NULL)")
        + " AS value_count",
        f"sum(ifNull(v, {ZERO})) AS value_sum",
        "min(v) AS value_min",
        "max(v) AS value_max",
    ]
    if agg == "LATEST":
        metrics.append(f"argMaxIfState(ifNull(v, {ZERO}), (time, seq), v IS NOT NULL) AS latest")
    if agg == "UNIQUE_COUNT":
        metrics.append("uniqExactIfState(ifNull(uv, ''), uv IS NOT NULL) AS uniq")
    return (
        f"WITH {value_sql(spec)} AS v, {unique_sql(spec)} AS uv "
        f"SELECT organization_id, {literal(key)} AS meter_key, toStartOfHour(time) AS bucket, subject, "
        f"{group_key_sql(spec)} AS group_key, {', '.join(metrics)} FROM {source} WHERE {event_where(spec)} "
        "GROUP BY organization_id, bucket, subject, group_key"
    )


# Meter keys seen ready in this process, with when: the check is skipped for READY_TTL seconds (a reset in
# another process is seen within that time; a reset here forgets at once).
READY_TTL = 30.0
_seen_ready: dict[str, float] = {}


def ensure(spec: store.MeterSpec) -> str:
    """The meter's rollup key, its view created and its history folded in first if needed."""
    key = meter_key(spec)
    if time.monotonic() - _seen_ready.get(key, float("-inf")) < READY_TTL:
        return key
    ch = client()
    db = ch.database
    if not ch.rows(f"SELECT 1 FROM {db}.{schema.READY} WHERE meter_key = {{k:String}}", {"k": key}):
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", [CH_INGEST_LOCK])
            try:
                if not ch.rows(
                    f"SELECT 1 FROM {db}.{schema.READY} WHERE meter_key = {{k:String}}", {"k": key}
                ):
                    _build(spec, key)
            finally:
                cur.execute("SELECT pg_advisory_unlock(%s)", [CH_INGEST_LOCK])
    _seen_ready[key] = time.monotonic()
    return key


def _build(spec: store.MeterSpec, key: str) -> None:
    """Create the view and fold the history in; a crash half-way is redone from scratch next time."""
    ch = client()
    db = ch.database
    view = _view(key)
    ch.command(f"DROP VIEW IF EXISTS {db}.{view}")
    if ch.rows(f"SELECT 1 FROM {db}.{schema.ROLLUP} WHERE meter_key = {{k:String}} LIMIT 1", {"k": key}):
        ch.command(
            f"ALTER TABLE {db}.{schema.ROLLUP} DELETE WHERE meter_key = {{k:String}} SETTINGS mutations_sync = 1",
            {"k": key},
        )
    ch.command(
        f"CREATE MATERIALIZED VIEW {db}.{view} TO {db}.{schema.ROLLUP} AS "
        + _select(spec, key, f"{db}.{schema.EVENT}")
    )
    columns = ["organization_id", "meter_key", "bucket", "subject", "group_key", "event_count", "value_count"]
    columns += ["value_sum", "value_min", "value_max"]
    columns += {"LATEST": ["latest"], "UNIQUE_COUNT": ["uniq"]}.get(spec.aggregation, [])
    ch.command(
        f"INSERT INTO {db}.{schema.ROLLUP} ({', '.join(columns)}) "
        + _select(spec, key, f"{db}.{schema.EVENT} FINAL")
    )
    ch.command(
        f"INSERT INTO {db}.{schema.READY} (meter_key, meter_id, view) VALUES ({{k:String}}, {{m:String}}, {{v:String}})",
        {"k": key, "m": spec.id, "v": view},
    )


def rollup_reset(*, meter_id: str) -> None:
    """Forget a meter's rollups (its definition changed): its views and rows go; the next read rebuilds."""
    ch = client()
    db = ch.database
    found = ch.rows(
        f"SELECT meter_key, view FROM {db}.{schema.READY} FINAL WHERE meter_id = {{m:String}}",
        {"m": meter_id},
    )
    for key, view in found:
        _seen_ready.pop(key, None)
        ch.command(f"DROP VIEW IF EXISTS {db}.{view}")
        for table in (schema.ROLLUP, schema.READY):
            ch.command(
                f"ALTER TABLE {db}.{table} DELETE WHERE meter_key = {{k:String}} SETTINGS mutations_sync = 1",
                {"k": key},
            )


def rollup_advance(*, spec: store.MeterSpec, horizon: int | None = None, chunk: int = 0) -> tuple[int, int]:
    """ClickHouse keeps rollups current on insert: this only makes sure the meter's view exists."""
    ensure(spec)
    return (0, 0)


def safe_horizon() -> int:
    return 0


def watermark_get(*, meter_id: str) -> int:
    return 0
