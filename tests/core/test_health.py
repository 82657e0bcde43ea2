from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import Heartbeat
from core.tasks import heartbeat

pytestmark = pytest.mark.django_db


def test_healthz_ok_before_first_beat_reports_pending(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["database"]["status"] == "ok"
    assert body["broker"]["status"] == "ok"
    assert body["beat"]["status"] == "pending"


def test_heartbeat_task_is_visible_on_health(client):
    heartbeat()
    heartbeat()
    body = client.get("/healthz").json()
    assert body["beat"]["status"] == "ok" and body["beat"]["runs"] == 2
    assert body["beat"]["lastRunAt"] is not None


def test_stale_beat_gives_503(client, settings):
    Heartbeat.objects.create(
        name="beat", last_run_at=timezone.now() - timedelta(seconds=settings.HEALTH_BEAT_MAX_AGE_SECONDS + 5)
    )
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["beat"]["status"] == "fail"


def test_broker_down_gives_503(client, monkeypatch):
    from config.celery import app

    def broken(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(app, "connection_for_write", broken)
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["broker"] == {
        "status": "fail",
        "kind": r.json()["broker"]["kind"],
        "error": "broker unreachable",
    }


def test_heartbeat_is_in_the_beat_schedule():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["core-heartbeat"]
    assert entry["task"] == "core.tasks.heartbeat"
    assert entry["schedule"] <= 60


@pytest.mark.django_db
def test_every_beat_entry_keeps_its_expiry_in_the_database_scheduler():
    """django-celery-beat syncs the schedule into its tables at start; an entry's expiry must survive that
    (its option is `expire_seconds`: a Celery `expires` option would be silently dropped)."""
    from django.conf import settings
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import ModelEntry

    from config.celery import app

    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        ModelEntry.from_entry(name, app=app, **entry)
        stored = PeriodicTask.objects.get(name=name)
        assert stored.expire_seconds == entry["options"]["expire_seconds"], name
        assert stored.expire_seconds < entry["schedule"], name  # gone before the next run is due
        assert ModelEntry(stored, app=app).options["expires"] == stored.expire_seconds, name
