"""Tenant fault isolation for background jobs: one organization's poison input never stalls the others.

A job that works through many organizations or objects runs each one inside `isolated(...)`: an exception
is recorded as an open `JobFailure` (job, organization, object, reason, attempts) in its own transaction,
logged, and swallowed, so the job goes on with the next object. While a failure is open the object is
quarantined: jobs ask `quarantined(job, object_type)` and skip it, so a poison meter does not fail every
minute: it is tried again after a back-off (1 min, doubling, at most 1 h), so a transient error heals by
itself and a success resolves the failure. After fixing the cause, an operator retries at once
(`manage.py job_failures --retry`, or the organization's console home).

Open failures show on `/healthz` (`jobs`: counts by job; they do not turn the service unhealthy, since one
tenant's bad data must not take the service out of a load balancer) and on the organization's console home.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.db import connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from core.models import JobFailure, Organization
from core.querysets import filter_given

logger = logging.getLogger(__name__)
MAX_ERROR_CHARS = 2000


@dataclass
class Outcome:
    """Set by `isolated`: whether the body failed (and was recorded)."""

    failed: bool = False
    error: str = ""


def job_failure_record(
    *, job: str, organization_id: str | None, object_type: str, object_id: str, error: str
) -> JobFailure:
    """Open (or reopen) the failure of `job` on one object; attempts count every failure since the first."""
    now = timezone.now()
    error = error[:MAX_ERROR_CHARS]
    with transaction.atomic():
        updated = JobFailure.objects.filter(job=job, object_type=object_type, object_id=object_id).update(
            attempts=F("attempts") + 1, error=error, last_failed_at=now, resolved_at=None
        )
        if not updated:
            JobFailure.objects.create(
                job=job,
                organization_id=organization_id,
                object_type=object_type,
                object_id=object_id,
                error=error,
                first_failed_at=now,
                last_failed_at=now,
            )
    return JobFailure.objects.get(job=job, object_type=object_type, object_id=object_id)


@contextmanager
def isolated(
    job: str, *, organization_id: str | None, object_type: str, object_id: str, was_failing: bool = False
) -> Iterator[Outcome]:
    """Run the body for one object; on any exception the failure is recorded and the exception swallowed
    (`outcome.failed` tells the caller); `was_failing` (the object had an open failure) resolves it when the
    body now goes through. Use inside loops over tenants; the body keeps the database consistent on its own
    (each of its writes is atomic), as every job here does."""
    outcome = Outcome()
    # Inside a transaction (an outer atomic block, e.g. a test) the body gets a savepoint, so its failure
    # leaves the transaction usable; in autocommit (a Celery task) the body's own transactions commit as
    # they go, so a long drain is not turned into one huge transaction.
    guard = transaction.atomic() if connection.in_atomic_block else nullcontext()
    try:
        with guard:
            yield outcome
    except Exception as exc:
        outcome.failed = True
        outcome.error = f"{type(exc).__name__}: {exc}"
        logger.exception(
            "%s failed for %s %s (organization %s); recorded, the job goes on",
            job,
            object_type,
            object_id,
            organization_id,
        )
        job_failure_record(
            job=job,
            organization_id=organization_id,
            object_type=object_type,
            object_id=object_id,
            error=outcome.error,
        )
    else:
        if was_failing:  # tried again (after its back-off or a retry) and it went through
            job_failure_resolve(job=job, object_type=object_type, object_id=object_id)


def backoff(attempts: int) -> timedelta:
    """How long an object stays skipped after its `attempts`-th failure: 1 min, 2, 4, ... capped at 1 h."""
    return timedelta(seconds=min(60 * 2 ** max(attempts - 1, 0), 3600))


class Quarantine(frozenset):
    """The ids `job` skips now (a frozenset, usable in `exclude(id__in=...)`); `failing` holds every id with
    an open failure, including those whose back-off is over and are tried again."""

    failing: frozenset[str] = frozenset()


def quarantined(job: str, object_type: str, *, now: datetime | None = None) -> Quarantine:
    """The objects `job` skips: open failures still inside their back-off (`backoff`), so a transient error
    heals by itself and a poison input costs one attempt per hour at most. An operator's retry ends the
    back-off at once."""
    now = now or timezone.now()
    rows = JobFailure.objects.filter(job=job, object_type=object_type, resolved_at__isnull=True).values_list(
        "object_id", "attempts", "last_failed_at"
    )
    skip = {object_id: last + backoff(attempts) > now for object_id, attempts, last in rows}
    result = Quarantine(object_id for object_id, skipped in skip.items() if skipped)
    result.failing = frozenset(skip)
    return result


def job_failure_resolve(*, job: str, object_type: str, object_id: str) -> None:
    """The object went through: its open failure (if any) is resolved."""
    JobFailure.objects.filter(
        job=job, object_type=object_type, object_id=object_id, resolved_at__isnull=True
    ).update(resolved_at=timezone.now())


def job_failures_open(*, organization: Organization | None = None) -> list[JobFailure]:
    qs = JobFailure.objects.filter(resolved_at__isnull=True)
    if organization is not None:
        qs = qs.filter(organization=organization)
    return list(qs.order_by("-last_failed_at", "id")[:200])


def job_failures_summary() -> dict[str, int]:
    """{job: open failures} over every organization (for /healthz)."""
    rows = (
        JobFailure.objects.filter(resolved_at__isnull=True)
        .values("job")
        .annotate(n=Count("id"))
        .order_by("job")
    )
    return {row["job"]: row["n"] for row in rows}


RetryHook = Callable[[list[str]], object]
_retry_hooks: dict[str, RetryHook] = {}


def on_retry(job: str, hook: RetryHook) -> None:
    """Register what puts `job`'s objects back in line when their failures are retried, for jobs that no
    periodic run picks up again by itself (e.g. re-queue a Stripe event's processing). Called from an app's
    `ready()`; the hook gets the object ids, after the retry commits."""
    _retry_hooks[job] = hook


def job_failures_retry(
    *, organization: Organization | None = None, job: str | None = None, failure_id: int | None = None
) -> int:
    """Resolve open failures (all, or one organization's, one job's, one failure) so the next run tries
    their objects again (or the job's retry hook re-queues them). Returns how many."""
    qs = filter_given(
        JobFailure.objects.filter(resolved_at__isnull=True), organization=organization, job=job, id=failure_id
    )
    retried: dict[str, list[str]] = {}
    with transaction.atomic():
        for failed_job, object_id in qs.select_for_update().values_list("job", "object_id"):
            retried.setdefault(failed_job, []).append(object_id)
        count = qs.update(resolved_at=timezone.now())
        for failed_job, ids in retried.items():
            hook = _retry_hooks.get(failed_job)
            if hook is not None:
                transaction.on_commit(partial(hook, ids))
    return count
