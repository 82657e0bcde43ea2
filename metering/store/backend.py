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
from django.core.exceptions import ImproperlyConfigured

from metering.store import events, inbox, partitions, rollups, usage

F = TypeVar("F", bound=Callable[..., Any])
_clickhouse: list[ModuleType] = []


def clickhouse_selected() -> bool:
    return getattr(settings, "METERING_STORE", "postgres") == "clickhouse"


def register_clickhouse(module: ModuleType) -> None:
    """Called by `metering.clickhouse` when it is imported (the metering app loads it at start-up): the
    ClickHouse store builds on this package, so this package never imports it."""
    _clickhouse[:] = [module]


def _ch() -> ModuleType:
    if not _clickhouse:
        raise ImproperlyConfigured("METERING_STORE=clickhouse but metering.clickhouse was not loaded")
    return _clickhouse[0]


def _routed(postgres: F) -> F:
    name = postgres.__name__

    @functools.wraps(postgres)
    def call(*args: Any, **kwargs: Any) -> Any:
        if clickhouse_selected():
            return getattr(_ch(), name)(*args, **kwargs)
        return postgres(*args, **kwargs)

    return cast(F, call)


events_expire = _routed(partitions.events_expire)
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
