"""Meter queries on ClickHouse, with the PostgreSQL store's answers: `usage_query`, `usage_totals`,
`usage_totals_many`, `subjects_list`, `group_values_list`.

A query reads the meter's hourly rollups for the whole hours of [from, to) and raw events (`FINAL`) for the
partial hours at either end; MINUTE windows, time zones whose offset is not a whole number of hours, and
`use_rollups=False` read raw events only. Rollups are always current (the view is fed on insert), so there is
no watermark and no fresh tail. Both kinds of rows carry partial aggregates (sums, counts, min/max, and
`argMaxIf` / `uniqExactIf` states for LATEST and UNIQUE_COUNT) merged by one outer GROUP BY.
"""

# SQL here is assembled from fixed fragments and checked identifiers; values are bound parameters or
# escaped literals (connection.literal) in view definitions, which cannot take parameters.
# ruff: noqa: S608

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from core.limits import TIME_MAX, TIME_MIN
from metering import store
from metering.clickhouse import rollups, schema
from metering.clickhouse.schema import client
from metering.jsonpath import compile_path

# The PostgreSQL store's own rules for hour boundaries and window ends: both stores decide alike.
from metering.store.usage import UsageQuery, ceil_hour, floor_hour, total_queries, tz_whole_hours, window_end

_TIME = "DateTime64(6, 'UTC')"
_WINDOW = {
    "MINUTE": "toStartOfMinute(src.t, {tz:String})",
    "HOUR": "toStartOfHour(src.t, {tz:String})",
    "DAY": "toStartOfDay(src.t, {tz:String})",
    "MONTH": "toDateTime(toStartOfMonth(src.t, {tz:String}), {tz:String})",
}


def _in(column: str, param: str) -> str:
    # a constant array: the primary key still prunes (as `column IN set`), without a subquery's pipeline
    return f"has({{{param}:Array(String)}}, {column})"


