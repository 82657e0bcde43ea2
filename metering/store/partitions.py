"""Monthly partitions of `metering_event` (by event `time`, months in UTC) and the removal of expired
events.

- `metering_event_pYYYYMM` holds the events of one month; `metering_event_default` catches any event
  whose month has no partition yet, so storing an event never fails for lack of one.
- `partitions_ensure` creates the partitions of the months around now ahead of time and moves the months
  found in the default partition into partitions of their own (a backfill of old history lands in the
  default first). Each month is one transaction that holds the ingest lock exclusively: no event is
  stored meanwhile, so a moved month is never split between two partitions.
- `events_expire` applies per-organization retention: a month whose end is past the cutoff of *every*
  organization with events in it is dropped whole; a month shared with an organization that keeps it
  longer (or forever) loses only the expired organizations' rows. Dedup keys go in the same transaction
  as their events, so the dedup window equals the retention.
"""

# SQL here is assembled from fixed fragments and partition names built from dates; values are bound.
# ruff: noqa: S608
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection, transaction

from core.limits import TIME_MAX, TIME_MIN
from metering.store.events import INGEST_LOCK_KEY

PARENT = "metering_event"
DEFAULT = "metering_event_default"
MONTHS_AHEAD = 3  # partitions exist this many months after the current one
MONTHS_BEHIND = 1  # ... and this many before it (late events of last month)
SPLIT_MAX_MONTHS = 24  # months moved out of the default partition per run (the rest next run)
LOCK_TIMEOUT = "5s"  # maintenance gives way to long queries; the next run tries again
_NAME_RE = re.compile(r"^metering_event_p(\d{4})(\d{2})$")


def month_start(t: datetime) -> datetime:
    t = t.astimezone(UTC)
    return datetime(t.year, t.month, 1, tzinfo=UTC)


def month_add(month: datetime, n: int) -> datetime:
    index = month.year * 12 + month.month - 1 + n
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(month: datetime) -> str:
    return f"{PARENT}_p{month:%Y%m}"


def partitions_list() -> list[datetime]:
    """The months that have a partition, oldest first."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [PARENT],
        )
        names = [r[0] for r in cur.fetchall()]
    found = [_NAME_RE.match(n) for n in names]
    return sorted(datetime(int(m[1]), int(m[2]), 1, tzinfo=UTC) for m in found if m)


def _exists(cur, name: str) -> bool:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    return bool(cur.fetchone()[0])


def partition_create(month: datetime) -> bool:
    """Give `month` its own partition (False when it had one), moving its events out of the default
    partition in the same transaction. Events keep their seq, their dedup keys and their rollups."""
    month = month_start(month)
    name, hi = partition_name(month), month_add(month, 1)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [INGEST_LOCK_KEY])  # no event is being stored
        if _exists(cur, name):
            return False
        cur.execute(
            f"CREATE TEMP TABLE metering_event_moving ON COMMIT DROP AS SELECT * FROM {DEFAULT} "
            "WHERE time >= %s AND time < %s",
            [month, hi],
        )
        moved = cur.rowcount
        if moved:
            cur.execute(f"DELETE FROM {DEFAULT} WHERE time >= %s AND time < %s", [month, hi])
        cur.execute(f"CREATE TABLE {name} PARTITION OF {PARENT} FOR VALUES FROM (%s) TO (%s)", [month, hi])
        if moved:
            cur.execute(f"INSERT INTO {name} SELECT * FROM metering_event_moving")
        cur.execute("DROP TABLE metering_event_moving")
    return True


def default_months(limit: int = SPLIT_MAX_MONTHS) -> list[datetime]:
    """Months (within the countable time range) that have events in the default partition."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT date_trunc('month', time AT TIME ZONE 'UTC') AS m FROM "
            f"{DEFAULT} WHERE time >= %s AND time < %s ORDER BY m LIMIT %s",
            [TIME_MIN, TIME_MAX, limit],
        )
        return [m.replace(tzinfo=UTC) for (m,) in cur.fetchall()]


