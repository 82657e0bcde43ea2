"""Reading usage: `usage_query` (windows, group-by, customers), totals for many meters in one statement
(`usage_totals`, `usage_totals_many`), and discovery (subjects, group-by values). Rollups below a meter's
watermark plus the raw events above it (see docs/metering.md "Query algorithm")."""

# SQL here is assembled from fixed fragments; every value is a bound parameter.
# ruff: noqa: S608
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection

from core.limits import TIME_MAX, TIME_MIN
from metering.jsonpath import compile_path
from metering.store.events import and_given
from metering.store.meters import MeterSpec, value_sql
from metering.store.rollups import Flush, watermark_get, watermarks_read, watermarks_with_flush

UNITS = {"MINUTE": "minute", "HOUR": "hour", "DAY": "day", "MONTH": "month"}
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class UsageRow:
    value: Decimal
    window_start: datetime
    window_end: datetime
    subject: str | None
    customer_id: str | None
    group_by: dict[str, str | None]


def floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def ceil_hour(t: datetime) -> datetime:
    f = floor_hour(t)
    return f if f == t else f + HOUR


def tz_whole_hours(tz: str, start: datetime | None, end: datetime | None) -> bool:
    """True when the zone's UTC offset is a whole number of hours at every sampled instant."""
    zone = ZoneInfo(tz)
    lo = start or datetime(2000, 1, 1, tzinfo=zone)
    hi = end or (lo + timedelta(days=366 * 30))
    samples = [lo, hi]
    year = lo.year
    while year <= min(hi.year, lo.year + 60):
        samples += [datetime(year, 1, 15, tzinfo=zone), datetime(year, 7, 15, tzinfo=zone)]
        year += 1
    for s in samples:
        offset = s.astimezone(zone).utcoffset()
        if offset is None or offset.total_seconds() % 3600:
            return False
    return True


def usage_query(q: UsageQuery, *, flush: Flush | None = None) -> list[UsageRow]:
    """Aggregate a meter over [q.time_from, q.time_to) (see docs/metering.md "Query algorithm"). `flush`:
    read-your-writes, see `watermarks_with_flush`."""
    spec = q.spec
    for _attempt in range(3):
        w0 = watermarks_with_flush(spec.organization_id, [spec.id], flush).get(spec.id, 0)
        flush = None
        rows = _usage_query_once(q, w0)
        if watermark_get(meter_id=spec.id) >= w0:  # no reset happened in between (see docs)
            return rows
    return rows  # pragma: no cover


@dataclass(frozen=True)
class UsageQuery:
    """One usage statement's inputs (`usage_query`): `spec`'s usage in [time_from, time_to) (None: open),
    in windows of `window_size` (None = one window) in `window_tz`; only `subjects` (None = all) and the
    `filter_group_by` {dimension: [allowed values]}; rows grouped by the `group_by` dimensions, and by
    subject / customer when asked; `customers` ({customer id: [subject, ...]}) limits to their subjects.
    `use_rollups=False` reads raw events only."""

    spec: MeterSpec
    time_from: datetime | None
    time_to: datetime | None
    window_size: str | None = None
    window_tz: str = "UTC"
    subjects: Sequence[str] | None = None
    group_by: Sequence[str] = ()
    group_by_subject: bool = False
    filter_group_by: Mapping[str, Sequence[str]] = field(default_factory=dict)
    customers: Mapping[str, Sequence[str]] | None = None
    group_by_customer: bool = False
    use_rollups: bool = True


