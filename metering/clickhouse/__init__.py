"""The ClickHouse event store (`METERING_STORE=clickhouse`, `CLICKHOUSE_URL`): the same public functions and
answers as the PostgreSQL store for raw events, rollups and meter queries. The inbox (acceptance) and the
rejected-event log stay in PostgreSQL; see docs/scaling.md.

- `connection.py`: the seam, chdb in-process or a server through clickhouse-connect, the same SQL.
- `schema.py`: tables; `events.py`: inserts, the drain, the event log; `rollups.py`: per-meter materialized
  views; `query.py`: usage queries; `retention.py`: per-organization event retention.
"""

import sys

# The names `metering.store.backend` routes to when METERING_STORE=clickhouse (re-exported: `x as x`).
from metering.clickhouse.events import events_insert as events_insert
from metering.clickhouse.events import events_list as events_list
from metering.clickhouse.events import events_purge as events_purge
from metering.clickhouse.events import inbox_drain as inbox_drain
from metering.clickhouse.query import group_values_list as group_values_list
from metering.clickhouse.query import subjects_list as subjects_list
from metering.clickhouse.query import usage_query as usage_query
from metering.clickhouse.query import usage_totals as usage_totals
from metering.clickhouse.query import usage_totals_many as usage_totals_many
from metering.clickhouse.retention import events_expire as events_expire
from metering.clickhouse.rollups import rollup_advance as rollup_advance
from metering.clickhouse.rollups import rollup_reset as rollup_reset
from metering.clickhouse.rollups import safe_horizon as safe_horizon
from metering.clickhouse.rollups import watermark_get as watermark_get
from metering.store import backend

backend.register_clickhouse(sys.modules[__name__])
