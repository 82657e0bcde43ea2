from celery import shared_task

from metering import drain, retention, services


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


@shared_task(name="metering.tasks.event_partitions_maintain", ignore_result=True)
def event_partitions_maintain() -> None:
    """Create the coming months' event partitions and split months out of the default one. Idempotent."""
    retention.event_partitions_maintain()


@shared_task(name="metering.tasks.events_expire", ignore_result=True)
def events_expire() -> None:
    """Remove raw events past their organization's retention (whole months). Idempotent."""
    retention.events_expire()
