"""How a service queues background work: by the task's registered name, never by importing `tasks.py`.

Tasks import services (a task takes ids and calls one service); a service that imported its app's tasks
module would close a cycle. So services queue through here:

    enqueue("metering.tasks.events_drain")                    # now
    enqueue_on_commit("invoicing.tasks.invoice_stripe_push", invoice.id)   # once the transaction commits

The name is the one given to `@shared_task(name=...)`. Tasks run inline when Celery is eager (tests, and
`CELERY_TASK_ALWAYS_EAGER`), exactly as `task.apply_async` does; `tasks_run_inline()` says whether they do.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from celery import current_app
from celery.result import AsyncResult
from django.db import transaction


def tasks_run_inline() -> bool:
    """True when queued tasks run at once in this process (Celery's `task_always_eager`)."""
    return bool(current_app.conf.task_always_eager)


def task_by_name(name: str) -> Any:
    """The registered Celery task `name`. Task modules of web processes are imported on first use
    (Celery's own discovery of every installed app's `tasks.py`), as a worker does at start."""
    tasks = current_app.tasks
    if name not in tasks:
        current_app.autodiscover_tasks(force=True)
    try:
        return tasks[name]
    except KeyError:
        raise LookupError(f"No Celery task named {name!r} (see @shared_task(name=...)).") from None


def enqueue(name: str, *args: Any, **kwargs: Any) -> AsyncResult:
    """Queue task `name` with these arguments now (inline when Celery is eager)."""
    return task_by_name(name).apply_async(args, kwargs)


def enqueue_on_commit(name: str, *args: Any, **kwargs: Any) -> None:
    """Queue task `name` once the current transaction commits (at once outside a transaction)."""
    task_by_name(name)  # an unknown name fails here, in the caller, not after the commit
    transaction.on_commit(partial(enqueue, name, *args, **kwargs))