def usage_sql(q: UsageQuery, key: str | None) -> tuple[str, dict[str, Any]]:
    """The statement answering `q`: columns value (Decimal), n (counted values, for AVG), window start (epoch
    seconds), window-less start/end, subject, customer id, group values. `key`: the meter's rollup key, or
    None to read raw events only."""
    spec = q.spec
    db = client().database
    params: dict[str, Any] = {"org": spec.organization_id, "type": spec.event_type, "tz": q.window_tz}
    params["t_min"], params["t_max"] = TIME_MIN, TIME_MAX
    value, uv = rollups.value_sql(spec), rollups.unique_sql(spec)
    agg = spec.aggregation
    order = rollups.dims(spec)

    subject_list: list[str] | None = list(q.subjects) if q.subjects is not None else None
    if q.customers is not None:
        mapped = sorted({s for subs in q.customers.values() for s in subs})
        subject_list = mapped if subject_list is None else [s for s in subject_list if s in set(mapped)]
        params["cm_subjects"] = [s for _cid, subs in q.customers.items() for s in subs]
        params["cm_ids"] = [cid for cid, subs in q.customers.items() for _ in subs]
    raw_where = [
        "organization_id = {org:String}",
        "type = {type:String}",
        f"time >= {{t_min:{_TIME}}}",
        f"time < {{t_max:{_TIME}}}",
    ]
    roll_where = ["organization_id = {org:String}", "meter_key = {key:String}"]
    if subject_list is not None:
        params["subjects"] = subject_list
        raw_where.append(_in("subject", "subjects"))
        roll_where.append(_in("subject", "subjects"))
    if spec.event_from is not None:
        params["event_from"] = spec.event_from
        raw_where.append(f"time >= {{event_from:{_TIME}}}")
    raw_g, roll_g = [], []
    for i, dim in enumerate(q.group_by):
        raw_g.append(f"{rollups.text_sql(compile_path(spec.group_by[dim]))} AS g{i}")
        roll_g.append(f"JSONExtract(group_key, {order.index(dim) + 1}, 'Nullable(String)') AS g{i}")
    for i, (dim, values) in enumerate(sorted(q.filter_group_by.items())):
        params[f"fv{i}"] = list(values)
        raw_where.append(_in(rollups.text_sql(compile_path(spec.group_by[dim])), f"fv{i}"))
        roll_where.append(
            _in(f"JSONExtract(group_key, {order.index(dim) + 1}, 'Nullable(String)')", f"fv{i}")
        )

    zero = rollups.ZERO
    raw_cols = [
        "subject",
        "time AS t",
        "toUInt64(1) AS cnt",
        f"toUInt64({'uv' if agg == 'UNIQUE_COUNT' else 'v'} IS NOT NULL) AS vcnt",
        f"ifNull(v, {zero}) AS vsum",
        "v AS vmin",
        "v AS vmax",
    ]
    roll_cols = [
        "subject",
        "toDateTime64(bucket, 6, 'UTC') AS t",
        "event_count AS cnt",
        "value_count AS vcnt",
        "value_sum AS vsum",
        "value_min AS vmin",
        "value_max AS vmax",
    ]
    if agg == "LATEST":
        raw_cols.append(
            f"initializeAggregation('argMaxIfState', ifNull(v, {zero}), (time, seq), v IS NOT NULL) AS latest"
        )
        roll_cols.append("latest")
    if agg == "UNIQUE_COUNT":
        raw_cols.append("initializeAggregation('uniqExactIfState', ifNull(uv, ''), uv IS NOT NULL) AS uniq")
        roll_cols.append("uniq")
    raw_select = f"WITH {value} AS v, {uv} AS uv SELECT {', '.join(raw_cols + raw_g)} FROM {db}.{schema.EVENT} FINAL WHERE "
    if q.time_from is not None:
        params["t_from"] = q.time_from
    if q.time_to is not None:
        params["t_to"] = q.time_to
    branches: list[str] = []
    if key is not None:
        params["key"] = key
        # Whole hours come from the rollups; the partial hour before the first whole one and the partial
        # hour after the last whole one from raw events. (param, its value, the bound it rounds, rollup
        # operator, the partial hour's [start, end) params)
        core_lo = ceil_hour(q.time_from) if q.time_from else None
        core_hi = floor_hour(q.time_to) if q.time_to else None
        edges = (
            ("core_lo", core_lo, q.time_from, ">=", "t_from", "core_lo"),
            ("core_hi", core_hi, q.time_to, "<", "core_hi", "t_to"),
        )
        for name, edge, bound, op, part_from, part_to in edges:
            if edge is None:
                continue
            params[name] = edge
            roll_where.append(f"bucket {op} {{{name}:{_TIME}}}")
            if edge != bound:
                part = [f"time >= {{{part_from}:{_TIME}}}", f"time < {{{part_to}:{_TIME}}}"]
                branches.append(raw_select + " AND ".join([*raw_where, *part]))
        branches.append(
            f"SELECT {', '.join(roll_cols + roll_g)} FROM {db}.{schema.ROLLUP} WHERE {' AND '.join(roll_where)}"
        )
    else:
        w = list(raw_where)
        if q.time_from is not None:
            w.append(f"time >= {{t_from:{_TIME}}}")
        if q.time_to is not None:
            w.append(f"time < {{t_to:{_TIME}}}")
        branches.append(raw_select + " AND ".join(w))

    dec = "toDecimal256({x}, 20)"
    value_expr, having = {
        "COUNT": (dec.format(x="sum(cnt)"), "sum(cnt) > 0"),
        "SUM": ("sum(vsum)", "sum(vcnt) > 0"),
        "AVG": ("sum(vsum)", "sum(vcnt) > 0"),
        "MIN": ("assumeNotNull(min(vmin))", "sum(vcnt) > 0"),
        "MAX": ("assumeNotNull(max(vmax))", "sum(vcnt) > 0"),
        "LATEST": ("argMaxIfMerge(latest)", "sum(vcnt) > 0"),
        "UNIQUE_COUNT": (dec.format(x="uniqExactIfMerge(uniq)"), "sum(vcnt) > 0"),
    }[agg]
    keys: list[str] = []
    if q.window_size is not None:
        select = [f"toInt64(toUnixTimestamp({_WINDOW[q.window_size]})) AS ws", "toInt64(0) AS we"]
        keys.append("ws")
    else:
        select = [
            "toInt64(toUnixTimestamp(min(toStartOfHour(src.t)))) AS ws",
            "toInt64(toUnixTimestamp(max(toStartOfHour(src.t))) + 3600) AS we",
        ]
    join = ""
    if q.customers is not None:
        join = (
            " INNER JOIN (SELECT tupleElement(p, 1) AS cm_subject, tupleElement(p, 2) AS customer_id FROM "
            "(SELECT arrayJoin(arrayZip({cm_subjects:Array(String)}, {cm_ids:Array(String)})) AS p)) AS cm "
            "ON cm.cm_subject = src.subject"
        )
    select.append("src.subject AS subj" if q.group_by_subject else "CAST(NULL, 'Nullable(String)') AS subj")
    cust = q.customers is not None and q.group_by_customer
    select.append("cm.customer_id AS cust" if cust else "CAST(NULL, 'Nullable(String)') AS cust")
    keys += [k for k, on in (("subj", q.group_by_subject), ("cust", cust)) if on]
    for i in range(len(q.group_by)):
        select.append(f"src.g{i} AS gv{i}")
        keys.append(f"gv{i}")
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    sql = (
        f"SELECT {value_expr} AS value, toUInt64(sum(vcnt)) AS n, {', '.join(select)} "
        f"FROM ({' UNION ALL '.join(branches)}) AS src{join}{group} HAVING {having}"
        + f" ORDER BY {', '.join(['ws', *(k for k in keys if k != 'ws')])}"
    )
    return sql, params


