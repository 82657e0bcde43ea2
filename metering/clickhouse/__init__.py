"""The ClickHouse event store (`METERING_STORE=clickhouse`, `CLICKHOUSE_URL`): the same public functions and
answers as the PostgreSQL store for raw events, rollups and meter queries. The inbox (acceptance) and the
rejected-event log stay in PostgreSQL; see docs/scaling.md.

- `connection.py`: the seam, chdb in-process or a server through clickhouse-connect, the same SQL.
- `schema.py`: tables; `events.py`: inserts, the drain, the event log; `rollups.py`: per-meter materialized
  views; `query.py`: usage queries.
"""

import sys

from metering.clickhouse.events import events_insert, events_list, events_purge, inbox_drain
from metering.clickhouse.query import (
    group_values_list,
    subjects_list,
    usage_query,
    usage_totals,
    usage_totals_many,
)
from metering.clickhouse.rollups import rollup_advance, rollup_reset, safe_horizon, watermark_get
from metering.store import backend

__all__ = [
    "events_insert",
    "events_list",
    "events_purge",
    "group_values_list",
    "inbox_drain",
    "rollup_advance",
    "rollup_reset",
    "safe_horizon",
    "subjects_list",
    "usage_query",
    "usage_totals",
    "usage_totals_many",
    "watermark_get",
]

backend.register_clickhouse(sys.modules[__name__])
