"""Invoice writes, by what they touch: `state` (transitions and locks), `settings` (numbering, terms, tax
rates, Stripe connection), `build` (lines for a billing moment, the upcoming preview, manual lines) and
`lifecycle` (issue, status changes, on-demand invoices, void, payments, sweeps).

State changes are conditional updates (`UPDATE ... WHERE status IN (allowed)`); zero rows → `Conflict`
(409). Row locks are taken only in `state.invoice_lock` and `invoice_number_assign`. Callers import from
`invoicing.services`; the names below are its public surface.
"""

from __future__ import annotations

from invoicing.credits import customer_credit_create
from invoicing.numbering import invoice_number_assign
from invoicing.services.build import (
    Upcoming,
    build_one,
    customer_invoice_upcoming,
    invoice_draft_for_period,
    invoice_event_record,
    invoice_gathering_get,
    invoice_gathering_refresh,
    invoice_line_add_manual,
    invoice_moment,
    invoice_payload,
    invoice_upcoming,
    invoice_upcoming_build,
    line_rows,
    write_lines,
)
from invoicing.services.lifecycle import (
    customer_snapshot,
    invoice_advance,
    invoice_approve,
    invoice_get_for_update,
    invoice_issue,
    invoice_mark_paid,
    invoice_on_demand_create,
    invoice_record_billed_elsewhere,
    invoice_retry_sync,
    invoice_set_status,
    invoice_void,
    invoices_auto_advance,
    invoices_mark_overdue,
    supplier_snapshot,
)
from invoicing.services.settings import (
    API_VERSION_RE,
    COLLECTION_METHODS,
    NUMBER_PREFIX_RE,
    SETTINGS_FIELDS,
    SETTINGS_LIMITS,
    SETTINGS_TEXT,
    STRIPE_KEY_PREFIXES,
    invoicing_settings_get,
    invoicing_settings_update,
    invoicing_settings_validate,
    stripe_settings_set,
    tax_rate_archive,
    tax_rate_create,
    tax_rate_update,
)
from invoicing.services.state import (
    TRANSITIONS,
    WEBHOOK_ON,
    InvoiceNotEditable,
    S,
    invoice_lock,
    transition,
)

__all__ = [
    "API_VERSION_RE",
    "COLLECTION_METHODS",
    "NUMBER_PREFIX_RE",
    "SETTINGS_FIELDS",
    "SETTINGS_LIMITS",
    "SETTINGS_TEXT",
    "STRIPE_KEY_PREFIXES",
    "TRANSITIONS",
    "WEBHOOK_ON",
    "InvoiceNotEditable",
    "S",
    "Upcoming",
    "build_one",
    "customer_credit_create",
    "customer_invoice_upcoming",
    "customer_snapshot",
    "invoice_advance",
    "invoice_approve",
    "invoice_draft_for_period",
    "invoice_event_record",
    "invoice_gathering_get",
    "invoice_gathering_refresh",
    "invoice_get_for_update",
    "invoice_issue",
    "invoice_line_add_manual",
    "invoice_lock",
    "invoice_mark_paid",
    "invoice_moment",
    "invoice_number_assign",
    "invoice_on_demand_create",
    "invoice_payload",
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
    "invoicing_settings_validate",
    "line_rows",
    "stripe_settings_set",
    "supplier_snapshot",
    "tax_rate_archive",
    "tax_rate_create",
    "tax_rate_update",
    "transition",
    "write_lines",
]