def _usage_sql(q: UsageQuery, w0: int) -> tuple[str, dict[str, Any]]:
    spec, time_from, time_to, subjects = q.spec, q.time_from, q.time_to, q.subjects
    window_size, window_tz, group_by, filter_group_by = (
        q.window_size,
        q.window_tz,
        q.group_by,
        q.filter_group_by,
    )
    customers, use_rollups = q.customers, q.use_rollups
    group_by_subject, group_by_customer = q.group_by_subject, q.group_by_customer
    params: dict[str, Any] = {
        "org": spec.organization_id,
        "meter": spec.id,
        "type": spec.event_type,
        "w0": w0,
        "tz": window_tz,
    }
    value = value_sql("e", params, spec)
    # rollups only where every window boundary is an hour boundary
    rollups = use_rollups and spec.aggregation != "UNIQUE_COUNT" and window_size != "MINUTE"
    if rollups and window_size is not None:
        rollups = tz_whole_hours(window_tz, time_from, time_to)
    core_lo = ceil_hour(time_from) if time_from else None
    core_hi = floor_hour(time_to) if time_to else None
    if rollups and core_lo and core_hi and core_lo >= core_hi:
        rollups = False

    # subject filter (customers narrow it further)
    subject_list: list[str] | None = list(subjects) if subjects is not None else None
    if customers is not None:
        mapped = sorted({s for subs in customers.values() for s in subs})
        subject_list = mapped if subject_list is None else [s for s in subject_list if s in set(mapped)]
        params["cm_subjects"] = [s for cid, subs in customers.items() for s in subs]
        params["cm_ids"] = [cid for cid, subs in customers.items() for _ in subs]
    if subject_list is not None:
        params["subjects"] = subject_list

    # group-by columns and filters, for raw events (JSONPath) and rollups (group_values keys)
    raw_g, roll_g, raw_f, roll_f = [], [], [], []
    for i, key in enumerate(group_by):
        params[f"gk{i}"] = key
        params[f"gp{i}"] = compile_path(spec.group_by[key])
        raw_g.append(f"e.data #>> %(gp{i})s AS g{i}")
        roll_g.append(f"r.group_values ->> %(gk{i})s AS g{i}")
    for i, (key, values) in enumerate(sorted(filter_group_by.items())):
        params[f"fk{i}"] = key
        params[f"fp{i}"] = compile_path(spec.group_by[key])
        params[f"fv{i}"] = list(values)
        raw_f.append(f"e.data #>> %(fp{i})s = ANY(%(fv{i})s)")
        roll_f.append(f"r.group_values ->> %(fk{i})s = ANY(%(fv{i})s)")
    g_cols = "".join(f", {c}" for c in raw_g)
    rg_cols = "".join(f", {c}" for c in roll_g)

    # events stored before core.limits with a time outside [1970, 2100) are never counted (their windows
    # could not be computed or shown)
    params["t_min"], params["t_max"] = TIME_MIN, TIME_MAX
    raw_where = [
        "e.organization_id = %(org)s",
        "e.type = %(type)s",
        *raw_f,
        "e.time >= %(t_min)s",
        "e.time < %(t_max)s",
    ]
    roll_where = [
        "r.organization_id = %(org)s",
        "r.meter_id = %(meter)s",
        *roll_f,
        "r.bucket >= %(t_min)s",
        "r.bucket < %(t_max)s",
    ]
    if subject_list is not None:
        raw_where.append("e.subject = ANY(%(subjects)s)")
        roll_where.append("r.subject = ANY(%(subjects)s)")
    if spec.event_from is not None:
        params["event_from"] = spec.event_from
        raw_where.append("e.time >= %(event_from)s")
    if time_from is not None:
        params["t_from"] = time_from
    if time_to is not None:
        params["t_to"] = time_to

    uv = "e.data #>> %(vpath)s" if spec.aggregation == "UNIQUE_COUNT" and spec.value_path else "NULL::text"
    raw_select = (
        f"SELECT e.subject, e.time AS t, 1::bigint AS cnt, ({value} IS NOT NULL)::int AS vcnt, {value} AS v, "
        f"{value} AS vmin, {value} AS vmax, e.time AS lt, e.seq AS ls, {value} AS lv, {uv} AS uv{g_cols} FROM metering_event e WHERE "
    )
    branches: list[str] = []
    if rollups:
        params["core_lo"], params["core_hi"] = core_lo, core_hi
        rw = list(roll_where)
        fresh = [
            *raw_where,
            "e.seq > %(w0)s",
            "e.seq > (SELECT coalesce(max(watermark), 0) FROM "
            "metering_rollupstate WHERE meter_id = %(meter)s)",
        ]
        if core_lo is not None:
            rw.append("r.bucket >= %(core_lo)s")
            fresh.append("e.time >= %(core_lo)s")
        if core_hi is not None:
            rw.append("r.bucket < %(core_hi)s")
            fresh.append("e.time < %(core_hi)s")
        branches.append(
            "SELECT r.subject, r.bucket AS t, r.event_count AS cnt, r.value_count AS vcnt, r.value_sum AS v, "
            "r.value_min AS vmin, r.value_max AS vmax, r.latest_time AS lt, r.latest_seq AS ls, "
            "r.latest_value AS lv, NULL::text AS uv"
            f"{rg_cols} FROM metering_rollup r WHERE {' AND '.join(rw)}"
        )
        branches.append(raw_select + " AND ".join(fresh))
        if core_lo is not None:
            branches.append(
                raw_select + " AND ".join([*raw_where, "e.time >= %(t_from)s", "e.time < %(core_lo)s"])
            )
        if core_hi is not None:
            branches.append(
                raw_select + " AND ".join([*raw_where, "e.time >= %(core_hi)s", "e.time < %(t_to)s"])
            )
    else:
        w = list(raw_where)
        if time_from is not None:
            w.append("e.time >= %(t_from)s")
        if time_to is not None:
            w.append("e.time < %(t_to)s")
        branches.append(raw_select + " AND ".join(w))

    agg = spec.aggregation
    if agg == "COUNT":
        value_expr, having = "sum(cnt)", "sum(cnt) > 0"
    elif agg == "SUM":
        value_expr, having = "sum(v)", "sum(vcnt) > 0"
    elif agg == "AVG":
        value_expr, having = "sum(v) / sum(vcnt)", "sum(vcnt) > 0"
    elif agg == "MIN":
        value_expr, having = "min(vmin)", "sum(vcnt) > 0"
    elif agg == "MAX":
        value_expr, having = "max(vmax)", "sum(vcnt) > 0"
    elif agg == "LATEST":
        value_expr = "(array_agg(lv ORDER BY lt DESC, ls DESC) FILTER (WHERE lv IS NOT NULL))[1]"
        having = "sum(vcnt) > 0"
    else:  # UNIQUE_COUNT
        value_expr, having = "count(DISTINCT uv)", "count(uv) > 0"

    # columns: 1 value, 2 window start, 3 window end, 4 subject, 5 customer id, 6.. group-by values
    select: list[str] = []
    positions: list[int] = []
    if window_size is not None:
        params["unit"] = UNITS[window_size]
        select += ["date_trunc(%(unit)s, src.t, %(tz)s) AS ws", "NULL::timestamptz AS we"]
        positions.append(2)
    else:
        select += [
            "min(date_trunc('hour', src.t)) AS ws",
            "max(date_trunc('hour', src.t)) + interval '1 hour' AS we",
        ]
    join = ""
    if customers is not None:
        join = (
            " JOIN unnest(%(cm_subjects)s::text[], %(cm_ids)s::text[]) AS cm(subject, customer_id) "
            "ON cm.subject = src.subject"
        )
    select.append("src.subject" if group_by_subject else "NULL::text")
    select.append("cm.customer_id" if (customers is not None and group_by_customer) else "NULL::text")
    positions += [4, 5]
    for i in range(len(group_by)):
        select.append(f"src.g{i}")
        positions.append(6 + i)
    order = sorted(set([2, *positions]))
    sql = (
        f"SELECT {value_expr} AS value, {', '.join(select)} FROM ({' UNION ALL '.join(branches)}) src{join} "
        f"GROUP BY {', '.join(map(str, positions))} HAVING {having} ORDER BY {', '.join(map(str, order))}"
    )
    return sql, params


