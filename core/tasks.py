from celery import shared_task
from django.db.models import F
from django.utils import timezone

from core.models import Heartbeat


@shared_task(name="core.tasks.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Run by beat every 30 s through the broker and a worker: proves the whole job path works."""
    now = timezone.now()
    updated = Heartbeat.objects.filter(name="beat").update(last_run_at=now, runs=F("runs") + 1)
    if not updated:
        Heartbeat.objects.get_or_create(name="beat", defaults={"last_run_at": now, "runs": 1})
