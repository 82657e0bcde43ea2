"""The drain: accepted ingest batches (the inbox) moved into the event store, and the ingest listeners told.

`metering.services.events_accept` queues a drain after commit (`drain_soon`); the Celery task
`metering.tasks.events_drain` runs `events_drain_background`; reads of an organization's events and usage
(`metering.selectors`) first store what it had accepted (`events_flush`, `events_drain`), so a client
reads its own writes. It sits below services and selectors: both call it, it calls the store.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from core import jobs
from core.background import Coalescer, Refreshed
from core.enqueue import enqueue, tasks_run_inline
from core.models import Organization
from metering import hooks, store

logger = logging.getLogger(__name__)
DRAIN_JOB = "events_drain"
DRAIN_TASK = "metering.tasks.events_drain"


def _request_drain(attempts: int = 2) -> None:
    """Publish one drain task, unless a dedicated drainer runs (it finds new batches itself, and the task
    would find every lane taken). A failed publish is tried once more: the first publishes of several web
    processes started together race to create the queue in a database broker (kombu's SQLAlchemy
    transport), and the loser gets a unique violation that a second attempt does not."""
    if _follower.get():
        return
    for attempt in range(1, attempts + 1):
        try:
            enqueue(DRAIN_TASK)
            return
        except Exception:  # the broker is down: beat's periodic drain (or the next read) stores the batches
            if attempt == attempts:
                logger.exception("could not queue metering.tasks.events_drain")


def _follower_running() -> bool:
    """Whether a dedicated drainer (`events_drain --follow`) runs, asked on a connection the publisher
    thread closes again (no idle connection per web process); an unreachable database answers no."""
    try:
        return store.drain_follower_running()
    except DatabaseError:
        return False
    finally:
        if not connection.in_atomic_block:
            connection.close()


# Asked at most every 10 s: a drainer that stopped is noticed within that; its batches meanwhile wait for
# beat's periodic drain or the next read, as when the broker is down.
_follower = Refreshed(_follower_running, ttl=10.0)

# Accepting a batch asks for a drain; a daemon thread per process publishes at most one task per window.
DRAIN_REQUEST_WINDOW_SECONDS = 0.2
_drain_requests = Coalescer("metering-drain-request", _request_drain, DRAIN_REQUEST_WINDOW_SECONDS)


def drain_soon() -> None:
    """Have the accepted batches stored soon: inline with eager Celery (tests, errors propagate), else via
    the background publisher."""
    if tasks_run_inline():
        enqueue(DRAIN_TASK)
    else:
        _drain_requests.poke()


def _landed(result: store.DrainResult, organizations: dict[str, Organization | None]) -> None:
    """Have the ingest listeners told what `result` stored, once it commits. `organizations`: the ones
    looked up so far by this drain (one query per organization and drain, not per chunk)."""
    if result.inserted and result.earliest_event_time is not None and hooks.ingest_listeners():
        transaction.on_commit(
            partial(
                _notify_landed,
                organization_id=result.organization_id,
                organizations=organizations,
                subjects=result.subjects,
                earliest_event_time=result.earliest_event_time,
                event_types=result.event_types,
            )
        )


def _notify_landed(
    *, organization_id: str, organizations: dict[str, Organization | None], **kwargs: Any
) -> None:
    if organization_id not in organizations:
        organizations[organization_id] = Organization.objects.filter(pk=organization_id).first()
    if (organization := organizations[organization_id]) is not None:
        hooks.ingest_landed(organization=organization, **kwargs)


# A background drain takes a bounded share of the machine (docs/scaling.md, "PostgreSQL"): each chunk is
# one short transaction sized to take about DRAIN_CHUNK_MS (the size follows the measured rate, between
# DRAIN_MIN_EVENTS and store.DRAIN_MAX_EVENTS), and while requests keep arriving (batches accepted since
# the last chunk) the drain rests DRAIN_REST_PERCENT of the chunk's time before the next one, at most
# DRAIN_REST_MAX_SECONDS, so single-event requests find the cores and the WAL free. It does not rest when
# more events arrived than the chunk covered: it is falling behind, and a rest would only grow the backlog.
# With several lanes (DRAIN_LANES), each lane also rests the time its siblings work: while requests
# arrive, the lanes together take about one drainer's share; once requests stop, every lane runs flat
# out. The settings come from the environment (config/settings.py); the defaults below are theirs.
DRAIN_CHUNK_SECONDS = 0.1
DRAIN_MIN_EVENTS = 500
DRAIN_REST_RATIO = 0.25
DRAIN_REST_MAX_SECONDS = 0.05


def drain_lanes() -> int:
    """How many lanes new batches are split into and background drainers work in (`DRAIN_LANES`; one
    with the ClickHouse store, whose drain stores whole batches)."""
    return 1 if store.clickhouse_selected() else settings.DRAIN_LANES


@dataclass
class Pace:
    """The chunk size and rests of one background drainer (reads drain without a pace: at full speed)."""

    chunk_seconds: float = DRAIN_CHUNK_SECONDS
    rest_ratio: float = DRAIN_REST_RATIO
    rest_max: float = DRAIN_REST_MAX_SECONDS
    lanes: int = 1
    events: int = DRAIN_MIN_EVENTS
    newest: int | None = None

    @classmethod
    def from_settings(cls, *, yields: bool = False) -> Pace:
        """The configured pace; `yields`: the drain's work runs at a lower CPU priority than the requests'
        (`drainer_priority_lower` lowered its database process too), so the scheduler hands the requests
        the cores the moment they want them and rests would only leave cores idle: none are taken."""
        rest_percent = 0 if yields else getattr(settings, "DRAIN_REST_PERCENT", DRAIN_REST_RATIO * 100)
        return cls(
            chunk_seconds=getattr(settings, "DRAIN_CHUNK_MS", DRAIN_CHUNK_SECONDS * 1000) / 1000,
            rest_ratio=rest_percent / 100,
            lanes=drain_lanes(),
        )

    def rest_after(self, elapsed: float) -> float:
        """The rest after a chunk of `elapsed` seconds while requests arrive: the chunk's share of rest,
        plus, with several lanes, the other lanes' turn (so the lanes together work about one chunk at a
        time)."""
        if self.rest_ratio <= 0:
            return 0.0
        siblings = self.lanes - 1
        return min(self.rest_max + siblings * self.chunk_seconds, elapsed * (self.rest_ratio + siblings))

    def after_chunk(self, batch_events: int, elapsed: float) -> None:
        """Size the next chunk from this one's rate (`batch_events` read in `elapsed` seconds); rest when
        requests arrived since the last chunk, unless more events arrived than this chunk covered: then
        the drain is falling behind, and resting would only grow the backlog."""
        if batch_events and elapsed > 0:  # sized in events stored: a lane stores 1/lanes of what it reads
            fitted = int(batch_events / self.lanes / elapsed * self.chunk_seconds)
            self.events = max(DRAIN_MIN_EVENTS, min(store.DRAIN_MAX_EVENTS, fitted))
        if self.rest_ratio <= 0:  # never rests: what arrived meanwhile does not matter (and costs a query)
            return
        if self.newest is None:
            self.newest = store.inbox_last_pending()
            return
        newest, arrived = store.inbox_arrivals(after_id=self.newest)
        self.newest = max(self.newest, newest or 0)
        if 0 < arrived <= batch_events and (rest := self.rest_after(elapsed)) > 0:
            time.sleep(rest)


def events_drain(
    *,
    organization_id: str,
    up_to_id: int | None = None,
    pace: Pace | None = None,
    lane: store.DrainLane | None = None,
    deadline: float | None = None,
) -> list[store.DrainResult]:
    """Store an organization's accepted batches (all, or those up to `up_to_id`), chunk by chunk; the
    ingest listeners are called for each chunk that stored new events, after it commits. With a `pace`
    (background drains), chunks are sized to its time budget and rest while requests arrive; with a
    `lane`, only that lane's share of each batch is stored; with a `deadline` (time.monotonic()), no chunk
    starts after it."""
    results: list[store.DrainResult] = []
    options: dict[str, Any] = {} if lane is None else {"lane": lane}
    organizations: dict[str, Organization | None] = {}
    while deadline is None or time.monotonic() < deadline:
        started = time.monotonic()
        if pace is not None:
            options["max_events"] = pace.events
        result = store.inbox_drain(organization_id=organization_id, up_to_id=up_to_id, **options)
        if result is None:
            return results
        results.append(result)
        _landed(result, organizations)
        if pace is not None:
            pace.after_chunk(result.batch_events, time.monotonic() - started)
    return results


def events_flush(*, organization_id: str) -> None:
    """Read-your-writes: store what this organization had accepted before this call (one index probe
    when nothing is pending). Reads of usage and events call it first."""
    last = store.inbox_last_pending(organization_id=organization_id)
    if last is not None:
        events_drain(organization_id=organization_id, up_to_id=last)


def events_drain_all(
    *,
    seconds: float | None = None,
    up_to_id: int | None = None,
    pace: Pace | None = None,
    lane: store.DrainLane | None = None,
) -> list[store.DrainResult]:
    """Drain every organization's inbox, oldest first: everything accepted up to now (or up to batch id
    `up_to_id`), stopping early once `seconds` have passed. Bounded, so it never chases a live stream.
    `pace`: a background drainer's bounded share (see `Pace`); `lane`: only that lane's share, ending
    when a pass over the pending organizations found nothing of its own."""
    if up_to_id is None:
        up_to_id = store.inbox_last_pending()
        if up_to_id is None:
            return []
    deadline = None if seconds is None else time.monotonic() + seconds
    results: list[store.DrainResult] = []
    # an organization whose drain fails (beyond the batches the drain keeps as unprocessable itself) is
    # recorded and skipped (core.jobs), so every other organization's batches are still stored
    skip = jobs.quarantined(DRAIN_JOB, "organization")
    skipped = set(skip)
    progressed = True
    while progressed and (
        pending := [p for p in store.inbox_pending(up_to_id=up_to_id) if p[0] not in skipped]
    ):
        progressed = False
        for organization_id, _batches, _events in pending:
            with jobs.isolated(
                DRAIN_JOB,
                organization_id=organization_id,
                object_type="organization",
                object_id=organization_id,
                was_failing=organization_id in skip.failing,
            ) as outcome:
                drained = events_drain(
                    organization_id=organization_id,
                    up_to_id=up_to_id,
                    pace=pace,
                    lane=lane,
                    deadline=deadline,
                )
                results.extend(drained)
                progressed = progressed or bool(drained)
            if outcome.failed:
                skipped.add(organization_id)
                progressed = True
            if deadline is not None and time.monotonic() >= deadline:
                return results
    return results


# While a backlog drains, a background drainer holds one lane slot for at most this long, then looks at
# the other slots again: a lone worker (one Celery process) thus takes every lane in turn.
DRAIN_SLOT_SECONDS = 1.0


def events_drain_background(*, seconds: float = 50.0, pace: Pace | None = None) -> list[store.DrainResult]:
    """The Celery task's work (and each `events_drain --follow` thread's): drain until the inbox is empty
    (or `seconds` pass). With DRAIN_LANES > 1, several of these run side by side, one per lane slot: each
    round, this one takes every free slot in turn and drains that lane's share for up to
    DRAIN_SLOT_SECONDS; a slot another worker holds is left to it (so tasks queued by busy web processes
    never pile up waiting on each other). Ends after a round that stored nothing. Returns what each chunk
    stored."""
    deadline = time.monotonic() + seconds
    done: list[store.DrainResult] = []
    pace = pace or Pace.from_settings()
    lanes = drain_lanes()
    progressed = True
    while progressed and deadline - time.monotonic() > 0:
        progressed = False
        for slot in range(lanes):
            lane = store.DrainLane(slot, lanes) if lanes > 1 else None
            with store.drain_worker_slot(slot) as mine:
                if not mine:
                    continue
                left = min(deadline - time.monotonic(), DRAIN_SLOT_SECONDS)
                results = events_drain_all(seconds=max(left, 0.0), pace=pace, lane=lane)
            progressed = progressed or bool(results)
            done.extend(results)
    return done


IDLE_PRIORITY = "idle"


def drainer_priority_lower(priority: int | str = IDLE_PRIORITY) -> bool:
    """A dedicated drainer thread (`manage.py events_drain --follow`) yields the CPU to requests: it lowers
    its own scheduling priority, and that of its database server process when that runs on this machine
    under our control (the embedded PostgreSQL; a server elsewhere is left alone).

    `priority`: "idle" (the default), the operating system's idle class (Linux `SCHED_IDLE`: the drain
    runs only on CPU that no other process wants, and a request that wakes up takes the core at once;
    without that class, nice 19); N > 0, N steps of niceness (the scheduler still gives the drain a share
    against requests, about a tenth at 10); 0, unchanged. True when both were lowered: the drain's work
    then yields by itself and needs no rests (`Pace`)."""
    if priority == 0:
        return False
    lower = _idle_class if priority == IDLE_PRIORITY else partial(_niceness, int(priority))
    lower(0)  # this thread (Linux schedules threads, so each drainer thread lowers itself)
    if not getattr(settings, "EMBEDDED_DATABASE", False):
        return False
    connection.ensure_connection()
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = int(cur.fetchone()[0])
    try:
        lower(backend)
    except OSError:  # not allowed (another user's server without the privilege): keep the default
        logger.info("could not lower the priority of the drainer's database process %s", backend)
        return False
    return True


def _idle_class(pid: int) -> None:
    if hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    else:
        _niceness(19, pid)


def _niceness(steps: int, pid: int) -> None:
    if pid == 0:
        os.nice(steps)
    else:
        os.setpriority(os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, pid) + steps)
