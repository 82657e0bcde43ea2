"""The raw event store (PostgreSQL backend). The only package that reads or writes `metering_inboxbatch`,
`metering_event` and `metering_rollup` with SQL; callers use the names re-exported here
(`from metering import store`), never the modules inside.

- `inbox.py`: accepted requests (`metering_inboxbatch`, the body as received) and the drain that moves their
  events into `metering_event` in acceptance order and deletes them, in one transaction.
- `events.py`: the one statement that stores a batch (`STORE_SQL`, for the drain and `events_insert`),
  conflicts and rejected events, purge, the event log. `metering_event` has one row per stored event,
  partitioned by event month; `seq` (a sequence drawn in acceptance order) is the ingestion order. The
  dedup key (organization_id, source, event_id) is the primary key of the unpartitioned
  `metering_eventkey`, kept as long as the event. Indexes (organization_id, type, subject, time) and
  (organization_id, seq). JSONB `data`. No FK trigger on organization_id.
- `partitions.py`: monthly partitions (created ahead, split out of the default partition) and retention.
- `event_values.py`: each event's value in event-time order, bounded (prices rated transaction by
  transaction read these).
- `meters.py`: `MeterSpec` (what the SQL needs to know about a meter) and its value/group-by expressions.
- `rollups.py`: hourly rollups, watermarks, the safe horizon.
- `usage.py`: usage queries, totals for many meters, subjects and group-by values.

Both write paths (the drain, and `events_insert` for in-process loaders) are atomic per batch and dedup in
the database. First write wins; a duplicate with a different payload is logged in `metering_rejectedevent`
(reason `duplicate_conflict`) and never counted. Every transaction that stores events takes a shared
advisory lock; the rollup takes the same lock exclusively for an instant to read a *safe horizon* (max seq)
such that every seq <= horizon is committed. Rollups advance by seq (ingestion order), so late events (old
`time`) are always caught.

`METERING_STORE=clickhouse` routes the event, retention, rollup and usage functions to `metering/clickhouse/`
(`backend.py`); the inbox and the rejected-event log stay here.
"""

from metering.store.backend import (
    clickhouse_selected,
    events_expire,
    events_insert,
    events_list,
    events_purge,
    group_values_list,
    inbox_drain,
    rollup_advance,
    rollup_reset,
    safe_horizon,
    subjects_list,
    usage_query,
    usage_totals,
    usage_totals_many,
    watermark_get,
)
from metering.store.event_values import TooManyEvents, event_values
from metering.store.events import (
    CONFLICT_DETAIL,
    CONFLICT_REASON,
    INGEST_LOCK_KEY,
    SMALL_BATCH,
    EventFilters,
    EventTuple,
    InsertResult,
    StoredEvent,
    event_conditions,
    rejected_insert,
)
from metering.store.inbox import (
    DRAIN_LOCK_CLASS,
    DRAIN_MAX_EVENTS,
    DRAIN_WORKER_CLASS,
    MAX_LANES,
    UNPROCESSABLE_REASON,
    DrainLane,
    DrainResult,
    drain_follower,
    drain_follower_running,
    drain_worker_slot,
    inbox_append,
    inbox_arrivals,
    inbox_failed_retry,
    inbox_last_pending,
    inbox_pending,
    inbox_pending_events,
    inbox_segments,
    lane_of,
)
from metering.store.meters import MeterSpec
from metering.store.partitions import (
    ExpireResult,
    partition_create,
    partitions_ensure,
    partitions_list,
)
from metering.store.rollups import (
    ROLLUP_CHUNK,
    Flush,
)
from metering.store.usage import (
    HOUR,
    UNITS,
    TotalRequest,
    UsageQuery,
    UsageRow,
)

__all__ = [
    "CONFLICT_DETAIL",
    "CONFLICT_REASON",
    "DRAIN_LOCK_CLASS",
    "DRAIN_MAX_EVENTS",
    "DRAIN_WORKER_CLASS",
    "HOUR",
    "INGEST_LOCK_KEY",
    "MAX_LANES",
    "ROLLUP_CHUNK",
    "SMALL_BATCH",
    "UNITS",
    "UNPROCESSABLE_REASON",
    "DrainLane",
    "DrainResult",
    "EventFilters",
    "EventTuple",
    "ExpireResult",
    "Flush",
    "InsertResult",
    "MeterSpec",
    "StoredEvent",
    "TooManyEvents",
    "TotalRequest",
    "UsageQuery",
    "UsageRow",
    "clickhouse_selected",
    "drain_follower",
    "drain_follower_running",
    "drain_worker_slot",
    "event_conditions",
    "event_values",
    "events_expire",
    "events_insert",
    "events_list",
    "events_purge",
    "group_values_list",
    "inbox_append",
    "inbox_arrivals",
    "inbox_drain",
    "inbox_failed_retry",
    "inbox_last_pending",
    "inbox_pending",
    "inbox_pending_events",
    "inbox_segments",
    "lane_of",
    "partition_create",
    "partitions_ensure",
    "partitions_list",
    "rejected_insert",
    "rollup_advance",
    "rollup_reset",
    "safe_horizon",
    "subjects_list",
    "usage_query",
    "usage_totals",
    "usage_totals_many",
    "watermark_get",
]
