"""What invoicing plugs into the other apps, connected once the app registry is ready (InvoicingConfig.ready)."""

from __future__ import annotations

from core import jobs
from core.models import Role
from core.navigation import register
from invoicing.stripe_events import PROCESS_JOB, stripe_events_requeue


def connect() -> None:
    jobs.on_retry(PROCESS_JOB, stripe_events_requeue)  # `job_failures --retry` re-queues Stripe events

    register("Invoices", "invoicing_console_invoice_list", order=50)
    register("Invoice runs", "invoicing_console_runs", order=55)
    register("Webhooks", "invoicing_console_webhooks", order=60, min_role=Role.ADMIN)
    register(
        "Billing settings",
        "invoicing_console_billing_settings",
        order=880,
        min_role=Role.ADMIN,
        section="settings",
    )