def _usage_query_once(q: UsageQuery, w0: int) -> list[UsageRow]:
    sql, params = _usage_sql(q, w0)
    with connection.cursor() as cur:
        cur.execute(sql, params)
        fetched = cur.fetchall()
    out: list[UsageRow] = []
    for rec in fetched:
        value, ws, we, subj, cust, *gvals = rec
        if q.window_size is None:
            ws = q.time_from or ws
            we = q.time_to or we
        else:
            we = window_end(ws, q.window_size, q.window_tz)
        out.append(UsageRow(Decimal(value), ws, we, subj, cust, dict(zip(q.group_by, gvals, strict=True))))
    return out


_PARAM_RE = re.compile(r"%\((\w+)\)s")


def usage_totals(
    *, specs: Sequence[MeterSpec], time_from: datetime, time_to: datetime, flush: Flush | None = None
) -> dict[str, Decimal | None]:
    """{meter id: total over [time_from, time_to), None when nothing counted} for many meters of one
    organization (console lists), as `_totals`."""
    totals = _totals([UsageQuery(spec, time_from, time_to) for spec in specs], flush)
    return {spec.id: total for spec, total in zip(specs, totals, strict=True)}


@dataclass(frozen=True)
class TotalRequest:
    """One total for `usage_totals_many`: `spec`'s usage of `subjects` (None = all) in [time_from, time_to)
    with {dimension: [allowed values]} filters."""

    spec: MeterSpec
    subjects: Sequence[str] | None
    time_from: datetime | None
    time_to: datetime | None
    filter_group_by: Mapping[str, Sequence[str]]

    def query(self) -> UsageQuery:
        """This total's usage statement (ungrouped: all its subjects together)."""
        return UsageQuery(
            self.spec,
            self.time_from,
            self.time_to,
            subjects=list(self.subjects) if self.subjects is not None else None,
            filter_group_by={k: list(v) for k, v in self.filter_group_by.items()},
        )

    def per_subject(self) -> UsageQuery:
        """This total's usage statement with one row per subject when `subjects` are given: what is added
        up for the aggregations `usage_totals_many` does not answer."""
        return replace(self.query(), group_by_subject=self.subjects is not None)


