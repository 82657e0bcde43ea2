from celery import shared_task

from metering import services


@shared_task(name="metering.tasks.rollups_advance", ignore_result=True)
def rollups_advance(organization_id: str | None = None) -> None:
    """Fold newly ingested events into every meter's hourly rollups. Idempotent and resumable."""
    services.rollups_advance(organization_id=organization_id)
