"""Every periodic task, in one place. Beat reads this (django-celery-beat syncs it to the database)."""

BEAT_SCHEDULE: dict[str, dict] = {
    "core-heartbeat": {
        "task": "core.tasks.heartbeat",
        "schedule": 30.0,
        "options": {"expires": 25, "queue": "default"},
    },
}