def _rollups_usable(q: UsageQuery) -> bool:
    """Rollups only where every window boundary is an hour boundary (as the PostgreSQL store)."""
    if not q.use_rollups or q.window_size == "MINUTE":
        return False
    if q.window_size is not None and not tz_whole_hours(q.window_tz, q.time_from, q.time_to):
        return False
    return not (q.time_from and q.time_to and ceil_hour(q.time_from) >= floor_hour(q.time_to))


def _key(q: UsageQuery) -> str | None:
    return rollups.ensure(q.spec) if _rollups_usable(q) else None


def _plain(value: Decimal) -> Decimal:
    """Trailing zeros of ClickHouse's fixed scale removed (1.50000… → 1.5), never an exponent."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def pg_divide(total: Decimal, count: int) -> Decimal:
    """`total / count` as PostgreSQL's numeric division rounds it (select_div_scale: at least 16 significant
    digits, at least the dividend's scale), so AVG matches the PostgreSQL store."""
    if count == 0:
        raise ZeroDivisionError
    num = _plain(total)

    def weight_first(d: Decimal) -> tuple[int, int]:  # base-10000 weight and first base-10000 digit
        d = abs(d)
        if d == 0:
            return 0, 0
        adjusted = d.adjusted()
        weight = adjusted // 4
        first = int(d.scaleb(-4 * weight)) if weight >= 0 else int(d * Decimal(10000) ** (-weight))
        return weight, first

    w1, f1 = weight_first(num)
    w2, f2 = weight_first(Decimal(count))
    qweight = w1 - w2
    if f1 <= f2 and num != 0:
        qweight -= 1 if f1 < f2 else 0
    exponent = num.as_tuple().exponent
    dscale = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    rscale = min(max(16 - qweight * 4, dscale, 0), 1000)
    return (num / Decimal(count)).quantize(Decimal(1).scaleb(-rscale), rounding=ROUND_HALF_UP)


def _rows(q: UsageQuery, found: Sequence[tuple[Any, ...]]) -> list[store.UsageRow]:
    out = []
    for value, n, ws_epoch, we_epoch, subj, cust, *gvals in found:
        number = pg_divide(value, int(n)) if q.spec.aggregation == "AVG" else _plain(Decimal(value))
        ws = datetime.fromtimestamp(ws_epoch, UTC)
        if q.window_size is None:
            we = q.time_to or datetime.fromtimestamp(we_epoch, UTC)
            ws = q.time_from or ws
        else:
            we = window_end(ws, q.window_size, q.window_tz)
        out.append(store.UsageRow(number, ws, we, subj, cust, dict(zip(q.group_by, gvals, strict=True))))
    return out


