"""Event retention on ClickHouse: `events_expire`, with the PostgreSQL store's rule and answers
(`metering/store/partitions.py`).

`metering_event` is partitioned by month (`toYYYYMM(time)`). For each month whose end is at or before the
latest cutoff, under the exclusive ClickHouse ingest lock (no insert is half-way; drains wait, ingest keeps
accepting into the inbox):

- when every organization with events in the month is expired there, the month goes whole
  (`ALTER TABLE ... DROP PARTITION`), reported under the PostgreSQL partition's name
  (`metering_event_pYYYYMM`);
- otherwise only the expired organizations' rows of the month are deleted (a lightweight `DELETE`), counted
  in `deleted`; organizations without a retention (not in `cutoffs`) are never touched.

Months outside the countable range [TIME_MIN, TIME_MAX) are what PostgreSQL keeps in its default partition:
their expired rows are deleted one by one, never a whole month.

Dedup keys go with their events (the dedup window equals the retention): the keys of the events about to go
are first copied into `metering_event_expiring`, then the events go, then the staged keys whose events are
gone are deleted from `metering_event_key` and the stage is emptied. A run interrupted half-way is finished by
the next one: events still there are expired again, and a key is only ever deleted once its event is gone,
so a resend is never stored twice (at worst it is refused as a duplicate until the next run).

Hourly rollups stay, as on PostgreSQL, so meter totals over removed months remain answerable at hour
precision, except UNIQUE_COUNT: the PostgreSQL store counts it from raw events only, so the expired
organizations' UNIQUE_COUNT rollup rows of the removed hours are deleted too and both stores answer alike.
"""

# SQL here is assembled from fixed fragments, checked identifiers and partition ids built from dates. The
# values of the DELETE statements are escaped literals (connection.literal): ClickHouse re-parses a
# lightweight delete's condition, and bound DateTime64 parameters do not survive that; reads bind them.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

from django.db import connection

from core.limits import TIME_MAX, TIME_MIN
from metering import store
from metering.clickhouse import schema
from metering.clickhouse.connection import ChdbClient, ServerClient, literal
from metering.clickhouse.events import CH_INGEST_LOCK
from metering.clickhouse.schema import client
from metering.store.partitions import month_add, month_start, partition_name

_TIME = "DateTime64(6, 'UTC')"
_COLUMNS = "organization_id, source, event_id"
_KEY = f"({_COLUMNS})"


