"""Routes owned by this app (full paths: /api/... and /console/...). config/urls.py includes it."""

from core.routing import Routes
from invoicing import api
from invoicing.views import billing_settings, customer_sections, invoice_ops, invoices, runs, webhooks

API = Routes("api/v1", "invoicing")
INVOICES = API.under("/billing/invoices", "invoicing_invoice")
INVOICE = INVOICES.item("invoice_id")
RUNS = API.under("/billing/invoice-runs", "invoicing_run")
CREDITS = API.under("/customers/<str:customer>/credits", "invoicing_credit")
TAX_RATES = API.under("/tax-rates", "invoicing_tax_rate")
ENDPOINTS = API.under("/notification/endpoints", "invoicing_endpoint")

CONSOLE = Routes("console", "invoicing_console")
INVOICE_PAGES = CONSOLE.under("/invoices", "invoicing_console_invoice")
INVOICE_PAGE = INVOICE_PAGES.item("invoice_id")
SETTINGS_PAGES = CONSOLE.under("/billing-settings", "invoicing_console_billing_settings")
TAX_RATE_PAGES = SETTINGS_PAGES.under("/tax-rates", "invoicing_console_tax_rate")

urlpatterns: list = [
    # before the detail route, which would take "invoice" for an id
    INVOICES.path("/invoice", api.InvoiceOnDemandView, "on_demand"),
    *INVOICES.collection(api.InvoiceListView, api.InvoiceDetailView, key="invoice_id"),
    *INVOICE.actions(
        advance=api.InvoiceAdvanceView,
        approve=api.InvoiceApproveView,
        void=api.InvoiceVoidView,
        retry=api.InvoiceRetryView,
        pdf=api.InvoicePdfView,
    ),
    INVOICE.path("/lines", api.InvoiceLineCreateView, "line_create"),
    INVOICE.under("/credit-note", "invoicing_credit_note").path("/pdf", api.CreditNotePdfView, "pdf"),
    *RUNS.collection(api.InvoiceRunListView, api.InvoiceRunDetailView, key="run_id"),
    *CREDITS.collection(api.CreditListView, api.CreditDetailView, key="credit_id"),
    *CREDITS.item("credit_id").actions(void=api.CreditVoidView),
    API.path("/apps/stripe/webhook/<str:org>", api.StripeWebhookView, "stripe_webhook"),
    # settings
    API.path("/customers/<str:customer>/upcoming-invoice", api.UpcomingInvoiceView, "upcoming_invoice"),
    API.path("/apps/stripe", api.StripeAppView, "stripe_app"),
    *TAX_RATES.collection(api.TaxRateListView, api.TaxRateDetailView, key="tax_rate_id"),
    API.path("/billing/settings", api.BillingSettingsView, "billing_settings"),
    *ENDPOINTS.collection(api.EndpointListView, api.EndpointDetailView, key="endpoint_id"),
    *ENDPOINTS.item("endpoint_id").actions(deliveries=api.EndpointDeliveriesView),
    # console
    *INVOICE_PAGES.collection(invoices.invoice_list, invoices.invoice_detail, key="invoice_id", slash=True),
    INVOICE_PAGE.path("/pdf", invoices.invoice_pdf_download, "pdf"),
    INVOICE_PAGE.under("/credit-note", "invoicing_console_credit_note").path(
        "/pdf", invoices.credit_note_pdf_download, "pdf"
    ),
    # one view per operation on an invoice: …/advance, …/approve, …/void, …/retry, …/mark_paid
    *(INVOICE_PAGE.path(f"/{op}", view, op) for op, view in invoice_ops.BY_URL.items()),
    *customer_sections.customer_urlpatterns,  # the customer page's invoicing sections
    CONSOLE.path("/invoice-runs/", runs.invoice_runs, "runs"),
    CONSOLE.path("/invoice-runs/<str:run_id>/retry", runs.invoice_run_retry, "run_retry"),
    SETTINGS_PAGES.path("/", billing_settings.billing_settings, ""),
    *SETTINGS_PAGES.actions(
        supplier=billing_settings.billing_settings_supplier,
        stripe=billing_settings.billing_settings_stripe,
        invoicing=billing_settings.billing_settings_invoicing,
    ),
    # a tax rate's form posts to the list (create) or to the rate (update)
    *TAX_RATE_PAGES.collection(
        billing_settings.billing_settings_tax_rate,
        billing_settings.billing_settings_tax_rate,
        key="tax_rate_id",
        names=("create", "update"),
    ),
    *TAX_RATE_PAGES.item("tax_rate_id").actions(archive=billing_settings.billing_settings_tax_rate_archive),
    CONSOLE.path("/webhooks/", webhooks.webhooks, "webhooks"),
    CONSOLE.path("/webhooks/deliveries/<str:delivery_id>/resend", webhooks.webhook_resend, "webhook_resend"),
]