def usage_query(q: UsageQuery, *, flush: store.Flush | None = None) -> list[store.UsageRow]:
    """As the PostgreSQL store's `usage_query` (same arguments and rows). `flush` is called first when the
    organization has accepted batches not yet stored (read-your-writes)."""
    _flush(q.spec.organization_id, flush)
    sql, params = usage_sql(q, _key(q))
    return _rows(q, client().rows(sql, params))


def _flush(organization_id: str, flush: store.Flush | None) -> None:
    if (
        flush is not None
        and (pending := store.inbox_last_pending(organization_id=organization_id)) is not None
    ):
        flush(pending)


_PARAM = re.compile(r"\{(\w+):")


def _totals(queries: Sequence[UsageQuery], flush: store.Flush | None) -> list[Decimal | None]:
    """One ungrouped total per query (None when nothing counted), in one statement."""
    if not queries:
        return []
    _flush(queries[0].spec.organization_id, flush)
    parts: list[str] = []
    params: dict[str, Any] = {}
    for i, q in enumerate(queries):
        sql, p = usage_sql(q, _key(q))
        renamed = _PARAM.sub(f"{{q{i}_\\1:", sql)
        parts.append(f"SELECT toUInt32({i}) AS idx, value, n FROM ({renamed})")
        params.update({f"q{i}_{k}": v for k, v in p.items()})
    found: dict[int, Decimal] = {}
    for idx, value, n in client().rows(" UNION ALL ".join(parts), params):
        agg = queries[int(idx)].spec.aggregation
        found[int(idx)] = pg_divide(value, int(n)) if agg == "AVG" else _plain(Decimal(value))
    return [found.get(i) for i in range(len(queries))]


def usage_totals(
    *,
    specs: Sequence[store.MeterSpec],
    time_from: datetime,
    time_to: datetime,
    flush: store.Flush | None = None,
) -> dict[str, Decimal | None]:
    totals = _totals([UsageQuery(spec, time_from, time_to) for spec in specs], flush)
    return {spec.id: total for spec, total in zip(specs, totals, strict=True)}


def usage_totals_many(
    *, requests: Sequence[store.TotalRequest], flush: store.Flush | None = None
) -> list[Decimal]:
    return [total if total is not None else Decimal(0) for total in _totals(total_queries(requests), flush)]


def subjects_list(
    *, spec: store.MeterSpec, time_from: datetime | None = None, time_to: datetime | None = None
) -> list[str]:
    ch = client()
    where = ["organization_id = {org:String}", "type = {type:String}"]
    params: dict[str, Any] = {"org": spec.organization_id, "type": spec.event_type}
    if time_from is not None:
        where.append(f"time >= {{t_from:{_TIME}}}")
        params["t_from"] = time_from
    if time_to is not None:
        where.append(f"time < {{t_to:{_TIME}}}")
        params["t_to"] = time_to
    rows = ch.rows(
        f"SELECT DISTINCT subject FROM {ch.database}.{schema.EVENT} WHERE {' AND '.join(where)} ORDER BY subject",
        params,
    )
    return [r[0] for r in rows]


def group_values_list(*, spec: store.MeterSpec, key: str) -> list[str]:
    """Distinct values of one group-by dimension, from the meter's rollups."""
    ch = client()
    rk = rollups.ensure(spec)
    idx = rollups.dims(spec).index(key) + 1
    rows = ch.rows(
        f"SELECT DISTINCT JSONExtract(group_key, {idx}, 'Nullable(String)') AS v FROM {ch.database}.{schema.ROLLUP} "
        "WHERE organization_id = {org:String} AND meter_key = {key:String} AND v IS NOT NULL ORDER BY v",
        {"org": spec.organization_id, "key": rk},
    )
    return [r[0] for r in rows]
