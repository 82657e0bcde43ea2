"""Every periodic task, in one place. Beat reads this (django-celery-beat syncs it to the database)."""

BEAT_SCHEDULE: dict[str, dict] = {
    "core-heartbeat": {
        "task": "core.tasks.heartbeat",
        "schedule": 30.0,
        "options": {"expires": 25, "queue": "default"},
    },
    # billing: keep entitlement balance snapshots fresh so value checks burn only a short tail
    "billing-entitlement-snapshots": {
        "task": "billing.tasks.entitlement_snapshots_refresh",
        "schedule": 60.0,
        "options": {"expires": 55, "queue": "billing"},
    },
}
