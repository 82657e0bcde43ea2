"""Invoice writes, by what they touch: `state` (transitions and locks), `settings` (numbering, terms, tax
rates, Stripe connection), `build` (lines for a billing moment, the upcoming preview, manual lines) and
`lifecycle` (issue, status changes, on-demand invoices, void, payments, sweeps).

State changes are conditional updates (`UPDATE ... WHERE status IN (allowed)`); zero rows → `Conflict`
(409). Row locks are taken only in `state.invoice_lock` and `invoice_number_assign`. Other apps, the
views, the API and the tasks call the public service functions below from `invoicing.services`; the
helpers the invoicing modules share (building lines, transitions, locks, snapshots) are imported from the
module that holds them (`invoicing.services.build`, `.state`, `.lifecycle`, `.settings`).
"""

from __future__ import annotations

from invoicing.credits import customer_credit_create
from invoicing.services.build import (
    Upcoming,
    customer_invoice_upcoming,
    invoice_draft_for_period,
    invoice_gathering_get,
    invoice_gathering_refresh,
    invoice_line_add_manual,
    invoice_upcoming,
    invoice_upcoming_build,
)
from invoicing.services.lifecycle import (
    invoice_advance,
    invoice_approve,
    invoice_issue,
    invoice_mark_paid,
    invoice_on_demand_create,
    invoice_record_billed_elsewhere,
    invoice_retry_sync,
    invoice_set_status,
    invoice_void,
    invoices_auto_advance,
    invoices_mark_overdue,
)
from invoicing.services.settings import (
    invoicing_settings_get,
    invoicing_settings_update,
    stripe_settings_set,
    tax_rate_archive,
    tax_rate_create,
    tax_rate_update,
)

__all__ = [
    "Upcoming",
    "customer_credit_create",
    "customer_invoice_upcoming",
    "invoice_advance",
    "invoice_approve",
    "invoice_draft_for_period",
    "invoice_gathering_get",
    "invoice_gathering_refresh",
    "invoice_issue",
    "invoice_line_add_manual",
    "invoice_mark_paid",
    "invoice_on_demand_create",
    "invoice_record_billed_elsewhere",
    "invoice_retry_sync",
    "invoice_set_status",
    "invoice_upcoming",
    "invoice_upcoming_build",
    "invoice_void",
    "invoices_auto_advance",
    "invoices_mark_overdue",
    "invoicing_settings_get",
    "invoicing_settings_update",
    "stripe_settings_set",
    "tax_rate_archive",
    "tax_rate_create",
    "tax_rate_update",
]
