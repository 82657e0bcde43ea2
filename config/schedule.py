"""Every periodic task, in one place. Beat reads this (django-celery-beat syncs it to the database).

config/settings.py reads the operator's settings from the environment and builds the schedule with
`beat_schedule(...)` (this module reads no environment and imports nothing from the project).

Each entry's `expire_seconds` drops a run still queued when the next one is due (a worker that was down
does not replay a pile of runs). django-celery-beat's database scheduler keeps that option under this
name; Celery's own `expires` would be dropped when the schedule is synced to its tables."""


def beat_schedule(*, invoice_clock_seconds: int) -> dict[str, dict]:
    """Every beat entry; `invoice_clock_seconds` is how often the invoice clock runs
    (`INVOICE_CLOCK_SECONDS`)."""
    return {
        "core-heartbeat": {
            "task": "core.tasks.heartbeat",
            "schedule": 30.0,
            "options": {"expire_seconds": 25, "queue": "default"},
        },
        # billing: keep entitlement balance snapshots fresh so value checks burn only a short tail
        "billing-entitlement-snapshots": {
            "task": "billing.tasks.entitlement_snapshots_refresh",
            "schedule": 60.0,
            "options": {"expire_seconds": 55, "queue": "billing"},
        },
        # invoicing: draft due customer periods (fan-out per customer), issue drafts, forward notifications
        "invoicing-invoice-clock": {
            "task": "invoicing.tasks.invoice_clock",
            "schedule": float(invoice_clock_seconds),
            "options": {"expire_seconds": max(invoice_clock_seconds - 10, 1), "queue": "billing"},
        },
        "invoicing-auto-advance": {
            "task": "invoicing.tasks.invoices_auto_advance",
            "schedule": 60.0,
            "options": {"expire_seconds": 55, "queue": "billing"},
        },
        # invoicing: issued invoices past their due date become overdue (conditional update; idempotent)
        "invoicing-mark-overdue": {
            "task": "invoicing.tasks.invoices_mark_overdue",
            "schedule": 900.0,
            "options": {"expire_seconds": 890, "queue": "billing"},
        },
        # invoicing: e-mail issued invoices to their customers with the PDF (invoicing/emails.py)
        "invoicing-invoice-emails": {
            "task": "invoicing.tasks.invoice_emails_sweep",
            "schedule": 60.0,
            "options": {"expire_seconds": 55, "queue": "default"},
        },
        "invoicing-webhook-sweep": {
            "task": "invoicing.tasks.webhook_deliveries_sweep",
            "schedule": 300.0,
            "options": {"expire_seconds": 290, "queue": "default"},
        },
        "invoicing-billing-notifications": {
            "task": "invoicing.tasks.billing_notifications_forward",
            "schedule": 30.0,
            "options": {"expire_seconds": 25, "queue": "default"},
        },
        # metering: store accepted ingest batches (web processes also ask for this right after accepting)
        "metering-events-drain": {
            "task": "metering.tasks.events_drain",
            "schedule": 10.0,
            "options": {"expire_seconds": 9, "queue": "default"},
        },
        # metering: fold newly ingested events into hourly rollups (by ingestion order; idempotent)
        "metering-rollups-advance": {
            "task": "metering.tasks.rollups_advance",
            "schedule": 60.0,
            "options": {"expire_seconds": 55, "queue": "default"},
        },
        # metering: event partitions for the coming months, months split out of the default partition
        "metering-event-partitions": {
            "task": "metering.tasks.event_partitions_maintain",
            "schedule": 3600.0,
            "options": {"expire_seconds": 3500, "queue": "default"},
        },
        # metering: per-organization event retention (drops whole months; idempotent)
        "metering-events-expire": {
            "task": "metering.tasks.events_expire",
            "schedule": 86400.0,
            "options": {"expire_seconds": 3600, "queue": "default"},
        },
    }
