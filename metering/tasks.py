from celery import shared_task

from metering import drain, services


@shared_task(name="metering.tasks.rollups_advance", ignore_result=True)
def rollups_advance(organization_id: str | None = None) -> None:
    """Fold newly ingested events into every meter's hourly rollups. Idempotent and resumable."""
    services.rollups_advance(organization_id=organization_id)


@shared_task(name="metering.tasks.events_drain", ignore_result=True, acks_late=True)
def events_drain() -> None:
    """Store accepted ingest batches (the inbox) into the event store. Idempotent: a batch is deleted
    in the transaction that stores its events; a crash redoes it and dedup keeps each event once. One
    worker drains at a time; a task that finds another one draining returns at once."""
    drain.events_drain_background()