@contextmanager
def _ingest_paused() -> Iterator[None]:
    """No event is inserted into ClickHouse meanwhile (every inserting transaction holds the lock shared)."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", [CH_INGEST_LOCK])
        try:
            yield
        finally:
            cur.execute("SELECT pg_advisory_unlock(%s)", [CH_INGEST_LOCK])


def _months(ch: ChdbClient | ServerClient, before: datetime) -> list[datetime]:
    """Countable months before `before` that hold events, oldest first."""
    rows = ch.rows(
        f"SELECT DISTINCT toYYYYMM(time) AS m FROM {ch.database}.{schema.EVENT} "
        f"WHERE time >= {{lo:{_TIME}}} AND time < {{hi:{_TIME}}} ORDER BY m",
        {"lo": TIME_MIN, "hi": before},
    )
    return [datetime(int(m) // 100, int(m) % 100, 1, tzinfo=UTC) for (m,) in rows]


def _organizations_in(ch: ChdbClient | ServerClient, month: datetime) -> list[str]:
    rows = ch.rows(
        f"SELECT DISTINCT organization_id FROM {ch.database}.{schema.EVENT} "
        "WHERE _partition_id = {p:String} ORDER BY organization_id",
        {"p": f"{month:%Y%m}"},
    )
    return [r[0] for r in rows]


def _keys_forget(ch: ChdbClient | ServerClient) -> None:
    """Delete the staged keys whose events are gone, then empty the stage. Also finishes an interrupted run:
    a staged key whose event is still there (the run stopped before the event went) stays."""
    db = ch.database
    stage = f"{db}.{schema.EXPIRING}"
    if not ch.rows(f"SELECT 1 FROM {stage} LIMIT 1"):
        return
    ch.command(
        f"DELETE FROM {db}.{schema.EVENT_KEY} WHERE {_KEY} IN (SELECT {_KEY} FROM {stage} "
        f"WHERE {_KEY} NOT IN (SELECT {_KEY} FROM {db}.{schema.EVENT} WHERE {_KEY} IN "
        f"(SELECT {_KEY} FROM {stage})))"
    )
    ch.command(f"TRUNCATE TABLE {stage}")


def _stage(ch: ChdbClient | ServerClient, where: str) -> None:
    """Copy the keys of the events matching `where` into the stage."""
    db = ch.database
    ch.command(
        f"INSERT INTO {db}.{schema.EXPIRING} ({_COLUMNS}) "
        f"SELECT DISTINCT {_COLUMNS} FROM {db}.{schema.EVENT} WHERE {where}"
    )


def _count(ch: ChdbClient | ServerClient, where: str) -> int:
    """Events matching `where`, each stored event once."""
    ((count,),) = ch.rows(f"SELECT count() FROM {ch.database}.{schema.EVENT} FINAL WHERE {where}")
    return int(count)


def _unique_rollups_forget(
    ch: ChdbClient | ServerClient, organization_ids: Sequence[str], lo: datetime, hi: datetime
) -> None:
    """UNIQUE_COUNT rollup rows of these organizations' hours in [lo, hi): PostgreSQL answers UNIQUE_COUNT
    from raw events only, so once the events go these rows must not count either. Other meters' rows have
    an empty `uniq` state and stay."""
    lo, hi = max(lo, TIME_MIN), min(hi, TIME_MAX)
    if lo >= hi:
        return
    ch.command(
        f"DELETE FROM {ch.database}.{schema.ROLLUP} WHERE has({literal(list(organization_ids))}, "
        f"organization_id) AND bucket >= toDateTime64({literal(lo)}, 6, 'UTC') "
        f"AND bucket < toDateTime64({literal(hi)}, 6, 'UTC') "
        "AND finalizeAggregation(uniq) > 0"
    )


def _expire_month(
    ch: ChdbClient | ServerClient, month: datetime, cutoffs: Mapping[str, datetime]
) -> int | None:
    """One month under the paused ingest: None when dropped whole, else the number of rows deleted."""
    end = month_add(month, 1)
    present = _organizations_in(ch, month)
    expired = [o for o in present if o in cutoffs and month_start(cutoffs[o]) >= end]
    if not expired:
        return 0
    db = ch.database
    pid = f"{month:%Y%m}"
    whole = len(expired) == len(present)
    orgs = f"has({literal(expired)}, organization_id)"
    where = f"_partition_id = '{pid}'" + ("" if whole else f" AND {orgs}")
    _stage(ch, where)
    _unique_rollups_forget(ch, expired, month, end)
    count = 0
    if whole:
        ch.command(f"ALTER TABLE {db}.{schema.EVENT} DROP PARTITION ID '{pid}'")
    else:
        count = _count(ch, where)
        ch.command(f"DELETE FROM {db}.{schema.EVENT} IN PARTITION ID '{pid}' WHERE {orgs}")
    _keys_forget(ch)
    return None if whole else count


def _expire_uncountable(ch: ChdbClient | ServerClient, org: str, before: datetime) -> int:
    """An organization's expired events outside the countable range (PostgreSQL's default partition)."""
    where = (
        f"organization_id = {literal(org)} AND time < {literal(before)} "
        f"AND (time < {literal(TIME_MIN)} OR time >= {literal(TIME_MAX)})"
    )
    if not ch.rows(f"SELECT 1 FROM {ch.database}.{schema.EVENT} WHERE {where} LIMIT 1"):
        return 0
    _stage(ch, where)
    count = _count(ch, where)
    ch.command(f"DELETE FROM {ch.database}.{schema.EVENT} WHERE {where}")
    _keys_forget(ch)
    return count


def events_expire(*, cutoffs: Mapping[str, datetime]) -> store.ExpireResult:
    """As the PostgreSQL store's `events_expire`: remove the events of each organization in `cutoffs` whose
    month ended at or before its cutoff (organizations not in `cutoffs` keep everything); a month where every
    organization present is expired is dropped whole, a shared month loses only the expired organizations'
    rows (and keys). Idempotent: a second run finds nothing."""
    ch = client()
    with _ingest_paused():
        _keys_forget(ch)  # what an interrupted run left
    if not cutoffs:
        return store.ExpireResult((), 0)
    latest = max(month_start(c) for c in cutoffs.values())
    dropped: list[str] = []
    deleted = 0
    for month in _months(ch, latest):
        with _ingest_paused():
            n = _expire_month(ch, month, cutoffs)
        if n is None:
            dropped.append(partition_name(month))
        else:
            deleted += n
    with _ingest_paused():
        for org, cutoff in sorted(cutoffs.items()):
            deleted += _expire_uncountable(ch, org, month_start(cutoff))
    return store.ExpireResult(tuple(dropped), deleted)
