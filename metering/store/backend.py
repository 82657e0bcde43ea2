"""Which event store answers: `METERING_STORE` = "postgres" (this package, the default) or "clickhouse"
(`metering/clickhouse/`, docs/scaling.md). The functions below keep the PostgreSQL store's signatures and
route each call by the setting, read at call time; the inbox, the drain worker slot and the rejected-event
log stay in PostgreSQL whichever store holds the events.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar, cast

from django.conf import settings

from metering.store import events, inbox, rollups, usage

F = TypeVar("F", bound=Callable[..., Any])
_loaded: list[ModuleType] = []


def clickhouse_selected() -> bool:
    return getattr(settings, "METERING_STORE", "postgres") == "clickhouse"


def _clickhouse() -> ModuleType:
    if not _loaded:
        # Imported on first use: its client libraries are needed only when ClickHouse is selected, and it
        # imports this package's names (it is loaded after this package, never during its import).
        import metering.clickhouse

        _loaded.append(metering.clickhouse)
    return _loaded[0]


def _routed(postgres: F) -> F:
    name = postgres.__name__

    @functools.wraps(postgres)
    def call(*args: Any, **kwargs: Any) -> Any:
        if clickhouse_selected():
            return getattr(_clickhouse(), name)(*args, **kwargs)
        return postgres(*args, **kwargs)

    return cast(F, call)


events_insert = _routed(events.events_insert)
events_list = _routed(events.events_list)
events_purge = _routed(events.events_purge)
inbox_drain = _routed(inbox.inbox_drain)
rollup_advance = _routed(rollups.rollup_advance)
rollup_reset = _routed(rollups.rollup_reset)
safe_horizon = _routed(rollups.safe_horizon)
watermark_get = _routed(rollups.watermark_get)
usage_query = _routed(usage.usage_query)
usage_totals = _routed(usage.usage_totals)
usage_totals_many = _routed(usage.usage_totals_many)
subjects_list = _routed(usage.subjects_list)
group_values_list = _routed(usage.group_values_list)