def usage_totals_many(*, requests: Sequence[TotalRequest], flush: Flush | None = None) -> list[Decimal]:
    """One total per request (ungrouped: all its subjects together; 0 when nothing counted), as `_totals`."""
    return [total if total is not None else Decimal(0) for total in _totals(total_queries(requests), flush)]


def total_queries(requests: Sequence[TotalRequest]) -> list[UsageQuery]:
    """The usage statement of each total request (both stores' `usage_totals_many`)."""
    return [r.query() for r in requests]


def _totals(queries: Sequence[UsageQuery], flush: Flush | None) -> list[Decimal | None]:
    """One ungrouped total per query (None when nothing counted), any number of meters of one organization,
    in three statements: the watermarks (with the inbox probe), one `UNION ALL` of every query's usage
    statement (rollups below the watermark + raw tail, exactly as `usage_query`), and the watermarks again
    (a group-by change that reset a meter in between makes it run again)."""
    if not queries:
        return []
    ids = [q.spec.id for q in queries]
    for _attempt in range(3):
        marks = watermarks_with_flush(queries[0].spec.organization_id, ids, flush)
        flush = None
        parts: list[str] = []
        params: dict[str, Any] = {}
        for i, q in enumerate(queries):
            sql, p = _usage_sql(q, marks.get(q.spec.id, 0))
            renamed = _PARAM_RE.sub(f"%(q{i}_\\1)s", sql)
            parts.append(f"SELECT {i} AS idx, value FROM ({renamed}) q{i}")
            params.update({f"q{i}_{k}": v for k, v in p.items()})
        with connection.cursor() as cur:
            cur.execute(" UNION ALL ".join(parts), params)
            found = {int(idx): Decimal(value) for idx, value in cur.fetchall()}
        after = watermarks_read(ids)
        if all(after.get(mid, 0) >= w for mid, w in marks.items()):
            break
    return [found.get(i) for i in range(len(queries))]


def window_end(start: datetime, window_size: str, tz: str) -> datetime:
    if window_size == "MINUTE":
        return start + timedelta(minutes=1)
    if window_size == "HOUR":
        return start + HOUR
    local = start.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
    if window_size == "DAY":
        nxt = local + timedelta(days=1)
    else:
        nxt = local.replace(year=local.year + (local.month == 12), month=local.month % 12 + 1)
    return nxt.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


# --- discovery ---------------------------------------------------------------------------------


def subjects_list(
    *, spec: MeterSpec, time_from: datetime | None = None, time_to: datetime | None = None
) -> list[str]:
    where, params = and_given(("time >= %s", time_from), ("time < %s", time_to))
    with connection.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT subject FROM metering_event WHERE organization_id = %s AND type = %s"
            f"{where} ORDER BY subject",
            [spec.organization_id, spec.event_type, *params],
        )
        return [r[0] for r in cur.fetchall()]


def group_values_list(*, spec: MeterSpec, key: str) -> list[str]:
    """Distinct values of one group-by dimension: from rollups plus events above the watermark."""
    path = compile_path(spec.group_by[key])
    with connection.cursor() as cur:
        cur.execute(
            "SELECT v FROM (SELECT DISTINCT group_values ->> %s AS v FROM metering_rollup "
            "  WHERE organization_id = %s AND meter_id = %s "
            "UNION SELECT DISTINCT data #>> %s FROM metering_event WHERE organization_id = %s AND type = %s "
            "  AND seq > (SELECT coalesce(max(watermark), 0) FROM metering_rollupstate WHERE meter_id = %s)) x "
            "WHERE v IS NOT NULL ORDER BY v",
            [key, spec.organization_id, spec.id, path, spec.organization_id, spec.event_type, spec.id],
        )
        return [r[0] for r in cur.fetchall()]
