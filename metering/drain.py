"""The drain: accepted ingest batches (the inbox) moved into the event store, and the ingest listeners told.

`metering.services.events_accept` queues a drain after commit (`drain_soon`); the Celery task
`metering.tasks.events_drain` runs `events_drain_background`; reads of an organization's events and usage
(`metering.selectors`) first store what it had accepted (`events_flush`, `events_drain`), so a client
reads its own writes. It sits below services and selectors: both call it, it calls the store.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any

from django.db import transaction

from core import jobs
from core.background import Coalescer
from core.enqueue import enqueue, tasks_run_inline
from core.models import Organization
from metering import hooks, store

logger = logging.getLogger(__name__)
DRAIN_JOB = "events_drain"
DRAIN_TASK = "metering.tasks.events_drain"


def _request_drain() -> None:
    try:
        enqueue(DRAIN_TASK)
    except Exception:  # the broker is down: beat's periodic drain (or the next read) stores the batches
        logger.exception("could not queue metering.tasks.events_drain")


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


def _landed(result: store.DrainResult) -> None:
    if result.inserted and result.earliest_event_time is not None and hooks.ingest_listeners():
        transaction.on_commit(
            partial(
                _notify_landed,
                organization_id=result.organization_id,
                subjects=result.subjects,
                earliest_event_time=result.earliest_event_time,
                event_types=result.event_types,
            )
        )


def _notify_landed(*, organization_id: str, **kwargs: Any) -> None:
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is not None:
        hooks.ingest_landed(organization=organization, **kwargs)


def events_drain(*, organization_id: str, up_to_id: int | None = None) -> list[store.DrainResult]:
    """Store an organization's accepted batches (all, or those up to `up_to_id`), chunk by chunk; the
    ingest listeners are called for each chunk that stored new events, after it commits."""
    results = []
    while (result := store.inbox_drain(organization_id=organization_id, up_to_id=up_to_id)) is not None:
        results.append(result)
        _landed(result)
    return results


def events_flush(*, organization_id: str) -> None:
    """Read-your-writes: store what this organization had accepted before this call (one index probe
    when nothing is pending). Reads of usage and events call it first."""
    last = store.inbox_last_pending(organization_id=organization_id)
    if last is not None:
        events_drain(organization_id=organization_id, up_to_id=last)


def events_drain_all(*, seconds: float | None = None, up_to_id: int | None = None) -> list[store.DrainResult]:
    """Drain every organization's inbox, oldest first: everything accepted up to now (or up to batch id
    `up_to_id`), stopping early once `seconds` have passed. Bounded, so it never chases a live stream."""
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
    while pending := [p for p in store.inbox_pending(up_to_id=up_to_id) if p[0] not in skipped]:
        for organization_id, _batches, _events in pending:
            with jobs.isolated(
                DRAIN_JOB,
                organization_id=organization_id,
                object_type="organization",
                object_id=organization_id,
                was_failing=organization_id in skip.failing,
            ) as outcome:
                results.extend(events_drain(organization_id=organization_id, up_to_id=up_to_id))
            if outcome.failed:
                skipped.add(organization_id)
            if deadline is not None and time.monotonic() >= deadline:
                return results
    return results


def events_drain_background(*, seconds: float = 50.0) -> int:
    """The Celery task's work: drain until the inbox is empty (or `seconds` pass), unless another worker
    is already doing so (then return at once: tasks queued by busy web processes never pile up waiting
    on each other). Returns the number of events stored."""
    deadline = time.monotonic() + seconds
    stored = 0
    with store.drain_worker_slot() as mine:
        while mine and (left := deadline - time.monotonic()) > 0:
            results = events_drain_all(seconds=left)
            if not results:
                break
            stored += sum(r.inserted for r in results)
    return stored
