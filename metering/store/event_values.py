"""Each event's value, in event-time order: what a price rated transaction by transaction reads (the
store's other reads aggregate). One bounded statement over raw events; no rollups (they hold sums).

The SQL is composed from fixed fragments; every value is a bound parameter."""

# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from core.limits import TIME_MAX, TIME_MIN
from metering.jsonpath import NUMERIC_SQL_RE, compile_path
from metering.store.backend import clickhouse_selected
from metering.store.meters import MeterSpec


class TooManyEvents(Exception):
    """More events in the window than a per-event read may hold in memory."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} events to rate one by one")
        self.limit = limit


def event_values(
    *,
    spec: MeterSpec,
    subjects: Sequence[str],
    time_from: datetime,
    time_to: datetime,
    filter_group_by: Mapping[str, Sequence[str]],
    limit: int,
) -> list[Decimal]:
    """The value of each event of the meter for `subjects` in [time_from, time_to), ordered by event time
    (then arrival): 1 per event for a COUNT meter, else the number at the meter's value path (events
    without one do not count, as in the meter's aggregate). Raises `TooManyEvents` above `limit`."""
    if clickhouse_selected():
        raise ImproperlyConfigured(
            "Prices rated transaction by transaction read each event from PostgreSQL's event store; "
            "METERING_STORE=clickhouse does not offer that read yet."
        )
    if not subjects or time_from >= time_to:
        return []
    params: dict[str, Any] = {
        "org": spec.organization_id,
        "type": spec.event_type,
        "subjects": list(subjects),
        "t_from": max(time_from, TIME_MIN),
        "t_to": min(time_to, TIME_MAX),
        "limit": limit + 1,
    }
    where = [
        "e.organization_id = %(org)s",
        "e.type = %(type)s",
        "e.subject = ANY(%(subjects)s)",
        "e.time >= %(t_from)s",
        "e.time < %(t_to)s",
    ]
    if spec.event_from is not None:
        params["event_from"] = spec.event_from
        where.append("e.time >= %(event_from)s")
    for i, (key, values) in enumerate(sorted(filter_group_by.items())):
        params[f"fp{i}"] = compile_path(spec.group_by[key])
        params[f"fv{i}"] = list(values)
        where.append(f"e.data #>> %(fp{i})s = ANY(%(fv{i})s)")
    path = spec.value_path
    if spec.aggregation == "COUNT" or path is None:
        value = "1::numeric"
    else:
        params["vpath"], params["numre"] = path, NUMERIC_SQL_RE
        value = "(e.data #>> %(vpath)s)::numeric"
        where.append("(e.data #>> %(vpath)s) ~ %(numre)s")
    sql = (
        f"SELECT {value} FROM metering_event e WHERE {' AND '.join(where)} "
        "ORDER BY e.time, e.seq LIMIT %(limit)s"
    )
    with connection.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    if len(rows) > limit:
        raise TooManyEvents(limit)
    return [Decimal(r[0]) for r in rows]