def partitions_ensure(*, now: datetime, ahead: int = MONTHS_AHEAD, behind: int = MONTHS_BEHIND) -> list[str]:
    """Create the partitions of the months around `now` and split the months found in the default
    partition into their own. Idempotent. Returns the partitions created."""
    current = month_start(now)
    months = [month_add(current, n) for n in range(-behind, ahead + 1)]
    months += [m for m in default_months() if m not in months]
    return [partition_name(m) for m in months if partition_create(m)]


# --- retention -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpireResult:
    dropped: tuple[str, ...]  # partitions dropped whole
    deleted: int  # events deleted row by row (months shared with organizations that keep them)


def _organizations_in(cur, table: str) -> list[str]:
    """Distinct organizations with events in a partition: a skip scan of its (organization, seq) index,
    one probe per organization rather than a pass over every row."""
    cur.execute(
        "WITH RECURSIVE o AS ("
        f"  (SELECT organization_id FROM {table} ORDER BY organization_id LIMIT 1) "
        f"  UNION ALL SELECT (SELECT organization_id FROM {table} WHERE organization_id > o.organization_id "
        "   ORDER BY organization_id LIMIT 1) FROM o WHERE o.organization_id IS NOT NULL) "
        "SELECT organization_id FROM o WHERE organization_id IS NOT NULL"
    )
    return [r[0] for r in cur.fetchall()]


_DELETE_KEYS = (
    "DELETE FROM metering_eventkey k USING {table} e WHERE k.organization_id = e.organization_id "
    "AND k.source = e.source AND k.event_id = e.event_id"
)


def _drop_month(cur, name: str) -> None:
    cur.execute(_DELETE_KEYS.format(table=name))
    cur.execute(f"DROP TABLE {name}")


def _delete_rows(cur, table: str, organization_ids: Sequence[str], before: datetime) -> int:
    cur.execute(
        f"WITH gone AS (DELETE FROM {table} WHERE organization_id = ANY(%s) AND time < %s "
        "  RETURNING organization_id, source, event_id) "
        "DELETE FROM metering_eventkey k USING gone g WHERE k.organization_id = g.organization_id "
        "AND k.source = g.source AND k.event_id = g.event_id",
        [list(organization_ids), before],
    )
    return cur.rowcount


def events_expire(*, cutoffs: Mapping[str, datetime]) -> ExpireResult:
    """Remove the events of each organization in `cutoffs` whose month ended at or before its cutoff
    (organizations not in `cutoffs` keep everything). Per month partition, in its own transaction:
    dropped whole when every organization with events in it is expired there; otherwise only the
    expired organizations' rows (and keys) are deleted. The default partition loses the expired
    organizations' events of those months row by row. Idempotent: a second run finds nothing."""
    if not cutoffs:
        return ExpireResult((), 0)
    latest = max(month_start(c) for c in cutoffs.values())
    dropped: list[str] = []
    deleted = 0
    for month in partitions_list():
        end = month_add(month, 1)
        if end > latest:
            break
        name = partition_name(month)
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            present = _organizations_in(cur, name)
            expired = [o for o in present if o in cutoffs and month_start(cutoffs[o]) >= end]
            if present and len(expired) == len(present):
                # No event is stored until the drop commits (accepting goes on into the inbox): an event of
                # a retained organization cannot slip into the month between the check and the drop.
                cur.execute("SELECT pg_advisory_xact_lock(%s)", [INGEST_LOCK_KEY])
                if _organizations_in(cur, name) == present:
                    _drop_month(cur, name)
                    dropped.append(name)
                    continue
            if expired:
                deleted += _delete_rows(cur, name, expired, end)
    with transaction.atomic(), connection.cursor() as cur:
        for org, cutoff in sorted(cutoffs.items()):
            deleted += _delete_rows(cur, DEFAULT, [org], month_start(cutoff))
    return ExpireResult(tuple(dropped), deleted)
