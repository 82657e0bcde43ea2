"""ClickHouse tables of the event store (created on first connection; every statement is idempotent).

- `metering_event`: raw events. `ReplacingMergeTree` ordered by (organization, type, subject, time, source,
  id): the query order, and the dedup key as far as anything can reach the table (the store inserts only keys
  it has not stored; a key stored with another payload is a conflict, logged and never inserted, so two rows
  of one (organization, source, id) are always identical and merge away). Raw reads use `FINAL`.
  `data` is the event's data as JSON text, numbers exact; `doc` the same with numbers written as strings,
  what meters read (ClickHouse's JSON functions read numbers as doubles). `seq` is the ingestion order (LATEST ties, the
  event log's order). Partitioned by month of `time`.
- `metering_event_key`: the dedup index, (organization, source, id) → payload fingerprint, filled by a
  materialized view from `metering_event` in the same insert: the store probes it by primary key before
  inserting, which is how first-write-wins and the conflict log work without reading the raw table.
- `metering_rollup`: hourly aggregates per meter (`meter_key` = meter id + a hash of its definition), subject
  and group values, an `AggregatingMergeTree` filled by one materialized view per meter
  (`metering/clickhouse/rollups.py`); partial states merge at query time.
- `metering_rollup_ready`: meters whose view exists and whose history has been folded in.
- `metering_event_expiring`: the dedup keys of events that retention is removing (`retention.py`), deleted
  from `metering_event_key` once their events are gone.

Every insert carries an `insert_deduplication_token`: a retried block (a client that lost the answer) is
dropped by the tables and by the views they feed (`non_replicated_deduplication_window`).
"""

# SQL here is assembled from fixed fragments and checked identifiers; values are bound parameters or
# escaped literals (connection.literal) in view definitions, which cannot take parameters.
# ruff: noqa: S608

from __future__ import annotations

import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from metering.clickhouse.connection import ChdbClient, ServerClient, make_client

# Decimal(76, 20): every countable number (below 10^20, core.limits) and sums of billions of them, exact to
# 20 decimal places.
DECIMAL = "Decimal(76, 20)"
TIME = "DateTime64(6, 'UTC')"
DEDUP = "non_replicated_deduplication_window = 10000"

EVENT = "metering_event"
EVENT_KEY = "metering_event_key"
ROLLUP = "metering_rollup"
READY = "metering_rollup_ready"
EXPIRING = "metering_event_expiring"

_DDL = [
    f"""CREATE TABLE IF NOT EXISTS {{db}}.{EVENT} (
        organization_id LowCardinality(String),
        source String,
        event_id String,
        type LowCardinality(String),
        subject String,
        time {TIME},
        data String,
        stored_at {TIME},
        seq UInt64,
        fp UInt64,
        doc String
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(time)
    ORDER BY (organization_id, type, subject, time, source, event_id)
    SETTINGS {DEDUP}""",
    f"""CREATE TABLE IF NOT EXISTS {{db}}.{EVENT_KEY} (
        organization_id LowCardinality(String),
        source String,
        event_id String,
        fp UInt64
    ) ENGINE = ReplacingMergeTree
    ORDER BY (organization_id, source, event_id)
    SETTINGS {DEDUP}""",
    f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{EVENT_KEY}_mv TO {{db}}.{EVENT_KEY} AS
        SELECT organization_id, source, event_id, fp FROM {{db}}.{EVENT}""",
    f"""CREATE TABLE IF NOT EXISTS {{db}}.{ROLLUP} (
        organization_id LowCardinality(String),
        meter_key String,
        bucket DateTime('UTC'),
        subject String,
        group_key String,
        event_count SimpleAggregateFunction(sum, UInt64),
        value_count SimpleAggregateFunction(sum, UInt64),
        value_sum SimpleAggregateFunction(sum, {DECIMAL}),
        value_min SimpleAggregateFunction(min, Nullable({DECIMAL})),
        value_max SimpleAggregateFunction(max, Nullable({DECIMAL})),
        latest AggregateFunction(argMaxIf, {DECIMAL}, Tuple({TIME}, UInt64), UInt8),
        uniq AggregateFunction(uniqExactIf, String, UInt8)
    ) ENGINE = AggregatingMergeTree
    ORDER BY (organization_id, meter_key, subject, bucket, group_key)
    SETTINGS {DEDUP}""",
    f"""CREATE TABLE IF NOT EXISTS {{db}}.{READY} (
        meter_key String,
        meter_id String,
        view String
    ) ENGINE = ReplacingMergeTree ORDER BY meter_key""",
    f"""CREATE TABLE IF NOT EXISTS {{db}}.{EXPIRING} (
        organization_id LowCardinality(String),
        source String,
        event_id String
    ) ENGINE = MergeTree ORDER BY (organization_id, source, event_id)""",
]


def create(client: ChdbClient | ServerClient) -> None:
    for statement in _DDL:
        client.command(statement.replace("{db}", client.database))


def truncate(client: ChdbClient | ServerClient) -> None:
    """Empty every table and drop the meters' views (tests)."""
    db = client.database
    views = client.rows(
        "SELECT name FROM system.tables WHERE database = {db:String} AND name LIKE 'metering_rollup_mv_%'",
        {"db": db},
    )
    for (view,) in views:
        client.command(f"DROP VIEW IF EXISTS {db}.{view}")
    for table in (EVENT, EVENT_KEY, ROLLUP, READY, EXPIRING):
        client.command(f"TRUNCATE TABLE IF EXISTS {db}.{table}")


_clients: dict[str, ChdbClient | ServerClient] = {}
_clients_lock = threading.Lock()


def client() -> ChdbClient | ServerClient:
    """The process's client for settings.CLICKHOUSE_URL, its schema created on first use."""
    url = getattr(settings, "CLICKHOUSE_URL", "") or ""
    if not url:
        raise ImproperlyConfigured("METERING_STORE=clickhouse needs CLICKHOUSE_URL")
    found = _clients.get(url)
    if found is not None:
        return found
    with _clients_lock:
        if url not in _clients:
            made = make_client(url)
            create(made)
            _clients[url] = made
        return _clients[url]
